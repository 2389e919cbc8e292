# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   set up, then materialize the whole Dagster asset graph on the embedded sample corpus
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
export DAGSTER_HOME := $(CURDIR)/.state/dagster
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.state/mlflow/mlflow.db
# the same CPU kernels on every x86-64 machine, for the same numbers (models/numerics.py)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2
export DNNL_MAX_CPU_ISA ?= AVX2

.PHONY: setup setup-browser demo smoke readme-numbers serve mlflow-ui test test-fast lint ui sample-data dvc-setup dvc-repro bench clean

setup: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

# torch first, pinned, so nothing can pull a CUDA build; then the project with the exact lock as constraints.
$(VENV)/.installed: pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	$(BIN)/pip install --quiet -c requirements/lock.txt torch==2.13.0
	$(BIN)/pip install --quiet -c requirements/lock.txt -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME) .state/mlflow
	cp deploy/dagster.yaml $@

demo: setup dvc-setup
	$(BIN)/dagster asset materialize -m pipelines.definitions --select '*'

# CI's materialization: every asset and check on the smallest corpus (params.yaml `smoke`); fails on a failed
# run or a failed check of ERROR severity (.ci/materialize)
smoke: setup
	rm -rf .state/smoke && mkdir -p .state/smoke/dagster && cp deploy/dagster.yaml .state/smoke/dagster/
	EARTHGPT_PROFILE=smoke DAGSTER_HOME=$(CURDIR)/.state/smoke/dagster .ci/materialize -m pipelines.definitions --select '*'

test: setup setup-browser dvc-setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

# Serve a registered model over HTTP (POST /invocations):
#   make serve [MODEL=models:/earthgpt-demo@champion] [PORT=5001] [ENV_MANAGER=local|virtualenv]
# MLflow starts `uvicorn` from PATH, so the environment's bin folder goes first: nothing to activate.
# ENV_MANAGER=virtualenv serves from a new environment built from the model's pinned requirements (pyenv).
MODEL ?= models:/earthgpt-demo@champion
PORT ?= 5001
ENV_MANAGER ?= local
serve: setup
	PATH="$(CURDIR)/$(BIN):$(HOME)/.pyenv/bin:$$PATH" $(BIN)/mlflow models serve -m "$(MODEL)" \
		--env-manager $(ENV_MANAGER) -h 127.0.0.1 -p $(PORT)

# The MLflow UI over the local tracking store, at the address params.yaml links to (mlflow.ui)
mlflow-ui: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" -h 127.0.0.1 -p 5000

# The UI test drives Debian's Chromium (no browser download): installed here when missing (needs root).
setup-browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: setup
	$(BIN)/ruff check .

ui: setup
	$(BIN)/dagster dev -w workspace.yaml

sample-data: setup
	$(BIN)/earthgpt sample-data --out data/sample

# DVC's dependencies conflict with Dagster's (antlr4 runtime), so it lives in its own environment.
dvc-setup: $(TOOLS)/dvc/bin/dvc
$(TOOLS)/dvc/bin/dvc:
	$(PYTHON) -m venv $(TOOLS)/dvc
	$(TOOLS)/dvc/bin/pip install --quiet dvc==3.67.1 dvc-s3==3.3.0

# DVC's view: the data_versions asset commits what Dagster produced, so after `make demo` this rebuilds nothing;
# on a machine with only DVC's view it runs the stages' Dagster materializations. The remote is a local folder
# under .state by default; `dvc remote add -d s3 s3://bucket/path` for a team.
# After `make demo`: record its numbers (seed from EARTHGPT_SET, e.g. "train.model.seed=1") in
# docs/demo-runs.json and render the README's demo block from the recorded runs
readme-numbers: setup
	$(BIN)/python -m pipelines.readme_numbers record

dvc-repro: setup dvc-setup
	$(TOOLS)/dvc/bin/dvc repro
	$(TOOLS)/dvc/bin/dvc push

bench: setup
	$(BIN)/python bench/generate.py

clean:
	rm -rf .state data/sample
