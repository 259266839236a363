# Two commands do all the set-up on a fresh machine:
#   make demo   - venv + torch + joulebench, tiny model, the demo suite on CPU (local executor)
#   make test   - the same set-up plus the test suite
VENV ?= .venv
PYTHON ?= python3
# Installed first so no dependency pulls a multi-GB CUDA build; on a GPU cluster set
# TORCH_SPEC to your site's CUDA torch (or install torch yourself beforehand).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.joulebench-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test lint install clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

models/tiny-llama/config.json: $(STAMP)
	$(BIN)/joulebench make-demo-model models/tiny-llama

demo: $(STAMP) models/tiny-llama/config.json
	$(BIN)/submit-suite demo --cycles 2 --executor local
	$(BIN)/joulebench status demo
	$(BIN)/joulebench report demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean-demo:
	rm -rf results persistent_progress_trackers/*.json persistent_progress_trackers/*.txt \
	  persistent_progress_trackers/*.jsonl persistent_progress_trackers/backups \
	  persistent_progress_trackers/archive
