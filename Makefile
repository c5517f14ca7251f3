# AnchorMix: `make run` (environment if needed, then `kedro run`) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Offline and telemetry-free by default (users may override any of these).
export DO_NOT_TRACK ?= true
export KEDRO_DISABLE_TELEMETRY ?= true
export MLFLOW_DISABLE_TELEMETRY ?= true
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1

.PHONY: run test viz mlflow-ui benchmark clean-env

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a CPU wheel where one is available, instead of a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/kedro run $(ARGS)

test: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest $(ARGS)

# Any option of `kedro viz run`, e.g. make viz ARGS="--port 4142 --pipeline inference".
viz: $(BIN)/.installed
	$(BIN)/kedro viz run --host 127.0.0.1 $(ARGS)

# kedro-mlflow starts `mlflow` from PATH: the environment's bin goes first, so this works
# in a fresh shell without activating it.
mlflow-ui: $(BIN)/.installed
	@echo "MLflow UI: pick 'Model training' at its top left, or open the link 'kedro run' logs at its end"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/kedro mlflow ui $(ARGS)

# Each writes its figures under data/08_reporting/ (training-input reads the data pipeline's outputs).
benchmark: $(BIN)/.installed
	$(BIN)/python benchmarks/benchmark_data.py
	$(BIN)/python benchmarks/benchmark_training_input.py
	$(BIN)/python benchmarks/benchmark_metrics.py
	$(BIN)/python benchmarks/benchmark_judge.py
	$(BIN)/python benchmarks/benchmark_advise.py
	$(BIN)/python benchmarks/benchmark_study_server.py

clean-env:
	rm -rf $(VENV)
