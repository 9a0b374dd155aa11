"""Graph helpers shared by the ONNX variant builders: transformer fusion, saving, sizes."""
import logging
from pathlib import Path

# ONNX Runtime's graph tools (symbolic shape inference, the fp16 converter, the quantizers) can
# leave sym_shape_infer_temp.onnx or uuid-named .data files in the current directory: every call
# to one runs inside scratch_cwd(), with absolute paths. One implementation, shared with export.
from qonnx.store import scratch_cwd
from qonnx.variants.units import role

log = logging.getLogger(__name__)

# Hugging Face model_type -> ONNX Runtime transformer optimizer model type (python fusions only,
# so the graph stays portable between the CPU and CUDA providers)
FUSABLE = {"bert": "bert", "roberta": "bert", "distilbert": "bert", "xlm-roberta": "bert",
           "electra": "bert", "camembert": "bert", "mpnet": "bert"}


def fuse(src: Path, config: dict, embeddings=True):
    """Return (onnx ModelProto, fusion record). Falls back to the unfused graph, and says so.

    embeddings=False leaves the embedding Gathers unfused (no EmbedLayerNormalization), so a
    static quantizer can store their tables in INT8: they are most of a small encoder's bytes."""
    import onnx

    mtype = config.get("model_type", "")
    if mtype not in FUSABLE:
        return onnx.load(str(src)), {"fused": False, "reason": f"no fusion rules for model_type '{mtype}'"}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(FUSABLE[mtype])
    options.enable_embed_layer_norm = embeddings
    src = Path(src).resolve()
    with scratch_cwd():
        opt = optimize_model(str(src), model_type=FUSABLE[mtype],
                             num_heads=config.get("num_attention_heads", 0),
                             hidden_size=config.get("hidden_size", 0), opt_level=0,
                             optimization_options=options)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if not any(o.domain == "com.microsoft" for o in opt.model.opset_import):
        opt.model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return opt.model, {"fused": True, "optimizer_model_type": FUSABLE[mtype], "fused_ops": stats}


def type_fused_outputs(model):
    """Declare the float type of each fused (com.microsoft) node's main output.

    ONNX's shape inference does not know these ops, so their outputs carry no type; ONNX Runtime's
    calibrator then skips them and the MatMuls they feed would get no activation scale. The first
    output of Attention, SkipLayerNormalization, BiasGelu, FastGelu ... is the float activation."""
    import onnx

    known = {v.name for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    for node in model.graph.node:
        if node.domain == "com.microsoft" and node.output and node.output[0] not in known:
            model.graph.value_info.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))


def name_fused_nodes(model):
    """Name fused Attention and EmbedLayerNormalization nodes by layer and role (the optimizer calls
    them Attention_0 ...), so variants.units places them: an Attention takes the layer of the node
    that reads its output (that layer's attention output projection)."""
    readers = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    for n in model.graph.node:
        if n.op_type == "EmbedLayerNormalization":
            n.name = f"/embeddings/{n.name}"
        elif n.op_type == "Attention":
            layers = [role(r.name)[0] for r in readers.get(n.output[0], [])]
            layer = next((x for x in layers if x is not None), None)
            if layer is not None:
                n.name = f"/layer.{layer}/attention/qkv/{n.name}"


def copy_without(model, initializers):
    """A copy of model without the initializers named (float weights about to be replaced: copying
    them is most of the time a build takes)."""
    import onnx

    m = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(m, field, getattr(model, field))
    m.opset_import.extend(model.opset_import)
    m.metadata_props.extend(model.metadata_props)
    m.functions.extend(model.functions)
    g, out = model.graph, m.graph
    out.name = g.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(out, field).extend(getattr(g, field))
    out.initializer.extend(t for t in g.initializer if t.name not in initializers)
    return m


def save(model, path, external=None, prune=False) -> Path:
    """Save a ModelProto; its weights go to PATH.data beside it when `external` (default: only when
    they pass 2 GB, protobuf's limit). prune drops initializers that no node reads."""
    import onnx

    if prune:
        used = {i for n in model.graph.node for i in n.input}
        keep = [i for i in model.graph.initializer if i.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
    path = Path(path).resolve()
    big = model.ByteSize() > 2**31 - 2**20 if external is None else external
    Path(str(path) + ".data").unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=big, location=path.name + ".data" if big else None)
    return path


def onnx_size_mb(folder: Path) -> float:
    """Size of the model itself: the .onnx file(s) and external weight data, not tokenizer files."""
    files = [p for p in Path(folder).iterdir() if p.suffix in (".onnx", ".data") or p.name.endswith(".onnx_data")]
    if (Path(folder) / "decoder_model_merged.onnx").is_file():  # seq2seq: the runtime loads the merged decoder only
        files = [p for p in files if p.name not in ("decoder_model.onnx", "decoder_with_past_model.onnx")]
    return sum(p.stat().st_size for p in files) / 2**20


