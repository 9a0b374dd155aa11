"""compare(config) -> results: export -> build variants -> measure each in its own process -> report.

Rows are written to RUN_DIR/rows/ as they finish and results.json is rewritten after each, so an
interrupted run keeps every finished row; `resume` measures only rows not already ok, and only
when nothing that shapes the numbers changed. A variant that fails becomes a row with its
reason; the others go on.
"""
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from . import data, export, models, store, tasks
from .cache import sha256_file, write_json
from .config import CompareConfig, QuantizeConfig, usable_cores
from .envinfo import collect
from .errors import ConfigError, DataError, QonnxError
from .report.schema import Row
from .variants import VARIANTS, defaults

log = logging.getLogger(__name__)

WORKER_TIMEOUT_S = 1800
# settings that do not change a row's numbers: a resume may change them
FREE_TO_CHANGE = ("output", "resume", "variants", "providers", "executor", "address", "mlflow")


class Interrupted(QonnxError):
    """Ctrl-C or SIGTERM during a run; finished rows are on disk."""
    exit_code = 130


def default_run_dir(source, what="") -> Path:
    """ROOT/runs/NAME[-WHAT]-TIME: a compare run, or an analysis (what = "robustness", ...)."""
    return store.root() / "runs" / "-".join(filter(None, (store.slug(source), what, time.strftime("%Y%m%d-%H%M%S"))))


def calibration_column(cfg) -> str:
    """--calibration-text-column, else 'text' for a demo split, else the eval set's --text-column
    when the calibration file has it, else 'text'."""
    if cfg.calibration_text_column:
        return cfg.calibration_text_column
    if not cfg.calibration or cfg.calibration.startswith("demo:"):
        return "text"
    return cfg.text_column if cfg.text_column in data.columns(cfg.calibration) else "text"


def eval_data(source, cfg) -> data.TextData:
    spec = cfg.dataset or (f"demo:{source.demo}:{cfg.split}" if source.demo else None)
    if not spec:
        raise ConfigError(f"Give an evaluation set with --dataset for {source.name} (a csv/tsv/jsonl/"
                          "json/parquet/txt file or a hub dataset id).")
    label2id = source.config.get("label2id") or {}
    if not source.is_lm and not label2id:
        raise ConfigError(f"{source.name} has no label2id in its config; cannot map labels.")
    return data.load(spec, lm=source.is_lm, label2id=label2id, text_column=cfg.text_column,
                     label_column=cfg.label_column, hub_config=cfg.dataset_config, split=cfg.split,
                     max_samples=None if source.is_lm else cfg.max_samples, seed=cfg.seed)


class Run:
    """The state of one compare run on disk."""

    def __init__(self, cfg: CompareConfig, folder: Path):
        self.cfg, self.dir = cfg, Path(folder)
        self.rows_dir, self.work = self.dir / "rows", self.dir / "work"
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError(f"-o {self.dir} is a file, not a folder; choose a folder for the run.")
        held = self.dir.is_dir() and any(self.dir.iterdir())
        if held and not (self.dir / "run.json").is_file():
            raise ConfigError(f"{self.dir} is not empty and is not a qonnx run; choose another --output.")
        if held and not cfg.resume:
            raise ConfigError(f"{self.dir} already holds results; pass --resume to finish it, "
                              "or choose another --output.")
        if cfg.resume and not held:
            raise ConfigError(f"Nothing to resume in {self.dir}: it holds no run.")

    def create(self):
        try:
            self.rows_dir.mkdir(parents=True, exist_ok=True)
            self.work.mkdir(exist_ok=True)
        except OSError as e:
            raise ConfigError(f"Cannot create the run folder {self.dir}: {e.strerror}") from None

    def row_path(self, variant, provider):
        return self.rows_dir / f"{variant}@{provider}.json"

    def done(self, variant, provider):
        p = self.row_path(variant, provider)
        return p.is_file() and json.loads(p.read_text()).get("status") == "ok"

    def save_row(self, row: Row):
        write_json(self.row_path(row.variant, row.provider), row.to_dict())

    def rows(self):
        return [Row.from_dict(json.loads(p.read_text()), str(p)) for p in sorted(self.rows_dir.glob("*.json"))]


