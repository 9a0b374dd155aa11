"""Memory of this process (each variant runs in its own worker, so this is the variant's).

On Linux the peak is VmHWM from /proc/self/status: the high-water mark of this process image
alone. (ru_maxrss would not do: it carries the parent's peak across fork and exec.) Writing 5 to
/proc/self/clear_refs resets VmHWM, which separates the load peak from the inference peak.
Between the two, `release_freed` hands memory freed during loading (an FP32 model quantized on
load, a file read whole) back to the OS, so the steady state is what the model holds.
"""
import ctypes
import gc
import os
import resource
import sys
from pathlib import Path

STATUS, CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """High-water mark of resident memory (since start or the last reset_peak)."""
    if STATUS.is_file():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def release_freed() -> bool:
    """Collect garbage and return freed heap pages to the OS (glibc's malloc_trim); False where
    the C library has no malloc_trim (the steady-state figure may then carry freed load memory)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS; False where the OS cannot."""
    try:
        CLEAR.write_text("5")
        return True
    except OSError:
        return False


def device_mb():
    """GPU memory this process holds (NVML: the CUDA context, the runtime's allocator and arena),
    the same count for torch and ONNX Runtime rows; None without NVML (nvidia-ml-py) or a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no GPU
        return None
    try:
        pid, used = os.getpid(), 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            used += sum(p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                        if p.pid == pid)
        return used / 2**20 if used else None
    except Exception:  # a driver that does not report per-process memory (some containers)
        return None
    finally:
        pynvml.nvmlShutdown()


def cuda_peak_mb():
    """torch's peak CUDA allocation, for torch rows only (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return None
