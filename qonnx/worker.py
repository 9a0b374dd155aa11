"""One (variant, provider) measured in a fresh process: `python -m qonnx.worker JOB.json`.

The job file names the model, the runtime and the data; the worker writes result.json and the
raw outputs (outputs.npy) beside it. Running each variant in its own process keeps one variant's
memory out of another's numbers.
"""
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def make_runner(job):
    if job["runtime"] == "onnx":
        from .runners.ort import OrtRunner

        return OrtRunner(job["model_path"], job["provider"], job["threads"], job["config"])
    from .runners.torch import TorchRunner

    return TorchRunner(job["model_path"], job["task"], job["mode"], job["provider"], job["threads"])


def weight_mb(runner):
    model = getattr(runner, "model", None)
    if model is not None and hasattr(model, "get_memory_footprint"):
        return model.get_memory_footprint() / 2**20
    return None


def run(job_path: Path):
    from transformers import AutoTokenizer

    from . import tasks
    from .measure import memory

    job = json.loads(job_path.read_text())
    job.update(json.loads(Path(job["data_path"]).read_text()))
    tok = AutoTokenizer.from_pretrained(job["tokenizer_path"])
    baseline = memory.rss_mb()
    runner = make_runner(job)
    t0 = time.perf_counter()
    runner.load()
    load_s = time.perf_counter() - t0
    load_peak = memory.peak_rss_mb()
    separate = memory.reset_peak()
    result = tasks.measure(job["kind"], runner, tok, job)
    inference_peak = memory.peak_rss_mb()
    np.save(job_path.parent / "outputs.npy", result.pop("outputs"))
    if job["runtime"] == "onnx" and job["provider"] == "cuda":
        from .runners.ort import placement

        result["placement"] = placement(job["model_path"], job["provider"], runner.last_feed)
    result.update({"load_s": load_s, "baseline_mb": baseline, "load_peak_mb": load_peak,
                   "inference_peak_mb": inference_peak if separate else None,
                   "peak_memory_mb": max(load_peak, inference_peak),
                   "cuda_peak_mb": memory.cuda_peak_mb(),
                   "weight_memory_mb": weight_mb(runner)})
    runner.close()
    return result


def main():
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job_path = Path(sys.argv[1])
    result = run(job_path)
    (job_path.parent / "result.json").write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
