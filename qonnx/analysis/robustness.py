"""Robustness to typos: accuracy of every variant on the same rows with seeded character-level
noise (qonnx.analysis.noise) in a fraction of their words, at each rate.

It reuses compare rather than a runner loop of its own: the eval rows are selected once (the
same seeded, label-stratified sample compare would draw), each rate's perturbed texts are written
with the original labels to OUT/data/rate-R.csv, and `qonnx.pipeline.compare` measures every
variant on that file into OUT/rate-R/ (each variant in its own worker, builds reused from the
artifact store by content key, small latency settings since latency is not what this measures).
The drop at a rate is the compare reference's accuracy (FP32) at that rate minus the row's.

An interrupted analysis is finished by running the same command again: OUT/analysis.json records
the settings, a rate folder is resumed through compare's own resume (which measures only the rows
not yet ok, and refuses when anything that shapes the numbers changed).
"""
import csv
import hashlib
import json
import logging
import shutil
from pathlib import Path

from .. import data, models, pipeline, store
from ..cache import write_json
from ..config import RobustnessConfig
from ..errors import ConfigError, DataError
from . import noise

log = logging.getLogger(__name__)

MARKER = "qonnx_analysis"
KIND = "robustness"
SCHEMA_VERSION = 1
# latency is not what this analysis measures: the fewest timed calls compare accepts to be useful,
# and single-thread workers run side by side (worker start-up, imports and model loading, was most
# of the time with one worker at a time)
LATENCY_SAMPLES, WARMUP = 10, 1
ACCURACY_ONLY = {"threads": 1, "concurrent_rows": True}
# settings a rerun into the same folder may change (each rate folder is its own compare run)
FREE_TO_CHANGE = ("output", "rates", "variants", "providers")


def default_dir(source) -> Path:
    return pipeline.default_run_dir(source, "robustness")


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


def noise_settings() -> dict:
    return {"kinds": list(noise.KINDS), "min_word_letters": noise.MIN_WORD, "keyboard": "QWERTY",
            "unit": "words (runs of letters) with at least min_word_letters letters",
            "rng": "random.Random(seed), one stream over the rows in order"}


def _analysis_settings(cfg, source, evald) -> dict:
    s = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items() if k not in FREE_TO_CHANGE}
    s.update({"task": source.task, "model_path": str(source.path), "model_digest": store.tree_digest(source.path),
              "dataset_source": evald.source, "dataset_selection": evald.selection, "noise": noise_settings()})
    return s


def _open_output(out: Path, settings, protect) -> bool:
    """Create or reopen the analysis folder; True when an earlier analysis is continued."""
    marker = out / "analysis.json"
    if out.is_dir() and any(out.iterdir()):
        try:
            before = json.loads(marker.read_text())
        except (OSError, ValueError):
            before = {}
        if before.get(MARKER) != KIND:
            raise ConfigError(f"{out} is not empty and was not written by `qonnx analyze robustness`; "
                              "choose another -o folder (new or empty).")
        old = before.get("settings", {})
        changed = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if changed:
            raise ConfigError(f"{out} holds a robustness analysis with other settings "
                              f"({'; '.join(f'{k}: {old.get(k)} -> {settings.get(k)}' for k in changed)}); "
                              "choose another -o folder, or rerun with the settings it was made with.")
        log.info("continuing the robustness analysis in %s", out)
        return True
    store.check_output(out, protect=protect)
    try:
        (out / "data").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create the output folder {out}: {e.strerror}") from None
    write_json(marker, {MARKER: KIND, "settings": settings})
    return False


def _write_texts(folder: Path, rate, texts, labels, cfg, label2id) -> Path:
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


def _clear_unstarted(run_dir: Path):
    """A rate folder that compare created but had not yet marked as a run (interrupted within its
    first seconds) holds only compare's rows/ and work/: remove it so the rate starts afresh."""
    if run_dir.is_dir() and not (run_dir / "run.json").is_file():
        if {p.name for p in run_dir.iterdir()} <= {"rows", "work"}:
            shutil.rmtree(run_dir)


