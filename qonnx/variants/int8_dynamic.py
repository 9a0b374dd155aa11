"""INT8 dynamic quantization: weights INT8 ahead of time, activations quantized at run time.

Two schemes, chosen by model kind unless `--int8-scheme` says otherwise:
- fused (encoders): the transformer graph is fused first (Attention, SkipLayerNorm, Gelu) and
  ONNX Runtime's quantize_dynamic turns it into QAttention / DynamicQuantizeMatMul, with one
  activation scale per tensor. The classifier head (pooler, classifier) stays FP32: it multiplies
  one row per text, so INT8 saves no measurable time there and FP32 keeps its accuracy. Weights
  per channel, 7-bit range (reduce_range) by default: the fused QKV matrix joins three
  projections of different ranges. Nodes inside If branches are quantized too (EnableSubgraph: a
  seq2seq model's merged decoder keeps every MatMul there; unfused: no fusion rules for T5/BART).
- blockwise (decoder LMs): MatMul weights INT8 in blocks of 64 (MatMulNBits, 8 bits) with
  activations quantized to INT8 per block at run time (accuracy_level 4); a tied embedding table
  reads the lm_head's INT8 blocks (GatherBlockQuantized), other embedding Gathers are INT8.
  Decoder activations carry outliers that one scale per tensor cannot hold.
How each choice was measured: docs/methods.md.
"""
from pathlib import Path

from qonnx.store import work_dir
from qonnx.variants.graph import fuse, materialize_transposed_weights, save, scratch_cwd, share_tied_embedding
from qonnx.variants.units import units

UNACCEL_CUDA = "INT8 has few CUDA kernels in ONNX Runtime; nodes fall back to the CPU (see placement)"
NOTES = {"cuda": UNACCEL_CUDA}

BLOCK = 64  # hidden sizes are multiples of 64 (576, 768, 4096): no padded blocks
RECIPE = 3  # in the variant key; 2: the fused scheme leaves the classifier head FP32; 3: it quantizes inside If
# branches (a seq2seq model's merged decoder, whose every MatMul is there: recipe 2 left that decoder FP32)


def resolve_scheme(cfg, lm):
    return cfg.int8_scheme if cfg.int8_scheme != "auto" else ("blockwise" if lm else "fused")


def head_nodes(model) -> list:
    """The classifier head's weighted nodes (pooler, classifier): left FP32 by the fused scheme."""
    return units(model, fused=True).get("head", [])


def fused(src, out, cfg, config):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per_channel = True if cfg.per_channel is None else cfg.per_channel
    model, fusion = fuse(src, config)
    head = head_nodes(model)
    with work_dir(Path(out).parent) as tmp:
        fused = Path(tmp) / "fused.onnx"
        save(model, fused)
        with scratch_cwd():  # (ORT renames a Gemm it quantizes NAME_MatMul: exclude both names)
            quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8,
                             per_channel=per_channel, reduce_range=per_channel,
                             nodes_to_exclude=head + [f"{n}_MatMul" for n in head],
                             extra_options={"DefaultTensorType": 1, "EnableSubgraph": True})
    return {"weight_type": "int8", "per_channel": per_channel, "reduce_range": per_channel,
            "fp32_nodes": head, **fusion}


def dynamic_nodes(src, dst, nodes, per_tensor=frozenset()):
    """Dynamic INT8 of `nodes`: weights per channel with reduce_range, as the variant, except the
    nodes in `per_tensor` (one weight scale, full range). Two passes of quantize_dynamic when mixed:
    each touches only the nodes it is given, by name (ORT turns a Gemm into NAME_MatMul + Add
    before quantizing it, so both names are given). Nodes inside If branches (a seq2seq model's
    merged decoder) are quantized too: quantize_dynamic enters subgraphs only when told (EnableSubgraph)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    passes = [(True, [n for n in nodes if n not in per_tensor]), (False, [n for n in nodes if n in per_tensor])]
    passes = [(pc, ns) for pc, ns in passes if ns]  # an empty list would mean every node to ORT
    with work_dir(Path(dst).parent, "dyn") as tmp:
        for i, (per_channel, ns) in enumerate(passes):
            to = dst if i == len(passes) - 1 else Path(tmp) / "stage.onnx"
            quantize_dynamic(str(src), str(to), weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=per_channel, nodes_to_quantize=ns + [f"{n}_MatMul" for n in ns],
                             extra_options={"DefaultTensorType": 1, "EnableSubgraph": True})
            src = to


def blockwise(src, out, cfg, config):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model = onnx.load(str(src))
    untied = materialize_transposed_weights(model)
    algo = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, accuracy_level=4,
                                        bits=8, op_types_to_quantize=("MatMul",))
    q = MatMulNBitsQuantizer(model, bits=8, block_size=BLOCK, is_symmetric=True, accuracy_level=4,
                             algo_config=algo, op_types_to_quantize=("MatMul",))
    with scratch_cwd():
        q.process()
    shared = share_tied_embedding(q.model.model, bits=8)
    with work_dir(Path(out).parent) as tmp:
        stage = Path(tmp) / "matmul8.onnx"
        save(q.model.model, stage)
        with scratch_cwd():
            quantize_dynamic(str(stage), str(out), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["Gather"], extra_options={"DefaultTensorType": 1})
    return {"weight_type": "int8", "block_size": BLOCK, "symmetric": True, "accuracy_level": 4,
            "matmul_op": "MatMulNBits(bits=8)", "untied_matmuls": untied,
            "gather": "shares the lm_head's INT8 blocks" if shared else "int8 per tensor",
            "shared_embeddings": shared}


def build(src, out, cfg, config, lm=False, **_):
    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls run in a scratch cwd
    scheme = resolve_scheme(cfg, lm)
    settings = (blockwise if scheme == "blockwise" else fused)(src, out, cfg, config)
    return {"scheme": scheme, **settings}
