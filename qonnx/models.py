"""Resolve what the user names as a model: a local folder, a hub id, or a built-in demo.

`resolve` is the one place that decides a model's task (and so whether it is a language model),
and it checks a folder cheaply before anything heavy runs: weights present and readable,
a tokenizer, a single-label classification head.
"""
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, did_you_mean

log = logging.getLogger(__name__)

DEMO_PREFIX = "demo:"
DEFAULT_MODEL = "demo:sentiment"
CLASSIFICATION, LM = "text-classification", "text-generation-with-past"
TASKS = {CLASSIFICATION: CLASSIFICATION, LM: LM, "text-generation": LM}
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "pytorch_model.bin.index.json")
OTHER_FRAMEWORKS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")


def is_lm_task(task: str) -> bool:
    """The one place that decides whether a task is causal language modelling."""
    return TASKS.get(task, task) == LM


@dataclass
class ModelSource:
    name: str        # what the user typed
    path: Path       # local Hugging Face folder
    task: str        # optimum task name: text-classification or text-generation-with-past
    demo: str = ""   # demo name when built in

    @property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @property
    def is_lm(self) -> bool:
        return is_lm_task(self.task)

    @property
    def demo_data(self) -> Path | None:
        return self.path.parent / "data" if self.demo else None


def _heads():
    """Architecture class names by task, from transformers' own auto mappings."""
    from transformers.models.auto import modeling_auto as auto

    return {CLASSIFICATION: set(auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.values()),
            LM: set(auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())}


def infer_task(config: dict, name: str) -> str:
    archs = config.get("architectures") or []
    heads = _heads()
    for arch in archs:
        for task, classes in heads.items():
            if arch in classes or arch.endswith("ForSequenceClassification") and task == CLASSIFICATION \
                    or arch.endswith("ForCausalLM") and task == LM:
                return task
    raise ModelError(
        f"Cannot tell the task of '{name}' from its architectures {archs}; qonnx supports sequence "
        f"classifiers and causal LMs. Give it with --task {CLASSIFICATION} or --task {LM}.")


def check_task(task: str, config: dict, name: str) -> str:
    """A --task given by the user: known, and fitting the model's architecture."""
    if task not in TASKS:
        raise ModelError(f"Unknown task '{task}'.{did_you_mean(task, TASKS)} qonnx measures "
                         f"{CLASSIFICATION} and {LM} (or text-generation).")
    task = TASKS[task]
    archs = config.get("architectures") or []
    heads = _heads()
    other = CLASSIFICATION if task == LM else LM
    if archs and all(a in heads[other] for a in archs):
        kind = "a sequence classifier" if other == CLASSIFICATION else "a causal language model"
        raise ModelError(f"--task {task} does not fit '{name}': {', '.join(archs)} is {kind} ({other}).")
    return task


def check_head(config: dict, name: str):
    problem = config.get("problem_type")
    labels = config.get("id2label") or {}
    if problem in ("regression", "multi_label_classification") or config.get("num_labels") == 1 or len(labels) == 1:
        what = problem or "a single-output head (regression)"
        raise ModelError(f"'{name}' is {what}; qonnx measures single-label classifiers (argmax accuracy) "
                         "only.")


def check_folder(path: Path, name: str, config: dict):
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
    if not any(t in files for t in TOKENIZER_FILES):
        raise ModelError(f"{name} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                         "save the tokenizer into the model folder (tokenizer.save_pretrained).")


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
            "Offline? Pass a local model folder, or a built-in demo: demo:sentiment, demo:smollm2."
        ) from None


def resolve(name: str, task: str | None = None) -> ModelSource:
    demo = ""
    if name.startswith(DEMO_PREFIX):
        from . import demo as demos

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
    task = check_task(task, config, name) if task else infer_task(config, name)
    if task == CLASSIFICATION:
        check_head(config, name)
    check_folder(path, name, config)
    return ModelSource(name=name, path=path, task=task, demo=demo)
