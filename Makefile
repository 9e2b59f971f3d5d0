# tanpuhui: `make run` starts the service, `make test` runs the tests. Both set themselves up.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tanpuhui needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(STAMP) ## Create .venv and install the locked dependencies

run: $(STAMP) ## Start API + worker + beat (embedded PostgreSQL and Redis unless URLs are set); DEMO=1 also loads the demo city
	$(if $(DEMO),$(BIN)/tanpuhui demo --wait &) $(BIN)/tanpuhui dev

test: $(STAMP) ## Run the tests (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded stores)
	$(BIN)/pytest

lint: $(STAMP) ## ruff (curated rules), ruff format check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## Run the benchmarks (see BENCHMARKS.md)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: ## Re-resolve requirements.lock from pyproject.toml (needs network access to the index)
	rm -rf /tmp/tph-lock && $(PYTHON) -m venv /tmp/tph-lock
	/tmp/tph-lock/bin/pip install --quiet '.[dev]'
	/tmp/tph-lock/bin/pip freeze --exclude tanpuhui > requirements.lock

clean: ## Remove the virtual environment (keeps ./var data)
	rm -rf $(VENV)

.PHONY: help install run test lint fmt bench lock clean
