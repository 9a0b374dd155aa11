"""Sentence embeddings from an encoder's last hidden state, as sentence-transformers defines them.

`read(folder)` takes the recipe from the model folder: modules.json names the modules (Transformer,
then Pooling from its folder's config.json, then Normalize where listed), sentence_bert_config.json
the longest input and lower-casing. A folder without modules.json gets mean pooling over the real
tokens, unnormalized (what sentence-transformers itself does with a bare encoder). `pool(hidden,
mask, spec)` applies it in numpy: the same code for every runtime's output, so a row's embedding
differs from another's only by what its runtime computed.
"""
import json
from pathlib import Path

import numpy as np

from qonnx.errors import ModelError

# sentence-transformers' Pooling flags, in the order it concatenates the vectors they make
MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
         "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len", "pooling_mode_weightedmean_tokens": "weightedmean",
         "pooling_mode_lasttoken": "lasttoken"}
APPLIED = ("Transformer", "Pooling", "Normalize")  # the modules qonnx applies; others are refused
DEFAULT = {"modes": ["mean"], "normalize": False, "max_seq_length": None, "do_lower_case": False,
           "source": "no modules.json: mean pooling over the real tokens, unnormalized"}


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{path} does not read as JSON ({type(e).__name__}: {e}); fix or remove it.") from None


def read(folder) -> dict:
    """The pooling recipe of a model folder: {modes, normalize, max_seq_length, do_lower_case, source}."""
    folder = Path(folder)
    spec = dict(DEFAULT)
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        cfg = _json(st_config)
        spec.update(max_seq_length=cfg.get("max_seq_length"), do_lower_case=bool(cfg.get("do_lower_case")))
    if not (folder / "modules.json").is_file():
        return spec
    modules = _json(folder / "modules.json")
    names = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    other = [n for n in names if n not in APPLIED]
    if other:
        raise ModelError(f"{folder / 'modules.json'} lists {', '.join(other)}; qonnx applies sentence-transformers' "
                         f"{', '.join(APPLIED)} modules only, so it cannot make this model's embeddings.")
    nested = [m.get("path") for m, n in zip(modules, names) if n == "Transformer" and m.get("path")]
    if nested:
        raise ModelError(f"{folder}: the transformer lives in {nested[0]}/ (an older sentence-transformers layout); "
                         "qonnx reads a folder with the transformer's config.json at its top.")
    pooling = [m for m, n in zip(modules, names) if n == "Pooling"]
    if pooling:
        cfg = _json(folder / pooling[0].get("path", "") / "config.json")
        modes = [name for flag, name in MODES.items() if cfg.get(flag)]
        if not modes:
            raise ModelError(f"{folder / pooling[0].get('path', '')}/config.json turns every pooling mode off.")
        spec["modes"] = modes
    spec["normalize"] = "Normalize" in names
    spec["source"] = (f"modules.json: {' -> '.join(names)}"
                      + (f" ({', '.join(spec['modes'])} pooling)" if pooling else " (no Pooling module: mean)"))
    return spec


def pool(hidden, mask, spec) -> np.ndarray:
    """(batch, dim) float32 sentence embeddings from (batch, length, hidden) token vectors and the
    (batch, length) attention mask, computed in float64."""
    h = np.asarray(hidden, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)[:, :, None]
    count = np.clip(m.sum(1), 1e-9, None)
    out = []
    for mode in spec["modes"]:
        if mode == "cls":
            out.append(h[:, 0])
        elif mode == "max":
            out.append(np.where(m > 0, h, -1e9).max(1))
        elif mode in ("mean", "mean_sqrt_len"):
            total = (h * m).sum(1)
            out.append(total / count if mode == "mean" else total / np.sqrt(count))
        elif mode == "weightedmean":
            w = m * np.arange(1, h.shape[1] + 1, dtype=np.float64)[None, :, None]
            out.append((h * w).sum(1) / np.clip(w.sum(1), 1e-9, None))
        elif mode == "lasttoken":  # the last real token, wherever the padding is
            last = h.shape[1] - 1 - np.argmax(m[:, ::-1, 0] > 0, axis=1)
            out.append(h[np.arange(len(h)), last])
        else:
            raise ModelError(f"unknown pooling mode {mode!r}")
    emb = np.concatenate(out, axis=1)
    if spec.get("normalize"):
        emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
    return emb.astype(np.float32)
