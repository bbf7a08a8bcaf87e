# Every target builds .venv first when it is missing or pyproject.toml/constraints.txt/requirements.lock changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --progress-bar off
# two test processes (the suite waits on servers and subprocesses much of the time); PYTEST_ARGS="-n 0" runs it in one
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install lock run test serve server bench lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# requirements.lock pins every package at the versions tested (a fresh install otherwise takes the
# newest releases of everything constraints.txt leaves free, and the M3 figures moved with them).
# make lock re-resolves from pyproject.toml and constraints.txt alone in a scratch venv and rewrites it.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install $(PIP_FLAGS) -q --upgrade pip
	.lock-venv/bin/python -m pip install $(PIP_FLAGS) -q -c constraints.txt -e '.[dev]'
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable \
	  | sed -E 's/^(torch==[0-9.]+)[+].*$$/\1/'; } > requirements.lock.tmp && mv requirements.lock.tmp requirements.lock
	rm -rf .lock-venv

run: $(STAMP)
	$(BIN)/flowcast run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/python deployments/serve.py

# The Prefect server keeps its runs in SQLite under PREFECT_HOME unless DATABASE_URL names a
# PostgreSQL database (postgresql+asyncpg://user:password@host:5432/prefect), which several
# workers and servers can share. SERVER_HOST=0.0.0.0 serves other machines; on another port than
# 4200 (make server SERVER_PORT=4300) the UI must be told where its API is (PREFECT_UI_API_URL),
# or every page stays empty. In the shell that runs flows: export PREFECT_API_URL=$(SERVER_URL)/api
# Prefect keeps every flow run, its logs and artifacts for good (only events expire, after 7 days): the
# server deletes flow runs that ended more than PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD (90
# days by default) ago, with their logs and artifacts; PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED=events keeps them.
PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED ?= events,flow_runs
SERVER_HOST ?= $(or $(PREFECT_SERVER_HOST),127.0.0.1)
SERVER_PORT ?= $(or $(PREFECT_SERVER_PORT),$(PREFECT_SERVER_API_PORT),4200)
SERVER_URL = http://$(SERVER_HOST):$(SERVER_PORT)

server: $(STAMP)
	@echo "Prefect UI: $(SERVER_URL)  (in the shell that runs flows: export PREFECT_API_URL=$(SERVER_URL)/api)"
	$(if $(DATABASE_URL),PREFECT_API_DATABASE_CONNECTION_URL='$(DATABASE_URL)') \
	PREFECT_SERVER_API_HOST=$(SERVER_HOST) PREFECT_SERVER_API_PORT=$(SERVER_PORT) \
	PREFECT_UI_API_URL=$(SERVER_URL)/api PREFECT_UI_URL=$(SERVER_URL) \
	PREFECT_SERVER_ANALYTICS_ENABLED=$(or $(PREFECT_SERVER_ANALYTICS_ENABLED),false) \
	PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED='$(PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED)' \
	$(BIN)/prefect server start --host $(SERVER_HOST) --port $(SERVER_PORT)

bench: $(STAMP)
	$(BIN)/python bench/preprocess.py --series 10000 --steps 1000
	$(BIN)/python bench/aggregate_pit.py --series 2000 --days 90
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/accuracy.py --dataset m3-monthly
	$(BIN)/python bench/intermittent.py --series 30 --days 120 --seed 0
	$(BIN)/python bench/interval_growth.py --series 4 --days 5 --seed 0

lint: $(STAMP)
	$(BIN)/ruff check src flows tests bench deployments

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .flowcast .pytest_cache
