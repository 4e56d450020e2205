# dse-lightning: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch 2.13.0 is installed first; on a CUDA machine use e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
# The exact versions the committed results ran on; LOCK= resolves pyproject.toml's ranges instead.
LOCK ?= requirements.lock
CONSTRAINTS = $(if $(LOCK),-c $(LOCK))
PYTEST_ARGS ?=
BENCH_ARGS ?=
PROFILE ?= cpu_fast_bf16
TABLE_ARGS ?=

.PHONY: help install lock test test-slow demo bench reproduce-table lint clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(CONSTRAINTS)
	$(PY) -m pip install --quiet -e ".[dev,slurm]" $(CONSTRAINTS)
	touch $@

install: $(VENV)/.installed ## Create .venv: torch first (TORCH_SPEC), then the project and its dev extra, at the versions of requirements.lock

LOCK_VENV := /tmp/dse-lightning-lock-venv
lock: ## Refresh requirements.lock: resolve pyproject.toml's ranges in a fresh venv and freeze it (then rerun the tests)
	rm -rf $(LOCK_VENV) && python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(LOCK_VENV)/bin/pip install --quiet -e ".[dev,slurm]"
	{ sed -n '/^#/p' requirements.lock; $(LOCK_VENV)/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock && rm -rf $(LOCK_VENV)

test: install ## Run the fast test tier (the default suite, CI's)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install ## Run the slow tier (DDP, resume, sweeps, full trainings, the full bench run)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

demo: install ## The main job on its offline defaults (MRPC, embedded MiniLM)
	$(PY) -m dse_lightning.train

bench: install ## Scoring speed: cross-encoder vs student with cached candidates -> experiments/bench/ (a few min)
	$(PY) -m dse_lightning.bench $(BENCH_ARGS)

reproduce-table: install ## The paper's table: PROFILE=cpu_fast_bf16 (default, 4 students, bf16), cpu_fast (the same, fp32), cpu (7: ablations too) or paper (GPUs, hub) -> experiments/paper_table/
	$(PY) -m dse_lightning.table $(PROFILE) $(TABLE_ARGS)

# lint-imports: the contracts of pyproject.toml's [tool.importlinter]; --no-cache as the graph takes a second
# and its cache goes stale when a folder becomes a package
lint: install ## ruff check + format check + import layers and cycles (import-linter, pyproject.toml)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/lint-imports --no-cache

clean: ## Remove caches, run logs and build leftovers (keeps .venv)
	rm -rf .cache logs outputs multirun .pytest_cache .ruff_cache .import_linter_cache src/*.egg-info build dist
