"""Classification: accuracy over the eval set (batched, which also gives throughput) and
batch-1 latency. Tokenization is done before timing; timings cover the model call only."""
import time

import numpy as np

from ..measure.latency import Latency, time_calls

MAX_LENGTH = 128


def encode(tok, texts):
    enc = tok(texts, padding="longest", truncation=True, max_length=MAX_LENGTH, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in enc.items()}


def measure(runner, tok, job):
    texts, labels, bs = job["texts"], np.asarray(job["labels"]), job["batch_size"]
    batches = [encode(tok, texts[i:i + bs]) for i in range(0, len(texts), bs)]
    runner.logits(batches[0])  # warm-up
    runner.synchronize()
    logits, t0 = [], time.perf_counter()
    for b in batches:
        logits.append(runner.logits(b))
    runner.synchronize()
    elapsed = time.perf_counter() - t0
    logits = np.concatenate(logits)
    n = job["latency_samples"]
    singles = [encode(tok, [texts[i % len(texts)]]) for i in range(n)]
    seconds = time_calls(runner.logits, singles, job["warmup"], runner.synchronize)
    return {"accuracy": float((logits.argmax(-1) == labels).mean()),
            "throughput_per_s": len(texts) / elapsed,
            "latency_ms": Latency.from_values(seconds).to_dict(),
            "outputs": logits}
