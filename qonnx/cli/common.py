"""What every command shares beyond its options: errors as one line, SIGTERM as Ctrl-C, comma
lists, and the consoles the tables and progress lines go to."""
import functools
import sys

import click
from rich.console import Console

from qonnx.errors import QonnxError, RowsFailed
from qonnx.report import deploy
from qonnx.report.summary import noise, recommend
from qonnx.report.tables import console, reasons


def handle_errors(fn):
    """A QonnxError is one red line on stderr and its exit code (1); Ctrl-C or SIGTERM is 130."""
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


def terminate(signum, frame):
    """SIGTERM is handled like Ctrl-C: finished work is kept, partial work removed, workers end."""
    raise KeyboardInterrupt


def csv_list(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def out() -> Console:
    """stdout for tables: the terminal's width, or 200 columns when piped."""
    return Console(width=None if sys.stdout.isatty() else 200)


def err() -> Console:
    """stderr for progress lines."""
    return Console(stderr=True)


def print_table(results):
    con = out()
    con.print(console(results))
    for line in reasons(results):
        con.print(f"  {line}", highlight=False)
    if deploy.gated(results):  # compare --targets: each row's edge verdicts, and the row to ship
        con.print("Deployable? (the edge gate)", highlight=False)
        for line in deploy.lines(results):
            con.print(f"  {line}", highlight=False)
        con.print(deploy.sentence(results, recommend(results)), highlight=False)
    for line in noise(results):
        err().print(f"[yellow]warning:[/] {line}", highlight=False)


def row_line():
    """on_row for compare: one progress line per measured row."""
    con = err()
    return lambda r: con.print(f"  {r.variant} on {r.provider}: {r.status} {r.reason}", highlight=False)


def no_row_measured(ok: bool):
    if not ok:
        raise QonnxError("no row could be measured; the reasons are listed above")


def failed_rows(results):
    """Exit 3 (RowsFailed) when a requested row failed; skipped rows (a missing provider or
    library, with their reason) do not count. The results and report are already written."""
    asked = results.get("requested")
    failed = [f"{r['variant']}@{r['provider']}" for r in results["rows"] if r["status"] == "failed"]
    failed = [k for k in failed if asked is None or k in asked]
    if failed:
        measured = "" if any(r["status"] == "ok" for r in results["rows"]) else " No row could be measured."
        raise RowsFailed(f"{len(failed)} requested row(s) failed: {', '.join(failed)}; their reasons are listed "
                         f"above, the results and report are written.{measured}")
