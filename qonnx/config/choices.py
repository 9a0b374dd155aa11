"""The names a user can choose from: methods, variants, precisions, providers, tasks. A leaf:
configs check names against these lists, the registries build what the names stand for.

Adding a quantization method: one file in qonnx/variants/ (see its package docstring) and one
line in METHODS below; its `onnx-NAME` variant, CLI choice and default matrix follow.
"""

# quantization method -> its module in qonnx.variants (or a full dotted module path)
METHODS = {
    "fp16": "fp16",
    "int8-dynamic": "int8_dynamic",
    "int8-static": "int8_static",
    "int4-weight": "int4_weight",
    "int8-qdq-qnn": "int8_qdq_qnn",
}

KINDS = ("classification", "lm", "embeddings", "tokens", "qa", "images", "seq2seq")  # task kinds (qonnx.tasks)
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
TORCH_MODES = ("fp32", "fp16", "bf16", "int8-dynamic")
# onnxruntime-genai rows: the builder's recipes (fp32, int4, int4-mixed) and qonnx's builds on its
# fp32 graph (int8, int4-budget); qonnx.genai says which is which
GENAI_PRECISIONS = ("fp32", "int4", "int4-mixed", "int8", "int4-budget")
GENAI_ROWS = ("fp32", "int8", "int4", "int4-mixed", "int4-budget")   # the order of the genai-* rows
REFERENCES = ("torch-fp32", "onnx-fp32")  # the row quality changes and budgets are judged against, first found

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INT4_ALGORITHMS = ("rtn", "hqq")
INT8_SCHEMES = ("auto", "fused", "blockwise")
QNN_ACTIVATIONS = ("uint16", "uint8")                        # int8-qdq-qnn: the HTP's activation types
EXPORTERS = ("optimum", "genai")
EXECUTORS = ("local", "ray")
ACCURACY_BUDGET_METHODS = ("int8-static", "int8-dynamic")     # --max-accuracy-drop (classifiers)
PERPLEXITY_BUDGET_METHODS = ("int4-weight",)                  # --max-perplexity-increase (LMs)
SENSITIVITY_METHODS = ("int8-dynamic", "int8-static", "int4-weight")
SENSITIVITY_VIEWS = ("only", "all-but")
EDGE_TARGETS = ("wasm", "ort-mobile", "nnapi", "coreml", "qnn")   # qonnx.edge: validate --target, compare --targets


def variant_names(methods=None) -> list:
    """Every row name compare can measure, in report order (qonnx.variants builds one Variant each)."""
    methods = METHODS if methods is None else methods
    return [*(f"torch-{m}" for m in TORCH_MODES), "bnb-int4", "onnx-fp32", *(f"onnx-{m}" for m in methods),
            "onnx-int4-rtn", *(f"genai-{p}" for p in GENAI_ROWS)]
