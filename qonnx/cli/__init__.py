"""qonnx command line: parse, build a config, call ONE qonnx function, print.

Every command's work lives in the qonnx package; QonnxError becomes one line on stderr, exit 1.
One module per command group (group: the `qonnx` group, env, demo; build; compare; runs;
validate; analyze; ui); the options more than one command takes are declared once, in qonnx.cli.options,
their defaults read from the config dataclasses.
"""
from qonnx.cli import analyze, build, compare, group, runs, ui, validate

main = group.main
for command in (group.demo, build.export, build.quantize, compare.compare, runs.sweep, runs.report,
                analyze.analyze, validate.validate, ui.ui, group.env):
    main.add_command(command)

__all__ = ["main"]
