from __future__ import annotations

from typing import Iterator

import pytest

from openai_compat import Client, LlamaCppClient

from .llama_server import LlamaServer


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    with LlamaServer() as server:
        yield server


@pytest.fixture
def client(llama_server: LlamaServer) -> Iterator[Client]:
    with LlamaCppClient(llama_server.base_url, model="tiny", timeout=(5, 60)) as c:
        yield c
