"""How rows are measured: each job in a fresh worker process (run_worker), one after the other
(local_map), several at once on this machine (concurrent_map), or on a Ray cluster (qonnx.run.ray).

Every executor has one interface: it takes an iterable of (key, work folder, Job) and yields
(key, result, failure, node) as rows finish; result is the worker's result.json (None on failure),
failure the reason (None on success), node where it ran (None when local).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from qonnx.config import Job
from qonnx.run.worker import PARENT_ENV

WORKER_TIMEOUT_S = 1800


def run_worker(work: Path, job: Job):
    """Measure one job in a fresh process tied to this one; (result, None) or (None, reason)."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "outputs.npy"):
        (work / stale).unlink(missing_ok=True)
    job.write(work / "job.json")
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "qonnx.run.worker", str(work / "job.json")],
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return None, f"worker ran past {WORKER_TIMEOUT_S} s"
    (work / "worker.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not (work / "result.json").is_file():
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return None, (lines[-1] if lines else f"worker exited with {done.returncode}")[:300]
    result = json.loads((work / "result.json").read_text())
    result["outputs"] = str((work / "outputs.npy").resolve())
    result["wall_s"] = time.perf_counter() - t0
    return result, None


def local_map(jobs):
    """The local executor: each job in turn, in a worker process of this machine."""
    for key, work, job in jobs:
        yield key, *run_worker(work, job), None


def concurrent_map(n):
    """A local executor running up to n workers at once (their timings then share the cores: for
    measurements of accuracy, such as the robustness analysis). Jobs are drawn lazily, in order."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    def run(jobs):
        todo, running = iter(jobs), {}
        with ThreadPoolExecutor(n) as pool:
            while True:
                for key, work, job in todo:
                    running[pool.submit(run_worker, work, job)] = key
                    if len(running) >= n:
                        break
                if not running:
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield running.pop(f), *f.result(), None
    return run