def robustness(cfg: RobustnessConfig, on_row=None) -> dict:
    """Measure every variant at every rate; returns the robustness document (robustness.json).

    on_row(rate, row) is called as each compare row finishes."""
    source = models.resolve(cfg.model, cfg.task)
    if source.is_lm:
        raise ConfigError(f"robustness measures classification accuracy; {source.name} is a language model "
                          f"({source.task}). Give a text-classification model.")
    base = cfg.compare_config()
    evald = pipeline.eval_data(source, base)
    label2id = source.config.get("label2id") or {}
    out = Path(cfg.output or default_dir(source))
    settings = _analysis_settings(cfg, source, evald)
    _open_output(out, settings, protect=[source.path])
    planned = pipeline.plan(base, "classification")
    texts_info, runs = [], {}
    try:
        for rate in cfg.rates:
            texts = noise.perturb_all(evald.texts, rate, cfg.seed)
            changed, eligible = noise.changed_words(evald.texts, texts)
            path = _write_texts(out / "data", rate, texts, evald.labels, cfg, label2id)
            texts_info.append({"rate": rate, "file": str(path.resolve()), "texts_sha256": texts_sha256(texts),
                               "words_changed": changed, "words_eligible": eligible,
                               "changed_fraction": changed / eligible if eligible else None})
            run_dir = out / rate_name(rate)
            _clear_unstarted(run_dir)
            resume = (run_dir / "run.json").is_file()
            log.info("rate %g: %d of %d words with a typo (%.1f%%) in %d texts; %s %d rows into %s", rate,
                     changed, eligible, 100 * changed / max(eligible, 1), len(texts),
                     "resuming" if resume else "measuring", len(planned), run_dir)
            ccfg = cfg.compare_config(dataset=str(path.resolve()), max_samples=None, output=run_dir,
                                      resume=resume, latency_samples=LATENCY_SAMPLES, warmup=WARMUP,
                                      **ACCURACY_ONLY)
            runs[rate] = pipeline.compare(ccfg, on_row=(lambda r, rate=rate: on_row(rate, r)) if on_row else None)
    except pipeline.Interrupted:
        raise pipeline.Interrupted(f"interrupted; finished rates and rows are kept in {out}. Run the same "
                                   f"command again with -o {out} to finish the analysis.") from None
    doc = assemble(cfg, settings, evald, texts_info, runs, planned, out)
    write_files(out, doc)
    return doc


def assemble(cfg, settings, evald, texts_info, runs, planned, out) -> dict:
    """The robustness document: one entry per (variant, provider), values aligned with `rates`."""
    rates = list(cfg.rates)
    by_rate = {rate: {(r["variant"], r["provider"]): r for r in doc["rows"]} for rate, doc in runs.items()}
    entries, flat = [], []
    for variant, provider in planned:
        cells = [by_rate[rate].get((variant, provider)) or {"status": "missing"} for rate in rates]
        entry = {"variant": variant, "provider": provider,
                 "runtime": next((c["runtime"] for c in cells if c.get("runtime")), None),
                 "status": [c["status"] for c in cells],
                 "reason": next((c.get("reason") for c in cells if c["status"] != "ok" and c.get("reason")), ""),
                 "accuracy": [c.get("accuracy") if c["status"] == "ok" else None for c in cells],
                 "drop": [c.get("accuracy_drop") if c["status"] == "ok" else None for c in cells]}
        entries.append(entry)
        for rate, c in zip(rates, cells):
            flat.append({"variant": variant, "provider": provider, "rate": rate, "status": c["status"],
                         "accuracy": c.get("accuracy"), "accuracy_drop": c.get("accuracy_drop"),
                         "reference": runs[rate]["reference"], "reason": c.get("reason", "")})
    return {MARKER: KIND, "schema_version": SCHEMA_VERSION, "model": cfg.model, "task": settings["task"],
            "dataset_source": evald.source, "dataset_selection": evald.selection, "seed": cfg.seed,
            "rates": rates, "noise": noise_settings(), "texts": texts_info,
            "reference": {label(rate): runs[rate]["reference"] for rate in rates},
            "units": {"accuracy": "fraction", "drop": "fraction: the reference's accuracy at the same rate "
                      "minus the row's (positive = worse than the reference)"},
            "variants": entries, "rows": flat,
            "output": str(out.resolve()), "runs": {label(rate): str((out / rate_name(rate)).resolve()) for rate in rates},
            "settings": settings, "environment": next(iter(runs.values()))["environment"] if runs else None}


