# Every workflow step calls one of these targets, so CI and a laptop run the same thing.
# Quick start: `make run` (pipeline on the default data), `make test` (the full suite).

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
BASE ?= main

export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1
export UV_PYTHON := $(PYTHON)
export UV_PROJECT_ENVIRONMENT := $(VENV)
# dvc.yaml stages call `gitops-ml`; make them find the project environment.
export PATH := $(abspath $(BIN)):$(PATH)

# Targets the workflows call.
TARGETS ?=
REPRO ?=

.PHONY: help install hooks run repro dvc-pull test test-fast lint format typecheck lock pr-report serve \
	bench bench-pipeline bench-serving bench-drift deploy-local drift-demo clean \
	status demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --extra pipeline
	@touch $@

install: $(VENV)/.installed ## create .venv from the lock file (uv.lock, hashed)

run: install ## reproduce the pipeline on the configured data and print the metrics
	$(BIN)/dvc repro
	@$(BIN)/gitops-ml summary

repro: install ## dvc repro [REPRO="stage or flags"]: the pipeline, or one stage and what it needs
	$(BIN)/dvc repro $(REPRO)

dvc-pull: install ## pull DVC-tracked files [TARGETS=…] when a remote is configured and reachable
	scripts/dvc-pull.sh $(TARGETS)

test: install ## the full test suite (what .ci/run runs)
	$(BIN)/pytest

test-fast: install ## unit tests only, skipping the slow end-to-end tests
	$(BIN)/pytest -m "not slow"

lint: install ## ruff lint + format check + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

hooks: install ## install the git pre-commit hooks (the same checks as `make lint`)
	$(BIN)/pre-commit install

format: install ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

lock: $(UV) ## update every dependency to the newest allowed version
	$(UV) lock --upgrade

pr-report: install ## the pull-request report against BASE (default main)
	$(BIN)/gitops-ml report --base $(BASE) --output reports/pr_report.md
	@echo "report: reports/pr_report.md"

serve: install ## serve the exported model on http://127.0.0.1:8080
	$(BIN)/python -m serving --model models/model.onnx --host 127.0.0.1 --port 8080

bench: bench-pipeline bench-serving bench-drift ## every benchmark

bench-pipeline: install
	$(BIN)/python benchmarks/pipeline.py

bench-serving: install
	$(BIN)/python benchmarks/serving.py

bench-drift: install
	$(BIN)/python benchmarks/drift.py

deploy-local: install ## bundle, smoke test and switch the local deployment
	$(BIN)/gitops-ml deploy-local

drift-demo: install ## simulate a drifted production window and check it
	$(BIN)/gitops-ml simulate --scenario price_increase --rows 20000 --output data/current/window.parquet
	$(BIN)/gitops-ml drift --profile models/reference_profile.json \
		--current data/current/window.parquet --model models/model.onnx --output-dir reports/drift

demo: install ## the whole loop in ~2 minutes, locally (PR, merge, deploy, drift, retrain)
	$(BIN)/gitops-ml demo

status: install ## what each environment (deploy/<env>) runs, according to Git
	$(BIN)/gitops-ml status

clean: ## remove the environments (not data or the DVC cache)
	rm -rf $(VENV) $(TOOLS)
