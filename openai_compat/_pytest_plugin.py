"""A pytest plugin (loaded by pytest only): each test gets a cassette file of its own.

    def test_summary(openai_cassette):
        client = Client("http://127.0.0.1:8080/v1", model="tiny", cassette=openai_cassette)
        assert "sea" in client.chat("Summarise: the sea is blue")

The file is ``tests/cassettes/<test module>/<test name>.jsonl`` under the rootdir. The first run
records it; later runs replay it with no network (``--cassette-mode=once``, the default).
``--cassette-mode=record`` records afresh, ``--cassette-mode=replay`` never touches the network.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ._cassette import MODES, Cassette


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--cassette-mode", default="once", choices=MODES,
                     help="openai-compat cassettes: record, replay, or once (replay if recorded, else record)")


@pytest.fixture
def openai_cassette(request: Any) -> Cassette:
    """A ``Cassette`` of this test's own, for ``Client(cassette=...)``."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = Path(request.config.rootpath) / "tests" / "cassettes" / module / f"{name}.jsonl"
    return Cassette(path, mode=request.config.getoption("--cassette-mode"))
