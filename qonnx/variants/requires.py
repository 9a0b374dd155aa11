"""What a variant needs to run on a provider; each check returns '' or the reason to skip.

A variant lists its checks in the registry; compare turns a reason into a skipped row."""
import importlib.util

from qonnx.envinfo import cpu
from qonnx.runners.ort import provider_problem
from qonnx.runners.torch import cuda_problem


def ort_provider(variant, provider, ctx):
    return provider_problem(provider)


def torch_device(variant, provider, ctx):
    if provider != "cuda":
        return ""
    return cuda_problem()


def bitsandbytes(variant, provider, ctx):
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install 'qonnx-compare[int4]')"
    return ""


def genai_problem() -> str:
    """'' when onnxruntime-genai can be imported, else why not."""
    if importlib.util.find_spec("onnxruntime_genai") is None:
        return "onnxruntime-genai is not installed (pip install 'qonnx-compare[genai]')"
    return ""


def genai(variant, provider, ctx):
    return genai_problem()


def cpu_bf16(variant, provider, ctx):
    if provider == "cpu" and not {"AVX512-BF16", "AMX-BF16"} & set(cpu()["flags"]):
        return "this CPU has no BF16 instructions (AVX512-BF16 or AMX); torch would emulate them"
    return ""


def calibration_data(variant, provider, ctx):
    if not (ctx.cfg.calibration or ctx.source.demo):
        return "no calibration data: pass --calibration FILE (image classifiers: a folder of images; never the eval set)"
    return ""
