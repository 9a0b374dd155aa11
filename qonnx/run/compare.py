"""compare(config) -> results: export -> build variants -> measure each in its own process -> report.

Rows are written to RUN_DIR/rows/ as they finish and results.json is rewritten after each, so an
interrupted run keeps every finished row; `resume` measures only rows not already ok, and only
when nothing that shapes the numbers changed (rundir). A variant that fails becomes a row with
its reason; the others go on.
"""
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from qonnx import data, manifest, models, report, store, tasks, track
from qonnx.cache import sha256_file, write_json
from qonnx.config import CompareConfig, Job, usable_cores
from qonnx.envinfo import collect
from qonnx.errors import ConfigError, Interrupted, QonnxError
from qonnx.progress import progress
from qonnx.run import rounds, targets, typos
from qonnx.run.executors import concurrent_map, local_map
from qonnx.run.ray import RayExecutor
from qonnx.run.rundir import Run, default_run_dir
from qonnx.schema import Row
from qonnx.variants.artifact import artifact_for, calibration_column
from qonnx.variants.graph import onnx_size_mb
from qonnx.variants.registry import VARIANTS, defaults
from qonnx.variants.search.describe import budget_note
from qonnx.variants.search.kernels import other_cpu_note

log = logging.getLogger(__name__)


def eval_data(source, cfg) -> data.TextData:
    spec = cfg.eval_spec(source.demo)
    if not spec:
        raise ConfigError(f"Give an evaluation set with --dataset for {source.name} (a csv/tsv/jsonl/"
                          "json/parquet/txt file or a hub dataset id).")
    return tasks.read_data(tasks.kind(source.task), spec, cfg, source.config, source.is_lm, source.name)


