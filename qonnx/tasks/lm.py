"""Causal LM: sliding-window perplexity, next-token predictions, greedy generation speed.

Perplexity method (the same for every runtime): the first `eval_tokens` tokens of the corpus,
windows of `window` tokens advancing by `stride`; every token after the first is scored exactly
once, with at least window - stride tokens of context (the first window excepted); the result is
exp(mean negative log-likelihood), every scored token weighted equally.
"""
import numpy as np

from qonnx.config.parts import MIN_PERPLEXITY_TOKENS
from qonnx.errors import DataError
from qonnx.measure import shapes
from qonnx.measure.latency import Latency

CHUNK = 64  # positions scored at once
PASSES = 3  # generation passes over the prompts: decode tokens/s is their median, with their range
SENSITIVITY = {"columns": ("perplexity", "perplexity_change_pct", "agreement"), "damage": "perplexity_change_pct",
               "scale": 1.0, "unit": "perplexity change, %", "reference": ("perplexity",),
               "about": "perplexity change against FP32's on the held-out text, next-token agreement"}
PROMPTS = [
    "The history of the city begins",
    "In his speech to the committee, the senator argued that",
    "The best way to learn a new language is",
    "Scientists announced on Tuesday that",
]


def nll_sum(logits, targets, chunk=CHUNK):
    """Sum of -log p(target) over positions: float32 log-softmax in chunks of `chunk` positions,
    summed in float64, so qonnx's own scoring buffers stay small beside the runtime's outputs
    (a float64 copy of a 512 x 49k window was 190 MiB, counted as the model's memory)."""
    total = 0.0
    for i in range(0, len(targets), chunk):
        x, t = logits[i:i + chunk], targets[i:i + chunk]
        top = x.max(-1, keepdims=True)
        e = np.subtract(x, top, dtype=np.float32)  # the chunk's one buffer
        lse = np.log(np.exp(e, out=e).sum(-1, dtype=np.float64)) + top[:, 0]
        total += float((lse - x[np.arange(len(t)), t]).sum())
        del e  # freed before the next chunk's buffer exists: one chunk's buffer at a time, not two
    return total


def perplexity(runner, ids, window, stride, parts=None):
    """(perplexity, tokens scored, argmax predictions); parts: a list given gets each window's
    (negative log-likelihood sum, tokens scored) appended, in order."""
    nll, count, preds, prev_end = 0.0, 0, [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        x = np.asarray(ids[begin:end], dtype=np.int64)[None]
        logits, _ = runner.step(x, np.ones_like(x))
        first = max(1, x.shape[1] - (end - prev_end))  # scored positions: first..len-1
        targets = x[0, first:]
        part = nll_sum(logits[0, first - 1:-1], targets)
        nll += part
        count += len(targets)
        if parts is not None:
            parts.append((part, len(targets)))
        preds.append(logits[0, first - 1:-1].argmax(-1))
        prev_end = end
        if end == len(ids):
            break
    return float(np.exp(nll / count)), count, np.concatenate(preds)


def generate(runner, ids, new_tokens):
    """(ttft seconds, decode seconds, generated ids): greedy with the KV cache through runner.step,
    or through the runner's own generation loop where it has one (onnxruntime-genai)."""
    if hasattr(runner, "generate"):
        return runner.generate(ids, new_tokens)
    ids = np.asarray(ids, dtype=np.int64)[None]
    mask = np.ones_like(ids)
    (logits, past), ttft = runner.timed(runner.step, ids, mask)
    nxt = logits[:, -1].argmax(-1)
    out = [int(nxt[0])]

    def decode(nxt, mask, past):
        for _ in range(new_tokens - 1):
            mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)
            logits, past = runner.step(nxt[:, None], mask, past)
            nxt = logits[:, -1].argmax(-1)
            out.append(int(nxt[0]))

    _, decode_s = runner.timed(decode, nxt, mask, past)
    return ttft, decode_s, out


def prepare(tok, data, job) -> dict:
    ids = tok(data["corpus"])["input_ids"][: job.eval_tokens]
    if len(ids) < MIN_PERPLEXITY_TOKENS:
        raise DataError(f"{data['source']} holds {len(ids)} token(s); qonnx scores perplexity on at least "
                        f"{MIN_PERPLEXITY_TOKENS} (fewer give a number one token can swing). Give a longer corpus.")
    arrays = {"corpus": np.asarray(ids, dtype=np.int64)}
    for i, prompt in enumerate(PROMPTS):
        arrays[f"prompt{i}"] = np.asarray(tok(prompt)["input_ids"], dtype=np.int64)
    if job.batch_sizes:
        arrays.update(shapes.lm_inputs(ids, job.batch_sizes, job.sequence_lengths))
    return arrays


def measure(runner, arrays, job):
    windows = []
    ppl, scored, preds = perplexity(runner, arrays["corpus"].tolist(), job.window, job.stride, windows)
    curves = shapes.measure(runner, arrays, lm=True) if job.batch_sizes else None  # before generation
    prompts = [arrays[k] for k in sorted(k for k in arrays if k.startswith("prompt"))]
    generate(runner, prompts[0], 4)  # warm-up
    ttfts, rates, generated = [], [], None
    for _ in range(PASSES):  # the spread of decode speed across passes is the row's noise
        decode_s, decoded, outs = 0.0, 0, []
        for ids in prompts:
            ttft, dt, out = generate(runner, ids, job.max_new_tokens)
            ttfts.append(ttft)
            decode_s += dt
            decoded += len(out) - 1
            outs.append(out)
        rates.append(decoded / decode_s if decode_s else None)
        generated = generated or outs
    ok = [r for r in rates if r]
    return {"shapes": curves, "perplexity": ppl, "scored_tokens": scored, "perplexity_windows": [list(w) for w in windows],
            "ttft_ms": Latency.from_values(ttfts).to_dict(),
            "decode_tokens_per_s": float(np.median(ok)) if ok else None,
            "decode_range": [min(ok), max(ok)] if ok else None, "decode_passes": len(ok),
            "decode_loop": runner.decode_loop,
            "generated": generated[:2], "outputs": preds}


def sensitivity_feeds(tok, data, job) -> dict:
    """The first job.eval_tokens tokens of the corpus (the lines joined as compare joins them)."""
    return {"corpus": np.asarray(tok(data["corpus"])["input_ids"][:job.eval_tokens], dtype=np.int64)}


def sensitivity_outputs(runner, arrays, job):
    ppl, _, preds = perplexity(runner, arrays["corpus"].tolist(), job.window, job.stride)
    return ppl, preds


def sensitivity_metrics(ref, out, arrays) -> dict:
    (ref_ppl, ref_preds), (ppl, preds) = ref, out
    return {"perplexity": ppl, "perplexity_change_pct": 100.0 * (ppl / ref_ppl - 1),
            "agreement": float((preds == ref_preds).mean())}


def finish(tok, result):
    """Decode the generated ids into the row's text samples (in the parent)."""
    result["samples"] = [tok.decode(ids) for ids in result.pop("generated", [])]
    return result
