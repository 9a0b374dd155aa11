"""`--mlflow [URI]`: a compare run as an MLflow run, each of its rows a nested run (the
`tracking` extra).

Parent run: the settings as params; the report, plots, results and config as artifacts. Child
run per row: params (model, variant, provider, runtime, the settings that shape the numbers,
library versions, CPU, node), metrics (quality, latency percentiles, throughput, memory, size,
ratios, and one latency/throughput pair per measured batch/length point), tags (status, reason).
Without a URI: $MLFLOW_TRACKING_URI, else an SQLite store in the artifacts root; a path means an
SQLite file (NAME.db) or a folder that holds mlflow.db. The artifacts of an SQLite store go beside
it, so nothing lands in the working directory.
"""
import logging
import os
from pathlib import Path

from qonnx import store
from qonnx.errors import ConfigError

log = logging.getLogger(__name__)

EXPERIMENT = "qonnx"
ARTIFACTS = ("report.html", "results.json", "results.csv", "config.yaml", "tradeoff.png", "latency.png",
             "accuracy.png", "size.png", "memory.png", "decode.png", "curves.png", "shapes.csv")
ROW_PARAMS = ("model", "task", "kind", "dataset_source", "threads", "batch_size", "max_samples", "seed",
              "calibration_method", "num_calibration_samples", "window", "stride", "eval_tokens", "executor")
METRICS = ("accuracy", "accuracy_drop", "perplexity", "perplexity_change_pct", "agreement", "max_logit_diff",
           "throughput_per_s", "decode_tokens_per_s", "peak_memory_mb", "peak_increment_mb",
           "model_memory_mb", "load_peak_mb", "size_mb",
           "speedup", "memory_reduction", "size_reduction", "load_s", "robust_accuracy", "robust_drop")


def resolve_uri(uri) -> str:
    if uri in (None, "", "default"):
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(store.root() / 'mlflow.db').resolve()}"
    if "://" not in uri and not uri.startswith(("databricks", "sqlite:")):  # a path: an SQLite file, or a folder for one
        path = Path(uri).expanduser().resolve()
        path = path if path.suffix == ".db" else path / "mlflow.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return uri


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise ConfigError("--mlflow needs MLflow: pip install 'qonnx-compare[tracking]'") from None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    return mlflow


def _experiment(mlflow, uri) -> str:
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, never in the working directory
        location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def _short(v):
    text = v if isinstance(v, str) else str(v)
    return text[:500]


def row_metrics(row) -> dict:
    out = {k: float(row[k]) for k in METRICS if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)}
    for name in ("latency_ms", "ttft_ms"):
        for q in ("p50", "p90", "p99", "mean"):
            v = (row.get(name) or {}).get(q)
            if v is not None:
                out[f"{name[:-3]}_{q}_ms"] = float(v)
    for s in row.get("shapes") or []:
        point = f"b{s['batch']}_l{s['length']}_{s['padding']}"
        out[f"shape_{point}_latency_p50_ms"] = float(s["latency_ms"]["p50"])
        out[f"shape_{point}_throughput_per_s"] = float(s["throughput_per_s"])
    return out


def row_params(row, settings) -> dict:
    env = row.get("environment") or {}
    params = {k: _short(settings[k]) for k in ROW_PARAMS if settings.get(k) is not None}
    params.update({"variant": row["variant"], "provider": row["provider"], "runtime": row.get("runtime"),
                   "cpu": _short((env.get("cpu") or {}).get("model")), "node": _short((row.get("node") or {}).get("hostname", "local"))})
    params.update({f"version.{k}": _short(v) for k, v in (env.get("versions") or {}).items()})
    if row.get("threads"):  # what the row ran with (on Ray without --threads: its node's cores)
        params["threads"] = row["threads"]
    return {k: v for k, v in params.items() if v is not None}


def preflight(uri):
    """Before any measuring: MLflow installed and the store answering (a server within 10 s, no
    retries), so a run is not measured for minutes and then refused."""
    mlflow = _mlflow()
    uri = resolve_uri(uri)
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.search_experiments(max_results=1)
    except Exception as e:
        raise ConfigError(f"MLflow at {uri} does not answer ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]}); nothing was measured.") from None
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def log_run(doc, run_dir, uri) -> dict:
    """Log one compare run; returns where it went."""
    mlflow = _mlflow()
    uri = resolve_uri(uri)
    run_dir = Path(run_dir)
    try:
        mlflow.set_tracking_uri(uri)
        exp = _experiment(mlflow, uri)
        settings = doc["settings"]
        with mlflow.start_run(experiment_id=exp, run_name=run_dir.name,
                              tags={"qonnx.run_dir": str(run_dir.resolve()), "qonnx.model": str(settings["model"])}) as parent:
            mlflow.log_params({k: _short(v) for k, v in settings.items() if v not in (None, [], "")})
            for name in ARTIFACTS:
                if (run_dir / name).is_file():
                    mlflow.log_artifact(str(run_dir / name))
            for row in doc["rows"]:
                with mlflow.start_run(experiment_id=exp, run_name=f"{row['variant']}@{row['provider']}", nested=True,
                                      tags={"qonnx.status": row["status"], "qonnx.reason": _short(row.get("reason") or "")}):
                    mlflow.log_params(row_params(row, settings))
                    metrics = row_metrics(row)
                    if metrics:
                        mlflow.log_metrics(metrics)
        return {"uri": uri, "experiment_id": exp, "run_id": parent.info.run_id}
    except ConfigError:
        raise
    except Exception as e:  # the measurements are on disk already; say what MLflow refused
        raise ConfigError(f"MLflow at {uri} did not take the run ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:300]}); the results are in {run_dir}") from None
