# The two commands a new machine needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install system-deps run test lint fmt migrate seed stop-db clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## Chromium and Korean fonts for the browser tests: installed with apt-get when missing and possible, otherwise
## it stops and names the one command to run (scripts/ensure_system_deps.sh; CHROMIUM_PATH is honoured).
system-deps:
	@bash scripts/ensure_system_deps.sh

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

## Start web (:8000), Celery worker, Celery beat and the Iamport sandbox (:8089). Ctrl-C stops them all.
run: seed
	@$(PY) manage.py run_banner
	$(VENV)/bin/honcho start -f Procfile

## The whole test suite.
test: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m billing.api.schema_check

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Stop the embedded PostgreSQL started under var/ (it is left running between runs for speed).
stop-db: install
	$(PY) -c "from config import embedded; embedded.stop()"

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
