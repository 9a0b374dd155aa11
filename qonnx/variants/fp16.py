"""FP16 weights and activations, float32 inputs and outputs kept.

Uses ONNX Runtime's transformer-aware converter on the fused graph: it blocks ops that must stay
float32 and rewrites Cast-to-float nodes, which the naive converter leaves feeding FP16 ops (that
breaks BERT graphs at load time).
"""
from pathlib import Path

from qonnx.variants.graph import fuse, save, scratch_cwd

UNACCEL_CPU = ("FP16 arithmetic is not accelerated on this CPU provider: most ops run through casts, "
               "so this number reflects the graph, not FP16 speed")
NOTES = {"cpu": UNACCEL_CPU}


def build(src, out, cfg, config, **_):
    from onnxruntime.transformers.onnx_model import OnnxModel

    out = Path(out).resolve()
    model, fusion = fuse(src, config)
    wrapped = OnnxModel(model)
    with scratch_cwd():  # symbolic shape inference writes sym_shape_infer_temp.onnx and .data files here
        wrapped.convert_float_to_float16(keep_io_types=True, use_symbolic_shape_infer=True)
    save(wrapped.model, out)
    return {"keep_io_types": True, **fusion}
