"""qonnx: export Hugging Face models to ONNX, quantize them, and compare the variants honestly.

Heavy libraries (torch, transformers, onnxruntime) are imported lazily inside functions so that
`qonnx --help` stays fast and works on machines without a GPU or bitsandbytes.
"""

__version__ = "0.1.0"
