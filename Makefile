# django-imagegen: `make demo` runs the example project, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
MANAGE := $(PY) example_project/manage.py
DJANGO6_VENV ?= .venv-django6
DJANGO6_SPEC ?= django>=6.1,<6.2
PYTEST_ARGS ?=
# The Wagtail integration is tested on the Wagtail LTS and the newest Wagtail release, each in its
# own virtualenv (.venv-wagtail7.4, .venv-wagtail8.0); the demo runs on the newest.
WAGTAIL_LTS ?= 7.4
WAGTAIL_NEWEST ?= 8.0
WAGTAIL_VENV ?= .venv-wagtail
WAGTAIL_DEMO_PY := $(WAGTAIL_VENV)$(WAGTAIL_NEWEST)/bin/python
WAGTAIL_MANAGE := $(WAGTAIL_DEMO_PY) example_project/manage.py
WAGTAIL_SETTINGS := --settings=config.settings_wagtail
WORKER_CONCURRENCY ?= 4

.PHONY: help venv install install-test services browsers test test-unit test-postgres \
        test-django6 test-browser test-sdist test-wagtail screenshots lint format demo demo-setup \
        demo-wagtail serve docs build bench clean worker

help:  ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

venv: $(PY)  ## Create the virtualenv (.venv, with python3).

$(VENV)/.installed: pyproject.toml example_project/requirements.txt | $(PY)
	$(PIP) install -e . -r example_project/requirements.txt
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -e '.[test,docs,s3,tasks,celery,c2pa]'
	@touch $@

install: $(VENV)/.installed  ## Install the package (editable) and the example project's needs.

install-test: $(VENV)/.installed-test  ## Install what the tests need.

services:  ## Start PostgreSQL and Redis if they are down.
	@bash scripts/services.sh

browsers:  ## Install Debian's Chromium if missing (apt-get, no recommends, no upgrades).
	@bash scripts/install-chromium.sh

test: install-test services browsers  ## Lint, the suite on SQLite, then pipeline and browser tests on PostgreSQL.
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)
	$(PY) -m pytest -m "postgres or browser" --ds=tests.settings_postgres $(PYTEST_ARGS)

test-unit: install-test  ## Only the SQLite suite (no browser tests).
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

test-postgres: install-test services browsers  ## The tests marked postgres or browser, on PostgreSQL.
	$(PY) -m pytest -m "postgres or browser" --ds=tests.settings_postgres $(PYTEST_ARGS)

test-browser: install-test services browsers  ## Only the browser tests (Playwright, Chromium), on PostgreSQL.
	$(PY) -m pytest -m browser --ds=tests.settings_postgres $(PYTEST_ARGS)

screenshots: install-test services browsers  ## Refresh the docs' admin screenshots (docs/_static/screenshots).
	IMAGEGEN_SCREENSHOT_DIR=docs/_static/screenshots \
	  $(PY) -m pytest -m browser --ds=tests.settings_postgres $(PYTEST_ARGS)

test-django6:  ## The unit tests (not docs/packaging builds) on the newest Django 6.x, python3.12.
	@test -x $(DJANGO6_VENV)/bin/python || "$$(bash scripts/find-python.sh 3.12)" -m venv $(DJANGO6_VENV)
	$(DJANGO6_VENV)/bin/python -m pip --disable-pip-version-check -q install \
	  -e '.[test,tasks,celery,s3]' '$(DJANGO6_SPEC)'
	$(DJANGO6_VENV)/bin/python -c 'import django; print("Django", django.get_version())'
	$(DJANGO6_VENV)/bin/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# $(call wagtail-venv,VERSION): make .venv-wagtailVERSION with Wagtail VERSION.x, the package with
# its wagtail extra, the example project's needs and the test tools.
define wagtail-venv
	@test -x $(WAGTAIL_VENV)$(1)/bin/python || $(PYTHON) -m venv $(WAGTAIL_VENV)$(1)
	$(WAGTAIL_VENV)$(1)/bin/python -m pip --disable-pip-version-check -q install \
	  -e '.[wagtail]' -r example_project/requirements.txt 'wagtail~=$(1).0' \
	  'pytest>=8' 'pytest-django>=4.9' 'playwright>=1.45'
	$(WAGTAIL_VENV)$(1)/bin/python -c 'import wagtail; print("Wagtail", wagtail.__version__)'
endef

test-wagtail: browsers  ## The Wagtail integration's tests on Wagtail 7.4 LTS and 8.0 (browser and custom image model on 8.0).
	$(call wagtail-venv,$(WAGTAIL_LTS))
	$(WAGTAIL_VENV)$(WAGTAIL_LTS)/bin/python -m pytest tests/contrib/wagtail \
	  --ds=tests.settings_wagtail -m "not browser" $(PYTEST_ARGS)
	$(call wagtail-venv,$(WAGTAIL_NEWEST))
	$(WAGTAIL_VENV)$(WAGTAIL_NEWEST)/bin/python -m pytest tests/contrib/wagtail \
	  --ds=tests.settings_wagtail $(PYTEST_ARGS)
	$(WAGTAIL_VENV)$(WAGTAIL_NEWEST)/bin/python -m pytest \
	  --ds=tests.settings_wagtail_custom_image -m "not browser" $(PYTEST_ARGS) \
	  tests/contrib/wagtail/test_custom_image.py tests/contrib/wagtail/test_images.py \
	  tests/contrib/wagtail/test_chooser.py tests/contrib/wagtail/test_panel.py