def attach(run_dir, cfg, source, rate: float, on_row=None) -> dict:
    """`compare --robustness-rate R`, after a run's rows: accuracy of every ok row on the run's own
    eval rows (work/data.json) with typos in a fraction R of their words (seed cfg.seed), measured
    by compare into RUN/robustness/rate-R/ (resumed there when present). Each ok row file gets
    robust_rate, robust_accuracy and robust_drop (the reference's robust accuracy minus the row's);
    returns {(variant, provider): (robust_accuracy, robust_drop)}."""
    from dataclasses import replace

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
    path = _write_texts(folder, rate, texts, held["labels"], cfg, source.config.get("label2id") or {})
    sub = folder / rate_name(rate)
    _clear_unstarted(sub)
    changes = {"dataset": str(path.resolve()), "max_samples": None, "output": sub,
               "resume": (sub / "run.json").is_file(), "latency_samples": LATENCY_SAMPLES, "warmup": WARMUP,
               "variants": list(dict.fromkeys(r["variant"] for r in ok)),
               "providers": list(dict.fromkeys(r["provider"] for r in ok)),
               "batch_sizes": [], "sequence_lengths": [], "mlflow": None}  # accuracy only, tracked once
    if hasattr(cfg, "robustness_rate"):
        changes["robustness_rate"] = None
    log.info("robustness at rate %g: %d of %d words with a typo; measuring %d rows into %s", rate,
             *noise.changed_words(held["texts"], texts), len(ok), sub)
    noisy = {(r["variant"], r["provider"]): r for r in pipeline.compare(replace(cfg, **changes), on_row)["rows"]}
    found = {}
    for p, r in rows.items():
        got = noisy.get((r["variant"], r["provider"]))
        if r.get("status") != "ok" or not got or got["status"] != "ok":
            continue
        r.update({"robust_rate": rate, "robust_accuracy": got["accuracy"], "robust_drop": got["accuracy_drop"]})
        write_json(p, r)
        found[(r["variant"], r["provider"])] = (got["accuracy"], got["accuracy_drop"])
    return found


# -- files -------------------------------------------------------------------------------------

def _f(v, spec):
    return "" if v is None else format(v, spec)


def table_rows(doc):
    """(headers, rows of strings) for people: accuracy and drop vs the reference per rate."""
    headers = ["variant", "provider"] + [f"rate {r:g}" for r in doc["rates"]]
    rows = []
    for e in doc["variants"]:
        if all(s != "ok" for s in e["status"]):
            continue
        cells = [f"{_f(a, '.4f')} ({_f(d, '+.4f')})" if s == "ok" else s
                 for a, d, s in zip(e["accuracy"], e["drop"], e["status"])]
        rows.append([e["variant"], e["provider"]] + cells)
    return headers, rows


def console(doc):
    """A rich table: accuracy at each rate, the drop vs the reference in brackets."""
    from ..report.tables import rich_table

    refs = ", ".join(sorted(set(filter(None, doc["reference"].values())))) or "none"
    headers, rows = table_rows(doc)
    return rich_table(f"qonnx robustness: {doc['model']}  (accuracy; in brackets the drop vs {refs} "
                      "at the same rate)", headers, rows)


def not_measured(doc):
    return [f"{e['variant']} on {e['provider']}: {'/'.join(sorted(set(e['status'])))}: {e['reason']}"
            for e in doc["variants"] if any(s != "ok" for s in e["status"])]


def markdown(doc) -> str:
    rates = doc["rates"]
    sel = doc["dataset_selection"]
    refs = sorted(set(v for v in doc["reference"].values() if v))
    lines = [f"# qonnx robustness: {doc['model']}", "",
             f"Accuracy under seeded typos on {sel.get('rows')} of {sel.get('of')} rows of "
             f"{doc['dataset_source']} ({sel.get('method')}, seed {sel.get('seed')}, rows sha256 "
             f"{sel.get('rows_sha256')}); the same perturbed texts for every variant. Reference: "
             f"{', '.join(refs) or 'none (no FP32 variant measured)'}.", "",
             "## Accuracy", "",
             "| variant | provider | " + " | ".join(f"rate {r:g}" for r in rates) + " |",
             "|---|---|" + "---:|" * len(rates)]
    measured = [e for e in doc["variants"] if any(s == "ok" for s in e["status"])]
    for e in measured:
        lines.append(f"| {e['variant']} | {e['provider']} | " + " | ".join(
            _f(a, ".4f") if s == "ok" else s for a, s in zip(e["accuracy"], e["status"])) + " |")
    lines += ["", "## Drop vs the reference at the same rate", "",
              "Reference accuracy minus the row's, at each rate (positive = worse than FP32 on the same "
              "noisy texts).", "",
              "| variant | provider | " + " | ".join(f"rate {r:g}" for r in rates) + " |",
              "|---|---|" + "---:|" * len(rates)]
    for e in measured:
        lines.append(f"| {e['variant']} | {e['provider']} | " + " | ".join(
            _f(d, "+.4f") if s == "ok" else s for d, s in zip(e["drop"], e["status"])) + " |")
    if not_measured(doc):
        lines += ["", "## Rows not measured", ""] + [f"- {x}" for x in not_measured(doc)]
    n = doc["noise"]
    lines += ["", "## Noise", "",
              f"- Each rate is the fraction of words (runs of at least {n['min_word_letters']} letters) given "
              f"one typo, drawn with seed {doc['seed']}: {', '.join(n['kinds'])} (adjacent letters swapped, a "
              f"letter dropped, a neighbouring {n['keyboard']} key inserted, a letter replaced by a "
              "neighbouring key), the kind drawn uniformly; letters keep their case.", "",
              "| rate | words changed | of | fraction | texts sha256 | file |", "|---:|---:|---:|---:|---|---|"]
    for t in doc["texts"]:
        lines.append(f"| {t['rate']:g} | {t['words_changed']} | {t['words_eligible']} | "
                     f"{_f(t['changed_fraction'], '.3f')} | {t['texts_sha256'][:16]} | {Path(t['file']).name} |")
    lines += ["", "## How these were measured", "",
              "- Each rate is one `qonnx compare` run in its folder (rate-R/), on data/rate-R.csv: every "
              "variant in its own worker process, token ids made once per rate and fed to every variant, "
              "accuracy over all rows at the run's batch size. Latency in those runs comes from "
              f"{LATENCY_SAMPLES} requests only: it is not what this analysis measures.",
              "- Runs: " + ", ".join(f"{k}: {v}" for k, v in doc["runs"].items())]
    return "\n".join(lines) + "\n"


