"""Hugging Face -> ONNX through optimum's exporter, then our own parity check against PyTorch.

optimum only warns on a mismatch; qonnx measures max |diff| on real text at several lengths and
batch sizes (and a cached decoding step for LMs) and raises ParityError over `atol`.
The export is stored under a content hash of the source files, task, opset and the library
versions that shape its bytes: `qonnx export` and `qonnx compare` share it.
"""
import logging
from pathlib import Path

from qonnx import genai, manifest, models, parity, store
from qonnx.config import ExportConfig
from qonnx.envinfo import versions
from qonnx.errors import ModelError, ParityError

log = logging.getLogger(__name__)

KEY_LIBRARIES = ("qonnx", "torch", "transformers", "optimum", "optimum-onnx", "onnx")


def export_key(source, opset=None) -> str:
    v = versions()
    return store.digest({"source": store.tree_digest(source.path), "task": source.task, "opset": opset,
                         "versions": {k: v.get(k) for k in KEY_LIBRARIES}})


def default_output(source, opset=None) -> Path:
    return store.root() / store.slug(source) / f"onnx-fp32-{export_key(source, opset)}"


def _optimum_export(source, out, opset):
    from optimum.exporters.onnx import main_export

    arch = (source.config.get("architectures") or [source.config.get("model_type")])[0]
    try:
        # library_name: transformers' classes, also for a sentence-transformers folder (its pooling is
        # applied by qonnx.pooling to every runtime's last hidden state, not exported into the graph)
        main_export(str(source.path), out, task=source.task, opset=opset, do_validation=False,
                    local_files_only=True, library_name="transformers")
    except (KeyError, ValueError, NotImplementedError) as e:
        raise ModelError(f"optimum cannot export {arch} (model_type "
                         f"'{source.config.get('model_type')}') for task {source.task}: "
                         f"{str(e).splitlines()[0]}") from None
    except (OSError, ImportError, RuntimeError, TypeError) as e:  # weights transformers cannot read
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ModelError(f"Cannot load {source.name} for export ({type(e).__name__}: {first}).") from None
    if not (Path(out) / "model.onnx").is_file() and not (Path(out) / "encoder_model.onnx").is_file():
        raise ModelError(f"optimum's export of {source.name} produced no model.onnx")


def export(cfg: ExportConfig, source=None) -> dict:
    """Export cfg.model to ONNX into cfg.output (default: the artifact store); returns the
    manifest, with `output` and `reused`. An intact export with the same key is reused."""
    source = source or models.resolve(cfg.model, cfg.task)
    if cfg.exporter == "genai":
        return genai.build(source, cfg.precision, cfg.output, cfg.overwrite, cfg.atol)
    key = export_key(source, cfg.opset)
    out = Path(cfg.output) if cfg.output else default_output(source, cfg.opset)
    if manifest.read(out).get("key") == key and store.reuse(out):
        log.info("reusing export %s", out)
        return {**manifest.read(out), "output": str(out), "reused": True}
    overwrite = cfg.overwrite or (not cfg.output and store.is_artifact(out))  # a damaged store copy
    with store.atomic_dir(out, overwrite=overwrite, protect=[source.path]) as tmp:
        log.info("exporting %s (%s) with optimum", source.name, source.task)
        with store.scratch_cwd():
            _optimum_export(source, tmp, cfg.opset)
        report = parity.check_export(source, tmp / "model.onnx")  # seq2seq: the folder's encoder and decoders
        ok = report["max_abs_diff"] <= cfg.atol
        if not ok:
            raise ParityError(
                f"ONNX export of {source.name} differs from PyTorch by {report['max_abs_diff']:.3g} "
                f"(> --atol {cfg.atol}); the folder was not written. Shapes checked: "
                + ", ".join(f"b{c['batch']}xL{c['length']}={c['max_abs_diff']:.2g}" for c in report["cases"]))
        data = manifest.write(tmp, kind="export", key=key,
                              source={"model": source.name, "path": str(source.path), "task": source.task,
                                      "demo": source.demo, "digest": store.tree_digest(source.path)},
                              method="fp32", settings={"opset": cfg.opset, "atol": cfg.atol},
                              parity={"reference": "pytorch-fp32", "passed": ok, **report})
    return {**data, "output": str(out), "reused": False}


def ensure(source) -> Path:
    """The stored FP32 export of source, made on first use (compare's entry point)."""
    return Path(export(ExportConfig(model=source.name, task=source.task), source=source)["output"])
