"""The `qonnx` group (logging, SIGTERM) and the commands about this machine: env and demo."""
import json
import logging
import os
import signal

import click

from qonnx import __version__
from qonnx import demo as demos
from qonnx.cache import write_json
from qonnx.cli.common import handle_errors, terminate
from qonnx.cli.options import options
from qonnx.envinfo import WARNING, collect, describe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug logging.")
@click.version_option(version=__version__)  # the distribution is qonnx-compare
def main(verbose):
    """qonnx: export Hugging Face models to ONNX, quantize them, and compare every variant.

    Models are a local folder, a hub id, or a built-in demo (demo:sentiment, demo:smollm2).
    """
    # qonnx's own messages at INFO; libraries (ORT's quantizer logs through the root logger)
    # only at ERROR unless --verbose
    signal.signal(signal.SIGTERM, terminate)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("qonnx").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        import warnings

        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@click.command()
@options(None, "json")
def env(json_file):
    """Print what this machine offers: CPU and flags, providers, GPU, library versions."""
    info = collect()
    if json_file == "-":
        click.echo(json.dumps(info, indent=2))
        return
    if json_file:
        write_json(json_file, info)
        click.echo(f"json: {json_file}")
        return
    for line in describe(info):
        if line.startswith(WARNING):
            click.secho(line, fg="yellow")
        else:
            click.echo(line)


@click.group()
def demo():
    """Build and inspect the offline demo models (made from PyPI packages only)."""


@demo.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when the cached build is complete.")
@handle_errors
def demo_build(names, force):
    """Build demo assets (default: all) into the cache ($QONNX_CACHE overrides where)."""
    for name in names or demos.DEMOS:
        folder = demos.ensure(name, force=force)
        prov = json.loads((folder / "provenance.json").read_text())
        extra = f", test accuracy {prov['test_accuracy']:.2%}" if "test_accuracy" in prov else ""
        click.echo(f"demo:{name} ready in {folder}{extra}")


@demo.command("list")
def demo_list():
    """List the demos, whether each is built, and where."""
    for name, (_, desc) in demos.DEMOS.items():
        state = demos.check(demos.demo_dir(name), name) or "built"
        click.echo(f"demo:{name:10s} {state:12s} {desc}")
