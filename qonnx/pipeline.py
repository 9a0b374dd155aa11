"""compare(config) -> results: export -> build variants -> measure each in its own process -> report.

Rows are written to RUN_DIR/rows/ as they finish and results.json is rewritten after each, so an
interrupted run keeps every finished row; `resume` measures only rows not already ok. A variant
that fails becomes a row with its reason; the others go on.
"""
import importlib.util
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from . import artifacts, data, models, tasks
from .cache import write_json
from .config import CompareConfig
from .errors import ConfigError, DataError, QonnxError
from .variants import VARIANTS

log = logging.getLogger(__name__)

DEFAULTS = {
    "classification": ["torch-fp32", "torch-fp16", "torch-bf16", "torch-int8-dynamic", "bnb-int4",
                       "onnx-fp32", "onnx-fp16", "onnx-int8-dynamic", "onnx-int8-static"],
    "lm": ["torch-fp32", "torch-fp16", "torch-bf16", "bnb-int4", "onnx-fp32", "onnx-fp16",
           "onnx-int8-dynamic", "onnx-int4-weight", "onnx-int4-rtn"],
}
WORKER_TIMEOUT_S = 1800


def eval_data(source, kind, cfg):
    spec = cfg.dataset or (f"demo:{source.demo}:{cfg.split}" if source.demo else None)
    if not spec:
        raise ConfigError(f"Give an evaluation set with --dataset for {source.name} (a csv/tsv/jsonl/"
                          "json/parquet/txt file or a hub dataset id).")
    label2id = source.config.get("label2id") or {}
    if kind == "classification" and not label2id:
        raise ConfigError(f"{source.name} has no label2id in its config; cannot map labels.")
    found = data.load(spec, lm=kind == "lm", label2id=label2id, text_column=cfg.text_column,
                      label_column=cfg.label_column, hub_config=cfg.dataset_config, split=cfg.split,
                      max_samples=cfg.max_samples if kind == "classification" else None)
    if kind == "lm":
        return {"source": found.source, "corpus": found.corpus}
    return {"source": found.source, "texts": found.texts, "labels": found.labels}


def skip_reason(variant, provider, cfg, source):
    from .envinfo import cpu
    from .runners.ort import provider_problem

    v = VARIANTS[variant]
    if provider not in v.devices:
        return f"{variant} runs on {', '.join(v.devices)} only"
    if v.mode == "int8-static" and not (cfg.calibration or source.demo):
        return "no calibration data: pass --calibration FILE (never the eval set)"
    if v.runtime == "onnx":
        return provider_problem(provider)
    if provider == "cuda":
        from .runners.torch import cuda_problem

        if cuda_problem():
            return cuda_problem()
    if v.mode == "bnb-int4" and importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install 'qonnx[int4]')"
    if v.mode == "bf16" and provider == "cpu" and not {"AVX512-BF16", "AMX-BF16"} & set(cpu()["flags"]):
        return "this CPU has no BF16 instructions (AVX512-BF16 or AMX)"
    return ""


class Run:
    """The state of one compare run on disk."""

    def __init__(self, cfg: CompareConfig):
        self.cfg, self.dir = cfg, Path(cfg.output)
        self.rows_dir = self.dir / "rows"
        if self.rows_dir.is_dir() and any(self.rows_dir.iterdir()) and not cfg.resume:
            raise ConfigError(f"{self.dir} already holds results; pass --resume to finish it, "
                              "or choose another --output.")
        self.rows_dir.mkdir(parents=True, exist_ok=True)

    def row_path(self, variant, provider):
        return self.rows_dir / f"{variant}@{provider}.json"

    def done(self, variant, provider):
        p = self.row_path(variant, provider)
        return p.is_file() and json.loads(p.read_text()).get("status") == "ok"

    def save_row(self, row):
        write_json(self.row_path(row["variant"], row["provider"]), row)

    def rows(self):
        return [json.loads(p.read_text()) for p in sorted(self.rows_dir.glob("*.json"))]


def artifact_for(source, variant, cfg):
    v = VARIANTS[variant]
    if v.runtime == "torch":
        return source.path
    if v.mode == "fp32":
        return artifacts.export_dir(source)
    settings = dict(v.options)
    if v.mode == "int8-static":
        calib = cfg.calibration or (f"demo:{source.demo}:calibration" if source.demo else None)
        settings = {**settings, "calibration": calib, "calibration_method": cfg.calibration_method,
                    "num_samples": cfg.num_calibration_samples, "seed": cfg.seed,
                    "text_column": cfg.text_column}
    return artifacts.variant_dir(source, v.mode, settings)


def job_settings(cfg, source, kind, data_path):
    """What every worker of a run shares: task, data, threads, batch and timing settings."""
    return {"task": source.task, "kind": kind, "threads": cfg.threads, "data_path": str(data_path),
            "config": source.config, "batch_size": cfg.batch_size,
            "latency_samples": cfg.latency_samples, "warmup": cfg.warmup, "seed": cfg.seed,
            "max_new_tokens": cfg.max_new_tokens, "eval_tokens": cfg.eval_tokens,
            "window": cfg.window, "stride": cfg.stride}


