"""Commands over compare runs: sweep (many runs from one file), report (re-render, side by side)
and validate (a CI gate on one row)."""
import sys
from pathlib import Path

import click

from qonnx import sweep as sweeps
from qonnx.cli.common import err, handle_errors, out, print_table, row_line
from qonnx.cli.options import OVERRIDES, default_of, options
from qonnx.errors import ConfigError
from qonnx.report import rerender, side_by_side
from qonnx.validate import ValidateConfig
from qonnx.validate import validate as run_validate


@click.command()
@click.argument("sweep_file", type=click.Path())
@options(None, "output", "executor", "address", "mlflow", "threads", "resume",
         output="[$QONNX_ARTIFACTS or ./artifacts, /runs/NAME-sweep-TIME].", executor=OVERRIDES,
         address=OVERRIDES, mlflow=OVERRIDES, threads="Overrides the file (and any threads axis).")
@handle_errors
def sweep(sweep_file, output, resume, **flags):
    """Run every point of a sweep file (compare options shared by all points, plus `axes` whose
    product, or `points` whose list, gives the points): one compare run per point, then sweep.csv,
    shapes.csv and curves.png over all of them. See examples/sweep.yaml."""
    progress = err()
    plan = sweeps.load(sweep_file, {k: v for k, v in flags.items() if v is not None}, output, resume)
    click.echo(f"sweep {plan.name}: {len(plan.points)} point(s)")
    doc = sweeps.run(plan, on_row=row_line(),
                     on_point=lambda p, sub: progress.print(f"point {sweeps.point_name(p)} -> {sub}",
                                                            highlight=False))
    folder = Path(doc["output"])
    out().print(sweeps.table(folder / "sweep.csv"))
    for p in doc["points"]:
        click.echo(f"  {sweeps.point_name(p['settings'])}: {p['run']}/report.html")
    curves = f", {folder}/shapes.csv, {folder}/curves.png" if (folder / "curves.png").is_file() else ""
    click.echo(f"sweep: {folder}/sweep.csv{curves}")


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@options(None, "output", output="for several runs: a new or empty folder for their side-by-side report.html.")
@handle_errors
def report(run_dirs, output):
    """Re-render a compare run (table, markdown, plots, report.html) from its results.json; with
    several runs and -o, one report.html that puts them side by side."""
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


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--variant", required=True, help="The row to gate, e.g. onnx-int8-dynamic.")
@click.option("--provider", default=default_of(ValidateConfig, "provider"), show_default=True)
@options(None, "max_accuracy_drop", "max_perplexity_increase")
@click.option("--min-speedup", type=float, help="Smallest speedup vs torch-fp32 on the same provider.")
@click.option("--max-size-mb", type=float, help="Largest model size in MiB (2**20 bytes, as size_mb in results.json).")
@click.option("--min-agreement", type=float, help="Smallest top-1 agreement with the FP32 reference (embedding "
                                                   "models: the share of texts with FP32's nearest neighbour).")
@handle_errors
def validate(run_dir, max_perplexity_increase, **kw):
    """Pass/fail gate on one row of a compare run (exit 0 pass, 2 fail, 1 bad input), for CI.

    results.json is checked (types, ranges, schema version) and the derived figures are worked out
    again from the measured ones; a limit is a finite number >= 0."""
    passed, checks, notes = run_validate(ValidateConfig(run_dir=run_dir,
                                                        max_perplexity_increase_pct=max_perplexity_increase, **kw))
    for line in notes:  # a derived figure results.json got wrong: the gate checked the recomputed one
        click.echo(f"NOTE  {line}")
    for name, value, limit, ok in checks:
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        click.echo(f"{'PASS' if ok else 'FAIL'}  {name} = {shown}  (limit {limit})")
    click.echo(f"{kw['variant']}@{kw['provider']}: {'PASSED' if passed else 'FAILED'}")
    sys.exit(0 if passed else 2)
