# The two commands: `make run` (set up, migrate, demo accounts, serve on SQLite) and
# `make test` (set up, start services if needed, run the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps services clean

run: setup
	$(BIN)/caretrack migrate
	$(BIN)/caretrack demo
	$(BIN)/caretrack serve --port $(PORT)

test: setup system-deps services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
