"""`qonnx analyze`: what a variant damages (sensitivity) and how it holds up on typos (robustness)."""
from pathlib import Path

import click

from qonnx import tasks
from qonnx.analysis.robustness import robustness
from qonnx.analysis.robustness_report import console, not_measured
from qonnx.analysis.sensitivity import analyze as run_sensitivity
from qonnx.cli.common import csv_list, err, handle_errors, no_row_measured, out
from qonnx.cli.options import default_of, options
from qonnx.config import RobustnessConfig, SensitivityConfig
from qonnx.config.choices import SENSITIVITY_METHODS


@click.group()
def analyze():
    """Analyses that explain a variant: which layers a method damages (sensitivity) and how its
    accuracy holds up on text with typos (robustness)."""


@analyze.command("robustness")
@click.argument("model", default=default_of(RobustnessConfig, "model"))
@click.option("--rates", callback=csv_list, default=default_of(RobustnessConfig, "rates"), show_default=True,
              help="Comma list of fractions of words given a typo (each in [0, 1]).")
@options(RobustnessConfig, "seed", "variants", "providers", "dataset", "text_column", "label_column",
         "dataset_config", "split", "max_samples", "batch_size", "threads", "calibration", "calibration_text_column",
         "output", max_samples="The same rows at every rate.",
         output="[$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-robustness-TIME]; rerun into it to finish an "
                "interrupted analysis.")
@handle_errors
def analyze_robustness(model, **kw):
    """Accuracy of every variant of MODEL on the same rows with seeded typos in a fraction of the
    words (swaps, deletions, insertions, QWERTY-neighbour substitutions), at each rate, and the
    drop vs FP32 at the same rate."""
    progress = err()
    doc = robustness(RobustnessConfig(model=model, **kw),
                     on_row=lambda rate, r: progress.print(f"  rate {rate:g}: {r.variant} on {r.provider}: "
                                                           f"{r.status} {r.reason}", highlight=False))
    con = out()
    con.print(console(doc))
    for line in not_measured(doc):
        con.print(f"  {line}", highlight=False)
    click.echo(f"results: {doc['output']}/robustness.json, robustness.csv, robustness.md, robustness.png")
    click.echo("runs: " + ", ".join(doc["runs"].values()))
    no_row_measured(any("ok" in e["status"] for e in doc["variants"]))


def _measured() -> str:
    """Each family's figures, from its task module (qonnx.tasks.*.SENSITIVITY)."""
    return "\n\n".join(f"{tasks.WHAT[k].capitalize()}: {tasks.module(k).SENSITIVITY['about']} (sorted by "
                     f"{tasks.module(k).SENSITIVITY['damage']}, higher is worse)"
                     for k in ("classification", "lm", "embeddings", "tokens", "qa", "images", "seq2seq"))


@analyze.command("sensitivity", help=f"""Which units of MODEL (or of a `qonnx export` folder) a method damages:
each transformer layer's attention in/out and FFN in/out, the embeddings and the head, quantized one at a
time (and all but one), measured against FP32's own outputs on held-out data. Writes a table, JSON, CSV and
a heatmap. Measured per unit, by family:

{_measured()}.

Seq2seq models: units of the encoder and of the merged decoder (inside its If branches), named "encoder ..."
and "decoder ..." (their layers share numbers), with cross-attention in/out as their own roles; int8-dynamic
only (the one quantized seq2seq variant).""")
@click.argument("model", default="demo:sentiment")
@options(SensitivityConfig, "method", "dataset", "text_column", "label_column", "tokens_column", "tags_column",
         "question_column", "context_column", "answers_column", "image_column", "target_column", "split", "max_samples", "seed",
         "batch_size", "calibration", "num_calibration_samples",
         method=" | ".join(SENSITIVITY_METHODS) + " (rtn; on LMs int8-dynamic is blockwise MatMulNBits; "
                                                  "int8-static: text classifiers only).",
         max_samples="Evaluated for every build.",
         split="Held-out data, as the budget searches use: not compare's eval (test) split.")
@click.option("--views", callback=csv_list, default=default_of(SensitivityConfig, "views"), show_default=True,
              help="only: one unit quantized, the rest FP32; all-but: all quantized except one unit.")
@options(SensitivityConfig, "max_new_tokens", "eval_tokens", "threads", "output", "resume",
         max_new_tokens="Here seq2seq models only (exact match, teacher-forced KL).",
         output="[$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-sensitivity-METHOD-TIME].")
@handle_errors
def analyze_sensitivity(model, **kw):
    progress = err()

    def on_unit(r):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in r.items()
                          if k not in ("view", "unit", "nodes") and isinstance(v, float))
        progress.print(f"  {r['view']}: {r['unit']}: {shown}", highlight=False)

    doc = run_sensitivity(SensitivityConfig(model=model, **kw), on_unit=on_unit)
    folder = Path(doc["output"])
    click.echo((folder / "sensitivity.md").read_text())
    click.echo(f"files: {folder}/sensitivity.json, sensitivity.csv, sensitivity.md, sensitivity.png")
