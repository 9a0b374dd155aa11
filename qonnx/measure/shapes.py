"""Latency and throughput per (batch size, input length): the curves a sweep plots.

Inputs are made once, in the parent, like every other input. For a classifier each point is
measured twice: `padded` (every row padded to the length: the fixed-shape case of an edge
deployment) and `real` (texts cut at the length and padded only to the longest in the batch:
what a server with dynamic shapes sees). For a causal LM a point is one prompt pass (prefill) of
`batch` rows of `length` corpus tokens, with no padding. Rows cycle through the eval texts, so
a batch never repeats one text many times.
"""
import numpy as np

from qonnx.errors import DataError
from qonnx.measure.latency import Latency

MIN_REPEATS = 10  # timed calls per point, at least (p90 needs 10)
LM_REPEATS = 10   # prefill calls per point for a causal LM (p90 needs 10 too)


def repeats(batch, latency_samples, lm=False) -> int:
    """Timed calls at one point: about `latency_samples` rows in all, at least MIN_REPEATS calls."""
    return LM_REPEATS if lm else max(MIN_REPEATS, latency_samples // batch)


def _key(batch, length, padding, rep):
    return f"shape.{batch}.{length}.{padding}.{rep:04d}"


def classification_inputs(tok, texts, batch_sizes, lengths, latency_samples) -> dict:
    arrays, n = {}, len(texts)
    for b in batch_sizes:
        for length in lengths:
            for padding in ("padded", "real"):
                for r in range(repeats(b, latency_samples)):
                    chunk = [texts[(r * b + i) % n] for i in range(b)]
                    enc = tok(chunk, truncation=True, max_length=length, return_tensors="np",
                              padding="max_length" if padding == "padded" else "longest")
                    arrays.update({f"{_key(b, length, padding, r)}.{k}": v.astype(np.int64)
                                   for k, v in enc.items()})
    return arrays


def lm_inputs(ids, batch_sizes, lengths) -> dict:
    arrays, ids = {}, np.asarray(ids, dtype=np.int64)
    if len(ids) < max(lengths):
        raise DataError(f"--sequence-lengths {max(lengths)} needs that many corpus tokens; the eval text "
                        f"gives {len(ids)} (raise --eval-tokens or give a longer text).")
    for b in batch_sizes:
        for length in lengths:
            starts = np.linspace(0, len(ids) - length, num=b * LM_REPEATS).astype(int)
            for r in range(LM_REPEATS):
                rows = [ids[s:s + length] for s in starts[r * b:(r + 1) * b]]
                arrays[f"{_key(b, length, 'none', r)}.input_ids"] = np.stack(rows)
    return arrays


def _points(arrays):
    found = {}
    for key in arrays:
        if key.startswith("shape."):
            _, b, length, padding, rep, name = key.split(".", 5)
            found.setdefault((int(b), int(length), padding), {}).setdefault(int(rep), {})[name] = arrays[key]
    return found


def measure(runner, arrays, lm=False, call=None) -> list:
    """One entry per point: batch, length, padding, latency (ms, n calls), rows per second, the
    mean tokens per row the model processed (padding included) and the real ones among them.
    `call`: the runner's method a text batch goes through [runner.logits]."""
    out = []
    for (b, length, padding), reps in sorted(_points(arrays).items()):
        calls = [reps[r] for r in sorted(reps)]
        if lm:
            def fn(x):
                return runner.step(x["input_ids"], np.ones_like(x["input_ids"]))
        else:
            fn = call or runner.logits
        seconds = runner.latency(fn, calls, warmup=min(3, len(calls)))
        lat = Latency.from_values(seconds)
        real = [float(c["attention_mask"].sum() / b) if "attention_mask" in c else float(length) for c in calls]
        out.append({"batch": b, "length": length, "padding": padding, "latency_ms": lat.to_dict(),
                    "throughput_per_s": b * len(seconds) / sum(seconds),
                    "tokens_per_row": float(np.mean([c["input_ids"].shape[1] for c in calls])),
                    "real_tokens_per_row": float(np.mean(real))})
    return out
