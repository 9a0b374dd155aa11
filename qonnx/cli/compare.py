"""`qonnx compare`: every variant of a model measured on each provider, optionally from a config file."""
from pathlib import Path

import click
from click.core import ParameterSource

from qonnx.cli.common import csv_list, failed_rows, handle_errors, no_row_measured, print_table, row_line
from qonnx.cli.options import budget, default_of, options
from qonnx.config import CompareConfig
from qonnx.config import file as configfile
from qonnx.run.compare import compare as run

EXIT_CODES = ("Exit codes: 0 every requested row ok or skipped with its reason; 1 bad input, or no row "
              "measured (every row skipped); 3 the run finished but requested rows failed (listed; results and "
              "report written); 130 interrupted (finished rows kept).")


@click.command(epilog=EXIT_CODES)
@click.argument("model", default=default_of(CompareConfig, "model"))
@options(CompareConfig, "output", "dataset", "text_column", "label_column", "tokens_column", "tags_column",
         "question_column", "context_column", "answers_column", "image_column", "target_column", "dataset_config",
         "split", "variants", "providers", "task", "threads", "max_samples", "batch_size",
         output="[$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-TIME].")
@click.option("--latency-samples", type=int, default=default_of(CompareConfig, "latency_samples"),
              show_default=True, help="Timed batch-1 requests.")
@click.option("--warmup", type=int, default=default_of(CompareConfig, "warmup"),
              show_default=True, help="Untimed calls before timing.")
@options(CompareConfig, "seed", "calibration", "calibration_text_column", "num_calibration_samples",
         "calibration_method")
@options(CompareConfig, "max_new_tokens", "eval_tokens")
@click.option("--window", type=int, default=default_of(CompareConfig, "window"),
              show_default=True, help="LM: perplexity window.")
@click.option("--stride", type=int, default=default_of(CompareConfig, "stride"),
              show_default=True, help="LM: perplexity stride.")
@click.option("--robustness-rate", type=float,
              help="Classifiers: also measure each row on the same texts with typos in this fraction of words.")
@click.option("--batch-sizes", callback=csv_list,
              help="Comma list, e.g. 1,8,32: latency and throughput curves per batch size (and length).")
@click.option("--sequence-lengths", callback=csv_list,
              help="Comma list, e.g. 32,128: input lengths of the curves (padded and real length) [128].")
@options(CompareConfig, "executor", "address")
@click.option("--concurrent-rows", is_flag=True,
              help="Measure several rows at once on a machine, as many as --threads fits in its cores (ray: "
                   "per node); faster, but their timings share the cores: for accuracy, not speed.")
@click.option("--rounds", type=int,
              help="Interleaved timing rounds: after measuring, every row's worker is loaded at once and each "
                   "times the same requests in turn, round after round; speedups are the median of the per-round "
                   "ratios, with their range (LMs: 30 for decode ratios that repeat within 5 %). 0: ratios from "
                   "the sequential pass [10; 0 with ray or concurrent rows].")
@options(CompareConfig, "mlflow")
@click.option("--targets", callback=csv_list,
              help="Comma list of edge targets (wasm, ort-mobile, nnapi, coreml, qnn): after measuring, each ONNX "
                   "row's artifact goes through `qonnx validate`'s edge gate; its verdicts become columns and a "
                   "'Deployable?' section of the report (torch rows: n/a).")
@budget(CompareConfig, "Classifiers: build every INT8 variant within it on --validation (0.005 = half a point), "
                       "searched as in `quantize --max-accuracy-drop`; a row fails where none does. Embedding "
                       "models (1 - top-10 overlap), token classifiers and QA (f1 drop), image classifiers and "
                       "seq2seq models: checked on the rows (Ship this, validate), not searched.")
@click.option("--config", "config_file", type=click.Path(),
              help="YAML/JSON file with these options (names as here: batch-size or batch_size); flags win.")
@options(CompareConfig, "resume")
@handle_errors
def compare(config_file, **kw):
    """Measure every variant of MODEL on each provider: quality, agreement, latency, memory, size."""
    finish(run(CompareConfig(**with_file(config_file, kw, CompareConfig)), on_row=row_line()))


def with_file(config_file, given, cls) -> dict:
    """The command's options: a config file's values where the command line left the default."""
    if not config_file:
        return given
    ctx = click.get_current_context()
    merged = configfile.options(configfile.read(config_file), cls, config_file)
    for name, value in given.items():
        if name not in merged or ctx.get_parameter_source(name) != ParameterSource.DEFAULT:
            merged[name] = value
    return merged


def finish(results):
    """The table, where the files are; exit 3 when a requested row failed, 1 when no row was measured."""
    print_table(results)
    out = Path(results["settings"]["output"]).resolve()
    click.echo(f"results: {out}/results.json, results.csv, report.md, *.png")
    if results.get("mlflow"):
        m = results["mlflow"]
        click.echo(f"mlflow: run {m['run_id']} in experiment {m['experiment_id']} at {m['uri']}")
    click.echo(f"report: {out / 'report.html'}")
    failed_rows(results)
    no_row_measured(any(r["status"] == "ok" for r in results["rows"]))
