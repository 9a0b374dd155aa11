"""Quality of a graph's outputs against a reference's, on held-out data: KL divergence, accuracy
drop and top-1 agreement for classifiers; perplexity change and next-token agreement for LMs.
The budget searches and the sensitivity analysis measure with these (in this process, with ONNX
Runtime)."""
import numpy as np

from qonnx.runners.ort import OrtRunner
from qonnx.tasks.lm import log_softmax, perplexity


def runner(path, threads):
    return OrtRunner(path, threads=threads)


def classify(path, batches, threads):
    with runner(path, threads) as r:
        return np.concatenate([r.logits(b) for b in batches]).astype(np.float64)


def classification_metrics(ref, logits, labels) -> dict:
    logp, logq = log_softmax(ref), log_softmax(logits)
    kl = float(np.mean(np.sum(np.exp(logp) * (logp - logq), -1)))
    acc, ref_acc = float((logits.argmax(-1) == labels).mean()), float((ref.argmax(-1) == labels).mean())
    return {"accuracy": acc, "accuracy_drop": ref_acc - acc,
            "agreement": float((logits.argmax(-1) == ref.argmax(-1)).mean()), "kl": max(kl, 0.0)}


def lm_eval(path, ids, cfg, config):
    with runner(path, cfg.threads) as r:
        r.config = config
        ppl, _, preds = perplexity(r, ids, cfg.window, cfg.stride)
    return ppl, preds


def lm_metrics(ref, out) -> dict:
    (ref_ppl, ref_preds), (ppl, preds) = ref, out
    return {"perplexity": ppl, "perplexity_change_pct": 100.0 * (ppl / ref_ppl - 1),
            "agreement": float((preds == ref_preds).mean())}

