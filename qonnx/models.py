"""Resolve what the user names as a model: a local folder, a hub id, or a built-in demo.

`resolve` settles a model's task (qonnx.heads: a classifier, a language model or an embedding
model), and it checks a folder cheaply before anything heavy runs: weights present and readable,
a tokenizer, a single-label classification head.
"""
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qonnx import demo as demos
from qonnx.errors import ModelError
from qonnx.heads import (  # noqa: F401  (models.X: the task names and checks, used across qonnx)
    CLASSIFICATION,
    EMBEDDINGS,
    IMAGES,
    LM,
    QA,
    SEQ2SEQ,
    SUPPORTED,
    TASKS,
    TOKENS,
    check_head,
    check_task,
    infer_task,
    is_embeddings_task,
    is_images_task,
    is_lm_task,
    is_seq2seq_task,
)

log = logging.getLogger(__name__)

DEMO_PREFIX = "demo:"
DEFAULT_MODEL = "demo:sentiment"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "pytorch_model.bin.index.json")
OTHER_FRAMEWORKS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")


@dataclass
class ModelSource:
    name: str        # what the user typed
    path: Path       # local Hugging Face folder
    task: str        # optimum task name: text-classification, text-generation-with-past or feature-extraction
    demo: str = ""   # demo name when built in

    @cached_property
    def _config(self) -> dict:
        return with_shape(json.loads((self.path / "config.json").read_text()))

    @property
    def config(self) -> dict:
        """config.json with transformers' standard shape names filled in (see `with_shape`), so a
        reader never needs GPT-2's n_head or DistilBERT's n_layers."""
        return dict(self._config)

    @property
    def is_lm(self) -> bool:
        return is_lm_task(self.task)

    @property
    def demo_data(self) -> Path | None:
        return self.path.parent / "data" if self.demo else None


SHAPE_KEYS = ("num_attention_heads", "num_key_value_heads", "head_dim", "hidden_size", "num_hidden_layers")


def normalized_shape(config: dict) -> dict:
    """The model's shape under transformers' standard names, read through its own config class
    (whose attribute_map says GPT-2's n_head is num_attention_heads): attention heads, key/value
    heads (num_key_value_heads where the model has grouped-query attention, else the attention
    heads), head size (head_dim where the config has it, else hidden / heads), hidden size, layers.
    {} when transformers does not know the model_type."""
    from transformers import CONFIG_MAPPING

    try:
        cfg = CONFIG_MAPPING[config["model_type"]].from_dict(config)
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    except Exception:  # unknown or remote-code model type, a config its class rejects
        return {}

    def get(name):
        try:
            return getattr(cfg, name, None)
        except Exception:
            return None

    heads, hidden = get("num_attention_heads"), get("hidden_size")
    kv = get("num_key_value_heads") or heads
    head_dim = get("head_dim") or (hidden // heads if isinstance(hidden, int) and isinstance(heads, int) and heads
                                   else None)
    out = {"num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
           "hidden_size": hidden, "num_hidden_layers": get("num_hidden_layers")}
    return {k: v for k, v in out.items() if isinstance(v, int)}


def with_shape(config: dict) -> dict:
    """config with the standard shape names of `normalized_shape` filled in where absent."""
    shape = normalized_shape(config) if config.get("model_type") else {}
    return {**config, **{k: v for k, v in shape.items() if config.get(k) is None}}


def load_pretrained(cls, path, unused=(), **kwargs):
    """cls.from_pretrained(path, **kwargs), refused when transformers had to initialise weights the
    checkpoint lacks (a head of another kind, a base model given a head): qonnx never measures a
    head with random weights. Every torch load goes through here (rows and export parity).
    `unused`: prefixes of weights the task never reads (an embedding model's pooler), which may be
    missing."""
    model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    fresh = sorted(set(info.get("missing_keys") or []) | {k[0] if isinstance(k, tuple) else k
                                                          for k in info.get("mismatched_keys") or []})
    fresh = [k for k in fresh if not k.startswith(tuple(unused))]
    if fresh:
        shown = ", ".join(fresh[:6]) + (f" and {len(fresh) - 6} more" if len(fresh) > 6 else "")
        raise ModelError(f"{path} has no trained weights for {shown} of {type(model).__name__}: transformers would "
                         f"initialise them at random, so the model was not trained for this task. qonnx measures "
                         f"{SUPPORTED}; give a checkpoint trained for one (its config's architectures say which).")
    return model