def run_worker(work: Path, job: dict):
    """Measure one job in a fresh process; (result, None) or (None, reason)."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "outputs.npy"):
        (work / stale).unlink(missing_ok=True)
    write_json(work / "job.json", job)
    try:
        done = subprocess.run([sys.executable, "-m", "qonnx.worker", str(work / "job.json")],
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"worker ran past {WORKER_TIMEOUT_S} s"
    (work / "worker.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not (work / "result.json").is_file():
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return None, (lines[-1] if lines else f"worker exited with {done.returncode}")[:300]
    result = json.loads((work / "result.json").read_text())
    result["outputs"] = str(work / "outputs.npy")
    return result, None


def measure_row(run, source, kind, variant, provider, data_path):
    from .variants.graph import onnx_size_mb

    v, cfg = VARIANTS[variant], run.cfg
    row = {"variant": variant, "provider": provider, "runtime": v.runtime, "status": "ok", "reason": "",
           "note": v.note_cpu if provider == "cpu" else v.note_cuda}
    try:
        art = artifact_for(source, variant, cfg)
    except QonnxError as e:
        return {**row, "status": "failed", "reason": f"build failed: {e}"}
    except Exception as e:  # an unexpected library failure still becomes a row
        return {**row, "status": "failed", "reason": f"build failed: {type(e).__name__}: {e}"}
    row["artifact"] = str(art)
    row["size_mb"] = onnx_size_mb(art) if v.runtime == "onnx" else None
    if v.mode == "bnb-int4":
        row["note"] = f"NF4 weights, compute dtype {'float16' if provider == 'cuda' else 'float32'}"
    job = {"variant": variant, "runtime": v.runtime, "mode": v.mode, "provider": provider,
           "model_path": str(Path(art) / "model.onnx" if v.runtime == "onnx" else art),
           "tokenizer_path": str(art), **job_settings(cfg, source, kind, data_path)}
    t0 = time.perf_counter()
    result, failure = run_worker(run.dir / "work" / f"{variant}@{provider}", job)
    if failure:
        return {**row, "status": "failed", "reason": failure}
    row.update(result)
    row["wall_s"] = time.perf_counter() - t0
    if v.runtime == "onnx":
        row["weight_memory_mb"] = row["size_mb"]  # initializers as stored; ORT may prepack more
    if row["size_mb"] is None and row.get("weight_memory_mb"):
        row["size_mb"] = row["weight_memory_mb"]
        row["size_note"] = "in-memory weights (torch variants have no file of their own)"
    return row


def plan(cfg, kind):
    return [(v, p) for p in cfg.providers for v in cfg.variants or DEFAULTS[kind]]


def compare(cfg: CompareConfig, on_row=None) -> dict:
    from . import report
    from .envinfo import collect
    from .progress import progress

    source = models.resolve(cfg.model, cfg.task)
    kind = tasks.kind(source.task)
    run = Run(cfg)
    data_path = run.dir / "work" / "data.json"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    evald = eval_data(source, kind, cfg)
    write_json(data_path, evald)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
    settings.update({"task": source.task, "kind": kind, "dataset_source": evald["source"],
                     "model_path": str(source.path)})
    meta = {"settings": settings, "environment": collect()}
    if cfg.resume:
        check_resumable(run.dir / "run.json", settings)
    write_json(run.dir / "run.json", meta)
    todo = plan(cfg, kind)
    with progress() as bar:
        task = bar.add_task("measuring variants", total=len(todo))
        for variant, provider in todo:
            bar.update(task, description=f"{variant} on {provider}")
            if run.done(variant, provider):
                bar.advance(task)
                continue
            reason = skip_reason(variant, provider, cfg, source)
            if reason:
                row = {"variant": variant, "provider": provider, "runtime": VARIANTS[variant].runtime,
                       "status": "skipped", "reason": reason}
            else:
                row = measure_row(run, source, kind, variant, provider, data_path)
            run.save_row(row)
            results = report.assemble(run.rows(), meta, evald)
            report.write_files(run.dir, results, plots=False)
            if on_row:
                on_row(row)
            bar.advance(task)
    results = report.assemble(run.rows(), meta, evald)
    report.write_files(run.dir, results, plots=True)
    return results


MUST_MATCH = ("model", "dataset", "split", "max_samples", "batch_size", "threads", "eval_tokens",
              "window", "stride", "max_new_tokens", "latency_samples")


def check_resumable(run_json: Path, settings):
    """--resume must not mix rows measured under different settings."""
    if not run_json.is_file():
        return
    before = json.loads(run_json.read_text())["settings"]
    changed = [k for k in MUST_MATCH if before.get(k) != settings.get(k)]
    if changed:
        raise ConfigError(f"Cannot resume {run_json.parent}: settings differ from the first run "
                          f"({', '.join(f'{k}: {before.get(k)} -> {settings.get(k)}' for k in changed)}).")


def load_results(run_dir) -> dict:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DataError(f"{run_dir} holds no results.json; run `qonnx compare -o {run_dir}` first.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
