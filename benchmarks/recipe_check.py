"""Which 4-bit recipe holds an LM best? Perplexity of uniform 4-bit builds of a genai fp32 folder,
on the LM budget search's own validation text, by code recipe, calibration size and a rotation.

    .venv/bin/python benchmarks/recipe_check.py FP32_DIR [--samples 8 32] [--format 4-bit/128]
                                                [--modes plain rotated] [--threads 2]

FP32_DIR: the genai-fp32 folder of demo:smollm2 (a compare run's artifact store holds it: `qonnx
compare demo:smollm2 --variants genai-int4,...`). For each mode and calibration size (windows of
512 tokens of the demo's calibration text) it makes the search's codes (variants.search.mixed:
activation-aware input scales, then the clip search and GPTQ, here for every MatMul, not the head
alone) and prints the validation perplexity of the build with every MatMul in --format by each
recipe (the embedding lookup 8-bit, as the search builds it), against FP32.

Mode "rotated" first rotates the residual stream by a random orthogonal matrix folded into the
weights (QuaRot, Ashkboos et al., 2024; SpinQuant, Liu et al., 2024): an RMS norm without its gain
commutes with any orthogonal Q, so each gain moves into the MatMuls that read the norm, those read
Q^T W, and whatever writes the stream (the lookup table, attention's and the FFN's output MatMuls)
writes W Q. The float graph computes what it did (checked: its perplexity is printed); only the
weights a 4-bit grid holds change. On demo:smollm2 it helps GPTQ's codes and ruins the clip
search's (docs/benchmarks.md, "LM budget: more formats, a rotation and GPTQ's calibration size"):
it is here until the budget search takes it with GPTQ for every unit.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RMS_NORMS = {"SimplifiedLayerNormalization": 2, "SkipSimplifiedLayerNormalization": 3}  # op: index of gain + 1
SEED = 0


def orthogonal(d, seed=SEED) -> np.ndarray:
    """A random orthogonal d x d matrix (QR of a Gaussian one, signs fixed: Haar-distributed), float64."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


