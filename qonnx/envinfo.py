"""What this machine offers: CPU model and flags, execution providers, GPU, library versions."""
import platform
from importlib import metadata

LIBRARIES = ["qonnx", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime",
             "onnxruntime-gpu", "onnxruntime-genai", "bitsandbytes", "datasets", "numpy"]
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI",
         "avx512vnni": "AVX512-VNNI", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16",
         "amx_int8": "AMX-INT8", "avx_vnni": "AVX-VNNI"}


def versions():
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def cpu():
    import os

    import cpuinfo

    info = cpuinfo.get_cpu_info()
    flags = set(info.get("flags", []))
    return {"model": info.get("brand_raw", platform.processor()), "arch": platform.machine(),
            "cores": os.cpu_count(),
            "flags": sorted({name for f, name in FLAGS.items() if f in flags})}


def gpu():
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            return {"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                    "capability": f"{p.major}.{p.minor}"}
    except Exception:  # a broken CUDA install is reported as no GPU, with the reason
        import traceback

        return {"error": traceback.format_exc(limit=1).strip().splitlines()[-1]}
    return None


def ort_install_problem() -> str:
    """'' unless both onnxruntime and onnxruntime-gpu are installed: they share the import name
    `onnxruntime`, and whichever was installed last wins, so the CPU package can hide CUDA."""
    installed = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(dist)
            installed.append(dist)
        except metadata.PackageNotFoundError:
            pass
    if len(installed) < 2:
        return ""
    return ("both onnxruntime and onnxruntime-gpu are installed; the CPU package can shadow the GPU one: "
            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu (or: make setup GPU=1)")


def collect():
    import onnxruntime as ort
    import psutil

    return {"platform": platform.platform(), "cpu": cpu(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "gpu": gpu(),
            "onnxruntime_providers": ort.get_available_providers(),
            "onnxruntime_install_problem": ort_install_problem(), "versions": versions()}


WARNING = "Warning    "  # the line that starts so is a warning (the CLI shows it in yellow)


def cpu_line(c) -> str:
    """cpu()'s record in the one line the benchmarks print first: a speed figure means nothing without it."""
    return f"CPU: {c.get('model')} ({c.get('cores')} cores; {', '.join(c.get('flags') or []) or 'no flags of note'})"


def describe(info) -> list:
    """collect()'s record as the lines `qonnx env` prints, one per subject."""
    cpu, gpu = info["cpu"], info["gpu"]
    if gpu and "name" in gpu:
        shown = f"{gpu['name']} {gpu['memory_gb']} GiB"
    else:
        shown = (gpu or {}).get("error", "none (torch sees no CUDA device)")
    lines = [f"CPU        {cpu['model']} ({cpu['arch']}, {cpu['cores']} cores)",
             f"CPU flags  {', '.join(cpu['flags']) or 'none of note'}",
             f"Memory     {info['memory_gb']} GiB",
             f"GPU        {shown}",
             f"ORT EPs    {', '.join(info['onnxruntime_providers'])}"]
    if info["onnxruntime_install_problem"]:
        lines.append(f"{WARNING}{info['onnxruntime_install_problem']}")
    return lines + ["Versions   " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())]
