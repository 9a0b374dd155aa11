"""Variants: one module per quantization method, the registry of rows, the build that keys,
stores and checks them, and the budget searches beside them (search/).

Adding an ONNX method: a module here with `build(src, out, cfg, config, **kw) -> settings` and,
where they differ from the defaults, KINDS, DEFAULT_FOR, NOTES, NEEDS, NEEDS_CALIBRATION and
RECIPE; then one line in qonnx.config.choices.METHODS. Its `onnx-NAME` row, its CLI choice and its
place in the default matrix follow from the module.
"""
from qonnx.variants.build import quantize
from qonnx.variants.registry import DEFAULT_ORDER, METHODS, VARIANTS, Variant, defaults, method_module, register

__all__ = ["quantize", "DEFAULT_ORDER", "METHODS", "VARIANTS", "Variant", "defaults", "method_module", "register"]
