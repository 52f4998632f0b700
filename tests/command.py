"""The ``openai-compat`` command run in this process, as ``python -m openai_compat`` runs it.

In this process a test sees the command's own lines at work, and so do coverage and mutation
tools. The tests that need a real process (Ctrl-C, a closed pipe, a terminal, the console
script, logging set up at import) start one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from openai_compat._cli import main


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_command(*args: str, stdin: str = "", cwd: str | Path | None = None,
                terminal: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``openai-compat ARGS`` with ``stdin`` as its input, in ``cwd`` if given, and its
    standard error a terminal if ``terminal``; its exit status and what it wrote, as
    ``subprocess.run(..., text=True)`` gives them."""
    stdout, stderr = io.StringIO(), _Terminal() if terminal else io.StringIO()
    saved_cwd, saved_path, saved_stdin = os.getcwd(), list(sys.path), sys.stdin
    loaded = set(sys.modules)
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(args)
            except SystemExit as exc:  # argparse's --help, --version and usage errors
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        if cwd is not None:  # forget a --tool module imported from there, as a new process would
            here = str(Path(cwd).resolve()) + os.sep
            for name in set(sys.modules) - loaded:
                if str(getattr(sys.modules[name], "__file__", None) or "").startswith(here):
                    del sys.modules[name]
    return subprocess.CompletedProcess(["openai-compat", *args], status, stdout.getvalue(), stderr.getvalue())
