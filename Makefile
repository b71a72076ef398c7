# The README's quick start is exactly `make run` and `make test`; both set up .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint bench clean browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 CPU lies on disk.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install torch==2.13.0
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

# Headless Chromium for the HTML report's browser test: Debian's package (Playwright drives it through
# executable_path and never downloads a browser). apt-get needs root: CI runs as root, elsewhere sudo.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

browser: $(CHROMIUM)

setup: $(STAMP) browser

run: $(STAMP)
	$(BIN)/fpgadl run

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check fpgadl tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_default.py

clean:
	rm -rf build .pytest_cache
