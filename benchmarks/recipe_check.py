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

Mode "rotated" first rotates the residual stream (variants.rotation, as the budget search does
since SEARCH 8); the float graph's perplexity is printed beside. On demo:smollm2 rotation helps
GPTQ's codes and ruins the clip search's (docs/benchmarks.md, "LM budget: more formats, a rotation
and GPTQ's calibration size").
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qonnx.variants.rotation import rotate  # noqa: E402


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

    # both recipes for every MatMul, rotated or not (the search: GPTQ alone where rotated, else clip and GPTQ for the head)
    mixed.four_bit_recipes = lambda name, rotated=False: ("clip", "gptq")
    spec = kernels.formats(int(a.format.split("/")[1].split()[0]))[a.format]  # "4-bit/64 symmetric": block 64
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
