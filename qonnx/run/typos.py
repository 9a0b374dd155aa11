"""Typos in a run's own eval rows: the texts with seeded character-level noise (qonnx.noise) in a
fraction of their words, written to a data file compare reads back exactly, and measured by
compare itself. `compare --robustness-rate R` attaches the result to its rows (attach); the
robustness analysis (qonnx.analysis.robustness) measures every rate of a list with the same pieces.
"""
import csv
import hashlib
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from qonnx import data, noise
from qonnx.cache import write_json
from qonnx.errors import DataError

log = logging.getLogger(__name__)

# latency is not what this analysis measures: the fewest timed calls compare accepts to be useful,
# and single-thread workers run side by side (worker start-up, imports and model loading, was most
# of the time with one worker at a time)
LATENCY_SAMPLES, WARMUP = 10, 1
ACCURACY_ONLY = {"threads": 1, "concurrent_rows": True, "rounds": 0}

def label(rate: float) -> str:
    """A rate as written in names and keys: 0.05, 0 (repr where %g would merge two rates)."""
    short = f"{rate:g}"
    return short if float(short) == rate else repr(rate)


def rate_name(rate: float) -> str:
    return f"rate-{label(rate)}"


def texts_sha256(texts) -> str:
    """sha256 of the texts in row order, each as UTF-8 followed by a newline."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode() + b"\n")
    return h.hexdigest()


def write_texts(folder: Path, rate, texts, labels, cfg, label2id) -> Path:
    """The rate's rows as a table compare reads back exactly (csv, or parquet for the rare text
    that a csv reader would turn into a number or a missing value)."""
    for suffix in (".csv", ".parquet"):
        path = folder / f"{rate_name(rate)}{suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow([cfg.text_column, cfg.label_column])
                w.writerows(zip(texts, labels))
        else:
            import pandas as pd

            pd.DataFrame({cfg.text_column: texts, cfg.label_column: labels}).to_parquet(tmp, index=False)
        tmp.replace(path)
        try:
            back = data.load(str(path), lm=False, label2id=label2id, text_column=cfg.text_column,
                             label_column=cfg.label_column, max_samples=None)
        except DataError:
            back = None
        if back is not None and back.texts == texts and back.labels == labels:
            for other in folder.glob(f"{rate_name(rate)}.*"):
                if other != path:
                    other.unlink()
            return path
        path.unlink()
    raise DataError(f"the perturbed texts at rate {rate:g} do not survive a round trip through a data file; "
                    "try another --seed.")


def clear_unstarted(run_dir: Path):
    """A rate folder that compare created but had not yet marked as a run (interrupted within its
    first seconds) holds only compare's rows/ and work/: remove it so the rate starts afresh."""
    if run_dir.is_dir() and not (run_dir / "run.json").is_file():
        if {p.name for p in run_dir.iterdir()} <= {"rows", "work"}:
            shutil.rmtree(run_dir)


def attach(run_dir, cfg, source, rate: float, measure, on_row=None) -> dict:
    """`compare --robustness-rate R`, after a run's rows: accuracy of every ok row on the run's own
    eval rows (work/data.json) with typos in a fraction R of their words (seed cfg.seed), measured
    by `measure` (compare) into RUN/robustness/rate-R/ (resumed there when present). Each ok row file gets
    robust_rate, robust_accuracy and robust_drop (the reference's robust accuracy minus the row's);
    returns {(variant, provider): (robust_accuracy, robust_drop)}."""
    noise.check_rate(rate)
    run_dir = Path(run_dir)
    rows = {p: json.loads(p.read_text()) for p in sorted((run_dir / "rows").glob("*.json"))}
    ok = [r for r in rows.values() if r.get("status") == "ok"]
    if not ok:
        return {}
    held = json.loads((run_dir / "work" / "data.json").read_text())
    folder = run_dir / "robustness"
    folder.mkdir(exist_ok=True)
    texts = noise.perturb_all(held["texts"], rate, cfg.seed)
    path = write_texts(folder, rate, texts, held["labels"], cfg, source.config.get("label2id") or {})
    sub = folder / rate_name(rate)
    clear_unstarted(sub)
    changes = {"dataset": str(path.resolve()), "max_samples": None, "output": sub,
               "resume": (sub / "run.json").is_file(), "latency_samples": LATENCY_SAMPLES, "warmup": WARMUP,
               "variants": list(dict.fromkeys(r["variant"] for r in ok)),
               "providers": list(dict.fromkeys(r["provider"] for r in ok)),
               "batch_sizes": [], "sequence_lengths": [], "mlflow": None}  # accuracy only, tracked once
    if hasattr(cfg, "robustness_rate"):
        changes["robustness_rate"] = None
    log.info("robustness at rate %g: %d of %d words with a typo; measuring %d rows into %s", rate,
             *noise.changed_words(held["texts"], texts), len(ok), sub)
    noisy = {(r["variant"], r["provider"]): r for r in measure(replace(cfg, **changes), on_row)["rows"]}
    found = {}
    for p, r in rows.items():
        got = noisy.get((r["variant"], r["provider"]))
        if r.get("status") != "ok" or not got or got["status"] != "ok":
            continue
        r.update({"robust_rate": rate, "robust_accuracy": got["accuracy"], "robust_drop": got["accuracy_drop"]})
        write_json(p, r)
        found[(r["variant"], r["provider"])] = (got["accuracy"], got["accuracy_drop"])
    return found
