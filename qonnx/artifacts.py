"""Artifacts of a model under the output root: one FP32 export (cached by the content hash of
the source model) and the ONNX variants built from it, each a deployable folder with a manifest."""
import functools
import hashlib
import logging
import os
from pathlib import Path

from .cache import hash_tree

log = logging.getLogger(__name__)


def root() -> Path:
    """The artifact root: $QONNX_ARTIFACTS, else ./artifacts."""
    return Path(os.environ.get("QONNX_ARTIFACTS", "artifacts"))


@functools.lru_cache(maxsize=None)
def _digest(folder: Path) -> str:
    """Content hash of a model folder, once per process (every variant of a run asks for it)."""
    digest = hashlib.sha256()
    for rel, sha in hash_tree(folder).items():
        digest.update(f"{rel}:{sha}\n".encode())
    return digest.hexdigest()[:10]


def model_key(source) -> str:
    name = source.demo or Path(source.name.rstrip("/")).name.replace(":", "_")
    return f"{name}-{_digest(Path(source.path))}"


def export_dir(source) -> Path:
    """The FP32 export of source, made on first use and reused after."""
    from .config import ExportConfig
    from .export import export

    out = root() / model_key(source) / "onnx-fp32"
    if (out / "manifest.json").is_file():
        log.info("reusing export %s", out)
        return out
    export(ExportConfig(model=source.name, output=out, task=source.task))
    return out


def variant_dir(source, method, settings: dict) -> Path:
    """Build (or reuse) one ONNX variant; settings are QuantizeConfig fields."""
    from .config import QuantizeConfig
    from .variants import quantize

    src = export_dir(source)
    suffix = "".join(f"-{settings[k]}" for k in ("calibration_method", "algorithm") if k in settings)
    out = src.parent / f"onnx-{method}{suffix}"
    if (out / "manifest.json").is_file():
        return out
    quantize(QuantizeConfig(onnx_dir=src, method=method, output=out, **settings))
    return out
