# Segmentum — two entry points: `make demo` and `make test`. Both create and use ./.venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Build the demo workspace (./segmentum.duckdb) from generated data and show what it holds.
demo: $(STAMP)
	$(BIN)/segmentum demo $(ARGS)

## Run the whole test suite (slow tests included).
test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

## Benchmarks: prints a table (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) segmentum.duckdb segmentum.duckdb.wal .pytest_cache demo-data
