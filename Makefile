# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   - create the virtualenv, install, run the main job on the embedded stores
#   make test   - create/reuse the virtualenv and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-history bench-versions results kinesis-demo package venv clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# Bytecode for the project's own packages, as a packaged install has (pip compiled the
	# dependencies): with PYTHONDONTWRITEBYTECODE set every process would recompile them (~0.1 s).
	# A module edited later is recompiled in memory (each .pyc is checked against its source).
	$(BIN)/python -m compileall -q chalicelib fraudtools
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m chalicelib demo

test: $(STAMP)
	sh scripts/install-test-services.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m chalicelib rules test rules.yaml --require-examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(PKG_VENV) .data .pytest_cache .hypothesis .ruff_cache dist chalicelib/rules.yaml

bench: $(STAMP)
	$(BIN)/python bench/hot_path.py --write docs/BENCHMARKS.md
	$(BIN)/python bench/graph_write.py

# Old code against this checkout, side by side (hits compared first): make bench-versions BASELINE=../main
bench-versions: $(STAMP)
	@test -n "$(BASELINE)" || { echo "give BASELINE=<checkout of the old code, with its .venv>"; exit 2; }
	$(BIN)/python bench/versions.py --baseline $(BASELINE) --write docs/BENCHMARKS.md

# About 1M events over 30 simulated days: several minutes.
bench-history: $(STAMP)
	$(BIN)/python bench/history.py --write docs/BENCHMARKS.md

results: $(STAMP)
	$(BIN)/python -m chalicelib results --out docs/RESULTS.md

kinesis-demo: $(STAMP)
	$(BIN)/python scripts/kinesis_demo.py

# The deployment package and its CloudFormation template (offline: no AWS call; wheels from PyPI).
# Built with Python 3.13 (Lambda's python3.11 runtime can no longer be created), in its own
# virtualenv so Chalice picks the python3.13 runtime and cp313 wheels.
# The function starts from exactly the root rules.yaml: it is copied into chalicelib/ (which
# Chalice ships) right before packaging; `rules push` updates the S3 copy without a redeploy.
PACKAGE_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
PKG_VENV := .venv-package
PKG_STAMP := $(PKG_VENV)/.installed

$(PKG_STAMP): requirements.txt
	@test -x $(PKG_VENV)/bin/python || $(PACKAGE_PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/python -m pip install --quiet --disable-pip-version-check chalice==1.34.0 -r requirements.txt
	@touch $(PKG_STAMP)

package: $(STAMP) $(PKG_STAMP)
	cp rules.yaml chalicelib/rules.yaml
	# Chalice zips chalicelib/ as it is on disk: no bytecode (stale caches of moved modules would ship)
	find chalicelib -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf dist
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(PKG_VENV)/bin/chalice package --stage aws \
		--merge-template infra/chalice-merge.json dist/
	$(BIN)/cfn-lint dist/sam.json infra/fraud-infra.yaml
	@echo "dist/sam.json + dist/deployment.zip ready; deploy steps: README, 'Deploying to AWS'"
