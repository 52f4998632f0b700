from __future__ import annotations

from typing import Iterator

import pytest

from openai_compat import Client, LlamaCppClient

from .llama_server import LlamaServer, port_is_free, serves_tiny

#: Where the docs' examples expect the local server (``LlamaCppClient()``'s default, and ``make serve``).
DOCS_PORT = 8080


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    if not port_is_free(DOCS_PORT) and serves_tiny(DOCS_PORT):
        yield LlamaServer(port=DOCS_PORT)  # `make serve`'s, running: used as it is
        return
    with LlamaServer(port=DOCS_PORT if port_is_free(DOCS_PORT) else None) as server:
        yield server


@pytest.fixture
def client(llama_server: LlamaServer) -> Iterator[Client]:
    with LlamaCppClient(llama_server.base_url, model="tiny", timeout=(5, 60)) as c:
        yield c
