# `make run` and `make test` work on a fresh machine with Python 3.11: each creates .venv and
# installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python server.py

test: install-dev
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache

lint: install-dev
	$(BIN)/ruff check --select F,I,E9,B --ignore B023 --line-length 120 --exclude .venv .
