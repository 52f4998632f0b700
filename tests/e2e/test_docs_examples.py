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
import os
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


SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
LOCAL = ("127.0.0.1:8080", "--provider llamacpp")
# What the docs' command lines name, in the folder they run in.
FILES = {
    "mytools.py": "def get_weather(city: str) -> str:\n    '''The weather in a city.'''\n"
                  "    return f'18 C in {city}'\n",
    "cat.json": '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}',
    "notes.txt": "Buy milk. Call Anna.",
}


def command_lines() -> list[tuple[str, str, bool]]:
    """``(where, line, needs)`` for each ``openai-compat`` line of a shell block in the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in SHELL_BLOCK.finditer(text):
            block = match.group(1).replace("\\\n", " ")
            needs = bool(NEEDS.search(block))
            for number, line in enumerate(block.splitlines()):
                command = line.split("| ", 1)[-1] if "| openai-compat" in line else line
                if command.startswith("openai-compat "):
                    found.append((f"{page.name}:{text.count(chr(10), 0, match.start()) + 2 + number}", line, needs))
    return found


@pytest.mark.parametrize(("where", "line", "needs"), command_lines(), ids=lambda v: v if isinstance(v, str) and
                         ":" in v and " " not in v else "")
def test_every_command_line_in_the_docs_parses_and_the_local_ones_run(
    where: str, line: str, needs: bool, docs_server: LlamaServer, tmp_path: Path
) -> None:
    import shlex
    import subprocess

    from openai_compat._cli import build_parser

    command = line.split("| ", 1)[-1] if "| openai-compat" in line else line
    words = shlex.split(command, comments=True)
    build_parser().parse_args(words[1:])  # exits with argparse's message if the line cannot work
    if needs or not any(local in line for local in LOCAL):
        return  # a provider's key, or a server that is not the local one
    for name, content in FILES.items():
        (tmp_path / name).write_text(content)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    result = subprocess.run(["sh", "-c", line], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{where}: {line}\n{result.stderr[-2000:]}"
