"""What an executed target is fed: real sentences through the folder's tokenizer where there is
one (padded to a fixed sequence length where the graph has one, an empty key/value cache for an
LM), else seeded synthetic values."""
import numpy as np

from qonnx.edge.model import Artifact
from qonnx.errors import ModelError
from qonnx.parity import PROBE_TEXTS
from qonnx.runners.ort import kv_dims

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "vocab.json", "spiece.model")
PROBES = 4  # inputs compared with the CPU EP (batch 1 each)


def feeds(art: Artifact, n=PROBES):
    """(list of feeds at batch 1, how they were made). Text models are fed real sentences through
    the folder's tokenizer, padded to a fixed sequence length where the graph has one; anything
    else gets seeded synthetic values (ids 0/1, masks of ones, normal floats)."""
    names = {name for name, _, _ in art.inputs}
    has_tok = any((art.folder / f).is_file() for f in TOKENIZER_FILES)
    if "input_ids" in names and has_tok:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(art.folder))
        texts = PROBE_TEXTS[:n]
        return [_text_feed(art, tok, t) for t in texts], f"{len(texts)} built-in sentences through the folder's tokenizer"
    rng = np.random.default_rng(0)
    return [_synthetic(art, rng) for _ in range(n)], f"{n} seeded synthetic inputs (no tokenizer in the folder)"


def _text_feed(art, tok, text):
    dims = dict((name, d) for name, _, d in art.inputs)
    seq = dims["input_ids"][1] if len(dims["input_ids"]) > 1 else None
    batch = dims["input_ids"][0] if isinstance(dims["input_ids"][0], int) else 1
    kw = dict(padding="max_length", truncation=True, max_length=seq) if isinstance(seq, int) else {}
    if tok.pad_token is None and isinstance(seq, int):
        tok.pad_token = tok.eos_token
    enc = {k: np.repeat(np.asarray(v), batch, axis=0) for k, v in tok([text], return_tensors="np", **kw).items()}
    length = enc["input_ids"].shape[1]
    feed = {}
    for name, dtype, d in art.inputs:
        if name in enc:
            feed[name] = enc[name].astype(dtype)
        elif name == "token_type_ids":
            feed[name] = np.zeros((batch, length), dtype)
        elif name == "attention_mask":
            feed[name] = np.ones((batch, length), dtype)
        elif name == "position_ids":
            feed[name] = np.tile(np.arange(length), (batch, 1)).astype(dtype)
        elif name.startswith("past_key_values"):  # an empty cache: a prompt pass
            feed[name] = np.zeros(_past_shape(art, d, batch), dtype)
        else:
            feed[name] = _synthetic_one(np.random.default_rng(0), name, dtype, d)
    return feed


def _past_shape(art, dims, batch):
    kv, head = kv_dims(art.config)
    fixed = [d if isinstance(d, int) else None for d in dims]
    if len(fixed) != 4:
        raise ModelError(f"{art.path}: a past key/value input of rank {len(fixed)}; qonnx feeds rank-4 caches.")
    heads, size = fixed[1] or kv, fixed[3] or head
    if heads is None or size is None:
        raise ModelError(f"{art.path}: cannot tell the key/value cache shape from the graph or config.json.")
    return (batch, heads, fixed[2] or 0, size)


def _synthetic(art, rng):
    return {name: _synthetic_one(rng, name, dtype, dims) for name, dtype, dims in art.inputs}


def _synthetic_one(rng, name, dtype, dims):
    shape = [d if isinstance(d, int) else (1 if i == 0 else 16) for i, d in enumerate(dims)]
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return np.ones(shape, dtype)
    if "mask" in name:
        return np.ones(shape, dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)
