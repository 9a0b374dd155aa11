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
