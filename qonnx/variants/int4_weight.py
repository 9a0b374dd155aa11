"""INT4 weight-only quantization: MatMul weights to 4-bit blocks (ONNX Runtime MatMulNBits).

MatMul weights by the chosen algorithm: hqq (half-quadratic, float zero points, no calibration;
the default: on demo:smollm2 it kept perplexity within 10 % where rtn raised it by 34 %) or rtn
(round to nearest, symmetric). Embedding Gathers by rtn (GatherBlockQuantized), since ONNX
Runtime's HQQ does not quantize Gather; a tied embedding shares the lm_head's 4-bit blocks.
accuracy_level 4 lets the CPU kernel compute with int8 activations, the fast path on x86.
GPTQ in ONNX Runtime goes through Intel Neural Compressor, which qonnx does not install.
"""
from pathlib import Path

from qonnx.variants.graph import materialize_transposed_weights, save, scratch_cwd, share_tied_embedding

DEFAULT_FOR = ("lm",)
NOTES = {"cpu": "HQQ keeps float zero points, for which ONNX Runtime's CPU MatMulNBits has no fast kernel: "
                "accurate but slow here; onnx-int4-rtn is the fast one"}

ACCURACY_LEVEL = 4


RECIPE = 4  # in the variant key (the LM budget search's too): a recipe change never reuses an older build


def build(src, out, cfg, config, **_):
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    def rtn(ops):
        return DefaultWeightOnlyQuantConfig(block_size=cfg.block_size, is_symmetric=True,
                                            accuracy_level=ACCURACY_LEVEL, op_types_to_quantize=ops)

    def run(model, algo, **nodes):
        q = MatMulNBitsQuantizer(model, block_size=cfg.block_size, is_symmetric=True,
                                 accuracy_level=ACCURACY_LEVEL, algo_config=algo,
                                 op_types_to_quantize=algo.op_types_to_quantize, **nodes)
        with scratch_cwd():
            q.process()
        return q.model.model

    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls run in a scratch cwd
    model = onnx.load(str(src))
    gemm = fp32_gemms(model)
    untied = materialize_transposed_weights(model)
    # a tied output projection (lm_head = embedding^T) is quantized by rtn, symmetric, so that the
    # embedding lookup can read the same 4-bit blocks instead of keeping its own copy
    head = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1].endswith(".transposed")]
    if cfg.algorithm == "hqq":
        model = run(model, HQQWeightOnlyQuantConfig(block_size=cfg.block_size, bits=4,
                                                    op_types_to_quantize=("MatMul",)), nodes_to_exclude=head)
        if head:
            model = run(model, rtn(("MatMul",)), nodes_to_include=head)
    else:
        model = run(model, rtn(("MatMul",)))
    shared = share_tied_embedding(model, bits=4)
    model = run(model, rtn(("Gather",)))  # embedding tables not shared with an output projection
    save(model, out)
    return {"bits": 4, "block_size": cfg.block_size, "algorithm": cfg.algorithm,
            "tied_head_and_gather_algorithm": "rtn", "accuracy_level": ACCURACY_LEVEL,
            "op_types": ["MatMul", "Gather"], "untied_matmuls": untied, "shared_embeddings": shared,
            "gemm_left_fp32": gemm}


def fp32_gemms(model) -> int:
    """How many weighted Gemm nodes (GPT-2's Conv1D exports as Gemm) stay FP32: MatMulNBits
    replaces MatMul only. Said in the log and recorded, never silent."""
    import logging

    inits = {i.name for i in model.graph.initializer}
    n = sum(1 for g in model.graph.node if g.op_type == "Gemm" and len(g.input) > 1 and g.input[1] in inits)
    if n:
        logging.getLogger(__name__).warning("%d Gemm node(s) with weights (e.g. GPT-2's Conv1D) stay FP32: "
                                            "MatMulNBits replaces MatMul only", n)
    return n
