"""qonnx command line (the commands live in qonnx.cli); `python cli.py` and `from cli import main`."""
from qonnx.cli import main

if __name__ == "__main__":
    main()
