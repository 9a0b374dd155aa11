"""How far does the LM budget's kernel table move between two timings on the same machine? Times the
table of a budget build's shapes (the ones its manifest recorded) N times, each from fresh sessions as a
search does, and says, for each way of reading a kernel's rounds as one figure, how far each kernel's
figure and each format's whole-model time moved between the tables.

    .venv/bin/python benchmarks/kernel_repeat.py BUDGET_DIR [--tables 5] [--threads 2] [-o OUT.json]

BUDGET_DIR: a genai-int4-budget (or int4-weight budget) folder; its manifest's kernel table gives the
shapes and their counts. Each table takes about 3 minutes on a 2-core machine (smollm2: 9 shapes x 9
formats). Keep the machine quiet: this measures the table's own noise.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qonnx import manifest  # noqa: E402
from qonnx.envinfo import cpu_line  # noqa: E402
from qonnx.variants.search import kernels  # noqa: E402
from qonnx.variants.search.mixed import BLOCK  # noqa: E402

READINGS = {"fastest round (before SEARCH 13)": min,
            "next fastest": lambda t: sorted(t)[1],
            "mean of the fastest half (kernels.figure)": kernels.figure,
            "median": lambda t: float(np.median(t))}


def tables(budget_dir, n, threads):
    recorded = kernels.recorded(manifest.read(budget_dir))
    if not recorded:
        sys.exit(f"{budget_dir} has no kernel table in its manifest (not an LM budget build)")
    counts = {(k["K"], k["N"]): k["count"] for k in recorded["kernels"]}
    fmts = {**kernels.formats(BLOCK), kernels.ANCHOR: kernels.ANCHOR_SPEC}  # the search's
    out = []
    for i in range(n):
        out.append(kernels.measure(counts, fmts, threads))
        print(f"table {i + 1}/{n} timed", file=sys.stderr, flush=True)
    return counts, out


def summary(counts, tabs) -> dict:
    """Per reading: the median and largest max/min of a kernel's figure over the tables, and each
    format's whole-model time (counted shapes) over the anchor's, per table."""
    res = {}
    for name, read in READINGS.items():
        figs = [{(k["K"], k["N"], k["format"]): read(k["us_rounds"]) for k in t["kernels"]} for t in tabs]
        moved = [max(f[k] for f in figs) / min(f[k] for f in figs) for k in figs[0]]
        fmts = sorted({f for (_, _, f) in figs[0]})
        totals = [{f: sum(c * fig[(K, N, f)] for (K, N), c in counts.items()) for f in fmts} for fig in figs]
        res[name] = {"kernel_moved_median": float(np.median(moved)), "kernel_moved_max": float(max(moved)),
                     "vs_anchor": {f: [t[f] / t[kernels.ANCHOR] for t in totals] for f in fmts}}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("budget_dir")
    ap.add_argument("--tables", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("-o", "--output", help="write the tables and the summary here (JSON)")
    a = ap.parse_args()
    if a.tables < 2:
        sys.exit("--tables: 2 or more (the point is how far they disagree)")
    counts, tabs = tables(a.budget_dir, a.tables, a.threads)
    res = summary(counts, tabs)
    print(f"{cpu_line(kernels.this_cpu())}; {a.tables} tables of {len(counts)} shapes, {kernels.ROUNDS} rounds each")
    for name, r in res.items():
        print(f"\n{name}: a kernel's figure moved by x{r['kernel_moved_median']:.3f} (median), "
              f"x{r['kernel_moved_max']:.3f} (most) between tables; formats' whole-model time x the anchor's:")
        for f, v in r["vs_anchor"].items():
            print(f"  {f:22s} " + " ".join(f"{x:.3f}" for x in v) + f"   (spread {max(v) / min(v):.3f})")
    if a.output:
        Path(a.output).write_text(json.dumps({"counts": [[*k, c] for k, c in counts.items()], "tables": tabs,
                                              "summary": res}, indent=1))


if __name__ == "__main__":
    main()
