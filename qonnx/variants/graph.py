"""Graph helpers shared by the ONNX variant builders: transformer fusion, saving, sizes."""
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Hugging Face model_type -> ONNX Runtime transformer optimizer model type (python fusions only,
# so the graph stays portable between the CPU and CUDA providers)
FUSABLE = {"bert": "bert", "roberta": "bert", "distilbert": "bert", "xlm-roberta": "bert",
           "electra": "bert", "camembert": "bert", "mpnet": "bert"}


def fuse(src: Path, config: dict):
    """Return (onnx ModelProto, fusion record). Falls back to the unfused graph, and says so."""
    import onnx

    mtype = config.get("model_type", "")
    if mtype not in FUSABLE:
        return onnx.load(str(src)), {"fused": False, "reason": f"no fusion rules for model_type '{mtype}'"}
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(src), model_type=FUSABLE[mtype],
                         num_heads=config.get("num_attention_heads", 0),
                         hidden_size=config.get("hidden_size", 0), opt_level=0)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if not any(o.domain == "com.microsoft" for o in opt.model.opset_import):
        opt.model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return opt.model, {"fused": True, "optimizer_model_type": FUSABLE[mtype], "fused_ops": stats}


def save(model, path: Path):
    """Save a ModelProto; weights over 2 GB go to an external data file beside it."""
    import onnx

    big = model.ByteSize() > 2**31 - 2**20
    onnx.save_model(model, str(path), save_as_external_data=big,
                    location=path.name + ".data" if big else None)


def onnx_size_mb(folder: Path) -> float:
    """Size of the model itself: the .onnx file(s) and external weight data, not tokenizer files."""
    return sum(p.stat().st_size for p in Path(folder).iterdir()
               if p.suffix in (".onnx", ".data") or p.name.endswith(".onnx_data")) / 2**20


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