def _plan(model):
    """(plan, None) or (None, why not): plan = {"norms", "readers", "writers", "lookups"}."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output if o}
    consumers = {}
    for n in g.node:
        for i, x in enumerate(n.input):
            if x:
                consumers.setdefault(x, []).append((n, i))
    outputs = {o.name for o in g.output}
    norms = [n for n in g.node if n.op_type in RMS_NORMS]
    if not norms:
        others = sorted({n.op_type for n in g.node if "LayerNorm" in n.op_type})
        return None, f"no RMS norm op in the graph ({', '.join(others) or 'no norm op'} instead)"
    stream = {}  # residual tensor: its producer
    for n in norms:
        gain = RMS_NORMS[n.op_type] - 1
        if len(n.input) > gain + 1 and n.input[gain + 1]:
            return None, f"{n.name} adds a bias to the residual stream"
        if n.input[gain] not in inits or len(inits[n.input[gain]].dims) != 1:
            return None, f"{n.name}'s gain is not a constant vector"
        for x in list(n.input[:gain]) + ([n.output[3]] if len(n.output) > 3 and n.output[3] else []):
            stream[x] = producers.get(x)
        if any(o for o in n.output[1:3]):
            return None, f"{n.name}'s mean or inverse deviation is read"
    readers, writers, lookups = {}, {}, {}
    for x, p in stream.items():
        if x in outputs:
            return None, f"the residual tensor {x} is a graph output"
        for c, i in consumers.get(x, []):
            if c.op_type not in RMS_NORMS or i >= RMS_NORMS[c.op_type] - 1:
                return None, f"the residual tensor {x} is read by {c.op_type} {c.name}"
        if p is None:
            return None, f"the residual tensor {x} is a graph input"
        if p.op_type in RMS_NORMS:
            continue
        if p.op_type == "MatMul" and p.input[1] in inits and len(inits[p.input[1]].dims) == 2:
            writers[p.name] = p
        elif p.op_type == "Gather" and p.input[0] in inits:
            lookups[p.name] = (p, inits[p.input[0]].name, None)
        elif p.op_type == "Gather" and producers.get(p.input[0]) is not None and \
                producers[p.input[0]].op_type == "Transpose" and producers[p.input[0]].input[0] in inits:
            lookups[p.name] = (p, producers[p.input[0]].input[0], producers[p.input[0]])
        else:
            return None, f"the residual tensor {x} is made by {p.op_type} {p.name}"
    for n in norms:
        if n.output[0] in outputs:
            return None, f"{n.name}'s output is a graph output"
        for c, i in consumers.get(n.output[0], []):
            if c.op_type != "MatMul" or i != 0 or c.input[1] not in inits or len(inits[c.input[1]].dims) != 2:
                return None, f"{n.name}'s output is read by {c.op_type} {c.name}, not a weighted MatMul"
            readers[c.name] = (c, n)
    dims = {inits[n.input[RMS_NORMS[n.op_type] - 1]].dims[0] for n in norms}
    if len(dims) != 1:
        return None, f"norms of different widths {sorted(dims)}"
    d = dims.pop()
    uses = {}
    for n in g.node:
        for x in n.input:
            uses[x] = uses.get(x, 0) + 1
    for name, node in [*writers.items(), *((k, c) for k, (c, _) in readers.items())]:
        if name in readers and name in writers:
            return None, f"{name} both reads and writes the residual stream"
        w = inits[node.input[1]]
        tied = sum(1 for _, t, tr in lookups.values() if t == node.input[1] and tr is not None)
        if uses[node.input[1]] != 1 + tied:
            return None, f"{name}'s weight is shared with other nodes"
        if (w.dims[0] if name in readers else w.dims[1]) != d:
            return None, f"{name}'s weight {list(w.dims)} does not meet the stream's width {d}"
    return {"norms": norms, "readers": readers, "writers": writers, "lookups": lookups, "width": d}, None


def rotate(model, seed=SEED):
    """Rotate model's residual stream in place (see the module's doc). Returns (record, None) with
    what was rotated, or (None, why not) with the model unchanged."""
    from onnx import numpy_helper

    plan, why = _plan(model)
    if plan is None:
        return None, why
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    Q = orthogonal(plan["width"], seed)

    def get(name):
        return numpy_helper.to_array(inits[name]).astype(np.float64)

    def put(name, array):
        inits[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))

    for node, table, transpose in plan["lookups"].values():  # before a tied head's weight changes
        rows = get(table).T if transpose is not None else get(table)
        if rows.shape[1] != plan["width"]:
            return None, f"the lookup {node.name} gives rows of {rows.shape[1]}, not {plan['width']}"
        own = f"{table}.rotated"
        g.initializer.append(numpy_helper.from_array((rows @ Q).astype(np.float32), own))
        node.input[0] = own
        if transpose is not None and not any(transpose.output[0] in n.input for n in g.node):
            g.node.remove(transpose)
    gains = {}
    for node, norm in plan["readers"].values():
        gain = norm.input[RMS_NORMS[norm.op_type] - 1]
        gains.setdefault(gain, get(gain))
        put(node.input[1], Q.T @ (gains[gain][:, None] * get(node.input[1])))
    for node in plan["writers"].values():
        put(node.input[1], get(node.input[1]) @ Q)
    for gain, v in gains.items():
        put(gain, np.ones_like(v))
    return {"method": "random orthogonal rotation of the residual stream (QuaRot), folded into the weights",
            "seed": seed, "width": plan["width"], "norms": len(plan["norms"]), "matmuls_reading": len(plan["readers"]),
            "matmuls_writing": len(plan["writers"]), "lookups": len(plan["lookups"])}, None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("fp32_dir", type=Path)
    p.add_argument("--samples", type=int, nargs="+", default=[8, 32])
    p.add_argument("--format", default="4-bit/128")
    p.add_argument("--modes", nargs="+", default=["plain", "rotated"], choices=["plain", "rotated"])
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    import tempfile

    import onnx

    from qonnx import genai
    from qonnx.envinfo import cpu
    from qonnx.models import resolve
    from qonnx.variants.search import kernels, mixed
    from qonnx.variants.search.lm_rank import perplexity

    mixed.four_bit_recipes = lambda name: ("clip", "gptq")  # GPTQ codes for every MatMul, not the head alone
    spec = kernels.formats(128).get(a.format) or kernels.formats(int(a.format.split("/")[1].split()[0]))[a.format]
    source = resolve("demo:smollm2")
    _, cal, val, _ = genai._budget_inputs(source, None)
    config = json.loads((source.path / "config.json").read_text())
    src = a.fp32_dir / "model.onnx"
    print(f"CPU: {cpu().get('model')}; calibration {len(cal)} tokens, validation {len(val)} tokens", flush=True)
    ref = perplexity(src, val, 512, 256, a.threads, config)
    print(f"FP32 perplexity {ref:.4f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        for mode in a.modes:
            for samples in a.samples:
                model = onnx.load(str(src))
                if mode == "rotated":
                    record, why = rotate(model)
                    if record is None:
                        raise SystemExit(f"the graph cannot be rotated: {why}")
                    onnx.save_model(model, str(Path(tmp) / "float.onnx"), save_as_external_data=True,
                                    location="float.onnx.data")
                    print(f"rotated: {record}; float perplexity "
                          f"{perplexity(Path(tmp) / 'float.onnx', val, 512, 256, a.threads, config):.4f}", flush=True)
                    model = onnx.load(str(Path(tmp) / "float.onnx"))
                t0 = time.monotonic()
                b = mixed.MixedBuilder(model, cal, config, {a.format: spec}, samples, 512)
                made = time.monotonic() - t0
                for r in b.recipes(a.format):
                    b.build({n: (a.format, r) for n in b.nodes}, out)
                    ppl = perplexity(out, val, 512, 256, a.threads, config)
                    print(f"{mode:8} {samples:3} windows  {a.format} {r:5}  perplexity {ppl:.3f} ({100 * (ppl / ref - 1):+.2f} %)"
                          f"  codes made in {made:.0f} s", flush=True)


if __name__ == "__main__":
    main()