def materialize_transposed_weights(model):
    """Give each MatMul whose weight is Transpose(initializer) a transposed initializer of its own.

    Tied embeddings export as lm_head = MatMul(x, Transpose(embed_tokens)); quantizers skip a MatMul
    whose B is not a constant, which would leave the largest matrix of a small LM in FP32.
    Returns the number of MatMuls rewired.
    """
    import numpy as np
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    rewired = 0
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2:
            continue
        t = producers.get(node.input[1])
        if t is None or t.op_type != "Transpose" or t.input[0] not in inits:
            continue
        perm = next((list(a.ints) for a in t.attribute if a.name == "perm"), None)
        weight = numpy_helper.to_array(inits[t.input[0]])
        if weight.ndim != 2 or perm not in (None, [1, 0]):
            continue
        name = f"{t.input[0]}.transposed"
        if name not in inits:
            inits[name] = numpy_helper.from_array(np.ascontiguousarray(weight.T), name)
            model.graph.initializer.append(inits[name])
        node.input[1] = name
        rewired += 1
    if rewired:  # drop Transpose nodes nobody reads any more
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if n.op_type == "Transpose" and n.output[0] not in used]
        for n in dead:
            model.graph.node.remove(n)
    return rewired


def share_tied_embedding(model, bits):
    """Point the embedding Gather at the quantized lm_head blob instead of an FP32 table.

    After materialize_transposed_weights and MatMulNBits (or in the genai builder's graph, where the
    lookup reads Transpose(lm_head weight)), a tied embedding is stored twice: the
    FP32 table for the lookup and a quantized copy for the output projection. MatMulNBits keeps
    B = W^T as blocks along the hidden axis per vocabulary row, which is the layout
    GatherBlockQuantized reads, so the lookup can use the same bytes. Returns the tables shared.
    """
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    shared = 0
    for node in [n for n in model.graph.node if n.op_type == "Gather"]:
        table, t = lookup_table(node, inits, producers)
        if table is None:
            continue
        # optimum: Gather(table), lm_head = MatMul(table.transposed); the genai builder: lm_head =
        # MatMul(W), Gather(Transpose(W))
        blob_name = f"{table}_Q{bits}" if t is not None else f"{table}.transposed_Q{bits}"
        mm = next((n for n in model.graph.node if n.op_type == "MatMulNBits" and n.input[1] == blob_name), None)
        if mm is None or len(mm.input) > 3 and mm.input[3]:
            continue  # not tied, or asymmetric (zero points): leave it alone
        attrs = {a.name: a.i for a in mm.attribute}
        gather_from_blocks(model, node, mm.input[1], mm.input[2], attrs["N"], attrs["K"], attrs["block_size"], bits,
                           table, t, inits)
        shared += 1
    return shared


def lookup_table(node, inits, producers) -> tuple:
    """(table initializer's name, the Transpose that feeds it to the Gather or None) of an embedding
    Gather over an initializer (optimum) or over Transpose(initializer) (onnxruntime-genai's tied
    head); (None, None) for any other Gather."""
    if node.input[0] in inits:
        return node.input[0], None
    t = producers.get(node.input[0])
    if t is not None and t.op_type == "Transpose" and t.input[0] in inits:
        return t.input[0], t
    return None, None


def gather_from_blocks(model, node, blob, scales, N, K, block, bits, table, transpose=None, inits=None):
    """Replace the embedding Gather `node` by GatherBlockQuantized over MatMulNBits-layout blocks
    (blob [N, K / block, block * bits / 8], scales [N, K / block]: the table's N rows in blocks of
    its K columns, symmetric), dropping the FP32 table (and the Transpose that fed it) when nothing
    else reads it."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = inits if inits is not None else {i.name: i for i in model.graph.initializer}
    shape = numpy_helper.from_array(np.array([N, -1], dtype=np.int64), f"{table}.shared_shape")
    model.graph.initializer.append(shape)
    flat_blob, flat_scales = f"{blob}.as_table", f"{scales}.as_table"
    pad = -K % block  # padded blocks: rows wider than the table, cut by a Slice
    rows = f"{node.output[0]}.padded" if pad else node.output[0]
    gbq = [helper.make_node(
        "GatherBlockQuantized", [flat_blob, node.input[1], flat_scales], [rows],
        name=f"{node.name}_shared", domain="com.microsoft", gather_axis=0, quantize_axis=1,
        block_size=block, bits=bits)]
    if pad:
        cut = [numpy_helper.from_array(np.array(v, dtype=np.int64), f"{table}.shared_{k}")
               for k, v in (("starts", [0]), ("ends", [K]), ("axes", [-1]))]
        model.graph.initializer.extend(cut)
        gbq.append(helper.make_node("Slice", [rows] + [c.name for c in cut], list(node.output)))
    idx = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    for i, n in enumerate([helper.make_node("Reshape", [blob, shape.name], [flat_blob]),
                           helper.make_node("Reshape", [scales, shape.name], [flat_scales]), *gbq]):
        model.graph.node.insert(idx + i, n)
    if transpose is not None and all(transpose.output[0] not in n.input for n in model.graph.node):
        model.graph.node.remove(transpose)
    if table in inits and all(table not in n.input for n in model.graph.node):
        model.graph.initializer.remove(inits[table])


def weighted_matmul_nodes(model):
    """MatMul nodes with a 2-D initializer weight, and {initializer name: TensorProto} (no copies)."""
    inits = {i.name: i for i in model.graph.initializer}
    return [n for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2], inits


def weighted_matmuls(model):
    """MatMul nodes with a 2-D initializer weight, and {name: weight}."""
    from onnx import numpy_helper

    out, inits = weighted_matmul_nodes(model)
    return out, {n.name: numpy_helper.to_array(inits[n.input[1]]) for n in out}
