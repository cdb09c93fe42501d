# Conveyor: two commands set everything up on a fresh machine.
#   make run   install what is needed and run the whole system locally (offline defaults)
#   make test  install what is needed and run ruff, mypy and every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov has many pinned dependencies of its own: it gets a venv apart from the app's.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.0
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: install run test lint typecheck pytest bench clean

install: $(PY_STAMP) $(NODE_STAMP)

$(CHECKOV_STAMP): Makefile
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

# requirements-worker.txt: the Python worker's own code declares Python >= 3.13 but runs on
# 3.11, and its dependencies are pinned in requirements.txt: no requires-python check, no deps.
$(PY_STAMP): requirements.txt requirements-dev.txt requirements-worker.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
		-r requirements-worker.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(PY) -m devtools.run_local

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(PY_STAMP)
	$(PY) -m mypy

# `make test` runs pytest in PYTEST_WORKERS xdist worker processes, each given whole test files
# (module fixtures start once) in collection order, the long files first (tests/conftest.py).
# The tests mostly wait on child processes and sockets, so more workers than cores pay off.
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 4
pytest: install $(CHECKOV_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint typecheck pytest

# Each bench prints one summary line and writes bench/results/<name>.json; the P lines last.
bench: install
	$(PY) -m bench.emulator_throughput
	$(PY) -m bench.embeddings
	$(PY) -m bench.submit_guards
	$(PY) -m bench.submit_throughput
	$(PY) -m bench.worker_throughput
	$(PY) -m bench.cold_start
	$(PY) -m bench.operation_counts
	$(PY) -m bench.summary

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .local
