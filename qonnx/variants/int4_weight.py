"""INT4 weight-only quantization: MatMul weights to 4-bit blocks (ONNX Runtime MatMulNBits).

Algorithms: rtn (round to nearest, symmetric blocks) and hqq (half-quadratic, no calibration).
accuracy_level 4 lets the CPU kernel compute with int8 activations, the fast path on x86.
GPTQ in ONNX Runtime goes through Intel Neural Compressor, which qonnx does not install.
"""
from .graph import save

ACCURACY_LEVEL = 4


def build(src, out, cfg, config):
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 HQQWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer)

    if cfg.algorithm == "hqq":
        algo = HQQWeightOnlyQuantConfig(block_size=cfg.block_size, bits=4)
    else:
        algo = DefaultWeightOnlyQuantConfig(block_size=cfg.block_size, is_symmetric=True,
                                            accuracy_level=ACCURACY_LEVEL)
    q = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=cfg.block_size, is_symmetric=True,
                             accuracy_level=ACCURACY_LEVEL, algo_config=algo)
    q.process()
    save(q.model.model, out)
    return {"bits": 4, "block_size": cfg.block_size, "algorithm": cfg.algorithm,
            "symmetric": True, "accuracy_level": ACCURACY_LEVEL, "op": "MatMulNBits"}
