"""One (variant, provider) measured in a fresh process: `python -m qonnx.run.worker JOB.json`.

The job file names the model, the runtime and the prepared inputs (token ids, made once by the
parent); the worker writes result.json and the raw outputs (outputs.npy) beside it. Each variant
in its own process keeps one variant's memory out of another's numbers; an ONNX worker imports
neither torch nor transformers, so its baseline is small. The worker dies with its parent.
"""
import json
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from qonnx import tasks
from qonnx.config import Job
from qonnx.measure import memory
from qonnx.runners import seq2seq
from qonnx.runners.genai import GenaiRunner
from qonnx.runners.ort import OrtRunner, placement
from qonnx.runners.torch import TorchRunner

PARENT_ENV = "QONNX_PARENT_PID"


def die_with_parent():
    """Ask Linux to SIGKILL this process when the parent dies (kill -9 included)."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)


def make_runner(job):
    if job.kind == "seq2seq":  # both runtimes through transformers' generate()
        return seq2seq.make(job.model_path, job.runtime, job.task, job.mode, job.provider, job.threads)
    if job.runtime == "genai":
        return GenaiRunner(job.model_path, job.provider, job.threads, job.config)
    if job.runtime == "onnx":
        return OrtRunner(job.model_path, job.provider, job.threads, job.config)
    return TorchRunner(job.model_path, job.task, job.mode, job.provider, job.threads)


def memory_note(separate, trimmed):
    if not separate:
        return "this OS cannot reset the peak after loading: model memory includes the load peak"
    return None if trimmed else "no malloc_trim here: memory freed while loading may still be counted"


def run(job_path: Path):

    job = Job.read(job_path)
    with np.load(job.inputs_path) as f:
        arrays = {k: f[k] for k in f.files}
    runner = make_runner(job)
    runner.import_runtime()  # the runtime's libraries belong to the baseline, not to the model
    memory.release_freed()  # the baseline and the steady state are both read with freed heap returned
    baseline = memory.rss_mb()
    t0 = time.perf_counter()
    runner.load()
    load_s = time.perf_counter() - t0
    load_peak = memory.peak_rss_mb()
    trimmed = memory.release_freed()  # what loading freed (an FP32 model quantized on load) goes back
    separate = memory.reset_peak()
    result = tasks.module(job.kind).measure(runner, arrays, job)
    inference_peak = memory.peak_rss_mb()
    load_s += getattr(runner, "generator_load_s", 0.0)  # genai: the Generator's model, loaded for generation
    np.save(job_path.parent / "outputs.npy", result.pop("outputs"))
    if job.runtime == "onnx" and job.provider == "cuda":
        result["placement"] = placement(job.model_path, job.provider, runner.last_feed)
    peak = max(load_peak, inference_peak)
    # the model's memory is the steady state: the inference peak above the worker's baseline
    steady = inference_peak if separate else peak
    result.update({"threads": job.threads, "load_s": load_s, "baseline_mb": baseline, "load_peak_mb": load_peak,
                   "inference_peak_mb": inference_peak if separate else None,
                   "peak_memory_mb": peak, "peak_increment_mb": peak - baseline,
                   "model_memory_mb": steady - baseline,
                   "memory_note": memory_note(separate, trimmed),
                   "cuda_peak_mb": memory.cuda_peak_mb(), "imported_torch": "torch" in sys.modules,
                   # every CUDA row, torch and ONNX Runtime alike: what the process holds on the GPU after
                   # measuring (allocators and ORT's arena keep their high-water mark)
                   "device_memory_mb": memory.device_mb() if job.provider == "cuda" else None})
    if hasattr(runner, "stored_mb"):  # torch rows have no file: the size of their saved state_dict
        result["size_mb"] = runner.stored_mb()
    runner.close()
    return result


def main():
    die_with_parent()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job_path = Path(sys.argv[1])
    result = run(job_path)
    (job_path.parent / "result.json").write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
