# erpsync: `make run` starts the app with demo data; `make test` runs the test suite.
# Both need only Python 3.11+ on the machine: everything else is installed into .venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PORT ?= $(shell echo $$(( $(PORT) + 1 )))
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test setup translations messages lint typecheck check clean

help:
	@echo "make run    set up .venv, migrate, seed demo data, start web + worker + beat + Demo ERP on http://127.0.0.1:$(PORT)/"
	@echo "make test   run the test suite (set DATABASE_URL / CELERY_BROKER_URL to test on PostgreSQL / Redis)"
	@echo "make check  ruff, mypy and makemigrations --check"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Babel compiles the catalogues, so no GNU gettext is needed on the machine.
translations: $(VENV)/.installed-run
	$(VENV)/bin/pybabel compile --domain django --directory locale --statistics 2>&1 | sed 's/^/  /'

setup: $(VENV)/.installed-run translations
	mkdir -p var/static
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input -v 0
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo --demo-connector-url http://127.0.0.1:$(DEMO_PORT)

run: setup
	@echo ""
	@echo "  erpsync is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Log in as admin / demo (or anna, erik, sara, erpadmin; all with password demo)."
	@echo "  The Demo ERP connector listens on http://127.0.0.1:$(DEMO_PORT)/v1/ (API key: demo-api-key)."
	@echo "  Press Ctrl+C to stop web, worker, beat and the connector."
	@echo ""
	DEBUG=$${DEBUG:-1} ERPSYNC_PORT=$(PORT) ERPSYNC_DEMO_PORT=$(DEMO_PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/honcho start

test: $(VENV)/.installed-dev translations
	DEBUG=$${DEBUG:-1} $(PY) -m pytest $(PYTEST_ARGS)

# Needs GNU gettext (xgettext); only for developers changing UI strings.
messages: $(VENV)/.installed-dev
	DEBUG=1 $(PY) manage.py makemessages --locale sv --no-obsolete --ignore '.venv/*' --ignore 'var/*'

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	DEBUG=1 $(VENV)/bin/mypy .

check: lint typecheck
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
