"""Benchmark: classifier variants on their own test split and on other domains, with plain onnxruntime.

    .venv/bin/python benchmarks/cls_domains.py FP32_DIR VARIANT_DIR ... [--rounds 5] [--other 1000]

Independent of qonnx's measuring code: each folder's model.onnx is loaded into a plain
onnxruntime session (2 threads) and asked one sentence at a time, as deployed. Accuracy on
demo:sentiment's 2,000 test sentences (movie snippets) and on VADER's tweets, Amazon and NYT
snippets (|rating| >= 0.5, a seeded 1,000 of each; neither calibration nor validation saw them).
Then batch-1 latency, interleaved: every folder timed on the same 300 test sentences in turns,
the order reversed each round; the median over rounds of each round's p50, and its speed ratio
to the first folder (and to --anchor, e.g. the Optimum recipe's folder) as the median of the
per-round ratios with their range: each round times every folder within seconds, so its ratios
hold while this shared machine drifts between slower and faster phases. Prints the CPU model and
flags first. --timing-only skips the accuracy pass (for repeated speed runs).
"""
import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

DOMAINS = {"tweets": "tweets", "amazon": "amazonReviewSnippets", "nyt": "nytEditorialSnippets"}


def datasets(n_other):
    from qonnx.cache import cache_dir
    from qonnx.demo import ensure
    from qonnx.demo.fetch import fetch
    from qonnx.demo.vader import VADER, read_ground_truth

    with open(ensure("sentiment") / "data" / "test.csv", newline="", encoding="utf-8") as f:
        out = {"test": [(r["text"], int(r["label"] == "positive")) for r in csv.DictReader(f)]}
    sdist = fetch(VADER, cache_dir() / "downloads")
    for name, file in DOMAINS.items():
        rows = [(s, int(r > 0)) for _, r, s in read_ground_truth(sdist, file) if abs(r) >= 0.5]
        random.Random(1).shuffle(rows)
        out[name] = rows[:n_other]
    return out


def session(folder):
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
    s = ort.InferenceSession(str(Path(folder) / "model.onnx"), so, providers=["CPUExecutionProvider"])
    tok = AutoTokenizer.from_pretrained(str(folder))
    names = {i.name for i in s.get_inputs()}

    def feed(text):
        enc = tok([text], truncation=True, max_length=128, return_tensors="np")
        return {k: v.astype(np.int64) for k, v in enc.items() if k in names}
    return s, feed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="ONNX folders; the first is the reference (FP32)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--other", type=int, default=1000, help="sentences per other domain")
    ap.add_argument("--anchor", help="a folder of the list to give speed ratios against, too")
    ap.add_argument("--timing-only", action="store_true", help="skip the accuracy pass")
    args = ap.parse_args()
    if args.anchor and args.anchor not in args.folders:
        ap.error(f"--anchor {args.anchor} is not one of the folders")
    from qonnx.envinfo import cpu

    info = cpu()
    print(f"CPU: {info['model']} ({info['cores']} cores), flags: {', '.join(info['flags']) or 'none of note'}")
    data = datasets(args.other)
    sessions = {f: session(f) for f in args.folders}
    for f, (s, feed) in ([] if args.timing_only else sessions.items()):
        acc = {d: np.mean([s.run(None, feed(t))[0].argmax(-1)[0] == y for t, y in rows]) for d, rows in data.items()}
        mib = sum(p.stat().st_size for p in Path(f).iterdir() if p.suffix in (".onnx", ".data")) / 2**20
        print(f"{f}: " + ", ".join(f"{d} {a:.4f}" for d, a in acc.items()) + f", {mib:.1f} MiB", flush=True)
    texts = [t for t, _ in data["test"][:300]]
    feeds = {f: [feed(t) for t in texts] for f, (_, feed) in sessions.items()}
    p50 = {f: [] for f in sessions}
    order = list(sessions)
    for f in order:  # warm-up
        for x in feeds[f][:20]:
            sessions[f][0].run(None, x)
    for r in range(args.rounds):
        for f in (order if r % 2 == 0 else order[::-1]):
            times = []
            for x in feeds[f]:
                t0 = time.perf_counter()
                sessions[f][0].run(None, x)
                times.append(time.perf_counter() - t0)
            p50[f].append(np.median(times) * 1000)
    def ratio(f, base):  # the median of the per-round speed ratios, and their range
        r = np.array(p50[base]) / np.array(p50[f])
        return f"{np.median(r):.2f}x {'the first' if base == order[0] else 'the anchor'} ({r.min():.2f}-{r.max():.2f})"
    for f in order:
        m = np.median(p50[f])
        print(f"{f}: p50 {m:.2f} ms (rounds {', '.join(f'{v:.2f}' for v in p50[f])}), {ratio(f, order[0])}"
              + (f", {ratio(f, args.anchor)}" if args.anchor else ""))


if __name__ == "__main__":
    main()
