# `make run` and `make test` work on a fresh machine with Python 3.11: each creates .venv and
# installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check types bench profile wrk lint install install-dev browser nginx clean ts-client ts-packages

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

# The browser test drives Debian's Chromium (no browser download is possible here). Where it
# cannot be installed, that one test is skipped with its reason in the summary.
browser:
	@command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "WARNING: chromium could not be installed: the browser test will be skipped"

# nginx, for the test that runs deploy/nginx.conf; skipped where it cannot be installed.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || apt-get install -y -qq nginx-light >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq nginx-light) >/dev/null 2>&1 \
		|| echo "WARNING: nginx could not be installed: the deployment test will be skipped"

# openapi-typescript, openapi-fetch and tsc (clients/typescript, from npm, as its lock file says), for the
# test that makes a TypeScript client from /openapi.json and tours the service with it; skipped
# where Node.js or npm is missing.
ts-packages:
	@command -v npm >/dev/null && (cd clients/typescript && npm ci --silent --no-audit --no-fund) \
		|| echo "WARNING: the npm packages could not be installed: the TypeScript client test will be skipped"

# Two workers (the machines here, CI's too, have two cores), each with its own SecantusDB; then the
# tests marked `alone` (each bounds how long something waits) on a quiet machine, one at a time: in
# the parallel run, one of them would first wait for the other worker's test to end (up to a
# minute). Both runs always run; the target fails if either does. The type checker runs first: it
# takes seconds, and CI (which runs this target) checks types too.
test: install-dev types browser nginx ts-packages
	$(BIN)/python -m pytest -n 2 -m "not alone"; parallel=$$?; \
		$(BIN)/python -m pytest -m alone; alone=$$?; \
		test $$parallel -eq 0 -a $$alone -eq 0

$(VENV)/.installed-bench: requirements-bench.txt $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

# The load generator of `bench perf` and `bench profile`, from Debian.
wrk:
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| echo "WARNING: wrk could not be installed: bench perf and bench profile will stop"

# Every benchmark but the profile (`make profile`); one of them: `make bench NAMES=perf`.
bench: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench $(NAMES)

profile: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench profile

clean:
	rm -rf $(VENV) .pytest_cache

lint: install-dev
	$(BIN)/ruff check --select F,I,E9,B --ignore B023 --line-length 120 --exclude .venv .

# The type checker: mypy, strict, over handlers, web, formats, storage, auth and the top-level modules (mypy.ini).
types: install-dev
	$(BIN)/mypy

# The fast lane, before every commit: lint, the type checker and the unit tests (tests/unit: pure
# rules, no server, no database), in seconds.
check: lint types
	$(BIN)/python -m pytest tests/unit -q

# A typed TypeScript client from /openapi.json (openapi-typescript, from npm), and `tsc` over a
# usage file that uses it: the document is what generated clients need.
ts-client: install
	$(BIN)/python -c "import json; from handlers.application import all_routes; \
	from web.openapi import openapi_document; \
	print(json.dumps(openapi_document(all_routes()), indent=1))" > clients/typescript/openapi.json
	cd clients/typescript && npm install --silent --no-audit --no-fund \
		&& npx openapi-typescript openapi.json --default-non-nullable false -o tsundoku-api.d.ts && npx tsc -p .
