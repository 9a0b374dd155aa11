"""`qonnx ui`: the local web UI where every variant answers the same text."""
import click

from qonnx.cli.common import handle_errors
from qonnx.cli.options import default_of
from qonnx.ui import UiConfig, serve


@click.command()
@click.argument("target", metavar="[RUN_DIR | MODEL]", default=default_of(UiConfig, "target"))
@click.option("--host", default=default_of(UiConfig, "host"), show_default=True,
              help="Address to listen on; anything but loopback lets others on the network use it.")
@click.option("--port", type=int, default=default_of(UiConfig, "port"), show_default=True,
              help="Port; 0 or a taken port picks a free one.")
@click.option("--timeout", "timeout_s", type=float, default=default_of(UiConfig, "timeout_s"), show_default=True,
              help="Seconds each variant has to answer a request (the first one also loads it).")
@handle_errors
def ui(target, host, port, timeout_s):
    """Local web UI: every variant of a run (or of MODEL) answers your text side by side.

    Needs the ui extra (pip install 'qonnx-compare[ui]'). Ctrl-C stops it and its worker processes.
    """
    cfg = UiConfig(target=target, host=host, port=port, timeout_s=timeout_s)
    serve(cfg, on_ready=lambda url: click.echo(f"qonnx ui: {url}  (Ctrl-C stops it)"))
