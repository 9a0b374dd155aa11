"""`python -m qonnx ...`: the same CLI as the `qonnx` command."""
from qonnx.cli import main

main(prog_name="qonnx")
