# The two commands: `make run` (set up, migrate, demo accounts, serve on SQLite) and
# `make test` (set up, lint and type checks, start services if needed, the production smoke, the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint smoke setup system-deps services clean

run: setup
	$(BIN)/caretrack migrate
	$(BIN)/caretrack demo
	$(BIN)/caretrack serve --port $(PORT)

test: setup lint system-deps services smoke
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff ([tool.ruff]), the floors' import contract ([tool.importlinter], docs/architecture.md)
# and mypy strict with its ratchet (scripts/mypy-ratchet, mypy-ratchet.txt); all must pass.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/mypy-ratchet

# The wheel installed as production installs it (new venv, no extras, not editable) must
# migrate, serve /readyz and a page with its CSS, and stop cleanly on SIGTERM.
smoke:
	PYTHON=$(PYTHON) scripts/smoke-install

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

system-deps:
	scripts/install-system-deps

services:
	scripts/ensure-services

clean:
	rm -rf $(VENV) var build *.egg-info
