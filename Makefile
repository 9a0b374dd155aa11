# Two entry points for a fresh machine; both create .venv and install qonnx first.
#   make demo  - set up, then run the main job (qonnx compare on the built-in demo:sentiment)
#   make test  - set up, then run the test suite (fast tests + the demo:sentiment real-model tests)
PY ?= python3
# the CPU build of torch on our machines; elsewhere e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# GPU=1: replace onnxruntime by onnxruntime-gpu (both installed, the CPU one can shadow CUDA);
# on a CUDA machine also pick a CUDA torch, e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
GPU ?=
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/qonnx: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch==2.13.0 first: the CPU build; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	# onnxruntime-gpu can lag the CPU package by a release: take its newest, never both
	if [ -n "$(GPU)" ]; then $(BIN)/pip uninstall -q -y onnxruntime && $(BIN)/pip install -q onnxruntime-gpu; fi
	touch $(BIN)/qonnx

setup: $(BIN)/qonnx

demo: setup
	$(BIN)/qonnx compare

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

.PHONY: setup demo test
