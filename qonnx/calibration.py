"""Calibration samples for static INT8 and a reader ONNX Runtime's calibrators consume.

Samples are drawn with a seed from a file or a demo split; their provenance (source, count,
seed, sha256 of every sample) goes into the variant's manifest.
"""
import hashlib
import random

import numpy as np

from qonnx import data
from qonnx.errors import DataError
from qonnx.tasks import images

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


def select_images(spec, n, seed, image_column="image"):
    """(image paths, provenance) - n images drawn with `seed` from a folder or a table's image column;
    each sample's sha256 is of the file's bytes."""
    paths = images.calibration_images(spec, image_column)
    picked = random.Random(seed).sample(paths, min(n, len(paths)))
    prov = {"source": str(spec), "available": len(paths), "count": len(picked), "seed": seed, "max_length": None,
            "sample_sha256": [hashlib.sha256(open(p, "rb").read()).hexdigest()[:16] for p in picked]}
    return picked, prov


class ImageReader:
    """onnxruntime.quantization.CalibrationDataReader over images, through the model's image processor."""

    def __init__(self, paths, processor):
        self.paths, self.proc = paths, processor
        self.rewind()

    def rewind(self):
        self._it = iter(self.paths)

    def get_next(self):
        path = next(self._it, None)
        return None if path is None else {"pixel_values": images.pixels(self.proc, [path])}


def reader(samples, preprocessor, input_names, past_shapes=None):
    """The calibration reader a graph takes: images for a graph fed pixel_values, else tokenized text."""
    if "pixel_values" in input_names:
        return ImageReader(samples, preprocessor)
    return TextReader(samples, preprocessor, input_names, past_shapes)


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
