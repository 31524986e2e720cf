# Storedesk — `make run` (the whole product on one machine) and `make test` (the full suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
UV_VENV := .cache/uv-venv
UV := $(UV_VENV)/bin/uv
UV_VERSION := 0.13.9
PORT ?= 8000
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/storedesk)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)

.PHONY: help install run migrate seed test test-smoke lint format bench clean

help:
	@echo "make run        start web, worker and beat with a seeded demo store (http://127.0.0.1:$(PORT)/)"
	@echo "make test       full suite on Postgres + Redis, then the smoke subset on the embedded default"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make bench      benchmarks at realistic scale (see README)"

# The interpreter is looked up once per install; a clear message when there is none.
$(UV):
	@PYBIN=$$(scripts/find-python) || exit 1; \
	  echo "Using $$PYBIN ($$($$PYBIN -V))"; \
	  $$PYBIN -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	@PYBIN=$$(scripts/find-python) || exit 1; \
	  $(UV) sync --frozen --python $$PYBIN
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# Local HTTP on 127.0.0.1: no TLS redirect, emails printed by the worker's console.
run: export SECURE_SSL_REDIRECT ?= 0
run: export EMAIL_URL ?= console:
run: export BASE_URL ?= http://127.0.0.1:$(PORT)
run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --once
	@echo ""
	@echo "  Storedesk is starting on http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker and beat)"
	@echo ""
	PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

test: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -n $${PYTEST_WORKERS:-auto} --dist loadgroup -q
	$(MAKE) --no-print-directory test-smoke

# The embedded default (SQLite + filesystem broker) that `make run` uses, so it cannot silently break.
test-smoke: install
	env -u DATABASE_URL -u REDIS_URL STOREDESK_VAR_DIR=$$(mktemp -d) $(PY) -m pytest -m smoke -q -p no:xdist

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	DATABASE_URL=$(or $(BENCH_DATABASE_URL),postgres://postgres@127.0.0.1:5432/storedesk_bench) REDIS_URL=$(TEST_REDIS_URL) $(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(UV_VENV) var