def executor(cfg, check_nodes=None):
    """The executor the config asks for (qonnx.run.executors; the Ray one checks its cluster first,
    and gives check_nodes its nodes' environments before any row is timed)."""
    if cfg.executor == "ray":
        return RayExecutor(cfg.address, cfg.concurrent_rows, cfg.threads, check_nodes).map
    if cfg.concurrent_rows:
        return concurrent_map(max(1, usable_cores() // cfg.threads))
    return local_map


def prepare_row(source, variant, provider, cfg, shared, env):
    """(row, job): the row with what is known before measuring, and the worker's job; job is None
    when the build failed (the row then says why)."""
    v = VARIANTS[variant]
    row = Row(variant=variant, provider=provider, runtime=v.runtime, note=v.note(provider), environment=env,
              timing=apart_reason(cfg) or "timed in its own measuring pass (interleaved rounds follow)")
    if v.runtime == "onnx" and "max_perplexity_increase" in cfg.budget_fields(v.mode, fixed_options=bool(v.options)):
        row.note = ("the perplexity budget's build (--max-perplexity-increase): each layer role's MatMulNBits format "
                    "(4-bit/32, 4-bit/128, 8-bit/128 or float) chosen by its KL and its kernels' time on the CPU it "
                    "was built on; 4 bits by GPTQ or round to nearest (not HQQ)")
    try:
        art = artifact_for(source, variant, cfg)
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
    job = Job(variant=variant, runtime=v.runtime, mode=v.mode, provider=provider,
              model_path=str(art / "model.onnx" if v.runtime != "torch" else art), **shared)
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
    if row.runtime == "torch" and row.size_mb is not None:
        row.size_note = "torch.save(state_dict) bytes (torch variants have no file of their own)"
    data = manifest.read(row.artifact) if row.artifact else {}
    # an LM budget build's check on the validation text; one timed on another CPU class
    notes = (row.note, budget_note(data), other_cpu_note(data, (row.environment or {}).get("cpu")))
    row.note = "; ".join(n for n in notes if n) or row.note
    return row


def apart_reason(cfg) -> str:
    """Why this run's rows are not timed in interleaved rounds ('' when they are)."""
    if cfg.executor == "ray":
        return "timed one row after another on its node (--executor ray): no interleaved rounds"
    if cfg.concurrent_rows:
        return "timed while other rows ran beside it (--concurrent-rows): no interleaved rounds"
    return "" if cfg.rounds else "timed one row after another (--rounds 0)"


def time_in_rounds(run, ctx, arrays, bar):
    """Every ok row of each provider timed again in interleaved rounds (qonnx.run.rounds), all its
    workers loaded at once; each row keeps its figure per round (row.rounds) and how it was timed
    (row.timing), from which ratios.derive takes the ratios. A provider without an ok torch-fp32 row
    (the ratios' reference) is not timed again."""
    cfg, kind = ctx.cfg, ctx.kind
    if apart_reason(cfg):  # each row says so since prepare_row
        return
    for provider in cfg.providers:
        group = [r for r in run.rows() if r.ok and r.provider == provider]
        why = ""
        if not any(r.variant == "torch-fp32" for r in group):
            why = "timed one row after another: no torch-fp32 row on this provider to time the others against"
        if not why and len(group) < 2:
            why = "the only ok row on this provider: nothing to interleave with"
        why = why or rounds.too_big(group)
        if why:
            for row in group:
                row.rounds, row.timing = None, why
                run.save_row(row)
            continue
        jobs = {}
        for row in group:
            _, job = prepare_row(ctx.source, row.variant, provider, cfg, ctx.shared, row.environment)
            if job is not None:
                jobs[f"{row.variant}@{provider}"] = job
        task = bar.add_task(f"interleaved rounds on {provider}", total=cfg.rounds)
        timed = rounds.interleave(jobs, kind, rounds.inputs(kind, arrays, next(iter(jobs.values()))), cfg.rounds,
                                  on_round=lambda r, t=task: bar.update(t, completed=r))
        for row in group:
            figures, failure = timed.get(f"{row.variant}@{provider}", (None, "its artifact could not be built again"))
            kept = sum(f is not None for f in figures or [])
            row.rounds = figures if not failure else None
            row.timing = (f"sequential, not interleaved: {failure}" if failure else
                          f"interleaved: {kept} of {cfg.rounds} rounds with {len(jobs)} rows' workers loaded at once")
            run.save_row(row)


def plan(cfg, kind):
    return [(v, p) for p in cfg.providers for v in cfg.variants or defaults(kind)]


def result_settings(cfg, source, kind, evald) -> dict:
    """Everything that shapes a row's numbers, as recorded in run.json and compared on resume."""
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
    task_settings = getattr(tasks.module(kind), "settings", None)
    if task_settings:  # what the task reads from the model folder (embeddings: pooling) or limits with a budget
        settings.update(task_settings(source))
    settings.update({"task": source.task, "kind": kind, "dataset_source": evald.source,
                     "dataset_selection": evald.selection, "model_path": str(source.path),
                     "model_digest": store.tree_digest(source.path),
                     "calibration_text_column": calibration_column(cfg)})
    if cfg.max_accuracy_drop is not None and not cfg.validation and source.demo:  # the data the search used
        settings["validation_default"] = f"demo:{source.demo}:validation"
    calib = Path(cfg.calibration).expanduser() if cfg.calibration else None
    if calib is not None and calib.is_file():
        settings["calibration_sha256"] = sha256_file(calib)
    return settings


def check(cfg, source):
    """What this model cannot be measured with, before anything is built."""
    kind = tasks.kind(source.task)
    if cfg.robustness_rate is not None and kind != "classification":
        raise ConfigError("--robustness-rate measures classification accuracy under typos; "
                          f"{source.name} is {tasks.WHAT[kind]}.")
    if kind == "embeddings" and cfg.max_perplexity_increase is not None:
        raise ConfigError("--max-perplexity-increase is for language models; an embedding model's budget is "
                          "--max-accuracy-drop (a limit on 1 - top-10 overlap with FP32).")
    if kind in tasks.FAMILIES.values():
        tasks.check_config(kind, cfg)
    if kind in ("images", "seq2seq") and (cfg.batch_sizes or cfg.sequence_lengths):
        raise ConfigError(f"--batch-sizes and --sequence-lengths draw latency curves of text classifiers and LMs; "
                          f"{'image classifiers' if kind == 'images' else 'seq2seq models'} have no curves yet.")
    cfg.check_kind(source.is_lm)
    limit = source.config.get("max_position_embeddings") or source.config.get("n_positions")
    if limit and cfg.sequence_lengths and max(cfg.sequence_lengths) > limit:
        raise ConfigError(f"--sequence-lengths {max(cfg.sequence_lengths)} is longer than {source.name} takes "
                          f"({limit} positions).")
    if limit and source.is_lm and cfg.window > limit:
        raise ConfigError(f"--window {cfg.window} is longer than {source.name} takes ({limit} positions); give "
                          f"--window {limit} or less (and --stride at most that).")
    if cfg.mlflow:
        track.preflight(cfg.mlflow)
    targets.preflight(cfg.targets)


def compare(cfg: CompareConfig, on_row=None) -> dict:
    """Measure every planned (variant, provider); returns the results document (results.json)."""
    source = models.resolve(cfg.model, cfg.task)
    kind = tasks.kind(source.task)
    check(cfg, source)
    out = cfg.output or default_run_dir(source)
    run = Run(cfg, out)
    measure = executor(cfg, run.check_nodes if cfg.resume else None)  # a resume: each node as it was
    evald = eval_data(source, cfg)
    settings = result_settings(cfg, source, kind, evald)
    settings["output"] = str(Path(out).resolve())
    env = collect()
    if cfg.resume:
        run.check_resumable(settings, env)
    tok = getattr(tasks.module(kind), "processor", models.load_tokenizer)(source.path)  # images: the image processor
    shared = Job.settings(cfg, source, kind)
    arrays = tasks.module(kind).prepare(tok, {"texts": evald.texts, "labels": evald.labels,
                                              "corpus": evald.corpus, "source": evald.source,
                                              "pairs": evald.pairs, "scores": evald.scores, "records": evald.records,
                                              "targets": evald.targets,
                                              "model_path": source.path}, SimpleNamespace(**shared))
    meta = {"settings": settings, "environment": env}
    run.create(meta)
    np.savez(run.work / "inputs.npz", **arrays)
    shared["inputs_path"] = str((run.work / "inputs.npz").resolve())
    write_json(run.work / "data.json", {"source": evald.source, "texts": evald.texts, "labels": evald.labels})
    todo = plan(cfg, kind)
    ctx = SimpleNamespace(cfg=cfg, source=source, kind=kind, shared=shared)
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
                    row, job = prepare_row(source, variant, provider, cfg, shared, env)
                    if job is None:
                        finish(row)
                        continue
                    key = f"{variant}@{provider}"
                    waiting[key] = row
                    yield key, run.work / key, job

            for key, result, failure, node in measure(jobs()):
                finish(complete_row(waiting.pop(key), result, failure, node, tok, kind))
            time_in_rounds(run, ctx, arrays, bar)
            if cfg.targets:  # after every timed pass: the gate's own runs never share the machine with one
                gated = bar.add_task(f"edge targets {','.join(cfg.targets)}", total=None)
                targets.gate(run.rows(), cfg.targets, run.save_row,
                             on_row=lambda r: bar.update(gated, description=f"edge targets: {r.variant}"))
        if cfg.robustness_rate is not None:  # the same rows with typos, for every ok row
            typos.attach(run.dir, cfg, source, cfg.robustness_rate, compare, on_row)
    except KeyboardInterrupt:
        report.write_files(run.dir, report.assemble(run.rows(), meta), plots=False)
        raise Interrupted(f"interrupted; the finished rows are kept in {run.dir}. Finish the run with: "
                          f"qonnx compare {cfg.model} -o {run.dir} --resume") from None
    doc = report.write_files(run.dir, report.assemble(run.rows(), meta), plots=True)
    doc["requested"] = [f"{v}@{p}" for v, p in todo]  # this call's rows (a resume may ask for fewer)
    if cfg.mlflow:
        doc["mlflow"] = track.log_run(doc, run.dir, cfg.mlflow)
    return doc
