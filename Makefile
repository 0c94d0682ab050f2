# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   - create the virtualenv, install, run the main job on the embedded stores
#   make test   - create/reuse the virtualenv and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench results kinesis-demo venv clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m chalicelib demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis .ruff_cache

bench: $(STAMP)
	$(BIN)/python bench/graph_write.py

results: $(STAMP)
	$(BIN)/python -m chalicelib results --out docs/RESULTS.md

kinesis-demo: $(STAMP)
	$(BIN)/python scripts/kinesis_demo.py
