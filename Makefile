# erpsync: `make run` starts the app with demo data; `make test` runs the test suite.
# Both need only Python 3.11+ on the machine: everything else is installed into .venv.
# `make run` allows its own Demo ERP on loopback through ERPSYNC_CONNECTOR_HOSTS (connectors on internal addresses
# need the host named there), unless the variable is already set.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PORT ?= $(shell echo $$(( $(PORT) + 1 )))
PYTEST_ARGS ?=
# Test processes side by side (pytest-xdist): one per core by default; TEST_WORKERS=0 runs the tests in this process.
TEST_WORKERS ?= auto
# make bench: every benchmark, or some (make bench BENCH="load_test crm_pages"); the PostgreSQL and Redis they use.
BENCH ?= crm_pages connector_protocol sync_engine sync_scale first_sync_all change_latency reconcile erp_tab_load erp_tab_search tryton_sync import_from_erp load_test sync_log_export
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/erpsync_bench
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/14

.DEFAULT_GOAL := help
.PHONY: help run test coverage setup translations messages lint typecheck check bench lock clean

help:
	@echo "make run    set up .venv, migrate, seed demo data, start web + worker + beat + Demo ERP on http://127.0.0.1:$(PORT)/"
	@echo "make test   run the test suite (set DATABASE_URL / CELERY_BROKER_URL to test on PostgreSQL / Redis)"
	@echo "make coverage  the test suite with branch coverage of the apps, in the terminal and in var/coverage/"
	@echo "make check  ruff, import-linter (layers, no cycles), mypy and makemigrations --check"
	@echo "make bench  run the benchmarks (BENCH=\"load_test …\" for some) and regenerate the table in docs/performance.md"
	@echo "make lock   pin the production dependencies with their hashes in requirements/production.txt"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e '.[bench]'
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
	DEBUG=$${DEBUG:-1} ERPSYNC_PORT=$(PORT) ERPSYNC_DEMO_PORT=$(DEMO_PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  ERPSYNC_CONNECTOR_HOSTS="$${ERPSYNC_CONNECTOR_HOSTS:-127.0.0.1:$(DEMO_PORT)}" \
	  ERPSYNC_PUBLIC_URL="$${ERPSYNC_PUBLIC_URL:-http://127.0.0.1:$(PORT)}" exec $(VENV)/bin/honcho start

test: $(VENV)/.installed-dev translations
	DEBUG=$${DEBUG:-1} $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# What is measured and how is in pyproject.toml's [tool.coverage]; the HTML report shows the lines never run.
coverage: $(VENV)/.installed-dev translations
	DEBUG=$${DEBUG:-1} $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --cov --cov-report=term \
	  --cov-report=html:var/coverage $(PYTEST_ARGS)

# Needs GNU gettext (xgettext); only for developers changing UI strings.
messages: $(VENV)/.installed-dev
	DEBUG=1 $(PY) manage.py makemessages --locale sv --no-obsolete --ignore '.venv/*' --ignore 'var/*'

# The published OpenAPI document of the connector protocol, generated from connectors/protocol.py; a test fails
# while the file in docs/ is not what this makes.
.PHONY: schema
schema: $(VENV)/.installed-run
	$(PY) -m connectors.protocol --schema > docs/connector-protocol-v1.1.openapi.json

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/lint-imports

typecheck: $(VENV)/.installed-dev
	DEBUG=1 $(VENV)/bin/mypy .

check: lint typecheck
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# Each benchmark prints its figures and writes bench/results/<name>.json; report.py then rewrites the table in
# docs/performance.md. Those on PostgreSQL + Redis get BENCH_DATABASE_URL (emptied first) and BENCH_BROKER_URL;
# crm_pages, erp_tab_search and tryton_sync use SQLite files under var/, connector_protocol only the Demo ERP's
# own SQLite.
# A benchmark that fails does not stop the others; its last recorded figures stay in the table, with their date.
bench: $(VENV)/.installed-bench translations
	@failed=""; for name in $(BENCH); do \
	  case $$name in \
	    sync_engine|sync_scale|first_sync_all|change_latency|reconcile|import_from_erp|erp_tab_load|load_test|sync_log_export) \
	      set -- env DATABASE_URL=$(BENCH_DATABASE_URL) CELERY_BROKER_URL=$(BENCH_BROKER_URL);; \
	    *) set -- env -u DATABASE_URL -u CELERY_BROKER_URL;; \
	  esac; \
	  echo "== bench/$$name.py"; \
	  "$$@" $(PY) bench/$$name.py || failed="$$failed $$name"; \
	done; \
	$(PY) bench/report.py > /dev/null && echo "== docs/performance.md: table regenerated from bench/results/"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed (their last recorded figures stay in the table)"; exit 1; fi

# requirements/production.txt: pyproject.toml's production dependencies (no dev or bench extras) and its build
# backend, pinned with their hashes; the Dockerfile and .ci/production-smoke install exactly that set. Pins already
# in the file are kept, so after adding a dependency only what it brings changes. LOCK_ARGS=--upgrade moves every
# pin to the newest release the ranges allow; LOCK_ARGS="--upgrade-package django" moves one.
# Markers are resolved for the interpreter that runs pip-compile, hence the image's Python version.
LOCK_PYTHON_VERSION := 3.11
LOCK_ARGS ?=
lock: $(VENV)/.installed-dev
	@v=$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); [ "$$v" = "$(LOCK_PYTHON_VERSION)" ] || \
	  { echo "make lock: $(VENV) runs Python $$v; lock with the image's Python $(LOCK_PYTHON_VERSION) (PYTHON=python$(LOCK_PYTHON_VERSION) for a new $(VENV))"; exit 1; }
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	  --build-deps-for wheel --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	  --output-file requirements/production.txt pyproject.toml

clean:
	rm -rf $(VENV) var
