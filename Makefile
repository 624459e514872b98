# erpsync: `make run` starts the app with demo data; `make test` runs the test suite.
# Both need only Python 3.11+ on the machine: everything else is installed into .venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PORT ?= $(shell echo $$(( $(PORT) + 1 )))
PYTEST_ARGS ?=
# make bench: every benchmark, or some (make bench BENCH="load_test crm_pages"); the PostgreSQL and Redis they use.
BENCH ?= crm_pages connector_protocol sync_engine erp_tab_load tryton_sync import_from_erp load_test
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/erpsync_bench
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/14

.DEFAULT_GOAL := help
.PHONY: help run test setup translations messages lint typecheck check bench clean

help:
	@echo "make run    set up .venv, migrate, seed demo data, start web + worker + beat + Demo ERP on http://127.0.0.1:$(PORT)/"
	@echo "make test   run the test suite (set DATABASE_URL / CELERY_BROKER_URL to test on PostgreSQL / Redis)"
	@echo "make check  ruff, mypy and makemigrations --check"
	@echo "make bench  run the benchmarks (BENCH=\"load_test …\" for some) and regenerate the table in docs/performance.md"

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

# Each benchmark prints its figures and writes bench/results/<name>.json; report.py then rewrites the table in
# docs/performance.md. Those on PostgreSQL + Redis get BENCH_DATABASE_URL (emptied first) and BENCH_BROKER_URL;
# crm_pages and tryton_sync use SQLite files under var/, connector_protocol only the Demo ERP's own SQLite.
# A benchmark that fails does not stop the others; its last recorded figures stay in the table, with their date.
bench: $(VENV)/.installed-bench translations
	@failed=""; for name in $(BENCH); do \
	  case $$name in \
	    sync_engine|import_from_erp|erp_tab_load|load_test) \
	      set -- env DATABASE_URL=$(BENCH_DATABASE_URL) CELERY_BROKER_URL=$(BENCH_BROKER_URL);; \
	    *) set -- env -u DATABASE_URL -u CELERY_BROKER_URL;; \
	  esac; \
	  echo "== bench/$$name.py"; \
	  "$$@" $(PY) bench/$$name.py || failed="$$failed $$name"; \
	done; \
	$(PY) bench/report.py > /dev/null && echo "== docs/performance.md: table regenerated from bench/results/"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed (their last recorded figures stay in the table)"; exit 1; fi

clean:
	rm -rf $(VENV) var
