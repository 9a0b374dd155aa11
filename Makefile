# Two entry points for a fresh machine; both create .venv and install qonnx first.
#   make demo  - set up, then run the main job (qonnx compare on the built-in demo:sentiment)
#   make test  - set up, then run the test suite (fast tests + the demo:sentiment real-model tests)
PY ?= python3
# the CPU build of torch on our machines; elsewhere e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# GPU=1 (with setup, demo or test): onnxruntime-gpu instead of onnxruntime, never both (they share
# the import name and the CPU one can shadow CUDA); on a CUDA machine also pick a CUDA torch,
# e.g. make setup GPU=1 TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
GPU ?=
# the version line of setup.cfg's `gpu` extra
ORT_GPU := onnxruntime-gpu>=1.20
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/qonnx: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch==2.13.0 first: the CPU build; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[int4]'
	touch $(BIN)/qonnx

# with GPU=1, also on a venv built without it (or one an install gave the CPU package back):
# uninstall both (their files overlap: removing one breaks the other), then onnxruntime-gpu alone
setup: $(BIN)/qonnx
	@if [ -n "$(GPU)" ] && { $(BIN)/pip show onnxruntime >/dev/null 2>&1 || \
	    ! $(BIN)/pip show onnxruntime-gpu >/dev/null 2>&1; }; then \
	  echo "GPU=1: replacing onnxruntime by $(ORT_GPU)"; \
	  $(BIN)/pip uninstall -q -y onnxruntime onnxruntime-gpu && $(BIN)/pip install -q '$(ORT_GPU)' nvidia-ml-py; \
	fi

demo: setup
	$(BIN)/qonnx compare

# the test set-up adds the ui, cluster (ray) and tracking (mlflow) extras and the headless Chromium that the report and UI tests
# drive; where Chromium cannot be installed (no apt-get, not root) those tests skip with the reason
$(VENV)/.test-extras: $(BIN)/qonnx
	$(BIN)/pip install -q -e '.[dev,ui,cluster,tracking,genai]'
	touch $@

browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed: the browser tests will be skipped, saying so"

# the wasm edge target runs models in Node.js (onnxruntime-web, npm-installed by the tests into the
# qonnx cache once); where node and npm cannot be installed those tests skip with the reason
node:
	@{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || { command -v apt-get >/dev/null 2>&1 && \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || \
	  echo "node/npm could not be installed: the wasm tests will be skipped, saying so"

# (extras before setup: with GPU=1, setup then swaps the onnxruntime that pip brought back)
# the real-model tests' demos are built first, on every core (a test worker holds only its share);
# then one pytest worker per core (pytest-xdist), each pinned to its own cores, taking whole files, the
# heaviest first (tests/conftest.py: HEAVY_FIRST; xdist would otherwise order files by their test count)
test: $(VENV)/.test-extras setup browser node
	$(BIN)/ruff check .
	$(BIN)/qonnx demo build sentiment minilm
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadfile --no-loadscope-reorder --durations=25

.PHONY: setup demo test browser node