def artifact_for(source, variant, cfg) -> Path:
    v = VARIANTS[variant]
    if v.runtime == "torch":
        return Path(source.path)
    if v.runtime == "genai":
        from . import genai

        return Path(genai.build(source, v.mode, cfg=cfg)["output"])
    onnx_dir = export.ensure(source)
    if v.mode == "fp32":
        return onnx_dir
    from .variants import quantize

    budget = {}
    if cfg.max_accuracy_drop is not None and v.mode in ("int8-static", "int8-dynamic"):
        budget = {"max_accuracy_drop": cfg.max_accuracy_drop, "validation": cfg.validation,
                  "validation_text_column": cfg.validation_text_column,
                  "validation_label_column": cfg.validation_label_column,
                  "validation_samples": cfg.validation_samples, "search_time_limit": cfg.search_time_limit}
    if cfg.max_perplexity_increase is not None and v.mode == "int4-weight" and not dict(v.options):
        budget = {"max_perplexity_increase": cfg.max_perplexity_increase, "validation": cfg.validation,
                  "validation_text_column": cfg.validation_text_column}
    qcfg = QuantizeConfig(onnx_dir=onnx_dir, method=v.mode, calibration=cfg.calibration,
                          calibration_method=cfg.calibration_method, num_samples=cfg.num_calibration_samples,
                          seed=cfg.seed, text_column=calibration_column(cfg), **dict(v.options), **budget)
    return Path(quantize(qcfg)["output"])


def run_worker(work: Path, job: dict):
    """Measure one job in a fresh process tied to this one; (result, None) or (None, reason)."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "outputs.npy"):
        (work / stale).unlink(missing_ok=True)
    write_json(work / "job.json", job)
    env = {**os.environ, "QONNX_PARENT_PID": str(os.getpid())}
    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "qonnx.worker", str(work / "job.json")],
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


def prepare_row(run, source, variant, provider, shared, env):
    """(row, job): the row with what is known before measuring, and the worker's job; job is None
    when the build failed (the row then says why)."""
    from .variants.graph import onnx_size_mb

    v = VARIANTS[variant]
    row = Row(variant=variant, provider=provider, runtime=v.runtime, note=v.note(provider), environment=env)
    try:
        art = artifact_for(source, variant, run.cfg)
    except QonnxError as e:  # a model a builder has no recipe for is skipped, not failed
        row.status, row.reason = ("skipped", str(e)) if getattr(e, "skip", False) else ("failed", f"build failed: {e}")
        return row, None
    except Exception as e:  # an unexpected library failure still becomes a row
        row.status, row.reason = "failed", f"build failed: {type(e).__name__}: {e}"
        return row, None
    row.artifact = str(art.resolve())
    row.size_mb = onnx_size_mb(art) if v.runtime != "torch" else None
    if v.mode == "bnb-int4":
        row.note = f"NF4 weights, compute dtype {'float16' if provider == 'cuda' else 'float32'}"
    job = {"variant": variant, "runtime": v.runtime, "mode": v.mode, "provider": provider,
           "model_path": str(art / "model.onnx" if v.runtime != "torch" else art), **shared}
    return row, job


def complete_row(row, result, failure, node, tok, kind) -> Row:
    """The row with the worker's result (or its failure) and where it ran."""
    if node:
        row.node = {k: v for k, v in node.items() if k != "environment"}
        row.environment = node.get("environment") or row.environment
    if failure:
        row.status, row.reason = "failed", failure
        return row
    result = tasks.module(kind).finish(tok, result)
    for k, val in result.items():
        if hasattr(row, k) and k != "extra":
            setattr(row, k, val)
        else:
            row.extra[k] = val
    if row.runtime != "torch":
        row.weight_memory_mb = row.size_mb  # initializers as stored; ORT may prepack more
    if row.size_mb is None and row.weight_memory_mb:
        row.size_mb = row.weight_memory_mb
        row.size_note = "in-memory weights (torch variants have no file of their own)"
    return row


