# Two entry points on a fresh machine with python3 and make:
#   make demo   virtual environment + install + synthetic cohort -> features -> CV report
#   make test   the test suite, in the same environment
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= radfusion-out/demo

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/radfusion demo --out $(OUT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) radfusion-out
