"""INT8 static quantization in QDQ format, calibrated on real samples.

Activations uint8 / weights int8 (the fast pair on x86 with VNNI). Only MatMul/Gemm (the compute)
and Gather (the embedding tables, most of a small encoder's bytes) are quantized: quantizing
Softmax, LayerNorm and residual Adds of a transformer costs accuracy for little speed.
"""
import tempfile
from pathlib import Path

from .. import calibration
from ..errors import ConfigError
from . import requires
from .graph import scratch_cwd

NOTES = {"cuda": "INT8 has few CUDA kernels in ONNX Runtime; nodes fall back to the CPU (see placement)"}
NEEDS = (requires.calibration_data,)
DEFAULT_FOR = ("classification",)
NEEDS_CALIBRATION = True

OP_TYPES = ["MatMul", "Gemm", "Gather"]
METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def past_shapes(sess_inputs, config):
    from ..runners.ort import empty_past

    return {k: v.shape for k, v in empty_past(sess_inputs, 1, config).items()}


def build(src, out, cfg, config, tokenizer=None, lm=False, texts=None, provenance=None, validation=None, **_):
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not texts:
        raise ConfigError("int8-static needs calibration data: pass --calibration FILE (csv/tsv/"
                          "jsonl/json/parquet/txt) or a demo split such as demo:sentiment:calibration")
    prov = provenance
    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls below run in a scratch cwd
    if cfg.max_accuracy_drop is not None:  # keep the most damaging units FP32 until within budget
        from ..analysis.budget import budgeted

        return {**budgeted("int8-static", src, out, cfg, config, tokenizer, validation, texts),
                "calibration_method": cfg.calibration_method, "calibration": prov}
    inputs = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()
    reader = calibration.TextReader(texts, tokenizer, [i.name for i in inputs],
                                    past_shapes(inputs, config) if lm else None)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        with scratch_cwd():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=bool(cfg.per_channel), op_types_to_quantize=OP_TYPES,
                            calibrate_method=getattr(CalibrationMethod, METHODS[cfg.calibration_method]),
                            extra_options={"CalibTensorRangeSymmetric": False})
    return {"format": "QDQ", "activation_type": "uint8", "weight_type": "int8",
            "per_channel": bool(cfg.per_channel), "op_types": OP_TYPES,
            "calibration_method": cfg.calibration_method, "calibration": prov}
