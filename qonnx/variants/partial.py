"""Partial builds: a graph with exactly a given set of nodes quantized by a method's own recipe,
the rest left FP32. The budget searches (search/) and the sensitivity analysis build with it."""
import shutil

from qonnx.store import scratch_cwd
from qonnx.variants.int8_dynamic import dynamic_nodes
from qonnx.variants.int8_static import quantize


def quantize_nodes(method, src, dst, nodes, all_nodes, lm, ctx):
    """Write dst: src with exactly `nodes` quantized by `method`."""
    nodes = list(nodes)
    if not nodes:  # ORT reads an empty nodes_to_quantize as "all nodes": nothing to quantize here
        shutil.copyfile(src, dst)
        return
    with scratch_cwd():
        if method == "int8-dynamic" and not lm:  # as the variant, with per-tensor weights where ctx says
            dynamic_nodes(src, dst, nodes, set(ctx.get("per_tensor", ())))
        elif method == "int8-static":  # the variant's recipe, with the ranges calibrated once
            quantize(src, dst, ctx["ranges"], ctx["method"], nodes, ctx["per_channel"], ctx["dynamic"])
        else:  # MatMulNBits: int4-weight (rtn), or the LM int8 blockwise scheme
            import onnx
            from onnxruntime.quantization.matmul_nbits_quantizer import (
                DefaultWeightOnlyQuantConfig,
                MatMulNBitsQuantizer,
            )

            bits = 4 if method == "int4-weight" else 8
            algo = DefaultWeightOnlyQuantConfig(block_size=ctx["block_size"], is_symmetric=True, accuracy_level=4,
                                                bits=bits, op_types_to_quantize=("MatMul",))
            q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits, block_size=ctx["block_size"], is_symmetric=True,
                                     accuracy_level=4, algo_config=algo, op_types_to_quantize=("MatMul",),
                                     nodes_to_exclude=[n for n in all_nodes if n not in set(nodes)])
            q.process()
            onnx.save(q.model.model, str(dst))
