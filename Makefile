# Every target sets up what it needs in .venv first, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck demo e2e bench docs build compat clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check openai_compat tests
	$(BIN)/vermin --target=3.8- --violations --no-tips openai_compat tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict openai_compat

demo: $(STAMP)
	$(BIN)/python -m tests.e2e.demo

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -o addopts="-ra"

compat: $(STAMP)
	$(BIN)/nox -f tests/noxfile.py

bench: $(STAMP)
	$(BIN)/python tests/bench/run.py

DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

build: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	$(BIN)/python tests/check_dist.py dist

clean:
	rm -rf $(VENV) .nox build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
