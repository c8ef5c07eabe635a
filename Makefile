# The portal's two commands: `make run` and `make test`. Everything they need, they install.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 8000
# Test workers (pytest-xdist). 3 on a 2-CPU machine: a browser test spends part of its time waiting
# (on the page, the live server, a timeout), so a third worker fills the CPUs the other two leave
# idle (measured idle: 84 s with 2, 76 s with 3; tests/scheduling.py gives each worker a browser
# group). `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 3
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
# Bytecode is cached (in __pycache__, git-ignored), even where the environment says otherwise: each
# pytest worker otherwise re-rewrites the asserts of all ~200 test modules (5 CPU-s a worker, every
# run) and each process the tests start (gunicorns, workers, manage.py) recompiles portal/ and trunks/.
unexport PYTHONDONTWRITEBYTECODE

# The first Python 3.12+ on PATH (pyenv honours .python-version).
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
	then command -v $$p; break; fi; done)
# uv from PATH if there is one, else bootstrapped with pip into the venv.
UV ?= $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)

.PHONY: help install run test lint format bench clean

help:
	@echo "make run    - set up, migrate, load demo data, serve on http://127.0.0.1:$(PORT) with a worker"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff check and format check"
	@echo "make bench  - benchmarks (not part of make test)"

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed on PATH." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/bin/uv: | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv

# --compile-bytecode: every Python process the tests start (workers, gunicorns, manage.py checks,
# the bench smoke run) would otherwise compile Django and the rest from source: 2.2 CPU-s each
# instead of 0.7 (a process run with PYTHONDONTWRITEBYTECODE cannot cache it itself).
$(VENV)/.installed: pyproject.toml uv.lock Makefile | $(PY) $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PY)
	@touch $@

install: $(VENV)/.installed .env

.env: | $(VENV)/.installed
	$(PY) -m portal.devenv .env

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_seed --base-url http://127.0.0.1:$(PORT)/sandbox/api/v1
	@# One background worker beside the server; leaving the server (Ctrl-C) stops the worker too.
	$(PY) manage.py worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
