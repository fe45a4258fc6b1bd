# The README's commands. Each target sets up .venv first (only what is missing), then runs.
#   make run    set up, then run experiment 001 on the bundled models
#   make test   set up, then run the checks (make check) and the whole test suite
#   make check  set up, then lint (ruff) and type-check (mypy) the code
#   make test-fast  the checks and the tests not marked slow (no bundled model end to end)
#   make chat   set up, then open the 000 chat REPL
#   make bench  set up, then run the performance benchmark
# Extra arguments go through ARGS, e.g.  make run ARGS="--models meta-llama/Meta-Llama-3-8B"

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test processes: each runs torch on one thread (conftest), so two share two cores without thrashing.
TEST_WORKERS ?= 2
SYSPY  := $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
            if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then echo $$p; break; fi; done)

.PHONY: setup run test test-fast check chat bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt requirements-bundled.txt pyproject.toml
	@if [ -z "$(SYSPY)" ]; then echo "tinycave needs Python 3.10 or newer (python3 --version). On macOS: brew install python@3.12"; exit 1; fi
	@test -x $(PY) || $(SYSPY) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-bundled.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: setup
	$(PY) 001_layers_and_logits/run.py $(ARGS)

check: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: check
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test-fast: check
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(ARGS)

chat: setup
	$(PY) 000_basic_chat/run.py $(ARGS)

bench: setup
	$(PY) -m bench.run_bench $(ARGS)

clean-venv:
	rm -rf $(VENV)
