"""Does the LM budget's kernel table predict decode? Uniform-format builds of a genai fp32 folder,
timed against genai-int4 in interleaved rounds, beside what the kernel table predicts for them.

    .venv/bin/python benchmarks/kernel_check.py FP32_DIR INT4_DIR [-o DIR] [--rounds 10] [--threads 2]

FP32_DIR and INT4_DIR: the genai-fp32 and genai-int4 folders of one model (a compare run's
artifact store holds both: `qonnx compare demo:smollm2 --variants genai-int4,...`). Builds, with
round-to-nearest codes (the speed does not depend on how codes were chosen), every MatMul at
4-bit/32, 4-bit/64, 4-bit/128 and 8-bit/128, plus two mixes (FFN-in at 4-bit/128 with the rest 8-bit and
the head 4-bit/32; everything 8-bit but the head at 4-bit/32); times each with genai-int4 in
turns, `--rounds` times; and times the kernel table twice, with weights streamed from memory (the
search's) and with one weight called from cache (cap 0 MB), printing each build's measured decode
ratio to genai-int4 beside the two tables' predicted MatMul ratios to all 4-bit/32.
"""
import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lm_decode import interleaved  # noqa: E402  (benchmarks/, the script's own folder)

MIXES = {"all 4-bit/32": lambda r: "4-bit/32", "all 4-bit/64": lambda r: "4-bit/64", "all 4-bit/128": lambda r: "4-bit/128",
         "all 8-bit/128": lambda r: "8-bit/128",
         "ffn-in 4-bit/128, head 4-bit/32, rest 8-bit": lambda r: {"ffn-in": "4-bit/128", "head": "4-bit/32"}.get(
             r, "8-bit/128"),
         "head 4-bit/32, rest 8-bit": lambda r: "4-bit/32" if r == "head" else "8-bit/128"}


def build(src, out, fmt_of, fmts):
    import onnx

    from qonnx.variants.graph import save
    from qonnx.variants.search.nbits import replace, rtn_codes, weighted_matmuls

    m = onnx.load(str(src / "model.onnx"))
    nodes, weights = weighted_matmuls(m)
    plan = {n.name: (*fmts[fmt_of[n.name]], rtn_codes(weights[n.name], fmts[fmt_of[n.name]])) for n in nodes}
    replace(m, plan, {k: w.shape[0] for k, w in weights.items()})
    out.mkdir(parents=True)
    for f in src.iterdir():
        if not f.name.startswith("model.onnx"):
            shutil.copy(f, out / f.name)
    save(m, out / "model.onnx", external=True, prune=True)


def main():
    import onnx
    from transformers import AutoTokenizer

    from qonnx.envinfo import cpu, cpu_line
    from qonnx.runners.genai import GenaiRunner
    from qonnx.tasks import lm
    from qonnx.variants.graph import weighted_matmuls
    from qonnx.variants.search import kernels
    from qonnx.variants.units import role

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32", type=Path)
    ap.add_argument("int4", type=Path)
    ap.add_argument("-o", "--output", type=Path, help="keep the builds and kernel_check.json here")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    fmts = kernels.formats(128)
    model = onnx.load(str(args.fp32 / "model.onnx"))
    nodes, weights = weighted_matmuls(model)
    shapes = {n.name: tuple(weights[n.name].shape) for n in nodes}
    plans = {name: {n.name: f(role(n.name)[1]) for n in nodes} for name, f in MIXES.items()}
    del model, weights
    tables = {"streamed": kernels.measure(kernels.counts(shapes), fmts, args.threads),
              "from cache": kernels.measure(kernels.counts(shapes), fmts, args.threads, calls=20, cap_mb=0)}
    anchor = {t: kernels.predict_us(tab, plans["all 4-bit/32"], shapes) for t, tab in tables.items()}
    work = Path(tempfile.mkdtemp(prefix="kernel_check-")) if args.output is None else args.output
    try:
        folders = {"genai-int4": args.int4}
        for i, (name, plan) in enumerate(plans.items()):
            folders[name] = work / f"build{i}"
            build(args.fp32, folders[name], plan, fmts)
        tok = AutoTokenizer.from_pretrained(str(args.int4))
        prompts = [tok(p)["input_ids"] for p in lm.PROMPTS]
        runners = {}
        for name, folder in folders.items():
            runners[name] = GenaiRunner(str(folder / "model.onnx"), "cpu", args.threads, {})
            runners[name].load_generator()
        speeds = interleaved(runners, prompts, args.rounds)
        c = cpu()
        print(f"{cpu_line(c)}; {args.threads} threads, {args.rounds} interleaved rounds")
        print(f"{'build':46s} {'decode x genai-int4 (range)':>28s} {'streamed table':>15s} {'cached table':>13s}")
        doc = {"cpu": c, "rounds": args.rounds, "threads": args.threads, "tables": tables, "builds": {}}
        for name in runners:
            ratios = [a / b for a, b in zip(speeds[name], speeds["genai-int4"])]
            pred = {t: anchor[t] / kernels.predict_us(tab, plans[name], shapes) for t, tab in tables.items()} \
                if name in plans else {}
            doc["builds"][name] = {"ratio": statistics.median(ratios), "range": [min(ratios), max(ratios)],
                                   "tok_s": speeds[name], "predicted": pred}
            got = f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"
            cols = [f"{pred[t]:.3f}" if t in pred else "-" for t in tables]
            print(f"{name:46s} {got:>28s} {cols[0]:>15s} {cols[1]:>13s}")
        print("predicted: the table's MatMul time of all 4-bit/32 over the build's (> 1: faster)")
        if args.output:
            (args.output / "kernel_check.json").write_text(json.dumps(doc, indent=1, default=float))
    finally:
        if args.output is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
