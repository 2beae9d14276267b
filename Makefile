# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the virtual environment in .venv and install what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install prepare demo test test-postgres lint format benchmark bench ui clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m flowhouse.orchestration.dagster.prepare
	touch $(STAMP)

## The dbt manifest the Dagster definitions load (dbt parse; no warehouse needed), refreshed
## before the tests and the UI so that model changes are seen.
prepare: install
	$(BIN)/python -m flowhouse.orchestration.dagster.prepare

## The main job end to end on the embedded DuckDB default.
demo: install
	$(BIN)/flowhouse demo

## Unit, model and end-to-end tests on DuckDB (PostgreSQL tests run with make test-postgres);
## the report's browser test needs Debian's chromium, installed here when missing.
test: prepare
	bash tests/support/chromium.sh
	$(BIN)/pytest -q

## The PostgreSQL suite: starts (or uses) a local server; FLOWHOUSE_TEST_POSTGRES_URL names another one.
test-postgres: prepare
	FLOWHOUSE_TEST_POSTGRES_URL="$$(bash tests/support/postgres.sh)" $(BIN)/pytest -q -m postgres

## ruff, mypy and the import contracts of pyproject.toml (docs/architecture.md).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Generate and build a 1M-customer store; prints wall time and peak memory (see BENCHMARKS.md).
benchmark: install
	$(BIN)/python benchmarks/generate.py --build

## The tick benchmark (benchmarks/ticks.py, BENCHMARKS.md "Ticks"): a 100,000-customer store, its
## initial build, refresh ticks with 15 minutes of new events and with nothing new, where each
## tick's time goes (process start, dbt start, each model, engine) and its peak memory, and the
## event-to-queue latency of cart_abandoned on a 5-minute schedule. Larger stores, with the ratio
## of the largest size's tick to the previous size's for the same new events:
##   make bench BENCH_SIZES=100000,1000000      # about 15 minutes, 4 GB
##   make bench BENCH_SIZES=1000000,10000000 BENCH_ARGS="--latency --build-memory-limit 14GB"
##                                              # about an hour, 146M events, 14 GB and ~60 GB of disk
BENCH_SIZES ?= 100000
BENCH_ARGS ?= --latency
bench: install
	$(BIN)/python benchmarks/ticks.py --sizes $(BENCH_SIZES) $(BENCH_ARGS)

## The Dagster UI on http://127.0.0.1:3000 over the demo warehouse (generated if absent).
ui: prepare
	bash orchestration/dagster/ui.sh

clean:
	rm -rf demo dbt_project/target-* dbt_project/logs .pytest_cache .mypy_cache .ruff_cache
