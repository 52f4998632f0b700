"""The support matrix: the test suite on the oldest and newest stacks we claim, one venv each.

Run it with ``make compat`` (or ``nox -f tests/noxfile.py``). Each row pins the dependencies
named below and runs the unit, streaming and fault tests. Interpreters are looked up on PATH
(pyenv shims included) and in ``pyenv root``; a missing one fails its row with one line.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent.parent
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"  # each interpreter's own venv: virtualenv dropped 3.8
nox.options.envdir = str(ROOT / ".nox")

#: name: (Python, pins). The floors are those in setup.cfg; urllib3 1.26 is what botocore keeps
#: on Python < 3.10, and 2.0.2 is the oldest urllib3 2 on the index.
ROWS = {
    "floors-py3.8": ("3.8", ["requests==2.28.0", "urllib3==1.26.0", "sseclient-py==1.7"]),
    "urllib3-1.26-latest-py3.8": ("3.8", ["requests", "urllib3<2", "sseclient-py"]),
    "newest-py3.8": ("3.8", ["requests", "urllib3", "sseclient-py"]),
    "oldest-urllib3-2-py3.12": ("3.12", ["requests", "urllib3==2.0.2", "sseclient-py"]),
    "newest-py3.13": ("3.13", ["requests", "urllib3", "sseclient-py"]),
}


def find_python(version: str) -> str:
    """The path of a working ``python{version}``, or an error naming what to install."""
    candidates = [shutil.which(f"python{version}")]
    try:
        pyenv_root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pyenv_root = os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for path in filter(None, candidates):
        if subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0:
            return path
    raise SystemExit(f"make compat: no Python {version} found on PATH or under pyenv (try: pyenv install {version})")


def _row(session: nox.Session, pins: list[str]) -> None:
    session.install(*pins, "pytest")
    session.install("--no-deps", str(ROOT))
    session.run("python", "-c", "import requests, urllib3, sseclient, sys; print('row:', sys.version.split()[0],"
                " 'requests', requests.__version__, 'urllib3', urllib3.__version__)")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(ROOT),
                str(ROOT / "tests"), "--ignore", str(ROOT / "tests/e2e"), "--ignore", str(ROOT / "tests/bench"),
                *session.posargs)


def _define(name: str, version: str, pins: list[str]) -> None:
    @nox.session(name=name, python=find_python(version))
    def row(session: nox.Session) -> None:
        _row(session, pins)


for _name, (_version, _pins) in ROWS.items():
    _define(_name, _version, _pins)
