"""The variant registry: every row `qonnx compare` measures is one Variant here, built from the
names in qonnx.config.choices (methods from their modules). Default matrices, skip reasons and
notes come from it.
"""
import logging
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec

from qonnx.config.choices import GENAI_ROWS, KINDS, METHODS, variant_names
from qonnx.variants import requires as req

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    name: str
    runtime: str                 # "torch", "onnx" or "genai" (onnxruntime-genai's builder and Generator)
    mode: str                    # torch mode (fp32/fp16/bf16/int8-dynamic/bnb-int4) or ONNX method
    kinds: tuple = KINDS         # task kinds it applies to
    default_for: tuple = KINDS   # task kinds whose default matrix includes it
    devices: tuple = ("cpu", "cuda")
    notes: tuple = ()            # (provider, why a number may look slow there)
    options: tuple = ()          # QuantizeConfig settings, as (name, value) pairs
    needs: tuple = ()            # requirement checks (variants.requires)

    def skip_reason(self, provider, kind, ctx) -> str:
        if kind not in self.kinds:
            return f"{self.name} applies to {' and '.join(self.kinds)} models only"
        if provider not in self.devices:
            return f"{self.name} runs on {', '.join(self.devices)} only"
        for check in self.needs:
            reason = check(self, provider, ctx)
            if reason:
                return reason
        return ""

    def note(self, provider) -> str:
        return dict(self.notes).get(provider, "")


def method_module(method):
    """The module that builds `method` (choices.METHODS: a module of qonnx.variants, else any importable one)."""
    name = METHODS[method]
    own = f"qonnx.variants.{name}"
    return import_module(own if "." not in name and find_spec(own) else name)


def _onnx(method, name=None, options=(), notes=None, default_for=None):
    """The variant of an ONNX method, described by its module (KINDS, DEFAULT_FOR, NOTES, NEEDS)."""
    m = method_module(method)
    kinds = getattr(m, "KINDS", KINDS)
    return Variant(name or f"onnx-{method}", "onnx", method, kinds=kinds,
                   default_for=default_for if default_for is not None else getattr(m, "DEFAULT_FOR", kinds),
                   notes=tuple((notes if notes is not None else getattr(m, "NOTES", {})).items()),
                   options=options, needs=(req.ort_provider,) + tuple(getattr(m, "NEEDS", ())))


_TORCH = (req.torch_device,)
TORCH_FP16_CPU = ("PyTorch runs FP16 matmuls on the CPU without native FP16 arithmetic unless the CPU has "
                  "AVX-512 FP16 or AMX: this number reflects this CPU, not FP16 on a GPU")
VARIANTS = {v.name: v for v in [
    Variant("torch-fp32", "torch", "fp32", needs=_TORCH),
    Variant("torch-fp16", "torch", "fp16", notes=(("cpu", TORCH_FP16_CPU),), needs=_TORCH),
    Variant("torch-bf16", "torch", "bf16", needs=_TORCH + (req.cpu_bf16,)),
    Variant("torch-int8-dynamic", "torch", "int8-dynamic", devices=("cpu",),
            default_for=("classification", "embeddings", "tokens", "qa", "images", "seq2seq"), needs=_TORCH),
    Variant("bnb-int4", "torch", "bnb-int4", needs=_TORCH + (req.bitsandbytes,)),
    Variant("onnx-fp32", "onnx", "fp32", needs=(req.ort_provider,)),
    *(_onnx(m) for m in METHODS),
    _onnx("int4-weight", "onnx-int4-rtn", options=(("algorithm", "rtn"),), notes={}),
    # onnxruntime-genai's model builder, each its own recipe unchanged (genai-int4, its default RTN
    # INT4, is the anchor the other LM rows are held against; int4-mixed is k_quant_mixed); genai-int8
    # is qonnx's 8-bit MatMulNBits on the builder's fp32 graph (0.11's builder has no int8); CPU only
    *(Variant(f"genai-{p}", "genai", p, kinds=("lm",), default_for=("lm",), devices=("cpu",),
              needs=(req.ort_provider, req.genai)) for p in GENAI_ROWS if p != "int4-budget"),
    # qonnx's mixed 4/8-bit build on the builder's fp32 graph, held to --max-perplexity-increase
    # [10 %]: not in the default matrix (its search takes about 3 minutes on demo:smollm2)
    Variant("genai-int4-budget", "genai", "int4-budget", kinds=("lm",), default_for=(), devices=("cpu",),
            needs=(req.ort_provider, req.genai)),
]}
DEFAULT_ORDER = list(VARIANTS)
assert DEFAULT_ORDER == variant_names(), "choices.variant_names() and the registry name the same rows"


def defaults(kind) -> list:
    return [v.name for v in VARIANTS.values() if kind in v.default_for]


def register(method: str, module: str):
    """Add a quantization method at run time (what one line in choices.METHODS does for a
    built-in one): its module builds it, its `onnx-METHOD` row is measured by compare."""
    METHODS[method] = module
    VARIANTS[f"onnx-{method}"] = _onnx(method)
    DEFAULT_ORDER.append(f"onnx-{method}")
