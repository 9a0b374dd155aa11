"""Output deviation of a variant from the FP32 reference on the same inputs."""
import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


class Reference:
    """Reference logits' probabilities p and sum(p log p) per position, computed once where many
    outputs are compared with the same reference (the LM budget search: some 600 builds)."""

    def __init__(self, logits):
        logp = log_softmax(np.asarray(logits))
        self.p = np.exp(logp)
        self.plogp = np.einsum("...v,...v->...", self.p, logp)


def kl(ref, logits) -> float:
    """Mean KL(ref || logits) of the softmax distributions over the last axis (float64, at least 0);
    ref: reference logits or a Reference. sum p (log p - log q) = sum p log p - sum p x + logsumexp(x),
    x the logits less their maximum: one array of the logits' size allocated."""
    ref = ref if isinstance(ref, Reference) else Reference(ref)
    x = np.array(logits, dtype=np.float64)  # a copy: worked on in place
    x -= x.max(-1, keepdims=True)
    px = np.einsum("...v,...v->...", ref.p, x)
    lse = np.log(np.exp(x, out=x).sum(-1))
    return max(float((ref.plogp - px + lse).mean()), 0.0)


def classification_metrics(ref, logits, labels) -> dict:
    """Accuracy against labels, its drop from ref's, top-1 agreement with ref and KL from ref's probabilities."""
    acc, ref_acc = float((logits.argmax(-1) == labels).mean()), float((ref.argmax(-1) == labels).mean())
    return {"accuracy": acc, "accuracy_drop": ref_acc - acc,
            "agreement": float((logits.argmax(-1) == ref.argmax(-1)).mean()), "kl": kl(ref, logits)}


def agreement(ref, cand):
    """Top-1 agreement and max |diff| between two logit arrays of the same shape."""
    ref, cand = np.asarray(ref, dtype=np.float32), np.asarray(cand, dtype=np.float32)
    if ref.shape != cand.shape:
        raise ValueError(f"output shapes differ: {ref.shape} vs {cand.shape}")
    diff = np.abs(ref - cand)
    return {"agreement": float((ref.argmax(-1) == cand.argmax(-1)).mean()),
            "max_logit_diff": float(np.nanmax(diff)) if np.isfinite(diff).all() else float("inf")}


def span_agreement(ref_spans, cand_spans):
    """The share of questions whose answer span (start, end) is the reference's (extractive QA)."""
    ref, cand = np.asarray(ref_spans), np.asarray(cand_spans)
    if ref.shape != cand.shape:
        raise ValueError(f"output shapes differ: {ref.shape} vs {cand.shape}")
    return {"agreement": float((ref == cand).all(-1).mean())}


def token_agreement(ref_ids, cand_ids):
    ref_ids, cand_ids = np.asarray(ref_ids), np.asarray(cand_ids)
    return {"agreement": float((ref_ids == cand_ids).mean())}
