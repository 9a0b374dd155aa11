"""INT8 static quantization in QDQ format, calibrated on real samples.

The recipe, chosen by measurement on demo:sentiment (docs/methods.md, "How int8-static was chosen"):
- Encoders are fused first (Attention, SkipLayerNorm, BiasGelu; embeddings left as Gathers so
  their tables are stored in INT8): the unfused QDQ graph misses ONNX Runtime's fused attention.
- Only weighted MatMul/Gemm nodes and embedding Gathers are quantized; activation x activation
  MatMuls, Softmax, LayerNorm and residual Adds stay float.
- Weights per channel; activations uint8, weights int8 (the fast pair on x86 with VNNI).
- The FFN output projections (input: the GELU output, whose outliers one calibrated uint8 scale
  per tensor cannot hold) take dynamic INT8 with per-channel weights instead. With them static,
  text from other domains lost 2.5-3.5 points (tweets); dynamic, under one point.
Ranges are computed here with explicit calibrator settings, then handed to quantize_static as a
calibration cache: quantize_static cannot pass histogram sizes to the entropy calibrator (it then
bins 128 into 128, which is MinMax), and one calibration serves every build of a budget search.
"""
import shutil
from pathlib import Path

from qonnx import calibration
from qonnx.errors import ConfigError
from qonnx.runners.ort import empty_past
from qonnx.store import work_dir
from qonnx.variants import requires
from qonnx.variants.graph import fuse, save, scratch_cwd, type_fused_outputs
from qonnx.variants.int8_dynamic import dynamic_nodes
from qonnx.variants.units import role, weighted_nodes

NOTES = {"cuda": "INT8 has few CUDA kernels in ONNX Runtime; nodes fall back to the CPU (see placement)"}
NEEDS = (requires.calibration_data,)
DEFAULT_FOR = ("classification", "embeddings", "tokens", "qa", "images")
NEEDS_CALIBRATION = True
RECIPE = 2  # in the variant key: a recipe change never reuses an older build

OP_TYPES = ["MatMul", "Gemm", "Gather"]
METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
CALIBRATORS = {"minmax": {}, "entropy": {"num_bins": 2048, "num_quantized_bins": 255},
               "percentile": {"num_bins": 2048, "percentile": 99.999, "symmetric": False}}
FFN_OUT = ("dynamic", "static")


def past_shapes(sess_inputs, config):
    return {k: v.shape for k, v in empty_past(sess_inputs, 1, config).items()}


def graph(src, tmp, config, lm) -> tuple:
    """(path of the graph to quantize, its record): fused and typed for encoders, pre-processed."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    record = {"fused": False, "reason": "decoder LM: quantized unfused"}
    if not lm:
        model, record = fuse(src, config, embeddings=False)
        if record["fused"]:
            type_fused_outputs(model)
            src = Path(tmp) / "fused.onnx"
            save(model, src)
    pre = Path(tmp) / "pre.onnx"
    with scratch_cwd():
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    return pre, record


def calibrate(pre, reader, method, tmp) -> Path:
    """Activation ranges of every tensor a quantized node reads, as ORT's calibration cache."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    cache = Path(tmp) / f"calibration-ranges-{method}.json"
    with scratch_cwd(), work_dir(tmp) as work:
        cal = create_calibrator(Path(pre), OP_TYPES, augmented_model_path=str(Path(work) / "augmented.onnx"),
                                calibrate_method=getattr(CalibrationMethod, METHODS[method]),
                                extra_options=CALIBRATORS[method])
        cal.collect_data(reader)
        save_tensors_data(cal.compute_data(), cache)
    return cache


def ffn_out_nodes(nodes) -> list:
    return [n for n in nodes if role(n)[1] == "ffn-out"]


def quantize(pre, dst, ranges, method, nodes, per_channel=True, dynamic=()):
    """Write dst: `nodes` of pre quantized, static QDQ from `ranges` except `dynamic` (dynamic INT8)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    static = [n for n in nodes if n not in set(dynamic)]
    dynamic = [n for n in dynamic if n in set(nodes)]
    with work_dir(Path(dst).parent) as tmp, scratch_cwd():
        stage = Path(tmp) / "static.onnx" if dynamic else Path(dst)
        if static:  # ORT reads an empty nodes_to_quantize as "every node"
            quantize_static(str(pre), str(stage), None, quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=per_channel, op_types_to_quantize=OP_TYPES, nodes_to_quantize=static,
                            calibrate_method=getattr(CalibrationMethod, METHODS[method]),
                            calibration_cache_path=str(ranges), extra_options={"CalibTensorRangeSymmetric": False})
        else:
            shutil.copyfile(pre, stage)
        if dynamic:  # per-channel with reduce_range, as the int8-dynamic variant

            dynamic_nodes(stage, dst, dynamic)


def settings(cfg, ctx) -> dict:
    return {"format": "QDQ", "activation_type": "uint8", "weight_type": "int8",
            "per_channel": ctx["per_channel"], "op_types": OP_TYPES, "graph": ctx["graph"],
            "calibration_method": ctx["method"], "calibrator": CALIBRATORS[ctx["method"]],
            "ffn_out": cfg.static_ffn_out, "dynamic_nodes": ctx["dynamic"], "recipe": RECIPE}


def context(src, tmp, cfg, config, tokenizer, texts, lm) -> dict:
    """What every build from this export shares: the graph, its ranges, the recipe's node sets."""
    import onnx
    import onnxruntime as ort

    pre, record = graph(src, tmp, config, lm)
    inputs = ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()
    shapes = past_shapes(inputs, config) if lm else None
    ranges = {}

    def ranges_for(method):  # each calibration method's ranges, computed once
        if method not in ranges:
            reader = calibration.reader(texts, tokenizer, [i.name for i in inputs], shapes)
            ranges[method] = calibrate(pre, reader, method, tmp)
        return ranges[method]
    nodes = weighted_nodes(onnx.load(str(pre), load_external_data=False))
    return {"pre": pre, "graph": record, "method": cfg.calibration_method, "nodes": nodes,
            "ranges": ranges_for(cfg.calibration_method), "ranges_for": ranges_for,
            "per_channel": True if cfg.per_channel is None else bool(cfg.per_channel),
            "dynamic": ffn_out_nodes(nodes) if cfg.static_ffn_out == "dynamic" else []}


def check_texts(texts):
    if not texts:
        raise ConfigError("int8-static needs calibration data: pass --calibration FILE (csv/tsv/"
                          "jsonl/json/parquet/txt) or a demo split such as demo:sentiment:calibration")


def build(src, out, cfg, config, tokenizer=None, lm=False, texts=None, provenance=None, **_):
    check_texts(texts)
    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls below run in a scratch cwd
    with work_dir(out.parent) as tmp:
        ctx = context(src, tmp, cfg, config, tokenizer, texts, lm)
        quantize(ctx["pre"], out, ctx["ranges"], ctx["method"], ctx["nodes"], ctx["per_channel"], ctx["dynamic"])
        return {**settings(cfg, ctx), "calibration": provenance}