MARKERS = "osD^vPX*<>"


def series(doc) -> list:
    """(label, accuracies, drops) per distinct curve: variants whose accuracy is the same at every
    rate share one line (FP32 and FP16 often do), named together, so no line hides another."""
    entries = [e for e in doc["variants"] if any(s == "ok" for s in e["status"])]
    several = len({e["provider"] for e in entries}) > 1
    groups = {}
    for e in entries:
        name = f"{e['variant']} ({e['provider']})" if several else e["variant"]
        groups.setdefault((tuple(e["accuracy"]), tuple(e["drop"])), []).append(name)
    return [(" = ".join(names), list(acc), list(drop)) for (acc, drop), names in groups.items()]


def plot(doc, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = doc["rates"]
    lines = series(doc)
    fig, (acc, drop) = plt.subplots(1, 2, figsize=(13, 5))
    for i, (label, accuracy, drops) in enumerate(lines):
        style = dict(color=plt.cm.tab10(i % 10), marker=MARKERS[i % len(MARKERS)], linewidth=1.8,
                     markersize=6, label=label)
        pts = [(r, a) for r, a in zip(rates, accuracy) if a is not None]
        acc.plot([r for r, _ in pts], [a for _, a in pts], **style)
        pts = [(r, d) for r, d in zip(rates, drops) if d is not None]
        drop.plot([r for r, _ in pts], [100 * d for _, d in pts], **style)
    for ax in (acc, drop):
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{r:g}" for r in rates])
        ax.set_xlabel("fraction of words with a typo")
        ax.grid(alpha=0.3)
    acc.set_ylabel("accuracy (fraction correct)")
    acc.set_title("Accuracy under typos")
    drop.axhline(0, color="black", linewidth=0.8)
    refs = ", ".join(sorted(set(filter(None, doc["reference"].values())))) or "no reference"
    drop.set_ylabel(f"drop vs {refs} (percentage points)")
    drop.set_title("Drop vs the FP32 reference on the same noisy texts (higher = worse)")
    fig.legend(*acc.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.02),
               ncol=min(3, len(lines)), fontsize=9, frameon=False,
               title="variant (variants joined by = have the same accuracy at every rate)")
    sel = doc["dataset_selection"]
    fig.suptitle(f"Robustness to typos: {doc['model']}  ({sel.get('rows')} of {sel.get('of')} rows of "
                 f"{Path(doc['dataset_source']).name}, seed {doc['seed']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_files(out: Path, doc):
    """robustness.json, robustness.csv, robustness.md and robustness.png in the analysis folder."""
    import pandas as pd

    write_json(out / "robustness.json", doc)
    pd.DataFrame(doc["rows"]).to_csv(out / "robustness.csv", index=False)
    (out / "robustness.md").write_text(markdown(doc))
    try:
        plot(doc, out / "robustness.png")
    except Exception as e:  # a plot must never lose the numbers
        log.warning("robustness.png not written: %s: %s", type(e).__name__, e)
