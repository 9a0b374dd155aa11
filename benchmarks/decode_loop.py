"""Benchmark: qonnx's greedy decode loop through IO binding (the KV cache stays ONNX Runtime's
OrtValues between steps) against the plain loop it replaced (session.run: every step's present
key/values copied out to numpy and fed back in), on one ONNX LM folder, interleaved.

    .venv/bin/python benchmarks/decode_loop.py ONNX_DIR [--rounds 8] [--threads 2] [--tokens 32]

Both loops run on one InferenceSession, the 4 prompts of compare, greedy, `--tokens` new tokens
each; they take turns, the order reversed every round. It prints the CPU, each loop's median
decode tokens/s, and the ratio IO binding / plain as the median of per-round ratios with its range;
it checks that both loops decode the same tokens.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def plain_step(runner, input_ids, attention_mask, past=None):
    """The loop before IO binding: session.run, presents returned as numpy copies."""
    input_ids = np.asarray(input_ids, dtype=np.int64)
    past = past if past is not None else runner.empty_past(input_ids.shape[0])
    feed = {"input_ids": input_ids, "attention_mask": attention_mask, **past}
    if "position_ids" in runner.inputs:
        feed["position_ids"] = np.clip((np.cumsum(attention_mask, axis=1) - 1)[:, -input_ids.shape[1]:], 0, None)
    out = dict(zip(runner.outputs, runner.sess.run(None, feed)))
    present = {n.replace("present", "past_key_values", 1): v for n, v in out.items() if n.startswith("present")}
    return out["logits"], present


def decode(step, prompts, tokens):
    seconds, decoded, outs = 0.0, 0, []
    for ids in prompts:
        x = np.asarray([ids], dtype=np.int64)
        mask = np.ones_like(x)
        logits, past = step(x, mask)
        nxt = logits[:, -1].argmax(-1)
        out = [int(nxt[0])]
        t0 = time.perf_counter()
        for _ in range(tokens - 1):
            mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)
            logits, past = step(nxt[:, None], mask, past)
            nxt = logits[:, -1].argmax(-1)
            out.append(int(nxt[0]))
        seconds += time.perf_counter() - t0
        decoded += tokens - 1
        outs.append(out)
    return decoded / seconds, outs


def main():
    from transformers import AutoTokenizer

    from qonnx.envinfo import cpu, cpu_line
    from qonnx.runners.ort import OrtRunner
    from qonnx.tasks import lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    config = json.loads((args.onnx_dir / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(args.onnx_dir))
    prompts = [tok(p)["input_ids"] for p in lm.PROMPTS]
    c = cpu()
    print(f"{cpu_line(c)}; threads {args.threads}; {args.onnx_dir}")
    with OrtRunner(str(args.onnx_dir / "model.onnx"), "cpu", args.threads, config) as r:
        loops = {"iobinding": r.step, "plain": lambda *a: plain_step(r, *a)}
        tokens = {name: decode(step, prompts[:1], 4)[1] for name, step in loops.items()}  # warm-up
        rates = {name: [] for name in loops}
        for i in range(args.rounds):
            for name in (list(loops) if i % 2 == 0 else list(loops)[::-1]):
                rate, outs = decode(loops[name], prompts, args.tokens)
                rates[name].append(rate)
                tokens[name] = outs
    same = tokens["iobinding"] == tokens["plain"]
    ratios = [a / b for a, b in zip(rates["iobinding"], rates["plain"])]
    for name, v in rates.items():
        print(f"{name:10s} median {statistics.median(v):7.1f} tok/s  (range {min(v):.1f}-{max(v):.1f}, n={len(v)})")
    print(f"iobinding / plain: {statistics.median(ratios):.3f}x (per-round range {min(ratios):.3f}-{max(ratios):.3f}); "
          f"same tokens: {same}")
    if not same:
        sys.exit("the two loops decoded different tokens")


if __name__ == "__main__":
    main()
