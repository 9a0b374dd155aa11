"""The robustness analysis's files: its console table, robustness.md, robustness.csv,
robustness.json and the accuracy/drop plot (robustness.png)."""
import logging
from pathlib import Path

from qonnx.cache import write_json
from qonnx.report.tables import rich_table
from qonnx.run.typos import ACCURACY_ONLY, LATENCY_SAMPLES

log = logging.getLogger(__name__)


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
              f"variant in its own worker process at {ACCURACY_ONLY['threads']} thread(s), several side by "
              "side (they shared the machine's cores), token ids made once per rate and fed to every variant, accuracy over all "
              f"rows at the run's batch size. Latency in those runs comes from {LATENCY_SAMPLES} requests "
              "of rows timed at once: it is not what this analysis measures.",
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
