# Mutualis — the two commands a newcomer needs: `make run` and `make test`.
# Everything else here is what those two call, plus the checks CI runs (.ci/run).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PYTEST_ARGS ?= -n auto
HOST ?= 127.0.0.1
PORT ?= 8000
# make bench: fraction of France generated (0.1: ~126 EPCI, ~3 500 communes, ~1.2 M usage rows),
# and of the smaller database whose statements the Celery batches render.
BENCH_SCALE ?= 0.1
BENCH_BATCH_SCALE ?= 0.001

# Debian packages: WeasyPrint's libraries and fonts (run), Chromium and Poppler (browser tests,
# PDF checks), Node.js and npm (front-end assets from the pinned package-lock.json).
RUN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation2
TEST_PACKAGES := chromium poppler-utils
NODE_PACKAGES := nodejs npm

# Development server only: DEBUG on, demo accounts allowed. Never used for production.
DEV_ENV := DJANGO_DEBUG=true

.PHONY: help run test load bench lint format check-deploy migrations-check system-run system-test ci clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

run: system-run $(VENV)/.installed node_modules/.installed ## Set up, migrate, seed the demo territory, serve on 127.0.0.1:8000
	@mkdir -p var
	@test -f .env || { echo "DJANGO_DEBUG=true" > .env; echo "Fichier .env créé (développement : DJANGO_DEBUG=true)."; }
	$(DEV_ENV) $(MANAGE) migrate --noinput
	$(DEV_ENV) $(MANAGE) seed_demo
	@echo
	@echo "  Mutualis : http://$(HOST):$(PORT)/"
	@echo "  Comptes de démonstration (mot de passe : demo-mutualis-2026) :"
	@echo "    gestionnaire       gestionnaire des conventions (Métropole)"
	@echo "    finances           agent des finances (Métropole)"
	@echo "    lecteur.clermont   lecteur de la commune de Clermont-Ferrand"
	@echo "    lecteur.aubiere    lecteur de la commune d'Aubière"
	@echo "    admin              administrateur (accès à /admin/)"
	@echo
	$(DEV_ENV) $(MANAGE) runserver $(HOST):$(PORT)

test: system-test $(VENV)/.installed node_modules/.installed ## Run the whole test suite (DATABASE_URL picks the database)
	@mkdir -p var
	$(PY) -m pytest $(PYTEST_ARGS)

load: system-run $(VENV)/.installed node_modules/.installed ## Load test on PostgreSQL: gunicorn + locust, 30 users for 60 s (LOAD_USERS, LOAD_DURATION)
	$(PY) loadtest/run.py

bench: system-run $(VENV)/.installed node_modules/.installed ## Figures at national scale on PostgreSQL → docs/performance.md (BENCH_SCALE=0.1, BENCH_BATCH_SCALE)
	BENCH_SCALE=$(BENCH_SCALE) BENCH_BATCH_SCALE=$(BENCH_BATCH_SCALE) $(PY) bench/run.py

lint: $(VENV)/.installed ## ruff (lint and format) and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed ## Reformat the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(VENV)/.installed ## Fail when a model change has no migration
	$(DEV_ENV) $(MANAGE) makemigrations --check --dry-run

check-deploy: $(VENV)/.installed node_modules/.installed ## Production-like settings: check --deploy and collectstatic
	.ci/check-deploy

ci: ## What CI runs (.ci/run)
	bash .ci/run

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python >= 3.11 est requis (trouvé : $$($(PYTHON) --version))."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory system-node
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Install missing Debian packages when root; otherwise print the exact command and stop.
define ensure_packages
	@missing=""; for pkg in $(1); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installation des paquets système :$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "Paquets système manquants. Lancez :"; \
	    echo "  sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

system-run:
	$(call ensure_packages,$(RUN_PACKAGES))

system-test: system-run
	$(call ensure_packages,$(TEST_PACKAGES))

system-node:
	$(call ensure_packages,$(NODE_PACKAGES))

clean: ## Remove the virtual environment, node_modules and var/ (database, media)
	rm -rf $(VENV) node_modules var
