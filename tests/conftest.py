from __future__ import annotations

import os
from typing import Iterator

import pytest

from openai_compat import PROVIDERS, Client

from .server import LoopbackServer

pytest_plugins = ["pytester"]  # the cassette fixture is tested in a pytest of its own

_ENV_TO_CLEAR = {cls.api_key_env for cls in PROVIDERS.values() if cls.api_key_env} | {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "OPENAI_BASE_URL", "OPENAI_MODEL",
    "AZURE_OPENAI_ENDPOINT",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real provider key or a proxy from the machine it runs on."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", os.devnull)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    yield srv
    srv.close()
    if srv.errors:
        raise srv.errors[0]


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[Client]:
    with Client(server.url, model="test-model", max_retries=0, timeout=(2, 5)) as c:
        yield c
