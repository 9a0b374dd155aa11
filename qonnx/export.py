"""Hugging Face -> ONNX through optimum's exporter, then our own parity check against PyTorch.

optimum only warns on a mismatch; qonnx measures max |diff| on real text at several lengths and
batch sizes (and a cached decoding step for LMs) and raises ParityError over `atol`.
"""
import logging
from pathlib import Path

from . import manifest, models, parity
from .cache import atomic_dir
from .config import ExportConfig
from .errors import ModelError, ParityError

log = logging.getLogger(__name__)


def default_output(source) -> Path:
    name = source.demo or Path(source.name.rstrip("/")).name
    return Path("artifacts") / name / "onnx-fp32"


def _optimum_export(source, out, opset):
    from optimum.exporters.onnx import main_export

    arch = (source.config.get("architectures") or [source.config.get("model_type")])[0]
    try:
        main_export(str(source.path), out, task=source.task, opset=opset, do_validation=False,
                    local_files_only=True)
    except (KeyError, ValueError, NotImplementedError) as e:
        raise ModelError(f"optimum cannot export {arch} (model_type "
                         f"'{source.config.get('model_type')}') for task {source.task}: "
                         f"{str(e).splitlines()[0]}") from None
    if not (Path(out) / "model.onnx").is_file():
        raise ModelError(f"optimum's export of {source.name} produced no model.onnx")


def check_parity(source, onnx_path, threads=None):
    from transformers import AutoTokenizer

    from .runners.ort import OrtRunner
    from .runners.torch import TorchRunner

    tok = AutoTokenizer.from_pretrained(source.path)
    with TorchRunner(source.path, source.task, threads=threads) as ref, \
            OrtRunner(onnx_path, config=source.config, threads=threads) as cand:
        return parity.check(source.task, ref, cand, tok, parity.probe_texts(source))


def export(cfg: ExportConfig) -> dict:
    """Export cfg.model to ONNX into cfg.output; returns the manifest. Atomic on failure."""
    source = models.resolve(cfg.model, cfg.task)
    out = Path(cfg.output) if cfg.output else default_output(source)
    with atomic_dir(out) as tmp:
        log.info("exporting %s (%s) with optimum", source.name, source.task)
        _optimum_export(source, tmp, cfg.opset)
        report = check_parity(source, tmp / "model.onnx")
        ok = report["max_abs_diff"] <= cfg.atol
        data = manifest.write(tmp, kind="export", source={"model": source.name, "path": str(source.path),
                              "task": source.task, "demo": source.demo},
                              method="fp32", settings={"opset": cfg.opset, "atol": cfg.atol},
                              parity={"reference": "pytorch-fp32", "passed": ok, **report})
        if not ok:
            raise ParityError(
                f"ONNX export of {source.name} differs from PyTorch by {report['max_abs_diff']:.3g} "
                f"(> --atol {cfg.atol}); the folder was not written. Shapes checked: "
                + ", ".join(f"b{c['batch']}xL{c['length']}={c['max_abs_diff']:.2g}" for c in report["cases"]))
    data["output"] = str(out)
    return data
