"""INT8 dynamic quantization (weights INT8 ahead of time, activations scaled at run time).

The transformer graph is fused first (Attention, SkipLayerNorm, Gelu), which ONNX Runtime then
quantizes as whole ops (QAttention, DynamicQuantizeMatMul): faster than quantizing the unfused
MatMuls. Per-channel is off by default: with fused Attention it costs accuracy-neutral speed here.
"""
import tempfile
from pathlib import Path

from .graph import fuse, save


def build(src, out, cfg, config):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model, fusion = fuse(src, config)
    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "fused.onnx"
        save(model, fused)
        quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8,
                         per_channel=cfg.per_channel, reduce_range=False,
                         extra_options={"DefaultTensorType": 1})
    return {"weight_type": "int8", "per_channel": cfg.per_channel, "reduce_range": False, **fusion}
