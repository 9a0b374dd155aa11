"""Commands over compare runs: sweep (many runs from one file) and report (re-render, side by side);
validate, the CI gate, has its own module."""
from pathlib import Path

import click

from qonnx import sweep as sweeps
from qonnx.cli.common import err, handle_errors, out, print_table, row_line
from qonnx.cli.options import OVERRIDES, options
from qonnx.errors import ConfigError
from qonnx.report import rerender, side_by_side


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

