# Segmentum — two entry points: `make demo` and `make test`. Both create and use ./.venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the package and its runtime dependencies
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# plus what the tests need (pytest, Hypothesis, pyspark for the parity suite, ...)
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Build the demo workspace (./segmentum.duckdb) from generated data and show what it holds.
demo: $(VENV)/.installed
	$(BIN)/segmentum demo $(ARGS)

## Run the whole test suite (slow tests included).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(ARGS)

## Benchmarks: prints a table (see benchmarks/README.md).
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) segmentum.duckdb segmentum.duckdb.wal .pytest_cache demo-data
