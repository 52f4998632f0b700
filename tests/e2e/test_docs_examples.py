"""Every example in the docs runs as written against the local server.

The Python blocks of README.md and docs/*.md run in order, one namespace per page, as a reader
would paste them into a notebook. The docstring examples of the package (the API reference)
run as doctests. Both expect the server where ``make serve`` puts it, ``127.0.0.1:8080``.
A block that needs what no local server has (a provider's key, an embedding model) starts with
``# needs: ...``: it is compiled, not run, and the test lists it.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import re
import sys
import types
from pathlib import Path

import pytest

import openai_compat

from .conftest import DOCS_PORT
from .llama_server import LlamaServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
NEEDS = re.compile(r"^# needs: (.+)$", re.M)
MODULES = sorted(f"openai_compat.{m.name}" for m in pkgutil.iter_modules(openai_compat.__path__)
                 if m.name != "__main__")  # importing it runs the command line


@pytest.fixture(scope="module")
def docs_server(llama_server: LlamaServer) -> LlamaServer:
    if llama_server.port != DOCS_PORT:
        pytest.fail(f"port {DOCS_PORT} was taken, so the docs' examples cannot reach the local server there")
    return llama_server


def blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_on_the_page_runs_as_written(page: Path, docs_server: LlamaServer) -> None:
    # A module of its own, as a notebook's __main__ is: dataclasses look their module up.
    module = types.ModuleType(f"docs_{page.stem}")
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    not_run = []
    for line, code in blocks(page):
        compiled = compile(code, f"{page.name}:{line}", "exec")
        needs = NEEDS.search(code)
        if needs:
            not_run.append(f"{page.name}:{line} needs {needs.group(1)}")
            continue
        exec(compiled, namespace)
    print("\n".join(not_run))


@pytest.mark.parametrize("module", MODULES)
def test_every_docstring_example_runs_as_written(module: str, docs_server: LlamaServer) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report = io.StringIO()
    for test in doctest.DocTestFinder().find(importlib.import_module(module)):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


def test_no_example_is_skipped_by_a_doctest_directive() -> None:
    sources = [*(ROOT / "openai_compat").glob("*.py"), *PAGES]
    assert [str(p) for p in sources if "doctest: +SKIP" in p.read_text()] == []
