# Kiwi Platform: two commands for a new machine.
#   make demo   set up .venv and materialize the pipeline on the demo data (embedded defaults)
#   make test   lint (ruff check + ruff format --check), then run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip --disable-pip-version-check
export KIWI_HOME ?= $(CURDIR)/.kiwi
export DAGSTER_HOME ?= $(KIWI_HOME)/dagster

.PHONY: setup browser demo lint test test-fast bench ui clean

setup: $(VENV)/.kiwi-installed browser

# The browser test (tests/ui) drives Debian's chromium with Playwright; Playwright never downloads
# a browser. Installed here when missing (root: apt-get, quietly); otherwise say how.
CHROMIUM ?= /usr/bin/chromium
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium (for tests/ui)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: $(CHROMIUM) is missing: run 'sudo apt-get install -y chromium' (tests/ui skips without it, fails with CI=true)"; \
	  fi; \
	fi

# torch/torchvision are pinned and installed with pip first (they lie on this machine's disk,
# GPU users get the same CUDA build). antlr4 4.13.2 is installed on its own, after DVC 3:
# hydra-core (a DVC dependency) pins 4.9, which breaks Dagster's asset-selection parser.
$(VENV)/.kiwi-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[lakefs,postgres,dev]'
	$(PIP) install --quiet --no-deps antlr4-python3-runtime==4.13.2
	touch $@

demo: setup
	$(VENV)/bin/kiwi demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/python -m pytest

test-fast: setup
	$(VENV)/bin/python -m pytest -m "not slow"

bench: setup
	$(VENV)/bin/python benchmarks/ingest.py

ui: setup
	$(VENV)/bin/kiwi ui

clean:
	rm -rf .kiwi
