"""A new quantization method as a user would add one: this file and one registration line
(qonnx.config.choices.METHODS, or variants.register at run time). It rounds every float weight to
bfloat16 precision and stores it back as float32: a real, measurable loss of precision."""
import numpy as np

from qonnx.variants.graph import save

KINDS = ("classification",)
DEFAULT_FOR = ()
NOTES = {"cpu": "toy: weights rounded to bfloat16 precision"}


def build(src, out, cfg, config, **_):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rounded = 0
    for i, init in enumerate(model.graph.initializer):
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.size > 1:
            bits = w.view(np.uint32) & np.uint32(0xFFFF0000)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(bits.view(np.float32), init.name))
            rounded += 1
    save(model, out)
    return {"rounded_initializers": rounded}
