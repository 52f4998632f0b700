# Every target sets up what it needs in .venv first, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck demo serve e2e bench docs build compat mutate clean clean-cache

LOG := $(VENV)/install.log
# pip's and setuptools' own chatter (an editable install always warns) goes to the log; a
# failure shows its tail.
INSTALL = $(BIN)/python -m pip install --disable-pip-version-check
FAILED = { tail -n 25 $(LOG); echo "make: setting up $(VENV) failed; the whole log is $(LOG)"; exit 1; }

$(STAMP): setup.cfg setup.py pyproject.toml
	@echo "setting up $(VENV) with the package and its development tools (log: $(LOG))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(INSTALL) --upgrade pip > $(LOG) 2>&1 && $(INSTALL) -e ".[dev]" >> $(LOG) 2>&1 || $(FAILED)
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check openai_compat tests
	$(BIN)/vermin --target=3.8- --violations --no-tips openai_compat tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict openai_compat
	$(BIN)/mypy tests

demo: $(STAMP)
	$(BIN)/python -m tests.e2e.demo

serve: $(STAMP)
	$(BIN)/python -m tests.e2e.serve

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -o addopts="-ra"

compat: $(STAMP)
	$(BIN)/nox -f tests/noxfile.py

# Mutation testing of every module that holds behaviour (hours on 2 cores; not in CI), then the
# score and every surviving mutant with its reason, written into docs/contributing.md.
# MUTANTS="openai_compat._tool_calls.*" runs the mutants of one module, a part at a time.
# mutmut traces only new tests for the functions they reach: a function that old tests call,
# new or renamed, would have no tests and its mutants would survive. So each run traces afresh
# (about 3 minutes), and then runs the mutants that have no result yet. The results are kept in
# tests/mutation_results.json, so a fresh checkout starts from them and runs only the rest.
mutate: $(STAMP)
	@$(INSTALL) -e ".[mutate]" >> $(LOG) 2>&1 || $(FAILED)
	$(BIN)/python -m tests.mutation_record restore
	rm -f mutants/mutmut-stats.json
	$(BIN)/mutmut run --max-children 4 $(MUTANTS)
	$(BIN)/python -m tests.mutation_record save
	$(BIN)/nox -f tests/noxfile.py --install-only > /dev/null
	$(BIN)/python -m tests.mutation_elsewhere
	$(BIN)/python -m tests.mutation_record save
	$(BIN)/python tests/mutation_report.py --write

bench: $(STAMP)
	$(BIN)/python tests/bench/run.py

DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	@echo "adding the documentation tools to $(VENV) (log: $(LOG))"
	@$(INSTALL) -e ".[docs]" >> $(LOG) 2>&1 || $(FAILED)
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

build: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	$(BIN)/python tests/check_dist.py dist

clean:
	rm -rf $(VENV) .nox mutants build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The llama.cpp server, the tiny model and the benchmarks' openai venv (about 270 MB).
clean-cache:
	rm -rf $${OPENAI_COMPAT_LLAMA_ENV:-$$HOME/.cache/openai-compat}
