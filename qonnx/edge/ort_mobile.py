"""The ort-mobile target: ONNX Runtime's mobile format. The model is converted to .ort
(onnxruntime.tools.convert_onnx_models_to_ort, fixed optimizations, as for a mobile app), the
.ort file is loaded here and compared with the .onnx on the CPU EP, and the operator list a
reduced build needs (required_operators.config) is kept beside it.

The .ort file and its config are an artifact of their own, content-keyed in the qonnx cache
($QONNX_CACHE/edge/ort/NAME-KEY); nothing is written into the model's folder."""
import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from qonnx import manifest
from qonnx.cache import cache_dir, sha256_file
from qonnx.edge.model import ops_in_error
from qonnx.edge.reference import agreement, judge_parity, time_calls
from qonnx.edge.result import TargetResult
from qonnx.errors import ConfigError
from qonnx.measure.memory import peak_rss_mb, release_freed, reset_peak, rss_mb
from qonnx.store import atomic_dir, digest, reuse, scratch_cwd

log = logging.getLogger(__name__)

FLATBUFFERS_LIMIT = 2**31  # an .ort file is one flatbuffer: under 2 GiB, weights included
PACKAGES = ("The pre-built onnxruntime-android and onnxruntime-c/objc packages are full builds (every op and type "
            "of the CPU EP; the reduced onnxruntime-mobile package ended with ORT 1.18), so loading the .ort here "
            "stands for them; for a custom reduced build pass its config with --ops-config.")


def read_ops_config(path) -> dict:
    """{(domain, op): opset} from a required_operators.config ('ai.onnx;17;Add,MatMul' lines)."""
    ops = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"--ops-config {path}: {e.strerror}; give a required_operators.config file.")
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(";")
        if len(parts) < 3 or not parts[1].strip().isdigit():
            raise ConfigError(f"--ops-config {path} line {n} is not 'domain;opset;Op1,Op2': {line[:80]}")
        for op in parts[2].split(","):
            op = op.split("{", 1)[0].strip()  # a type-reduced config adds {types} after an op
            if op:
                ops[(parts[0].strip(), op)] = int(parts[1])
    return ops


def shown(domain, op):
    return op if domain in ("ai.onnx", "") else f"{domain}:{op}"


def convert(art) -> Path:
    """The folder holding ART's .ort file and required_operators.config, converted once per model
    content and ONNX Runtime version (reused from the cache after that)."""
    import onnxruntime as ort

    files = [art.path, *(art.folder / f for f in art.external_files)]
    key = digest({"files": [sha256_file(f) for f in files if f.is_file()], "onnxruntime": ort.__version__,
                  "style": "fixed"})
    out = cache_dir() / "edge" / "ort" / f"{art.name}-{key}"
    if reuse(out):
        return out
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort
    from onnxruntime.tools.ort_format_model.utils import log as converter_log  # logs each file it writes

    level = converter_log.level
    with atomic_dir(out, overwrite=True) as tmp, scratch_cwd(), contextlib.redirect_stdout(io.StringIO()):
        converter_log.setLevel(logging.WARNING)
        try:
            convert_onnx_models_to_ort(art.path, output_dir=Path(tmp), optimization_styles=[OptimizationStyle.Fixed])
        finally:
            converter_log.setLevel(level)
        manifest.write(tmp, method="ort-format", source=str(art.path), key=key, optimization_style="Fixed",
                       onnxruntime=ort.__version__)
    return out


def check(art, cases, ref, cfg) -> TargetResult:
    import onnxruntime as ort

    r = TargetResult("ort-mobile", executed=True)
    r.note(f"Converted to the ORT format and executed here by ONNX Runtime {ort.__version__} (CPU EP, the EP every "
           "mobile package has); NNAPI and CoreML are the next targets' static analysis.")
    try:
        folder = convert(art)
    except Exception as e:  # ORT's converter raises whatever the session raised
        message = str(e).splitlines()[0][:400]
        ops = ops_in_error(message)
        if ops:
            r.lacks(ops, "the ORT format converter cannot load the model; the op(s) ONNX Runtime lacks")
            r.note(f"ONNX Runtime said: {message}")
        else:
            r.fail(f"conversion to the ORT format failed: {message}")
        return r
    ort_file = next(folder.glob("*.ort"))
    config = next(folder.glob("*.config"))
    size = ort_file.stat().st_size
    r.figures.update(ort_file=str(ort_file), ops_config=str(config), ort_bytes=size)
    if size >= FLATBUFFERS_LIMIT:
        r.fail(f"{ort_file.name} is {size / 2**30:.2f} GiB; an ORT format file must stay under 2 GiB.")
    if size > 1.5 * art.size_mb * 2**20 and size - art.size_mb * 2**20 > 2**20:  # not a small file's overhead
        r.warn(f"the .ort file is {size / 2**20:.1f} MiB, {size / 2**20 / art.size_mb:.1f}x the .onnx: the converter "
               "optimized for the CPU EP, which stores some weights in another type (FP16 weights are cast to FP32 "
               "where the CPU EP has no FP16 kernel).")
    required = read_ops_config(config)
    r.figures["required_operators"] = sorted(shown(d, o) for d, o in required)
    r.note(f"{ort_file} ({size / 2**20:.1f} MiB) needs {len(required)} op(s), listed for a reduced build in {config}.")
    if cfg.ops_config:
        have = read_ops_config(cfg.ops_config)
        r.lacks([shown(d, o) for (d, o) in required if (d, o) not in have],
                f"the reduced build's --ops-config {cfg.ops_config} lacks op(s) the .ort file needs")
    else:
        r.note(PACKAGES)
    release_freed()
    reset_peak()
    before = rss_mb()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = cfg.threads, 1
    try:
        sess = ort.InferenceSession(str(ort_file), sess_options=opts, providers=["CPUExecutionProvider"])
        got = [sess.run(None, feed) for feed in cases]
    except Exception as e:
        r.fail(f"ONNX Runtime cannot run the .ort file: {str(e).splitlines()[0][:400]}")
        return r
    lat = time_calls(lambda: sess.run(None, cases[0]))
    r.figures["peak_memory_mb"] = round(peak_rss_mb() - before, 1)
    r.figures["latency_ms"] = {str(cfg.threads): lat.to_dict()}
    r.note(f"Batch-1 latency of the .ort file at {cfg.threads} thread(s): p50 {lat.p50:.2f} ms; peak memory "
           f"{r.figures['peak_memory_mb']:.0f} MiB (this process's peak RSS while loading and running it).")
    if ref is not None:
        judge_parity(r, agreement(ref, [[np.asarray(a) for a in case] for case in got], cfg.atol), "the .onnx")
        r.figures["cpu_ep_latency_ms"] = {str(ref.threads): ref.latency.to_dict()}
    return r
