"""Benchmark: decode speed of an LM compare run's ONNX rows against the genai-int4 anchor, interleaved.

    .venv/bin/python benchmarks/lm_decode.py RUN_DIR [--also RUN_DIR2 ...] [--rounds 6] [--threads 2]

One sequential pass of `qonnx compare` measures each row once, minutes apart; on a shared 2-core
machine that drifts by 10-20 % (the same genai-int4 folder measured 157 and 186 tok/s in two
passes here). This loads every ok ONNX/genai row of the run at once and times them in turns,
`--rounds` times, reversing the order each round (4 prompts x 32 greedy tokens per turn, the
prompts and loop of compare). It prints the CPU, each row's median decode tokens/s, its ratio to
genai-int4 (onnxruntime-genai's builder, default INT4) as the median of the per-round ratios with
their range (each round times every row within seconds, so a slow phase of the machine slows both
sides of a round's ratio; a ratio of two medians can pair one row's slow rounds with another's fast
ones), and the row's perplexity change from the run (with its standard error where the run kept
one), and writes DIR/decode_benchmark.json. `--also` adds the budget rows of other runs of the same
model (named "VARIANT@RUN_NAME"), so builds of two compares are timed in the same rounds.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ANCHOR = "genai-int4"


def runner_for(row, threads, config):
    from qonnx.runners.genai import GenaiRunner
    from qonnx.runners.ort import OrtRunner

    art = Path(row["artifact"])
    if row["variant"].startswith("genai-"):
        r = GenaiRunner(str(art / "model.onnx"), "cpu", threads, config)
        r.load_generator()
    else:
        r = OrtRunner(str(art / "model.onnx"), "cpu", threads, config)
        r.load()
    return r


def interleaved(runners, prompts, rounds) -> dict:
    """{name: [decode tokens/s per round]}: each runner decodes every prompt (32 greedy tokens) in
    turn, `rounds` times, the order reversed every other round, after a warm-up."""
    from qonnx.measure.latency import settle
    from qonnx.tasks import lm

    for run in runners.values():
        lm.generate(run, prompts[0], 4)  # warm-up
    speeds = {v: [] for v in runners}
    order = list(runners)
    for rnd in range(rounds):
        for v in (order if rnd % 2 == 0 else order[::-1]):
            settle()  # the threads of the row before stop spinning
            decoded = seconds = 0
            for ids in prompts:
                _, dt, out = lm.generate(runners[v], ids, 32)
                decoded, seconds = decoded + len(out) - 1, seconds + dt
            speeds[v].append(decoded / seconds)
    return speeds


def main():
    from transformers import AutoTokenizer

    from qonnx.envinfo import cpu, cpu_line
    from qonnx.tasks import lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--also", type=Path, nargs="*", default=[], help="other runs whose budget rows join the rounds")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    doc = json.loads((args.run_dir / "results.json").read_text())
    rows = [r for r in doc["rows"] if r["status"] == "ok" and r["provider"] == "cpu"
            and r["variant"].startswith(("onnx-", "genai-"))]
    for other in args.also:  # their budget rows, by another name
        more = json.loads((other / "results.json").read_text())["rows"]
        rows += [{**r, "variant": f"{r['variant']}@{other.name}"} for r in more if r["status"] == "ok"
                 and r["provider"] == "cpu" and r["variant"] in ("genai-int4-budget", "onnx-int4-weight")]
    if not any(r["variant"] == ANCHOR for r in rows):
        sys.exit(f"{args.run_dir} has no ok {ANCHOR} row to compare against")
    config = json.loads((Path(doc["settings"]["model_path"]) / "config.json").read_text()) \
        if doc["settings"].get("model_path") else {}
    first = Path(rows[0]["artifact"])
    tok = AutoTokenizer.from_pretrained(str(first))
    prompts = [tok(p)["input_ids"] for p in lm.PROMPTS]
    runners = {r["variant"]: runner_for(r, args.threads, config) for r in rows}
    speeds = interleaved(runners, prompts, args.rounds)
    c = cpu()
    print(f"{cpu_line(c)}; {args.threads} threads, {args.rounds} interleaved rounds")
    out = {"cpu": c, "threads": args.threads, "rounds": args.rounds, "anchor": ANCHOR, "rows": {}}
    print(f"{'row':28s} {'tok/s':>7s} {'x ' + ANCHOR + ' (range)':>22s} {'ppl change (SE)':>17s}")
    for r in rows:
        v, med = r["variant"], statistics.median(speeds[r["variant"]])
        ratios = [a / b for a, b in zip(speeds[v], speeds[ANCHOR])]
        ratio = statistics.median(ratios)
        ppl, se = r.get("perplexity_change_pct"), r.get("perplexity_change_se_pct")
        out["rows"][v] = {"median_tok_s": med, "all": speeds[v], "ratio": ratio, "round_ratios": ratios,
                          "perplexity_change_pct": ppl, "perplexity_change_se_pct": se}
        spread = f"{ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        change = "" if ppl is None else f"{ppl:+.2f} %" + ("" if se is None else f" ({se:.2f})")
        print(f"{v:28s} {med:7.1f} {spread:>22s} {change:>17s}")
    (args.run_dir / "decode_benchmark.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {args.run_dir / 'decode_benchmark.json'}")


if __name__ == "__main__":
    main()
