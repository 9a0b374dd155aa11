"""Causal LM: sliding-window perplexity, next-token predictions, greedy generation speed.

Perplexity method (the same for every runtime): the first `eval_tokens` tokens of the corpus,
windows of `window` tokens advancing by `stride`; every token after the first is scored exactly
once, with at least window - stride tokens of context (the first window excepted); the result is
exp(mean negative log-likelihood), every scored token weighted equally.
"""
import time

import numpy as np

from ..measure.latency import Latency

PROMPTS = [
    "The history of the city begins",
    "In his speech to the committee, the senator argued that",
    "The best way to learn a new language is",
    "Scientists announced on Tuesday that",
]


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def perplexity(runner, ids, window, stride):
    nll, count, preds, prev_end = 0.0, 0, [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        x = np.asarray(ids[begin:end], dtype=np.int64)[None]
        logits, _ = runner.step(x, np.ones_like(x))
        first = max(1, x.shape[1] - (end - prev_end))  # scored positions: first..len-1
        logp = log_softmax(logits[0, first - 1:-1])
        targets = x[0, first:]
        nll -= float(logp[np.arange(len(targets)), targets].sum())
        count += len(targets)
        preds.append(logits[0, first - 1:-1].argmax(-1))
        prev_end = end
        if end == len(ids):
            break
    return float(np.exp(nll / count)), count, np.concatenate(preds)


def generate(runner, tok, prompt, new_tokens):
    ids = np.asarray(tok(prompt)["input_ids"], dtype=np.int64)[None]
    mask = np.ones_like(ids)
    t0 = time.perf_counter()
    logits, past = runner.step(ids, mask)
    nxt = logits[:, -1].argmax(-1)
    runner.synchronize()
    ttft = time.perf_counter() - t0
    out = [int(nxt[0])]
    t1 = time.perf_counter()
    for _ in range(new_tokens - 1):
        mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)
        logits, past = runner.step(nxt[:, None], mask, past)
        nxt = logits[:, -1].argmax(-1)
        out.append(int(nxt[0]))
    runner.synchronize()
    return ttft, time.perf_counter() - t1, out


def measure(runner, tok, job):
    ids = tok(job["corpus"])["input_ids"][: job["eval_tokens"]]
    ppl, scored, preds = perplexity(runner, ids, job["window"], job["stride"])
    generate(runner, tok, PROMPTS[0], 4)  # warm-up
    ttfts, decode_s, decoded, texts = [], 0.0, 0, []
    for prompt in PROMPTS:
        ttft, dt, out = generate(runner, tok, prompt, job["max_new_tokens"])
        ttfts.append(ttft)
        decode_s += dt
        decoded += len(out) - 1
        texts.append(tok.decode(out))
    return {"perplexity": ppl, "scored_tokens": scored,
            "ttft_ms": Latency.from_values(ttfts).to_dict(),
            "decode_tokens_per_s": decoded / decode_s if decode_s else None,
            "latency_ms": Latency.from_values(ttfts).to_dict(),
            "samples": texts[:2], "outputs": preds}
