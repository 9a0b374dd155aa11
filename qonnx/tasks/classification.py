"""Classification: accuracy over the eval set at batch 1 (each text alone, as a deployment sees
it, and as the accuracy-budget search validates: dynamic INT8 scales activations over the whole
padded batch, so a batched pass would score another model), throughput from a batched pass,
batch-1 latency. Tokenization happens once in the parent; timings cover the model call only."""

import numpy as np

from qonnx.measure import shapes
from qonnx.measure.deviation import classification_metrics
from qonnx.measure.latency import Latency, batched_seconds

MAX_LENGTH = 128
# what `qonnx analyze sensitivity` reports per unit (qonnx.analysis.sensitivity asks each task module):
# its table's columns, the damage it sorts by (higher is worse) and the heatmap's scale of it
SENSITIVITY = {"columns": ("accuracy", "accuracy_drop", "agreement", "kl"), "damage": "kl", "scale": 1e4,
               "unit": "KL vs FP32, x1e-4", "reference": ("accuracy",),
               "about": "KL divergence of the class probabilities from FP32's, top-1 agreement, accuracy (drop) "
                        "against the labels"}


def encode(tok, texts, max_length=MAX_LENGTH):
    enc = tok(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in enc.items()}


def prepare(tok, data, job) -> dict:
    texts, bs, n = data["texts"], job.batch_size, job.latency_samples
    arrays = {"labels": np.asarray(data["labels"], dtype=np.int64)}
    for b, i in enumerate(range(0, len(texts), bs)):
        arrays.update({f"batch{b:05d}.{k}": v for k, v in encode(tok, texts[i:i + bs]).items()})
    # every text alone: the accuracy pass; batch-1 latency requests cycle through them
    for u in range(len(texts)):
        arrays.update({f"single{u:05d}.{k}": v for k, v in encode(tok, [texts[u]]).items()})
    arrays["request_order"] = np.arange(n, dtype=np.int64) % min(n, len(texts))
    if job.batch_sizes:
        arrays.update(shapes.classification_inputs(tok, texts, job.batch_sizes, job.sequence_lengths, n))
    return arrays


def group(arrays, prefix):
    """[{input name: array}] of the keys PREFIXnnnnn.NAME, in order (batchNNNNN, singleNNNNN)."""
    out = {}
    for key, v in arrays.items():
        if key.startswith(prefix):
            idx, name = key.split(".", 1)
            out.setdefault(idx, {})[name] = v
    return [out[k] for k in sorted(out)]


def measure(runner, arrays, job):
    batches, labels = group(arrays, "batch"), arrays["labels"]
    unique = group(arrays, "single")
    singles = [unique[i] for i in arrays["request_order"]]
    logits = np.concatenate([runner.logits(u) for u in unique])  # quality: each text alone
    elapsed = batched_seconds(runner, runner.logits, batches)
    seconds = runner.latency(runner.logits, singles, job.warmup)
    return {"shapes": shapes.measure(runner, arrays) if job.batch_sizes else None,
            "accuracy": float((logits.argmax(-1) == labels).mean()),
            "throughput_per_s": len(labels) / elapsed,
            "latency_ms": Latency.from_values(seconds).to_dict(),
            "outputs": logits}


def sensitivity_feeds(tok, data, job) -> dict:
    """The labels and the texts in padded batches of job.batch_size (as the accuracy-budget search
    evaluates: in this process, with ONNX Runtime)."""
    texts, bs = data["texts"], job.batch_size
    arrays = {"labels": np.asarray(data["labels"], dtype=np.int64)}
    for b, i in enumerate(range(0, len(texts), bs)):
        arrays.update({f"batch{b:05d}.{k}": v for k, v in encode(tok, texts[i:i + bs]).items()})
    return arrays


def sensitivity_outputs(runner, arrays, job):
    return np.concatenate([runner.logits(b) for b in group(arrays, "batch")]).astype(np.float64)


def sensitivity_metrics(ref, out, arrays) -> dict:
    return classification_metrics(ref, out, arrays["labels"])


def finish(tok, result):
    return result
