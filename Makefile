# The two commands of the README. Both set everything up on a fresh clone:
# a virtualenv in .venv with the pinned requirements (re-installed when they change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-quick

demo: $(STAMP)
	$(BIN)/python -m pgy_spider.demo

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check pgy_spider tests bench
	$(BIN)/ruff format --check pgy_spider tests bench
	$(BIN)/mypy

# The benchmark (~12 min on 2 cores; see bench/README.md) and its ~3 min smoke test.
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)
