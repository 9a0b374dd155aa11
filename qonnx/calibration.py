"""Calibration samples for static INT8 and a reader ONNX Runtime's calibrators consume.

Samples are drawn with a seed from a file or a demo split; their provenance (source, count,
seed, sha256 of every sample) goes into the variant's manifest.
"""
import hashlib
import random

import numpy as np

from qonnx import data
from qonnx.errors import DataError

MAX_LENGTH = 128


def select(spec, n, seed, lm, text_column="text"):
    """(texts, provenance) - n texts drawn with `seed` from a file or demo split."""
    found = data.load(spec, lm=True, text_column=text_column)  # labels are not needed to calibrate
    texts = [t for t in found.texts if t.strip()]
    if not texts:
        raise DataError(f"Calibration source {spec} holds no text.")
    if lm:  # a corpus: cut it into chunks of MAX_LENGTH words so each sample is long enough
        words = " ".join(texts).split()
        texts = [" ".join(words[i:i + MAX_LENGTH]) for i in range(0, len(words), MAX_LENGTH)]
    rng = random.Random(seed)
    picked = rng.sample(texts, min(n, len(texts)))
    prov = {"source": found.source, "available": len(texts), "count": len(picked), "seed": seed,
            "max_length": MAX_LENGTH,
            "sample_sha256": [hashlib.sha256(t.encode()).hexdigest()[:16] for t in picked]}
    return picked, prov


class TextReader:
    """onnxruntime.quantization.CalibrationDataReader over tokenized texts, one sample a batch."""

    def __init__(self, texts, tokenizer, input_names, past_shapes=None):
        self.texts, self.tok, self.names = texts, tokenizer, set(input_names)
        self.past_shapes = past_shapes or {}
        self.rewind()

    def rewind(self):
        self._it = iter(self.texts)

    def get_next(self):
        text = next(self._it, None)
        if text is None:
            return None
        # fixed length: the entropy and percentile calibrators stack activations of all samples;
        # a token classifier's sample is a list of words, a QA model's a (question, context) pair
        fixed = {"max_length": MAX_LENGTH, "padding": "max_length", "return_tensors": "np"}
        if isinstance(text, tuple):
            enc = self.tok(text[0], text[1], truncation="only_second", **fixed)
        elif isinstance(text, list):
            enc = self.tok(text, is_split_into_words=True, truncation=True, **fixed)
        else:
            enc = self.tok(text, truncation=True, **fixed)
        feed = {k: v.astype(np.int64) for k, v in enc.items() if k in self.names}
        if "position_ids" in self.names:
            feed["position_ids"] = np.arange(feed["input_ids"].shape[1], dtype=np.int64)[None]
        for name, shape in self.past_shapes.items():
            feed[name] = np.zeros(shape, dtype=np.float32)
        return feed
