"""Output deviation of a variant from the FP32 reference on the same inputs."""
import numpy as np


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
