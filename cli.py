"""qonnx command line: parse, build a config, call ONE qonnx function, print.

Every command's work lives in the qonnx package; QonnxError becomes one line on stderr, exit 1.
"""
import functools
import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from qonnx.errors import QonnxError
from qonnx.variants import METHODS, VARIANTS


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except QonnxError as e:
            click.secho(f"Error: {e}", fg="red", err=True)
            sys.exit(getattr(e, "exit_code", 1))
        except KeyboardInterrupt:
            click.secho("Interrupted; nothing half-written was kept.", fg="red", err=True)
            sys.exit(130)
    return wrapper


def _terminate(signum, frame):
    """SIGTERM is handled like Ctrl-C: finished work is kept, partial work removed, workers end."""
    raise KeyboardInterrupt


def print_table(results):
    from rich.console import Console

    from qonnx.report.tables import console, reasons

    con = Console(width=None if sys.stdout.isatty() else 200)
    con.print(console(results))
    for line in reasons(results):
        con.print(f"  {line}", highlight=False)


def print_sweep(csv_path):
    """One line per row of every point: its settings, status, quality and batch-1 latency."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    frame = pd.read_csv(csv_path)
    cols = [c for c in frame.columns if c.startswith("point.")] + ["variant", "provider", "status"]
    cols += [c for c in ("accuracy", "perplexity", "latency_ms_p50", "throughput_per_s", "size_mb")
             if c in frame.columns and frame[c].notna().any()]
    table = Table(title=f"sweep: {len(frame)} rows")
    for c in cols:
        table.add_column(c.removeprefix("point."), justify="right" if frame[c].dtype.kind == "f" else "left")
    for _, r in frame.iterrows():
        table.add_row(*["" if pd.isna(r[c]) else (f"{r[c]:,.0f}" if abs(r[c]) >= 1000 else f"{r[c]:.4g}")
                        if isinstance(r[c], float) else str(r[c]) for c in cols])
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def budget_options(drop_help):
    """--max-accuracy-drop and the validation rows it is checked on (quantize and compare)."""
    options = [
        click.option("--max-accuracy-drop", type=float, help=drop_help),
        click.option("--max-perplexity-increase", type=float,
                     help="LMs, int4-weight: 8-bit with the least sensitive layers at 4 bits (blocks of 128; GPTQ "
                          "or round to nearest, measured per layer), as many as keep "
                          "perplexity on --validation at most this many percent above FP32; exit 2 if none does."),
        click.option("--validation", help="The budget's data, neither calibration nor eval data: labelled rows "
                                          "(classifiers) or text (LMs) [the demo's train / validation split]."),
        click.option("--validation-text-column", default="text", show_default=True),
        click.option("--validation-label-column", default="label", show_default=True),
        click.option("--validation-samples", type=int, default=300, show_default=True,
                     help="Validation rows: a seeded sample stratified by label."),
        click.option("--search-time-limit", type=float,
                     help="Seconds the --max-accuracy-drop search may take (calibration choices, ranking, "
                          "steps); past it, exit 2 with the best step [no limit]."),
    ]

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


def csv_list(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug logging.")
@click.version_option(package_name="qonnx")
def main(verbose):
    """qonnx: export Hugging Face models to ONNX, quantize them, and compare every variant.

    Models are a local folder, a hub id, or a built-in demo (demo:sentiment, demo:smollm2).
    """
    # qonnx's own messages at INFO; libraries (ORT's quantizer logs through the root logger)
    # only at ERROR unless --verbose
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("qonnx").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        import warnings

        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@main.group()
def demo():
    """Build and inspect the offline demo models (made from PyPI packages only)."""


@demo.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when the cached build is complete.")
@handle_errors
def demo_build(names, force):
    """Build demo assets (default: all) into the cache ($QONNX_CACHE overrides where)."""
    from qonnx import demo as demos

    for name in names or demos.DEMOS:
        folder = demos.ensure(name, force=force)
        prov = json.loads((folder / "provenance.json").read_text())
        extra = f", test accuracy {prov['test_accuracy']:.2%}" if "test_accuracy" in prov else ""
        click.echo(f"demo:{name} ready in {folder}{extra}")


@demo.command("list")
def demo_list():
    """List the demos, whether each is built, and where."""
    from qonnx import demo as demos

    for name, (_, desc) in demos.DEMOS.items():
        state = demos.check(demos.demo_dir(name), name) or "built"
        click.echo(f"demo:{name:10s} {state:12s} {desc}")


@main.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(),
              help="Output folder [$QONNX_ARTIFACTS or ./artifacts, /NAME/onnx-fp32-KEY].")
@click.option("--task", help="text-classification | text-generation-with-past [from the model's architecture].")
@click.option("--opset", type=int, help="ONNX opset (optimum's default if unset).")
@click.option("--atol", type=float, default=1e-3, show_default=True,
              help="Largest max |logit diff| vs PyTorch that passes.")
@click.option("--overwrite", is_flag=True, help="Replace a qonnx artifact already in --output.")
@click.option("--exporter", default="optimum", show_default=True,
              help="optimum | genai (decoder LMs: onnxruntime-genai's model builder, fused attention; "
                   "needs qonnx[genai]).")
@click.option("--precision", default="fp32", show_default=True, help="genai: fp32 | int4 (the builder's default RTN) | int4-mixed (its k_quant_mixed) | int8 "
                   "(qonnx: 8-bit MatMulNBits) | int4-budget (qonnx: 4-bit + 8-bit layers within +10 % "
                   "perplexity on the demo's validation text).")
@handle_errors
def export(model, output, task, opset, atol, overwrite, exporter, precision):
    """Export MODEL (folder, hub id or demo:NAME) to ONNX and check it against PyTorch."""
    from qonnx.config import ExportConfig
    from qonnx.export import export as run

    data = run(ExportConfig(model=model, output=output, task=task, opset=opset, atol=atol, overwrite=overwrite,
                            exporter=exporter, precision=precision))
    p = data["parity"]
    verb = "reused the identical export in" if data["reused"] else "exported"
    click.echo(f"{verb} {model} -> {data['output']}  (max |diff| vs PyTorch {p['max_abs_diff']:.2e}, "
               f"top-1 agreement {p['min_top1_agreement']:.0%} over {len(p['cases'])} shapes)")


@main.command()
@click.argument("onnx_dir", type=click.Path())
@click.option("-m", "--method", required=True, help=" | ".join(METHODS))
@click.option("-o", "--output", type=click.Path(), help="Output folder [beside ONNX_DIR: onnx-METHOD-KEY].")
@click.option("--calibration", help="int8-static: a data file or demo split (demo:sentiment:calibration).")
@click.option("--calibration-method", default="minmax", show_default=True, help="minmax | entropy | percentile")
@click.option("--num-samples", type=int, default=128, show_default=True, help="Calibration samples.")
@click.option("--text-column", help="Text column of the calibration file [text].")
@click.option("--per-channel/--per-tensor", default=None,
              help="INT8 weight scales [int8-dynamic fused and int8-static: per channel; int8-dynamic "
                   "with --max-accuracy-drop: per tensor where that holds, per channel where not].")
@click.option("--static-ffn-out", default="dynamic", show_default=True,
              help="int8-static: FFN output projections (GELU outliers) as dynamic INT8, or static like the rest.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for drawing calibration samples.")
@click.option("--block-size", type=int, default=32, show_default=True, help="int4-weight block size (--max-perplexity-increase uses 128).")
@click.option("--algorithm", default="hqq", show_default=True, help="int4-weight: hqq | rtn")
@click.option("--int8-scheme", default="auto", show_default=True,
              help="int8-dynamic: fused (encoders) | blockwise (decoders) | auto")
@click.option("--overwrite", is_flag=True, help="Replace a qonnx artifact already in --output.")
@budget_options("int8-static/int8-dynamic on classifiers: search calibration (int8-static) or per-tensor/"
                "per-channel weights (int8-dynamic), then keep the most damaging units FP32, until the drop "
                "on --validation is at most this fraction (0.005 = half a point); exit 2 if none does.")
@handle_errors
def quantize(onnx_dir, method, output, calibration, calibration_method, num_samples, text_column,
             per_channel, static_ffn_out, seed, block_size, algorithm, int8_scheme, overwrite, **budget):
    """Build a deployable quantized variant of an FP32 ONNX export folder."""
    from qonnx.config import QuantizeConfig
    from qonnx.variants import quantize as run

    data = run(QuantizeConfig(onnx_dir=onnx_dir, method=method, output=output, calibration=calibration,
                              calibration_method=calibration_method, num_samples=num_samples,
                              per_channel=per_channel, static_ffn_out=static_ffn_out, seed=seed, block_size=block_size,
                              algorithm=algorithm, text_column=text_column, int8_scheme=int8_scheme,
                              overwrite=overwrite, **budget))
    search = (data.get("settings") or {}).get("budget_search")
    if search and "max_perplexity_increase_pct" in search["budget"]:
        click.echo(f"budget +{search['budget']['max_perplexity_increase_pct']} %: perplexity "
                   f"{search['increase_pct']:+.2f} % on {search['validation_tokens']} validation tokens with "
                   f"{len(search['eight_bit_nodes'])} of {len(search['eight_bit_nodes']) + search['four_bit_matmuls']} "
                   f"MatMuls at 8 bits ({len(search['eight_bit_units'])} unit(s): "
                   f"{', '.join(search['eight_bit_units']) or 'none'}) after {len(search['steps'])} step(s)")
    elif search:
        kept = ", ".join(search["kept_fp32"]) or "none"
        if search.get("calibration"):
            c = search["calibration"]
            kept += f"; calibration {c['method']}, per-{'channel' if c['per_channel'] else 'tensor'} weights"
        elif search.get("weights") == "mixed":
            kept += f"; per-channel weights in {', '.join(search['per_channel_units'])}, per-tensor elsewhere"
        elif search.get("weights"):
            kept += f"; {search['weights']} weights"
        click.echo(f"budget {search['budget']['max_accuracy_drop']}: drop {search['accuracy_drop']:+.4f} on "
                   f"{search['validation_rows']} validation rows with {len(search['kept_fp32'])} unit(s) kept FP32 "
                   f"({kept}) after {len(search['steps'])} step(s)")
    p = data["parity"]
    verb = "reused the identical" if data["reused"] else "built"
    click.echo(f"{verb} {method} -> {data['output']}  (max |diff| vs ONNX FP32 {p['max_abs_diff']:.3g}, "
               f"top-1 agreement {p['min_top1_agreement']:.0%})")


@main.command()
@click.argument("model", default="demo:sentiment")
@click.option("-o", "--output", type=click.Path(), help="Run folder [$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-TIME].")
@click.option("--dataset", help="csv/tsv/jsonl/json/parquet/txt file, demo split (demo:sentiment:test) or hub id.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--dataset-config", help="Hub dataset config name (e.g. sst2).")
@click.option("--split", default="test", show_default=True, help="Split of a hub dataset or demo.")
@click.option("--variants", callback=csv_list, help="Comma list [all that apply]: " + ", ".join(VARIANTS))
@click.option("--providers", callback=csv_list, default="cpu", show_default=True, help="cpu,cuda")
@click.option("--task", help="Override the task detected from the model.")
@click.option("--threads", type=int, help="Threads for torch and ORT alike [all usable cores].")
@click.option("--max-samples", type=int, default=500, show_default=True,
              help="Eval samples (classification): a seeded sample stratified by label.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Batch for accuracy/throughput.")
@click.option("--latency-samples", type=int, default=100, show_default=True, help="Timed batch-1 requests.")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed calls before timing.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for eval and calibration samples.")
@click.option("--calibration", help="Calibration data for onnx-int8-static [the demo's calibration split].")
@click.option("--calibration-text-column",
              help="Text column of --calibration [text for demo splits, else --text-column].")
@click.option("--num-calibration-samples", type=int, default=128, show_default=True)
@click.option("--calibration-method", default="minmax", show_default=True, help="minmax | entropy | percentile")
@click.option("--max-new-tokens", type=int, default=32, show_default=True, help="LM: greedy tokens per prompt.")
@click.option("--eval-tokens", type=int, default=4096, show_default=True, help="LM: tokens scored for perplexity.")
@click.option("--window", type=int, default=512, show_default=True, help="LM: perplexity window.")
@click.option("--stride", type=int, default=256, show_default=True, help="LM: perplexity stride.")
@click.option("--robustness-rate", type=float,
              help="Classifiers: also measure each row on the same texts with typos in this fraction of words.")
@click.option("--batch-sizes", callback=csv_list,
              help="Comma list, e.g. 1,8,32: latency and throughput curves per batch size (and length).")
@click.option("--sequence-lengths", callback=csv_list,
              help="Comma list, e.g. 32,128: input lengths of the curves (padded and real length) [128].")
@click.option("--executor", default="local", show_default=True,
              help="local | ray (needs qonnx[cluster]): where the rows are measured.")
@click.option("--address", help="ray: the cluster (auto, host:port, ray://host:port) [a new local cluster].")
@click.option("--concurrent-rows", is_flag=True,
              help="Measure several rows at once on a machine, as many as --threads fits in its cores (ray: "
                   "per node); faster, but their timings share the cores: for accuracy, not speed.")
@click.option("--mlflow", is_flag=False, flag_value="default",
              help="Log every row as an MLflow run (needs qonnx[tracking]); URI, or a .db file or folder "
                   "[$MLFLOW_TRACKING_URI, else ARTIFACTS/mlflow.db].")
@budget_options("Classifiers: build every INT8 variant within this accuracy drop on --validation (0.005 = "
                "half a point), searched as in `quantize --max-accuracy-drop`; a row fails where none does.")
@click.option("--config", "config_file", type=click.Path(),
              help="YAML/JSON file with these options (names as here: batch-size or batch_size); flags win.")
@click.option("--resume", is_flag=True, help="Finish a run in --output, measuring only rows not yet ok.")
@handle_errors
def compare(config_file, **kw):
    """Measure every variant of MODEL on each provider: quality, agreement, latency, memory, size."""
    from qonnx.config import CompareConfig
    from qonnx.run.compare import compare as run

    results = run(CompareConfig(**with_file(config_file, kw, CompareConfig)), on_row=row_line())
    finish_compare(results)


def with_file(config_file, given, cls) -> dict:
    """The command's options: a config file's values where the command line left the default."""
    if not config_file:
        return given
    from click.core import ParameterSource

    from qonnx.config import file as configfile

    ctx = click.get_current_context()
    merged = configfile.options(configfile.read(config_file), cls, config_file)
    for name, value in given.items():
        if name not in merged or ctx.get_parameter_source(name) != ParameterSource.DEFAULT:
            merged[name] = value
    return merged


def row_line():
    from rich.console import Console

    out = Console(stderr=True)
    return lambda r: out.print(f"  {r.variant} on {r.provider}: {r.status} {r.reason}", highlight=False)


def finish_compare(results):
    print_table(results)
    out = Path(results["settings"]["output"]).resolve()
    click.echo(f"results: {out}/results.json, results.csv, report.md, *.png")
    if results.get("mlflow"):
        m = results["mlflow"]
        click.echo(f"mlflow: run {m['run_id']} in experiment {m['experiment_id']} at {m['uri']}")
    click.echo(f"report: {out / 'report.html'}")
    if not any(r["status"] == "ok" for r in results["rows"]):
        raise QonnxError("no row could be measured; the reasons are listed above")


@main.command()
@click.argument("sweep_file", type=click.Path())
@click.option("-o", "--output", type=click.Path(),
              help="Sweep folder [$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-sweep-TIME].")
@click.option("--executor", help="local | ray: overrides the file.")
@click.option("--address", help="ray: the cluster (auto, host:port, ray://host:port); overrides the file.")
@click.option("--mlflow", is_flag=False, flag_value="default", help="MLflow URI (as for compare); overrides the file.")
@click.option("--threads", type=int, help="Overrides the file (and any threads axis).")
@click.option("--resume", is_flag=True, help="Finish an interrupted sweep in --output.")
@handle_errors
def sweep(sweep_file, output, resume, **flags):
    """Run every point of a sweep file (compare options shared by all points, plus `axes` whose
    product, or `points` whose list, gives the points): one compare run per point, then sweep.csv,
    shapes.csv and curves.png over all of them. See examples/sweep.yaml."""
    from rich.console import Console

    from qonnx import sweep as sweeps

    err = Console(stderr=True)
    plan = sweeps.load(sweep_file, {k: v for k, v in flags.items() if v is not None}, output, resume)
    click.echo(f"sweep {plan.name}: {len(plan.points)} point(s)")
    doc = sweeps.run(plan, on_row=row_line(),
                     on_point=lambda p, sub: err.print(f"point {sweeps.point_name(p)} -> {sub}", highlight=False))
    out = Path(doc["output"])
    print_sweep(out / "sweep.csv")
    for p in doc["points"]:
        click.echo(f"  {sweeps.point_name(p['settings'])}: {p['run']}/report.html")
    click.echo(f"sweep: {out}/sweep.csv" + (f", {out}/shapes.csv, {out}/curves.png" if (out / "curves.png").is_file() else ""))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(),
              help="With several runs: a new or empty folder for the side-by-side report.html.")
@handle_errors
def report(run_dirs, output):
    """Re-render a compare run (table, markdown, plots, report.html) from its results.json; with
    several runs and -o, one report.html that puts them side by side."""
    from qonnx.errors import ConfigError
    from qonnx.report import rerender, side_by_side

    if len(run_dirs) > 1:
        if not output:
            raise ConfigError("several runs need -o DIR, the folder for their side-by-side report.html.")
        click.echo(f"report: {side_by_side(run_dirs, output)}")
        return
    if output:
        raise ConfigError("-o is for several runs; one run's report.html is written into its own folder.")
    print_table(rerender(run_dirs[0]))
    click.echo(f"rewrote {run_dirs[0]}/results.csv, report.md and plots")
    click.echo(f"report: {Path(run_dirs[0]).resolve() / 'report.html'}")


@main.group()
def analyze():
    """Analyses that explain a variant: which layers a method damages (sensitivity) and how its
    accuracy holds up on text with typos (robustness)."""


@analyze.command("robustness")
@click.argument("model", default="demo:sentiment")
@click.option("--rates", callback=csv_list, default="0,0.05,0.1,0.2", show_default=True,
              help="Comma list of fractions of words given a typo (each in [0, 1]).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the typos and the eval sample.")
@click.option("--variants", callback=csv_list, help="Comma list [all that apply]: " + ", ".join(VARIANTS))
@click.option("--providers", callback=csv_list, default="cpu", show_default=True, help="cpu,cuda")
@click.option("--dataset", help="Labelled data: csv/tsv/jsonl/json/parquet file, demo split or hub id "
              "[the demo's test split].")
@click.option("--text-column", default="text", show_default=True, help="Text column of --dataset.")
@click.option("--label-column", default="label", show_default=True, help="Label column of --dataset.")
@click.option("--dataset-config", help="Hub dataset config name (e.g. sst2).")
@click.option("--split", default="test", show_default=True, help="Split of a hub dataset or demo.")
@click.option("--max-samples", type=int, default=500, show_default=True,
              help="Eval rows: a seeded sample stratified by label, the same rows at every rate.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Batch for accuracy.")
@click.option("--threads", type=int, help="Threads for torch and ORT alike [all usable cores].")
@click.option("--calibration", help="Calibration data for onnx-int8-static [the demo's calibration split].")
@click.option("--calibration-text-column", help="Text column of --calibration [text for demo splits, else --text-column].")
@click.option("-o", "--output", type=click.Path(),
              help="Analysis folder [$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-robustness-TIME]; "
                   "rerun into it to finish an interrupted analysis.")
@handle_errors
def analyze_robustness(model, output, **kw):
    """Accuracy of every variant of MODEL on the same rows with seeded typos in a fraction of the
    words (swaps, deletions, insertions, QWERTY-neighbour substitutions), at each rate, and the
    drop vs FP32 at the same rate."""
    from rich.console import Console

    from qonnx.analysis.robustness import console, not_measured, robustness
    from qonnx.config import RobustnessConfig

    err = Console(stderr=True)
    doc = robustness(RobustnessConfig(model=model, output=output, **kw),
                     on_row=lambda rate, r: err.print(f"  rate {rate:g}: {r.variant} on {r.provider}: "
                                                      f"{r.status} {r.reason}", highlight=False))
    con = Console(width=None if sys.stdout.isatty() else 200)
    con.print(console(doc))
    for line in not_measured(doc):
        con.print(f"  {line}", highlight=False)
    click.echo(f"results: {doc['output']}/robustness.json, robustness.csv, robustness.md, robustness.png")
    click.echo("runs: " + ", ".join(doc["runs"].values()))
    if not any("ok" in e["status"] for e in doc["variants"]):
        raise QonnxError("no row could be measured; the reasons are listed above")


@analyze.command("sensitivity")
@click.argument("model", default="demo:sentiment")
@click.option("-m", "--method", default="int8-dynamic", show_default=True,
              help="int8-dynamic | int8-static | int4-weight (rtn; on LMs int8-dynamic is blockwise MatMulNBits).")
@click.option("--dataset", help="Held-out data: csv/tsv/jsonl/json/parquet (txt for LMs), demo split or hub id "
              "[the demo's test split].")
@click.option("--text-column", default="text", show_default=True, help="Text column of --dataset.")
@click.option("--label-column", default="label", show_default=True, help="Label column of --dataset.")
@click.option("--split", default="test", show_default=True, help="Split of a hub dataset or demo.")
@click.option("--max-samples", type=int, default=300, show_default=True,
              help="Rows evaluated per build (classifiers): a seeded sample stratified by label.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Batch of the evaluation passes.")
@click.option("--calibration", help="int8-static: calibration data [the demo's calibration split].")
@click.option("--num-calibration-samples", type=int, default=64, show_default=True,
              help="int8-static: calibration texts per build.")
@click.option("--views", callback=csv_list, default="only,all-but", show_default=True,
              help="only: one unit quantized, the rest FP32; all-but: all quantized except one unit.")
@click.option("--eval-tokens", type=int, default=1024, show_default=True, help="LMs: tokens scored for perplexity.")
@click.option("--threads", type=int, help="ONNX Runtime threads [all usable cores].")
@click.option("-o", "--output", type=click.Path(),
              help="Analysis folder [$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-sensitivity-METHOD-TIME].")
@click.option("--resume", is_flag=True, help="Finish an interrupted analysis in --output.")
@handle_errors
def analyze_sensitivity(model, **kw):
    """Which units of MODEL (or of a `qonnx export` folder) a method damages: each transformer
    layer's attention in/out and FFN in/out, the embeddings and the head, quantized one at a time
    (and all but one), measured against FP32 on held-out data. Writes a table, JSON, CSV and a
    heatmap."""
    from rich.console import Console

    from qonnx.analysis.sensitivity import SensitivityConfig, analyze

    err = Console(stderr=True)

    def on_unit(r):
        shown = (f"kl {r['kl']:.2e}, drop {r['accuracy_drop']:+.4f}" if "kl" in r
                 else f"perplexity {r['perplexity_change_pct']:+.2f} %")
        err.print(f"  {r['view']}: {r['unit']}: {shown}", highlight=False)

    doc = analyze(SensitivityConfig(model=model, **kw), on_unit=on_unit)
    out = Path(doc["output"])
    click.echo((out / "sensitivity.md").read_text())
    click.echo(f"files: {out}/sensitivity.json, sensitivity.csv, sensitivity.md, sensitivity.png")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--variant", required=True, help="The row to gate, e.g. onnx-int8-dynamic.")
@click.option("--provider", default="cpu", show_default=True)
@click.option("--max-accuracy-drop", type=float, help="Largest accuracy drop vs FP32 (fraction, 0.01 = 1 point).")
@click.option("--max-perplexity-increase", "max_perplexity_increase_pct", type=float,
              help="Largest perplexity increase vs FP32, in percent.")
@click.option("--min-speedup", type=float, help="Smallest speedup vs torch-fp32 on the same provider.")
@click.option("--max-size-mb", type=float, help="Largest model size in MB.")
@click.option("--min-agreement", type=float, help="Smallest top-1 agreement with the FP32 reference.")
@handle_errors
def validate(run_dir, **kw):
    """Pass/fail gate on one row of a compare run (exit 0 pass, 2 fail), for CI."""
    from qonnx.validate import ValidateConfig
    from qonnx.validate import validate as run

    passed, checks = run(ValidateConfig(run_dir=run_dir, **kw))
    for name, value, limit, ok in checks:
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        click.echo(f"{'PASS' if ok else 'FAIL'}  {name} = {shown}  (limit {limit})")
    click.echo(f"{kw['variant']}@{kw['provider']}: {'PASSED' if passed else 'FAILED'}")
    sys.exit(0 if passed else 2)


@main.command()
@click.argument("target", metavar="[RUN_DIR | MODEL]", default="demo:sentiment")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback lets others on the network use it.")
@click.option("--port", type=int, default=7860, show_default=True, help="Port; 0 or a taken port picks a free one.")
@click.option("--timeout", "timeout_s", type=float, default=120, show_default=True,
              help="Seconds each variant has to answer a request (the first one also loads it).")
@handle_errors
def ui(target, host, port, timeout_s):
    """Local web UI: every variant of a run (or of MODEL) answers your text side by side.

    Needs the ui extra (pip install 'qonnx[ui]'). Ctrl-C stops it and its worker processes.
    """
    from qonnx.ui import UiConfig, serve

    cfg = UiConfig(target=target, host=host, port=port, timeout_s=timeout_s)
    serve(cfg, on_ready=lambda url: click.echo(f"qonnx ui: {url}  (Ctrl-C stops it)"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def env(as_json):
    """Print what this machine offers: CPU and flags, providers, GPU, library versions."""
    from qonnx.envinfo import collect

    info = collect()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    cpu = info["cpu"]
    click.echo(f"CPU        {cpu['model']} ({cpu['arch']}, {cpu['cores']} cores)")
    click.echo(f"CPU flags  {', '.join(cpu['flags']) or 'none of note'}")
    click.echo(f"Memory     {info['memory_gb']} GiB")
    gpu = info["gpu"]
    click.echo(f"GPU        {gpu['name'] + ' ' + str(gpu['memory_gb']) + ' GiB' if gpu and 'name' in gpu else (gpu or {}).get('error', 'none (torch sees no CUDA device)')}")
    click.echo(f"ORT EPs    {', '.join(info['onnxruntime_providers'])}")
    if info["onnxruntime_install_problem"]:
        click.secho(f"Warning    {info['onnxruntime_install_problem']}", fg="yellow")
    click.echo("Versions   " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))


if __name__ == "__main__":
    main()