def plan(cfg, kind):
    return [(v, p) for p in cfg.providers for v in cfg.variants or defaults(kind)]


def result_settings(cfg, source, kind, evald) -> dict:
    """Everything that shapes a row's numbers, as recorded in run.json and compared on resume."""
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
    settings.update({"task": source.task, "kind": kind, "dataset_source": evald.source,
                     "dataset_selection": evald.selection, "model_path": str(source.path),
                     "model_digest": store.tree_digest(source.path),
                     "calibration_text_column": calibration_column(cfg)})
    calib = Path(cfg.calibration).expanduser() if cfg.calibration else None
    if calib is not None and calib.is_file():
        settings["calibration_sha256"] = sha256_file(calib)
    return settings


def machine(env) -> dict:
    """The parts of the environment that make rows comparable."""
    return {"cpu": env["cpu"], "gpu": env.get("gpu"), "versions": env["versions"]}


def check_resumable(run_json: Path, settings, env):
    """--resume must not mix rows measured under different settings or on another machine."""
    before = json.loads(run_json.read_text())
    old = before.get("settings", {})
    changed = [k for k in sorted(set(old) | set(settings))
               if k not in FREE_TO_CHANGE and old.get(k) != settings.get(k)]
    if changed:
        raise ConfigError(f"Cannot resume {run_json.parent}: settings differ from the first run "
                          f"({'; '.join(f'{k}: {old.get(k)} -> {settings.get(k)}' for k in changed)}). "
                          "Start a new run with another --output.")
    if machine(before.get("environment", {})) != machine(env):
        raise ConfigError(f"Cannot resume {run_json.parent}: it was measured on another machine or with "
                          "other library versions (see its run.json); rows would not be comparable.")


