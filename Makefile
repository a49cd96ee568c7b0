# Segmentum — two entry points: `make demo` and `make test`. Both create and use ./.venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: demo test install bench clean web-assets lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the package and its runtime dependencies
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

# plus what the tests need (pytest, Hypothesis, pyspark for the parity suite, ...)
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# the web app's front-end files: the npm packages pinned in package-lock.json, copied into
# the package (src/segmentum/web/static/vendor/, not committed, shipped in the wheel)
WEB_VENDOR := src/segmentum/web/static/vendor/manifest.json
$(WEB_VENDOR): package-lock.json | $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m segmentum.web.assets

web-assets: $(WEB_VENDOR)

## Re-resolve the Python dependencies from pyproject.toml and pin them in requirements.lock.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[test,demo]'
	(head -2 requirements.lock; .venv-lock/bin/pip freeze --exclude-editable) > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

install: $(VENV)/.installed $(WEB_VENDOR)

# plus the demo's local SMTP sink and Segment client
$(VENV)/.installed-demo: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -c requirements.lock -e '.[demo]'
	touch $@

## Build the demo workspace (./segmentum.duckdb) from generated data, show what it holds, then
## serve the web app on it and print its URL (Ctrl-C stops). LIVE=1 adds simulated visitors.
demo: $(VENV)/.installed-demo $(WEB_VENDOR)
	$(BIN)/segmentum demo $(ARGS)
	$(BIN)/python -m segmentum.web.demo $(if $(LIVE),--live)

## Run the whole test suite (slow tests included), on every core.
test: $(VENV)/.installed-test $(WEB_VENDOR)
	$(BIN)/python -m pytest -n auto --dist worksteal $(ARGS)

## Benchmarks: prints a table (see benchmarks/README.md).
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) segmentum.duckdb segmentum.duckdb.wal .pytest_cache demo-data node_modules \
	  src/segmentum/web/static/vendor
