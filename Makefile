# The two commands a new user needs: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

NODE_STAMP := node_modules/.installed

.PHONY: demo test lint format synth bench docs clean inspector-locks

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Pinned Node tools: the CDK CLI and asl-validator (package-lock.json).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

# The pinned CDK CLI too: the README's `npx cdk synth` then runs it offline.
demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/training-gate demo

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	node_modules/.bin/asl-validator --json-path statemachine/training_gate.asl.json
	$(BIN)/python scripts/lock_inspector_image.py --check
	$(BIN)/python scripts/inspector_lock_tests.py
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Rewrites lambdas/inspector-image/*.txt, one hashed lock per pair in infra/inspector_image.py.
inspector-locks: $(STAMP)
	$(BIN)/python scripts/lock_inspector_image.py

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --quiet

# Redraws docs/*.png from the ASL (needs Graphviz's `dot`: apt-get install graphviz).
docs: $(STAMP)
	$(BIN)/python docs/render.py

clean:
	rm -rf $(VENV) node_modules cdk.out cdk.out.local .pytest_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python bench/bench_metrics.py
	$(BIN)/python bench/bench_inspect.py
	$(BIN)/python bench/bench_cost.py
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_native.py
