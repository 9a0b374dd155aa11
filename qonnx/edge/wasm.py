"""The wasm target: ONNX Runtime Web, the browser runtime, executed for real in Node.js with the
onnxruntime-web npm package's WebAssembly backend (the same .wasm a browser loads).

Node.js stays out of the Python install: onnxruntime-web is installed on first use with
`npm install` into the qonnx cache ($QONNX_CACHE/node/onnxruntime-web-VERSION), never into the
working directory ($QONNX_ORT_WEB_DIR names another folder). What it checks: that a session can be created (an op the build lacks fails
here, and is named), parity with the CPU EP on the same inputs, batch-1 latency at --threads and
at every core, the Node process's peak memory, and the browser's size limits."""
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from qonnx.cache import cache_dir
from qonnx.config.parts import usable_cores
from qonnx.edge.model import ops_in_error
from qonnx.edge.reference import RUNS, WARMUP, agreement, judge_parity
from qonnx.edge.result import TargetResult
from qonnx.errors import ConfigError, QonnxError
from qonnx.measure.latency import Latency

log = logging.getLogger(__name__)

# the newest onnxruntime-web on npm when this was written (it trails the Python package by a release)
ORT_WEB_VERSION = os.environ.get("QONNX_ORT_WEB_VERSION", "1.31.1")
MIN_NODE = 18
SCRIPT = Path(__file__).with_name("wasm_run.cjs")
PROTOBUF_LIMIT = 2**31      # one .onnx file: protobuf cannot serialize 2 GiB
WASM32_HEAP = 4 * 2**30     # a wasm32 instance addresses 4 GiB; the weights are copied into it
INSTALL_HINT = ("install Node.js 18 or newer with npm (Debian/Ubuntu: apt-get install nodejs npm; elsewhere "
                "https://nodejs.org), or leave wasm out of --target")


def runtime_dir(version=ORT_WEB_VERSION) -> Path:
    """Where onnxruntime-web is (to be) installed: $QONNX_ORT_WEB_DIR, else the qonnx cache."""
    env = os.environ.get("QONNX_ORT_WEB_DIR")
    return Path(env).expanduser() if env else cache_dir() / "node" / f"onnxruntime-web-{version}"


def node_problem() -> str:
    """'' when a Node.js this target can use is on PATH, else what is wrong and how to fix it."""
    node = shutil.which("node")
    if not node:
        return f"the wasm target runs the model in Node.js, which is not on PATH; {INSTALL_HINT}."
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return f"{node} --version did not answer; {INSTALL_HINT}."
    if major < MIN_NODE:
        return f"the wasm target needs Node.js {MIN_NODE} or newer; {node} is {version}. {INSTALL_HINT[0].upper()}{INSTALL_HINT[1:]}."
    return ""


