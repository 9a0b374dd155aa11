"""Variants, registered by name.

METHODS: ONNX quantization methods that `qonnx quantize` builds from an FP32 export.
VARIANTS: every row kind `qonnx compare` can measure (torch modes, bitsandbytes, ONNX methods).
"""
import logging
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

log = logging.getLogger(__name__)

METHODS = {"fp16": "fp16", "int8-dynamic": "int8_dynamic", "int8-static": "int8_static",
           "int4-weight": "int4_weight"}


@dataclass(frozen=True)
class Variant:
    name: str
    runtime: str          # "torch" or "onnx"
    mode: str             # torch mode (fp32/fp16/bf16/int8-dynamic/bnb-int4) or ONNX method
    devices: tuple = ("cpu", "cuda")
    note_cpu: str = ""    # why a CPU number may look slow
    note_cuda: str = ""
    options: tuple = ()   # QuantizeConfig settings, as (name, value) pairs


_UNACCEL_FP16_CPU = ("FP16 arithmetic is not accelerated on this CPU provider: most ops run through casts, "
                     "so this number reflects the graph, not FP16 speed")
_UNACCEL_INT8_CUDA = "INT8 has few CUDA kernels in ONNX Runtime; nodes fall back to the CPU (see placement)"
VARIANTS = {v.name: v for v in [
    Variant("torch-fp32", "torch", "fp32"),
    Variant("torch-fp16", "torch", "fp16", note_cpu=_UNACCEL_FP16_CPU),
    Variant("torch-bf16", "torch", "bf16"),
    Variant("torch-int8-dynamic", "torch", "int8-dynamic", devices=("cpu",)),
    Variant("bnb-int4", "torch", "bnb-int4"),
    Variant("onnx-fp32", "onnx", "fp32"),
    Variant("onnx-fp16", "onnx", "fp16", note_cpu=_UNACCEL_FP16_CPU),
    Variant("onnx-int8-dynamic", "onnx", "int8-dynamic", note_cuda=_UNACCEL_INT8_CUDA),
    Variant("onnx-int8-static", "onnx", "int8-static", note_cuda=_UNACCEL_INT8_CUDA),
    Variant("onnx-int4-weight", "onnx", "int4-weight", options=(("algorithm", "hqq"),),
            note_cpu="HQQ keeps float zero points, for which ONNX Runtime's CPU MatMulNBits has no "
                     "fast kernel: accurate but slow here; onnx-int4-rtn is the fast one"),
    Variant("onnx-int4-rtn", "onnx", "int4-weight", options=(("algorithm", "rtn"),)),
]}
DEFAULT_ORDER = list(VARIANTS)


def builder(method):
    return import_module(f".{METHODS[method]}", __name__).build


def quantize(cfg) -> dict:
    """Build one ONNX variant from an FP32 export folder; returns the manifest. Atomic."""
    from transformers import AutoTokenizer

    from .. import manifest
    from ..cache import atomic_dir
    from ..errors import ModelError
    from .checks import check_variant, load_export

    src_dir = cfg.onnx_dir
    src_manifest, config = load_export(src_dir)
    task = src_manifest.get("source", {}).get("task", "")
    lm = task.startswith("text-generation")
    calib = cfg.calibration
    demo = src_manifest.get("source", {}).get("demo")
    if cfg.method == "int8-static" and not calib and demo:
        calib = f"demo:{demo}:calibration"
    with atomic_dir(cfg.output) as tmp:
        manifest.copy_side_files(src_dir, tmp)
        log.info("building %s from %s", cfg.method, src_dir)
        kwargs = {"lm": lm}
        if cfg.method == "int8-static":
            kwargs.update(tokenizer=AutoTokenizer.from_pretrained(src_dir), calibration_spec=calib)
        try:
            settings = builder(cfg.method)(src_dir / "model.onnx", tmp / "model.onnx", cfg, config, **kwargs)
        except (ValueError, RuntimeError, KeyError) as e:  # ORT quantizer rejects the graph
            raise ModelError(f"{cfg.method} quantization of {src_dir} failed: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        report = check_variant(src_dir, tmp, task, config)
        data = manifest.write(tmp, kind="variant", source={**src_manifest.get("source", {}),
                              "onnx_export": str(Path(src_dir).resolve())},
                              method=cfg.method, settings=settings,
                              parity={"reference": "onnx-fp32", **report})
    data["output"] = str(cfg.output)
    return data
