"""Benchmark: does the LM budget search's kernel table predict the MatMuls inside the model?

    .venv/bin/python benchmarks/graph_kernels.py BUDGET_ARTIFACT [OTHER_ARTIFACT ...] [--steps 25] [--threads 2]
                                                 [--json OUT.json]

The search chooses formats by a table of kernels timed apart from the model (variants.search.kernels,
recorded in the budget build's manifest). This checks that table independently: each artifact's
model.onnx runs one decode step (one new token after 64 cached positions, random cache) --steps times
under ONNX Runtime's profiler, and every MatMulNBits node's own kernel time, by shape and format read
from the node itself (K, N, bits, block_size), is set beside the table's figure for that shape and
format. It prints the CPU, per (shape, format) the table's microseconds, the in-graph median and their
ratio, and per artifact the step's MatMul total as predicted and as measured, and the whole step's
wall time (unprofiled, fastest of --steps); --json writes the same figures to a file (the artifact
folders are left as they are). Run it on the machine the table was timed on, alone.
"""
import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHED = 64  # positions already in the cache


def feeds(session) -> dict:
    out = {}
    for i in session.get_inputs():
        if i.name == "input_ids":
            out[i.name] = np.array([[100]], dtype=np.int64)
        elif i.name == "attention_mask":
            out[i.name] = np.ones((1, CACHED + 1), dtype=np.int64)
        elif i.name == "position_ids":
            out[i.name] = np.array([[CACHED]], dtype=np.int64)
        elif "past" in i.name:
            heads, dim = i.shape[1], i.shape[3]
            out[i.name] = np.random.default_rng(0).standard_normal((1, heads, CACHED, dim), dtype=np.float32)
        else:
            raise SystemExit(f"{i.name}: an input this check does not know how to feed")
    return out


def nodes(model_path) -> dict:
    """{node name: (K, N, format)} of every MatMulNBits node."""
    import onnx

    from qonnx.variants.search import kernels

    m = onnx.load(str(model_path), load_external_data=False)
    out = {}
    for n in m.graph.node:
        if n.op_type == "MatMulNBits":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            no_zeros = len(n.input) < 4 or not n.input[3]  # genai-int4's nodes
            out[n.name] = (a["K"], a["N"], kernels.format_name(a["bits"], a["block_size"], no_zeros))
    return out


def profile(model_path, threads, steps):
    """(wall ms of a step: fastest of `steps`, {node name: [kernel us per step]})."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    s = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    x = feeds(s)
    for _ in range(3):
        s.run(None, x)
    wall = []
    for _ in range(steps):
        t0 = time.perf_counter()
        s.run(None, x)
        wall.append((time.perf_counter() - t0) * 1e3)
    del s
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"graph_kernels_{model_path.parent.name}")
    s = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    for _ in range(3 + steps):
        s.run(None, x)
    trace = Path(s.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    per = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["args"].get("op_name") == "MatMulNBits":
            per[e["name"][:-len("_kernel_time")]].append(e["dur"])
    return min(wall), {k: v[3:] for k, v in per.items()}  # the warm-up calls are not counted


def main():
    from qonnx import manifest
    from qonnx.envinfo import cpu
    from qonnx.variants.search import kernels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifacts", type=Path, nargs="+")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    table = kernels.recorded(manifest.read(args.artifacts[0]))
    if not table:
        sys.exit(f"{args.artifacts[0]} is not an LM budget build: its manifest has no kernel table")
    us = kernels.figures(table)
    c = cpu()
    print(f"CPU: {c.get('model')} ({', '.join(c.get('flags', []))}); table timed on {table['cpu'].get('model')}; "
          f"{args.threads} threads")
    out = {"cpu": c, "table_cpu": table["cpu"], "artifacts": {}}
    for art in args.artifacts:
        shapes = nodes(art / "model.onnx")
        wall, per = profile(art / "model.onnx", args.threads, args.steps)
        by = collections.defaultdict(list)  # (K, N, format): in-graph medians of its nodes
        for name, (K, N, fmt) in shapes.items():
            if per.get(name):
                by[(K, N, fmt)].append(statistics.median(per[name]))
        print(f"\n{art.name}: decode step {wall:.2f} ms (fastest of {args.steps}, unprofiled)")
        print(f"  {'K x N':>12s} {'format':>10s} {'nodes':>5s} {'table us':>9s} {'in graph us':>12s} {'ratio':>6s}")
        rows, predicted, measured = [], 0.0, 0.0
        for (K, N, fmt), meds in sorted(by.items()):
            graph_us, want = statistics.median(meds), us.get((K, N, fmt))
            measured += sum(meds)
            predicted += (want or 0.0) * len(meds)
            ratio = f"{want / graph_us:6.2f}" if want else "   n/a"
            print(f"  {f'{K}x{N}':>12s} {fmt:>10s} {len(meds):5d} {want or float('nan'):9.1f} {graph_us:12.1f} {ratio}")
            rows.append({"K": K, "N": N, "format": fmt, "nodes": len(meds), "table_us": want, "graph_us": graph_us})
        missing = sum(len(m) for k, m in by.items() if k not in us)
        print(f"  MatMulNBits per step: table {predicted / 1e3:.2f} ms, in graph {measured / 1e3:.2f} ms"
              + (f" ({missing} nodes of shapes or formats the table lacks are not in the table's sum)" if missing else ""))
        out["artifacts"][str(art)] = {"step_ms": wall, "table_ms": predicted / 1e3, "graph_ms": measured / 1e3,
                                      "kernels": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
