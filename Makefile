# The two commands of the README. Both set everything up on a fresh clone:
# a virtualenv in .venv with the pinned requirements (re-installed when they change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-quick system-packages

demo: $(STAMP)
	$(BIN)/python -m pgy_spider.demo

# The suite on TEST_WORKERS processes (pytest-xdist); each has its own simulator, MongoDB
# server and Scrapyd. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: $(STAMP) lint system-packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check pgy_spider tests bench
	$(BIN)/ruff format --check pgy_spider tests bench
	$(BIN)/mypy

# The benchmark (target 15 min; 14 min on 2 cores on 2026-12-02, see bench/README.md) and its
# ~3 min smoke test.
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Debian packages the tests need besides Python's: a real headless browser and its
# driver (the HTML report is loaded in it), a CJK font (the report's charts), an
# emoji font (its text) and Redis (runs across processes; the tests start their own
# server). Installed only when missing; CI is a fresh Debian machine as root.
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-zenhei fonts-noto-color-emoji redis-server

system-packages:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$pkg 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages the tests need:$$missing"; \
	  command -v apt-get >/dev/null \
	    || { echo "error: no apt-get: install$$missing (or their equivalents) yourself" >&2; exit 1; }; \
	  [ "$$(id -u)" -eq 0 ] \
	    || { echo "error: installing$$missing needs root: sudo apt-get install$$missing" >&2; exit 1; }; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	    || { echo "error: could not install$$missing" >&2; exit 1; }; \
	fi
