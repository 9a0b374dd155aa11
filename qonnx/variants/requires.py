"""What a variant needs to run on a provider; each check returns '' or the reason to skip.

A variant lists its checks in the registry; compare turns a reason into a skipped row."""
import importlib.util


def ort_provider(variant, provider, ctx):
    from ..runners.ort import provider_problem

    return provider_problem(provider)


def torch_device(variant, provider, ctx):
    if provider != "cuda":
        return ""
    from ..runners.torch import cuda_problem

    return cuda_problem()


def bitsandbytes(variant, provider, ctx):
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install 'qonnx[int4]')"
    return ""


def genai(variant, provider, ctx):
    from ..genai import missing

    return missing()


def cpu_bf16(variant, provider, ctx):
    from ..envinfo import cpu

    if provider == "cpu" and not {"AVX512-BF16", "AMX-BF16"} & set(cpu()["flags"]):
        return "this CPU has no BF16 instructions (AVX512-BF16 or AMX); torch would emulate them"
    return ""


def calibration_data(variant, provider, ctx):
    if not (ctx.cfg.calibration or ctx.source.demo):
        return "no calibration data: pass --calibration FILE (never the eval set)"
    return ""
