# Two entry points on a fresh machine with python3 and make:
#   make demo   virtual environment + install + synthetic cohort -> features -> CV report
#   make test   the test suite, in the same environment (make test-fast: without the slow tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= radfusion-out/demo

.PHONY: demo test test-fast lint clean browser docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/radfusion demo --out $(OUT)

# Lint and format are part of the test command, so CI refuses unformatted code. The suite runs
# in two processes, one per core (pytest-xdist; a file with module fixtures stays in one
# process, so they are built once: tests/conftest.py), and prints the 25 slowest tests.
PYTEST_WORKERS ?= 2
test: $(BIN)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25

# The inner loop: the same without the tests marked slow (large tables, many draws).
test-fast: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow"

# The documentation site in docs/_build/html: the user guide, the API reference generated from
# the docstrings and the example gallery, run at build time. Offline; any warning is an error.
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(BIN)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The report's browser test needs Debian's chromium; install it when we can (root + apt),
# otherwise that one test skips with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
	  || echo "chromium not installed: the browser test will skip"; }

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) radfusion-out docs/_build docs/api docs/auto_examples
