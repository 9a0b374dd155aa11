from qonnx.cli import main

main()
