"""A QDQ graph for Qualcomm NPUs (ONNX Runtime's QNN execution provider, HTP backend), built with
ONNX Runtime's own QNN helpers (onnxruntime.quantization.execution_providers.qnn):
`qnn_preprocess_model` (LayerNorm fused into LayerNormalization, as QNN has it), then
`get_qnn_qdq_config` and `quantize`: every op QDQ, activations uint16 (or uint8), weights int8
with zero point 0 (symmetric), the types QNN's HTP takes.

What was changed from the helpers' defaults, by measurement on demo:sentiment (docs/edge.md):
- Activations uint16 and weights symmetric int8 (the helpers' default is uint8 for both): with
  uint8 activations the predictions agreed with FP32 on 191 of 256 test sentences, with uint16 on
  246 of 256.
- The graph is converted to opset 21 first, whose QuantizeLinear/DequantizeLinear take uint16:
  below it the helpers write com.microsoft Q/DQ, through which ONNX's shape inference (and so the
  NNAPI/CoreML/QNN partition estimate) cannot see.
- The extended attention mask's float32-minimum constant (-3.4e38) becomes -1e4 before
  calibration: one linear scale cannot hold -3.4e38 and the scores beside it (after Softmax both
  are 0).
Input shapes stay as exported, so `qonnx compare` can measure the graph at every length on the CPU
EP (which runs it through dequantized ops: its accuracy is what the NPU's integer arithmetic
approximates, its speed is not the NPU's). QNN compiles fixed shapes:
`qonnx validate DIR --target qnn --fix-shapes batch=1,sequence=128` writes that artifact and
checks it.
"""
from pathlib import Path

import numpy as np

from qonnx import calibration
from qonnx.errors import ConfigError
from qonnx.store import work_dir
from qonnx.variants import requires
from qonnx.variants.graph import save, scratch_cwd

KINDS = ("classification", "embeddings")
DEFAULT_FOR = ()  # a build for one NPU, not a CPU row: measured when asked for (--variants)
NEEDS = (requires.calibration_data,)
NEEDS_CALIBRATION = True
RECIPE = 2  # 2: opset 21, standard 16-bit Q/DQ
NOTES = {"cpu": "a QDQ graph for Qualcomm's HTP, run here by the CPU EP through dequantized ops: its accuracy is "
                "what the NPU approximates, its speed is not the NPU's",
         "cuda": "a QDQ graph for Qualcomm's HTP; the CUDA EP runs it through dequantized ops"}
ACTIVATIONS = ("uint16", "uint8")
MASK_FLOOR = -1e4
STANDARD_16BIT_QDQ = 21  # the opset whose QuantizeLinear/DequantizeLinear take uint16 (ai.onnx, not com.microsoft)
METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def bound_mask(model) -> int:
    """Constants at float32's minimum (the extended attention mask's fill) -> MASK_FLOOR; how many."""
    from onnx import numpy_helper

    def fix(tensor):
        a = numpy_helper.to_array(tensor)
        if a.dtype != np.float32 or a.size > 4 or not np.any(a <= -1e30):
            return False
        tensor.CopyFrom(numpy_helper.from_array(np.where(a <= -1e30, np.float32(MASK_FLOOR), a), tensor.name))
        return True

    count = sum(fix(t) for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            count += sum(fix(a.t) for a in node.attribute if a.name == "value")
    return count


def prepare(src, pre, bound=True) -> dict:
    """Write pre: src through qnn_preprocess_model (LayerNorm fused), at opset 21 or newer, the mask
    constant bounded (unless bound=False); returns what was done."""
    import onnx
    from onnxruntime.quantization.execution_providers.qnn import qnn_preprocess_model

    fused = qnn_preprocess_model(str(src), str(pre), fuse_layernorm=True)
    model = onnx.load(str(pre if fused else src))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < STANDARD_16BIT_QDQ:  # else the helpers write com.microsoft Q/DQ for 16 bits
        model = onnx.version_converter.convert_version(model, STANDARD_16BIT_QDQ)
        model.ir_version = max(model.ir_version, 10)  # opset 21 came with IR version 10 (onnx 1.16)
    bounded = bound_mask(model) if bound else 0
    save(model, pre)
    return {"layernorm_fused": bool(fused), "opset": max(opset, STANDARD_16BIT_QDQ), "mask_constants_bounded": bounded}


def build(src, out, cfg, config, tokenizer=None, lm=False, texts=None, provenance=None, **_):
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    if not texts:
        raise ConfigError("int8-qdq-qnn needs calibration data: pass --calibration FILE (csv/tsv/jsonl/json/parquet/"
                          "txt) or a demo split such as demo:sentiment:calibration")
    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls below run in a scratch cwd
    activations = cfg.qnn_activations
    per_channel = bool(cfg.per_channel)  # [per tensor]: the helpers' default
    with work_dir(out.parent) as tmp, scratch_cwd():
        pre = Path(tmp) / "pre.onnx"
        done = prepare(src, pre)
        names = [i.name for i in ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()]
        reader = calibration.TextReader(texts, tokenizer, names)
        qc = get_qnn_qdq_config(str(pre), reader, calibrate_method=getattr(CalibrationMethod,
                                                                          METHODS[cfg.calibration_method]),
                                activation_type=QuantType.QUInt16 if activations == "uint16" else QuantType.QUInt8,
                                weight_type=QuantType.QInt8, weight_symmetric=True, per_channel=per_channel)
        quantize(str(pre), str(out), qc)
    return {"format": "QDQ", "target": "qnn (HTP)", "activation_type": activations, "weight_type": "int8",
            "weight_symmetric": True, "per_channel": per_channel, "calibration_method": cfg.calibration_method,
            **done, "mask_floor": MASK_FLOOR, "helpers": "onnxruntime.quantization.execution_providers.qnn",
            "recipe": RECIPE, "calibration": provenance}
