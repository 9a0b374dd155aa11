"""Resolve what the user names as a model: a local folder, a hub id, or a built-in demo."""
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

DEMO_PREFIX = "demo:"
DEFAULT_MODEL = "demo:sentiment"

# task name (optimum's) by the suffix of the architecture class name
_TASK_BY_HEAD = {
    "ForSequenceClassification": "text-classification",
    "ForCausalLM": "text-generation-with-past",
}


@dataclass
class ModelSource:
    name: str        # what the user typed
    path: Path       # local Hugging Face folder
    task: str        # optimum task name
    demo: str = ""   # demo name when built in

    @property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @property
    def is_lm(self) -> bool:
        """The one place that decides whether a model is a causal language model."""
        return self.task.startswith("text-generation")

    @property
    def demo_data(self) -> Path | None:
        return self.path.parent / "data" if self.demo else None


def infer_task(config: dict, name: str) -> str:
    for arch in config.get("architectures") or []:
        for head, task in _TASK_BY_HEAD.items():
            if arch.endswith(head):
                return task
    raise ModelError(
        f"Cannot tell the task of '{name}' from its architectures "
        f"{config.get('architectures')}; qonnx supports sequence classifiers and causal LMs. "
        "Give it with --task text-classification or --task text-generation-with-past.")


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
    return ModelSource(name=name, path=path, task=task or infer_task(config, name), demo=demo)