def check_folder(path: Path, name: str, config: dict, task: str = ""):
    """Weights present and readable, a tokenizer: cheap checks before any heavy loading."""
    files = {p.name for p in path.iterdir()}
    if not any(w in files for w in WEIGHTS) and not any(f.endswith(".safetensors") for f in files):
        other = [f for f in OTHER_FRAMEWORKS if f in files]
        if other:
            raise ModelError(f"{name} holds only {', '.join(other)}; qonnx needs PyTorch weights "
                             "(model.safetensors or pytorch_model.bin).")
        raise ModelError(f"{name} has a config.json but no weights (model.safetensors or pytorch_model.bin).")
    for f in sorted(p for p in path.glob("*.safetensors")):
        try:
            from safetensors import safe_open

            with safe_open(str(f), framework="np") as st:
                keys = list(st.keys())
                last = st.get_slice(keys[-1]) if keys else None
                if last is not None:
                    last.get_shape()
            _check_safetensors_size(f)
        except Exception as e:
            raise ModelError(f"{f} is damaged or truncated ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120] if str(e) else ''}); re-download or re-save it.") from None
    if task == IMAGES:  # an image classifier reads pixels through its image processor, not a tokenizer
        if "preprocessor_config.json" not in files:
            raise ModelError(f"{name} has no preprocessor_config.json (the model's image processor); save it into "
                             "the model folder (AutoImageProcessor ... .save_pretrained).")
        return
    if not any(t in files for t in TOKENIZER_FILES):
        raise ModelError(f"{name} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                         "save the tokenizer into the model folder (tokenizer.save_pretrained).")
    tok = load_tokenizer(path)
    if task in (CLASSIFICATION, EMBEDDINGS, TOKENS, QA) and tok.pad_token is None:
        what = {CLASSIFICATION: "classifier", EMBEDDINGS: "embedding model"}.get(task, task.replace("-", " ") + " model")
        raise ModelError(f"The tokenizer in {path} has no pad token; qonnx pads {what} batches. Set one "
                         "(tokenizer.pad_token = tokenizer.eos_token, and config.pad_token_id) and save it.")


def load_tokenizer(path: Path):
    """AutoTokenizer for a model folder; a folder whose tokenizer files do not load is a ModelError."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as e:  # missing vocab, a broken tokenizer.json, a tokenizer class this install lacks
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise ModelError(f"no tokenizer in {path}: its tokenizer files do not load ({type(e).__name__}: "
                         f"{first}); save a working one there (tokenizer.save_pretrained).") from None


def _check_safetensors_size(f: Path):
    """The header's last data offset must fit in the file (a truncated file fails here)."""
    import struct

    with open(f, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > f.stat().st_size:
        raise ValueError(f"the header needs {8 + n + end} bytes, the file has {f.stat().st_size}")


def _download(hub_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, allow_patterns=[
            "*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*", "*.bin"]))
    except Exception as e:  # offline, unknown repo, gated repo: all user-fixable
        kind = type(e).__name__
        raise ModelError(
            f"Could not fetch '{hub_id}' from the Hugging Face Hub ({kind}: {str(e).splitlines()[0]}). "
            "Offline? Pass a local model folder, or a built-in demo: demo:sentiment, demo:smollm2, demo:minilm."
        ) from None


def resolve(name: str, task: str | None = None) -> ModelSource:
    demo = ""
    if name.startswith(DEMO_PREFIX):
        demo = name[len(DEMO_PREFIX):]
        path = demos.ensure(demo) / "model"
    elif Path(name).expanduser().exists():
        path = Path(name).expanduser().resolve()
        if not path.is_dir():
            raise ModelError(f"{name} is a file; give the folder of a Hugging Face model.")
    elif name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"No such model folder: {name}")
    else:
        path = _download(name)
    if not (path / "config.json").is_file():
        raise ModelError(f"{name} is not a Hugging Face model folder (no config.json in {path}).")
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{path / 'config.json'} is not valid JSON: {e}") from None
    task = check_task(task, config, name) if task else infer_task(config, name, path)
    if task in (CLASSIFICATION, IMAGES):
        check_head(config, name)
    check_folder(path, name, config, task)
    return ModelSource(name=name, path=path, task=task, demo=demo)
