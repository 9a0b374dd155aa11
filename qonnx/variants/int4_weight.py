"""INT4 weight-only quantization: MatMul weights to 4-bit blocks (ONNX Runtime MatMulNBits).

Algorithms: rtn (round to nearest, symmetric blocks; embedding Gathers too, as
GatherBlockQuantized) and hqq (half-quadratic, no calibration; MatMul only).
accuracy_level 4 lets the CPU kernel compute with int8 activations, the fast path on x86.
GPTQ in ONNX Runtime goes through Intel Neural Compressor, which qonnx does not install.
"""
from .graph import materialize_transposed_weights, save

ACCURACY_LEVEL = 4


def build(src, out, cfg, config):
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 HQQWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer)

    ops = ("MatMul",) if cfg.algorithm == "hqq" else ("MatMul", "Gather")
    if cfg.algorithm == "hqq":
        algo = HQQWeightOnlyQuantConfig(block_size=cfg.block_size, bits=4, op_types_to_quantize=ops)
    else:
        algo = DefaultWeightOnlyQuantConfig(block_size=cfg.block_size, is_symmetric=True,
                                            accuracy_level=ACCURACY_LEVEL, op_types_to_quantize=ops)
    model = onnx.load(str(src))
    untied = materialize_transposed_weights(model)
    q = MatMulNBitsQuantizer(model, block_size=cfg.block_size, is_symmetric=True,
                             accuracy_level=ACCURACY_LEVEL, algo_config=algo, op_types_to_quantize=ops)
    q.process()
    save(q.model.model, out)
    return {"bits": 4, "block_size": cfg.block_size, "algorithm": cfg.algorithm, "symmetric": True,
            "accuracy_level": ACCURACY_LEVEL, "op_types": list(ops), "untied_matmuls": untied}
