# Every target builds .venv first when it is missing or pyproject.toml/constraints.txt changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --progress-bar off
PYTEST_ARGS ?=

.PHONY: install run test serve server bench lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flowcast run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/python deployments/serve.py

# The Prefect server keeps its runs in SQLite under PREFECT_HOME unless DATABASE_URL names a
# PostgreSQL database (postgresql+asyncpg://user:password@host:5432/prefect), which several
# workers and servers can share. PREFECT_SERVER_HOST=0.0.0.0 serves other machines.
server: $(STAMP)
	$(if $(DATABASE_URL),PREFECT_API_DATABASE_CONNECTION_URL='$(DATABASE_URL)') \
	$(BIN)/prefect server start --host $${PREFECT_SERVER_HOST:-127.0.0.1} --port $${PREFECT_SERVER_PORT:-4200}

bench: $(STAMP)
	$(BIN)/python bench/preprocess.py --series 10000 --steps 1000
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/accuracy.py --dataset m3-monthly

lint: $(STAMP)
	$(BIN)/ruff check src flows tests bench deployments

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .flowcast .pytest_cache