lint: install-test  ## ruff (lint and format) and the import layers (import-linter).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install-test  ## Apply ruff's fixes and formatting.
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo-setup: install  ## Migrate, create admin/admin if absent, seed and generate the demo images.
	$(MANAGE) migrate --noinput -v 0
	@$(MANAGE) shell -v 0 -c "from django.contrib.auth import get_user_model as g; U = g(); \
	created = not U.objects.filter(username='admin').exists(); \
	created and U.objects.create_superuser('admin', 'admin@example.com', 'admin'); \
	print('Superuser admin/admin created.' if created else 'Superuser admin exists.')"
	$(MANAGE) imagegen_demo

demo: demo-setup  ## Set everything up, then serve the admin on http://127.0.0.1:8000/admin/.
	@echo ""
	@echo "  Admin:  http://127.0.0.1:8000/admin/   login: admin / admin"
	@echo "  Site:   http://127.0.0.1:8000/"
	@echo ""
	$(MANAGE) runserver 127.0.0.1:8000

demo-wagtail:  ## The Wagtail site of the example project on http://127.0.0.1:8000/cms/ (Wagtail 8.0).
	$(call wagtail-venv,$(WAGTAIL_NEWEST))
	$(WAGTAIL_MANAGE) migrate --noinput -v 0 $(WAGTAIL_SETTINGS)
	@$(WAGTAIL_MANAGE) shell -v 0 $(WAGTAIL_SETTINGS) -c "from django.contrib.auth import \
	get_user_model as g; U = g(); created = not U.objects.filter(username='admin').exists(); \
	created and U.objects.create_superuser('admin', 'admin@example.com', 'admin'); \
	print('Superuser admin/admin created.' if created else 'Superuser admin exists.')"
	$(WAGTAIL_MANAGE) imagegen_wagtail_demo $(WAGTAIL_SETTINGS)
	@echo ""
	@echo "  Wagtail admin:  http://127.0.0.1:8000/cms/   login: admin / admin (or editor / editor)"
	@echo "  Site:           http://127.0.0.1:8000/"
	@echo ""
	$(WAGTAIL_MANAGE) runserver 127.0.0.1:8000 $(WAGTAIL_SETTINGS)

worker: install  ## Run a Celery worker (with beat) for the example project: needs Redis.
	IMAGEGEN_TASK_RUNNER=celery $(PY) -m celery --workdir example_project -A config worker \
	  --loglevel=INFO --concurrency=$(WORKER_CONCURRENCY) --beat \
	  --schedule=$(abspath $(VENV))/celerybeat-schedule

docs: install-test  ## Build the Sphinx docs into docs/_build/html (warnings are errors).
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

build: install-test  ## Build the sdist and wheel into dist/, and check them with twine.
	rm -rf dist && $(PY) -m build -q -o dist .
	$(PY) -m twine check --strict dist/*

# The sdist must be enough to run the tests: build it (and the wheel from it), check both with
# twine, unpack it in a temporary directory, install the wheel with the test extras in a fresh
# virtualenv there, and run the SQLite unit tests from the unpacked tree.
test-sdist: install-test  ## Build the sdist, unpack it, and run its unit tests in a fresh venv.
	@set -euo pipefail; \
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	echo "== build and twine check (in $$tmp)"; \
	$(PY) -m build -q -o "$$tmp/dist" . >/dev/null; \
	$(PY) -m twine check --strict "$$tmp"/dist/*; \
	tar -xzf "$$tmp"/dist/*.tar.gz -C "$$tmp"; \
	src="$$(echo "$$tmp"/django_imagegen-*/)"; \
	echo "== install into a fresh virtualenv"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip --disable-pip-version-check -q install \
	  "$$(echo "$$tmp"/dist/*.whl)[test,tasks,celery,s3]"; \
	echo "== unit tests from $$src"; \
	cd "$$src" && "$$tmp/venv/bin/python" -m pytest -p no:cacheprovider \
	  -m "not browser and not postgres and not slow" $(PYTEST_ARGS)

bench: install-test  ## Run the benchmarks (they print ratios).
	@for script in benchmarks/*.py; do \
	  [ "$$script" = benchmarks/django_setup.py ] && continue; \
	  echo "== $$script"; $(PY) $$script || exit 1; done

clean:  ## Remove virtualenvs, build output and demo data.
	rm -rf $(VENV) $(DJANGO6_VENV) $(WAGTAIL_VENV)* dist build docs/_build .pytest_cache \
	  .ruff_cache example_project/db.sqlite3 example_project/db-wagtail.sqlite3 example_project/media