def compare(cfg: CompareConfig, on_row=None) -> dict:
    """Measure every planned (variant, provider); returns the results document (results.json)."""
    from transformers import AutoTokenizer

    from . import report
    from .progress import progress

    source = models.resolve(cfg.model, cfg.task)
    kind = tasks.kind(source.task)
    if cfg.robustness_rate is not None and source.is_lm:
        raise ConfigError("--robustness-rate measures classification accuracy under typos; "
                          f"{source.name} is a language model.")
    if cfg.max_accuracy_drop is not None and source.is_lm:
        raise ConfigError("--max-accuracy-drop is for classifiers; an LM's budget is --max-perplexity-increase.")
    if cfg.max_perplexity_increase is not None and not source.is_lm:
        raise ConfigError("--max-perplexity-increase is for language models; a classifier's budget is "
                          "--max-accuracy-drop.")
    limit = source.config.get("max_position_embeddings") or source.config.get("n_positions")
    if limit and cfg.sequence_lengths and max(cfg.sequence_lengths) > limit:
        raise ConfigError(f"--sequence-lengths {max(cfg.sequence_lengths)} is longer than {source.name} takes "
                          f"({limit} positions).")
    if cfg.mlflow:
        from .track import preflight

        preflight(cfg.mlflow)
    executor = local_map
    if cfg.concurrent_rows and cfg.executor == "local":
        executor = concurrent_map(max(1, usable_cores() // cfg.threads))
    if cfg.executor == "ray":
        from .bench.ray_executor import RayExecutor

        executor = RayExecutor(cfg.address, cfg.concurrent_rows, cfg.threads).map
    out = cfg.output or default_run_dir(source)
    run = Run(cfg, out)
    evald = eval_data(source, cfg)
    settings = result_settings(cfg, source, kind, evald)
    settings["output"] = str(Path(out).resolve())
    env = collect()
    if cfg.resume:
        check_resumable(run.dir / "run.json", settings, env)
    tok = AutoTokenizer.from_pretrained(source.path)
    shared = {"task": source.task, "kind": kind, "threads": cfg.threads, "config": source.config,
              "batch_size": cfg.batch_size, "latency_samples": cfg.latency_samples, "warmup": cfg.warmup,
              "seed": cfg.seed, "max_new_tokens": cfg.max_new_tokens, "eval_tokens": cfg.eval_tokens,
              "window": cfg.window, "stride": cfg.stride, "batch_sizes": cfg.batch_sizes,
              "sequence_lengths": cfg.sequence_lengths}
    arrays = tasks.module(kind).prepare(tok, {"texts": evald.texts, "labels": evald.labels,
                                              "corpus": evald.corpus, "source": evald.source}, shared)
    run.create()
    import numpy as np

    np.savez(run.work / "inputs.npz", **arrays)
    shared["inputs_path"] = str((run.work / "inputs.npz").resolve())
    write_json(run.work / "data.json", {"source": evald.source, "texts": evald.texts, "labels": evald.labels})
    meta = {"settings": settings, "environment": env}
    write_json(run.dir / "run.json", meta)
    save_config(cfg, run.dir / "config.yaml")
    todo = plan(cfg, kind)
    ctx = SimpleNamespace(cfg=cfg, source=source)
    try:
        with progress() as bar:
            task = bar.add_task("measuring variants", total=len(todo))
            waiting = {}

            def finish(row):
                run.save_row(row)
                report.write_files(run.dir, report.assemble(run.rows(), meta), plots=False)
                if on_row:
                    on_row(row)
                bar.advance(task)

            def jobs():  # built lazily: the local executor measures each row as soon as it is built
                for variant, provider in todo:
                    bar.update(task, description=f"{variant} on {provider}")
                    if run.done(variant, provider):
                        bar.advance(task)
                        continue
                    v = VARIANTS[variant]
                    reason = v.skip_reason(provider, kind, ctx)
                    if reason:
                        finish(Row(variant=variant, provider=provider, runtime=v.runtime, status="skipped",
                                   reason=reason, environment=env))
                        continue
                    row, job = prepare_row(run, source, variant, provider, shared, env)
                    if job is None:
                        finish(row)
                        continue
                    key = f"{variant}@{provider}"
                    waiting[key] = row
                    yield key, run.work / key, job

            for key, result, failure, node in executor(jobs()):
                finish(complete_row(waiting.pop(key), result, failure, node, tok, kind))
        if cfg.robustness_rate is not None:  # the same rows with typos, for every ok row
            from .analysis.robustness import attach

            attach(run.dir, cfg, source, cfg.robustness_rate, on_row)
    except KeyboardInterrupt:
        report.write_files(run.dir, report.assemble(run.rows(), meta), plots=False)
        raise Interrupted(f"interrupted; the finished rows are kept in {run.dir}. Finish the run with: "
                          f"qonnx compare {cfg.model} -o {run.dir} --resume") from None
    results = report.assemble(run.rows(), meta)
    doc = report.write_files(run.dir, results, plots=True)
    if cfg.mlflow:
        from .track import log_run

        doc["mlflow"] = log_run(doc, run.dir, cfg.mlflow)
    return doc


def save_config(cfg, path):
    """The run's settings as a config file: `qonnx compare --config PATH` measures it again."""
    import yaml

    keep = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items() if k not in ("output", "resume")}
    path.write_text("# qonnx compare --config THIS_FILE -o NEW_FOLDER measures this run again\n"
                    + yaml.safe_dump(keep, sort_keys=False))


def load_results(run_dir) -> dict:
    from .report import schema

    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DataError(f"{run_dir} holds no results.json; run `qonnx compare -o {run_dir}` first.")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
    return schema.dump(schema.load(doc, str(path)))
