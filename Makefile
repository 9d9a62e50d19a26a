# The two commands: `make lab` and `make test`. Each first runs an idempotent setup
# (virtualenv, the project, the Restate server binary from npm); quiet and fast when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_ARGS ?=
# The browser tests drive the system's Chromium (Debian: apt-get install -y chromium)
CHROMIUM := $(or $(WORKBENCH_CHROMIUM),$(shell command -v chromium || command -v chromium-browser))
# JupyterLab refuses to run as root unless told (containers, CI machines)
JUPYTER_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test test-unit test-integration test-notebooks test-browser lint format bench up \
	down status clean

setup: $(STAMP) $(NPM_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lab: setup
	$(BIN)/python -m workbench up
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(JUPYTER_ARGS)

test: setup lint
	@$(if $(CHROMIUM),,echo "NOTE: Chromium not found: the browser tests (tests/browser) are SKIPPED." \
		"Install it (apt-get install -y chromium) or set WORKBENCH_CHROMIUM to run them.")
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-notebooks: setup
	$(BIN)/pytest tests/notebooks $(PYTEST_ARGS)

test-browser: setup
	@$(if $(CHROMIUM),,echo "NOTE: Chromium not found: the browser tests are SKIPPED." \
		"Install it (apt-get install -y chromium) or set WORKBENCH_CHROMIUM to run them.")
	$(BIN)/pytest tests/browser $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check workbench services tests
	$(BIN)/ruff format --check workbench services tests

format: setup
	$(BIN)/ruff format workbench services tests
	$(BIN)/ruff check --fix workbench services tests

bench: setup
	$(BIN)/python -m workbench.bench

up: setup
	$(BIN)/python -m workbench up

down:
	$(BIN)/python -m workbench down

status:
	$(BIN)/python -m workbench status

clean:
	-$(BIN)/python -m workbench reset
	rm -rf $(VENV) node_modules
