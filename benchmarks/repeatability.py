"""Two back-to-back `qonnx compare` runs of one model on this machine: how far apart are their
speedups, and are their quality figures identical?

    python benchmarks/repeatability.py [MODEL] [-o DIR] [-- compare options...]

Runs `qonnx compare MODEL -o DIR/a OPTIONS` then `... -o DIR/b OPTIONS` (the artifacts are built by
the first run and reused by the second), then prints, per row, both speedups (with their per-round
ranges where the runs timed interleaved rounds), their difference in percent of the first, and
whether accuracy or perplexity are identical. The CPU model and flags come first: a ratio without
its CPU means nothing.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from qonnx.envinfo import cpu


def run(model, out, extra):
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "qonnx", "compare", model, "-o", str(out), *extra],
                          capture_output=True, text=True)
    if done.returncode not in (0, 3):
        sys.exit(f"compare failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads((out / "results.json").read_text()), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="demo:sentiment")
    ap.add_argument("-o", "--output", default="repeatability")
    args, extra = ap.parse_known_args()
    extra = [x for x in extra if x != "--"]
    out = Path(args.output)
    if out.exists():
        sys.exit(f"{out} exists; give another -o")
    here = cpu()
    print(f"CPU: {here['model']} ({here['cores']} cores; {', '.join(here['flags']) or 'no flags of note'})")
    docs = []
    for name in ("a", "b"):
        doc, seconds = run(args.model, out / name, extra)
        docs.append(doc)
        print(f"run {name}: {seconds:.0f} s, timing: {doc['rows'][0].get('timing')}")
    quality = "perplexity" if docs[0]["settings"]["kind"] == "lm" else "accuracy"
    rows = [{r["variant"] + "@" + r["provider"]: r for r in d["rows"] if r["status"] == "ok"} for d in docs]
    worst = 0.0
    print(f"{'row':28} {'speedup a':>20} {'speedup b':>20} {'diff %':>7}  {quality} identical")
    for key in rows[0]:
        a, b = rows[0][key], rows[1].get(key)
        if not b or not a.get("speedup") or not b.get("speedup"):
            continue
        diff = 100 * (b["speedup"] / a["speedup"] - 1)
        worst = max(worst, abs(diff))

        def shown(r):
            rng = r.get("speedup_range")
            return f"{r['speedup']:.2f}x" + (f" ({rng[0]:.2f}-{rng[1]:.2f})" if rng else "")

        print(f"{key:28} {shown(a):>20} {shown(b):>20} {diff:+7.1f}  {a.get(quality) == b.get(quality)}")
    print(f"largest speedup difference: {worst:.1f} %")


if __name__ == "__main__":
    main()
