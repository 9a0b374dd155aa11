"""Robustness to typos: accuracy of every variant on the same rows with seeded character-level
noise (qonnx.noise) in a fraction of their words, at each rate.

It reuses compare rather than a runner loop of its own: the eval rows are selected once (the
same seeded, label-stratified sample compare would draw), each rate's perturbed texts are written
with the original labels to OUT/data/rate-R.csv, and `qonnx.run.compare.compare` measures every
variant on that file into OUT/rate-R/ (each variant in its own worker, builds reused from the
artifact store by content key, small latency settings since latency is not what this measures).
The drop at a rate is the compare reference's accuracy (FP32) at that rate minus the row's.

An interrupted analysis is finished by running the same command again: OUT/analysis.json records
the settings, a rate folder is resumed through compare's own resume (which measures only the rows
not yet ok, and refuses when anything that shapes the numbers changed).
"""
import json
import logging
from pathlib import Path

from qonnx import models, noise, store
from qonnx.analysis.robustness_report import write_files
from qonnx.cache import write_json
from qonnx.config import RobustnessConfig
from qonnx.errors import ConfigError, Interrupted
from qonnx.run.compare import compare, eval_data, plan
from qonnx.run.rundir import changed, default_run_dir
from qonnx.run.typos import (
    ACCURACY_ONLY,
    LATENCY_SAMPLES,
    WARMUP,
    clear_unstarted,
    label,
    rate_name,
    texts_sha256,
    write_texts,
)

log = logging.getLogger(__name__)

MARKER = "qonnx_analysis"
KIND = "robustness"
SCHEMA_VERSION = 1
# settings a rerun into the same folder may change (each rate folder is its own compare run)
FREE_TO_CHANGE = ("output", "rates", "variants", "providers")


def default_dir(source) -> Path:
    return default_run_dir(source, "robustness")


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
        differ = changed(old, settings)
        if differ:
            raise ConfigError(f"{out} holds a robustness analysis with other settings "
                              f"({'; '.join(f'{k}: {old.get(k)} -> {settings.get(k)}' for k in differ)}); "
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


def robustness(cfg: RobustnessConfig, on_row=None) -> dict:
    """Measure every variant at every rate; returns the robustness document (robustness.json).

    on_row(rate, row) is called as each compare row finishes."""
    source = models.resolve(cfg.model, cfg.task)
    if source.task != models.CLASSIFICATION:
        what = "a language model" if source.is_lm else "an embedding model" if source.task == models.EMBEDDINGS \
            else f"a {source.task} model"
        raise ConfigError(f"robustness measures classification accuracy; {source.name} is {what} "
                          f"({source.task}). Give a text-classification model.")
    base = cfg.compare_config()
    evald = eval_data(source, base)
    label2id = source.config.get("label2id") or {}
    out = Path(cfg.output or default_dir(source))
    settings = _analysis_settings(cfg, source, evald)
    _open_output(out, settings, protect=[source.path])
    planned = plan(base, "classification")
    texts_info, runs = [], {}
    try:
        for rate in cfg.rates:
            texts = noise.perturb_all(evald.texts, rate, cfg.seed)
            changed, eligible = noise.changed_words(evald.texts, texts)
            path = write_texts(out / "data", rate, texts, evald.labels, cfg, label2id)
            texts_info.append({"rate": rate, "file": str(path.resolve()), "texts_sha256": texts_sha256(texts),
                               "words_changed": changed, "words_eligible": eligible,
                               "changed_fraction": changed / eligible if eligible else None})
            run_dir = out / rate_name(rate)
            clear_unstarted(run_dir)
            resume = (run_dir / "run.json").is_file()
            log.info("rate %g: %d of %d words with a typo (%.1f%%) in %d texts; %s %d rows into %s", rate,
                     changed, eligible, 100 * changed / max(eligible, 1), len(texts),
                     "resuming" if resume else "measuring", len(planned), run_dir)
            ccfg = cfg.compare_config(dataset=str(path.resolve()), max_samples=None, output=run_dir,
                                      resume=resume, latency_samples=LATENCY_SAMPLES, warmup=WARMUP,
                                      **ACCURACY_ONLY)
            runs[rate] = compare(ccfg, on_row=(lambda r, rate=rate: on_row(rate, r)) if on_row else None)
    except Interrupted:
        raise Interrupted(f"interrupted; finished rates and rows are kept in {out}. Run the same "
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


