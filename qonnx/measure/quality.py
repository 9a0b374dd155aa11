"""Quality of a classifier graph's outputs against a reference's, on held-out data: KL divergence,
accuracy drop and top-1 agreement (qonnx.measure.deviation). The accuracy-budget search measures
with these (in this process, with ONNX Runtime); the sensitivity analysis asks each task module
(its sensitivity_* functions)."""
import numpy as np

from qonnx.measure.deviation import classification_metrics
from qonnx.runners.ort import OrtRunner

__all__ = ["classification_metrics", "classify", "runner"]


def runner(path, threads):
    return OrtRunner(path, threads=threads)


def classify(path, batches, threads):
    with runner(path, threads) as r:
        return np.concatenate([r.logits(b) for b in batches]).astype(np.float64)
