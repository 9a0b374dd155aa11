"""The qnn target (Qualcomm NPUs through ONNX Runtime's QNN execution provider, HTP backend),
checked statically: no Snapdragon here. What the HTP path of ORT takes: a QDQ graph (static
quantization, Q/DQ pairs around float ops) with uint8/uint16 activations and symmetric signed
(or unsigned) weights, fixed shapes, and ops the QNN EP builds; the partition estimate and its
verdict follow ORT's usability-checker rule, as for nnapi and coreml."""
import numpy as np

from qonnx.edge import partition
from qonnx.edge.result import TargetResult

# the op types ONNX Runtime's QNN EP registers builders for (onnxruntime/core/providers/qnn/
# builder/op_builder_factory.cc, main branch, 2026); the EP may still reject a node for its types,
# ranks or attributes, which this static check does not see
QNN_OPS = frozenset("""
Abs Add And ArgMax ArgMin Asin Atan AveragePool BatchNormalization Cast Ceil Clip Concat Conv ConvTranspose Cos
CumSum DepthToSpace DequantizeLinear Div Einsum Elu Equal Exp Expand Flatten Floor Gather GatherElements GatherND
Gelu Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual GridSample HardSigmoid HardSwish
InstanceNormalization Inverse LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization LRN LSTM
MatMul Max MaxPool Mean Min Mod Mul Neg Not Or Pad Pow PRelu QuantizeLinear RandomUniformLike Reciprocal
ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum Relu Reshape Resize RMSNormalization Round
ScatterElements ScatterND Sigmoid Sign Sin Slice Softmax SpaceToDepth Split Sqrt Squeeze STFT Sub Sum Tanh
ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample Where
""".split())
CONTRIB = frozenset({"FusedMatMul", "Gelu", "QuantizeLinear", "DequantizeLinear"})  # com.microsoft ones
DYNAMIC_QUANT = frozenset({"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul",
                           "MatMulIntegerToFloat", "QAttention", "QEmbedLayerNormalization", "MatMulNBits"})
ACTIVATIONS = ("uint8", "uint16")
QDQ_HINT = ("as ONNX Runtime's QNN helpers build them: `qonnx quantize DIR -m int8-qdq-qnn` "
            "(onnxruntime.quantization.execution_providers.qnn)")


class Checker:
    """usability_checker's supported-ops interface over QNN_OPS."""

    def is_op_supported(self, node):
        if node.domain in ("", "ai.onnx"):
            return node.op_type in QNN_OPS and node.op_type != "FusedMatMul"
        return node.domain == "com.microsoft" and node.op_type in CONTRIB

    def get_caveats(self):
        return []


def qdq_types(model) -> dict:
    """Activation types (QuantizeLinear zero points), weight types (DequantizeLinear of an
    initializer) and the weights whose signed zero point is not 0."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    acts, weights, asym = {}, {}, []

    def zp_dtype(node):
        if len(node.input) > 2 and node.input[2] in inits:
            return helper.tensor_dtype_to_np_dtype(inits[node.input[2]].data_type).name
        return "uint8"  # ONNX's default without a zero point

    for n in model.graph.node:
        if n.op_type == "QuantizeLinear":
            t = zp_dtype(n)
            acts[t] = acts.get(t, 0) + 1
        elif n.op_type == "DequantizeLinear" and n.input[0] in inits:
            t = helper.tensor_dtype_to_np_dtype(inits[n.input[0]].data_type).name
            if t == "int32":  # biases
                continue
            weights[t] = weights.get(t, 0) + 1
            if t.startswith("int") and len(n.input) > 2 and n.input[2] in inits:
                if np.any(numpy_helper.to_array(inits[n.input[2]]) != 0):
                    asym.append(n.input[0])
    return {"activations": acts, "weights": weights, "asymmetric_signed_weights": asym}


def check(art, model, note) -> TargetResult:
    r = TargetResult("qnn", executed=False)
    r.note(f"Checked statically (no Snapdragon here): QDQ types, fixed shapes and the ops ORT's QNN EP builds, on "
           f"{note}; the EP may still reject a node for its types or attributes.")
    r.note(partition.RULE)
    types = qdq_types(model)
    r.figures["qdq_types"] = types
    dynamic = sorted({n.op_type for n in model.graph.node if n.op_type in DYNAMIC_QUANT})
    if dynamic:
        r.fail(f"dynamic or integer-kernel quantization ({', '.join(dynamic)}): QNN's HTP takes static QDQ graphs "
               f"of standard ops, {QDQ_HINT}.")
    if not dynamic and not types["activations"] and not types["weights"]:
        r.fail(f"not a QDQ graph (no QuantizeLinear/DequantizeLinear): QNN's HTP runs quantized QDQ graphs, {QDQ_HINT}.")
    wrong = sorted(t for t in types["activations"] if t not in ACTIVATIONS)
    if wrong:
        r.fail(f"activations quantized to {', '.join(wrong)}; QNN's HTP takes {' or '.join(ACTIVATIONS)} activations.")
    if types["asymmetric_signed_weights"]:
        r.fail(f"{len(types['asymmetric_signed_weights'])} signed weight(s) with a non-zero zero point (e.g. "
               f"{types['asymmetric_signed_weights'][0]}); QNN's HTP takes symmetric signed weights.")
    if art.dynamic_inputs:
        r.fail(f"dynamic input shapes ({art.dynamic_summary()}): QNN's HTP compiles fixed shapes; use "
               f"{partition.fix_hint(art)}.")
    info = partition.analyze(model, Checker(), True)
    fixed = partition.analyze(model, Checker(), False) if art.dynamic_inputs else None
    partition.judge(r, model, info, "QNN", art, fixed)
    return r