def ensure_runtime(version=ORT_WEB_VERSION) -> Path:
    """The folder holding node_modules/onnxruntime-web, installed with npm on first use (once per
    version, atomically: a half-finished install is never used)."""
    problem = node_problem()
    if problem:
        raise ConfigError(problem)
    target = runtime_dir(version)
    if (target / "node_modules" / "onnxruntime-web" / "package.json").is_file():
        return target
    npm = shutil.which("npm")
    if not npm:
        raise ConfigError(f"the wasm target installs onnxruntime-web with npm on first use, and npm is not on PATH; "
                          f"{INSTALL_HINT}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    try:
        (tmp / "package.json").write_text(json.dumps({"private": True, "description": "qonnx's wasm target"}) + "\n")
        log.info("installing onnxruntime-web %s into %s (once)", version, target)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                               f"onnxruntime-web@{version}"], cwd=tmp, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-400:]
            raise QonnxError(f"npm install onnxruntime-web@{version} failed ({tail}). It needs the npm registry once; "
                             f"set QONNX_ORT_WEB_VERSION to another version, or leave wasm out of --target.")
        try:
            os.replace(tmp, target)
        except OSError:  # another process installed it meanwhile, or a broken install is in the way
            if not (target / "node_modules" / "onnxruntime-web" / "package.json").is_file():
                raise QonnxError(f"{target} holds an incomplete onnxruntime-web install; remove that folder and "
                                 "run again.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_case(work, i, feed):
    specs = []
    for j, (name, arr) in enumerate(feed.items()):
        arr = np.ascontiguousarray(arr)
        file = work / f"in-{i}-{j}.bin"
        file.write_bytes(arr.tobytes())
        specs.append({"name": name, "type": "bool" if arr.dtype == np.bool_ else str(arr.dtype),
                      "dims": list(arr.shape), "file": str(file)})
    return specs


def run_node(art, cases, threads, save_outputs=True, runs=RUNS, timeout=900) -> dict:
    """One Node.js process: create a session at `threads` threads, run every case, time case 0."""
    prefix = ensure_runtime()
    with tempfile.TemporaryDirectory(prefix="qonnx-wasm-") as work:
        work = Path(work)
        job = {"prefix": str(prefix), "model": str(art.path), "folder": str(art.folder),
               "external_data": art.external_files, "threads": threads, "save_outputs": save_outputs,
               "cases": [_write_case(work, i, c) for i, c in enumerate(cases)], "warmup": WARMUP, "runs": runs,
               "work": str(work), "result": str(work / "result.json")}
        (work / "job.json").write_text(json.dumps(job))
        try:
            done = subprocess.run([shutil.which("node"), str(SCRIPT), str(work / "job.json")], cwd=work,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "stage": "run", "error": f"Node.js did not finish within {timeout} s"}
        if not (work / "result.json").is_file():
            tail = " ".join((done.stderr or done.stdout).split())[-400:]
            return {"ok": False, "stage": "node", "error": f"node exited with {done.returncode}: {tail}"}
        doc = json.loads((work / "result.json").read_text())
        for case in doc.get("outputs", []):
            for o in case:
                dtype = np.bool_ if o["type"] == "bool" else np.dtype(o["type"])
                o["array"] = np.fromfile(o["file"], dtype=dtype).reshape(o["dims"])
        return doc


def check(art, cases, ref, cfg) -> TargetResult:
    r = TargetResult("wasm", executed=True)
    r.note(f"Executed here in Node.js with onnxruntime-web {ORT_WEB_VERSION}'s WebAssembly backend (the browser's "
           "CPU runtime; WebGPU and WebNN are not tried).")
    _size_limits(art, r)
    got = run_node(art, cases, cfg.threads)
    if not got["ok"]:
        ops = ops_in_error(got["error"])
        where = "create a session" if got["stage"] == "session" else "run the model"
        first = got["error"].splitlines()[0][:400]
        if ops:
            r.lacks(ops, f"onnxruntime-web cannot {where}; the op(s) it lacks")
            r.note(f"onnxruntime-web said: {first}")
        else:
            r.fail(f"onnxruntime-web cannot {where}: {first}")
        return r
    r.figures.update(load_ms=round(got["load_ms"], 1), node=got["node"], ort_web=got["ort_web"])
    wasm = Latency.from_values(np.asarray(got["times_ms"]) / 1000)
    r.figures["latency_ms"] = {str(cfg.threads): wasm.to_dict()}
    r.figures["peak_memory_mb"] = round(got["peak_rss_mb"] - got["baseline_rss_mb"], 1)
    r.note(f"Peak memory {r.figures['peak_memory_mb']:.0f} MiB: the Node process's peak RSS above its baseline "
           f"with onnxruntime-web loaded (session, weights, {len(cases)} inputs, the timed calls).")
    if ref is not None:
        judge_parity(r, agreement(ref, [[o["array"] for o in case] for case in got["outputs"]], cfg.atol),
                     "the CPU EP")
        cpu = ref.latency
        r.figures["cpu_ep_latency_ms"] = {str(ref.threads): cpu.to_dict()}
        r.note(f"Batch-1 latency at {cfg.threads} thread(s): wasm p50 {wasm.p50:.2f} ms, CPU EP p50 {cpu.p50:.2f} ms "
               f"({wasm.p50 / cpu.p50:.1f}x) on this machine.")
    many = usable_cores()
    if many > cfg.threads:
        more = run_node(art, cases[:1], many, save_outputs=False)
        if more["ok"]:
            lat = Latency.from_values(np.asarray(more["times_ms"]) / 1000)
            r.figures["latency_ms"][str(many)] = lat.to_dict()
            r.note(f"At {many} threads (every core here; browsers need cross-origin isolation for threads): "
                   f"p50 {lat.p50:.2f} ms.")
        else:
            r.warn(f"at {many} threads onnxruntime-web failed: {more['error'].splitlines()[0][:300]}")
    return r


def _size_limits(art, r):
    onnx_bytes = art.path.stat().st_size
    total = art.size_mb * 2**20
    if onnx_bytes >= PROTOBUF_LIMIT:
        r.fail(f"{art.path.name} is {onnx_bytes / 2**30:.2f} GiB; protobuf cannot read a file over 2 GiB. Save the "
               "weights as external data.")
    if art.external_files:
        r.note(f"Weights in external data ({', '.join(art.external_files)}): a page must fetch them and pass them "
               "in the session's externalData option (onnxruntime-web 1.17 and newer).")
    if total >= WASM32_HEAP:
        r.fail(f"the model is {total / 2**30:.2f} GiB; a wasm32 instance addresses 4 GiB and copies the weights in.")
    elif total >= WASM32_HEAP / 2:
        r.warn(f"the model is {total / 2**30:.2f} GiB, over half of the 4 GiB a wasm32 instance addresses.")
