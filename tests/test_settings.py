"""Settings people bring from other SDKs: the environment, query parameters and per-call extras,
Azure, keys that refresh, TLS, derived clients, and fields a preset keeps."""

from __future__ import annotations

import json
import logging
import pickle
import re
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from openai_compat import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    AzureClient,
    BadRequestError,
    Client,
    InternalServerError,
    PerplexityClient,
)

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, stream_of
from .test_media import SAMPLES

# -- the environment -----------------------------------------------------------------------------


def test_from_env_reads_the_base_url_key_and_model(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_BASE_URL", server.url)
    monkeypatch.setenv("LOCAL_API_KEY", "env-key-123")
    monkeypatch.setenv("LOCAL_MODEL", "env-model")
    client = Client.from_env("LOCAL", max_retries=0)
    client.chat("hi")
    sent = server.requests[0]
    assert sent.headers["authorization"] == "Bearer env-key-123" and sent.json["model"] == "env-model"
    assert Client.from_env("LOCAL", model="mine").model == "mine", "what the caller passes wins"
    assert "env-key-123" not in repr(client)


def test_from_env_takes_the_callers_key_headers_and_settings_over_the_variables(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_BASE_URL", server.url)
    monkeypatch.setenv("LOCAL_API_KEY", "env-key-123")
    given = Client.from_env("LOCAL", api_key="sk-given-0123456789", max_retries=0, timeout=7, model="m")
    given.chat("hi")
    assert server.requests[-1].headers["authorization"] == "Bearer sk-given-0123456789"
    assert (given.max_retries, given.timeout) == (0, 7)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_MODEL", "openai-model")
    assert Client.from_env().model == "openai-model", "OPENAI_ is the prefix unless another is named"
    in_header = Client.from_env("LOCAL", headers={"Authorization": "Bearer hdr-key-0123456789"}, model="m")
    in_header.chat("hi")
    assert server.requests[-1].headers["authorization"] == "Bearer hdr-key-0123456789"


def test_with_options_changes_each_setting_it_takes(server: LoopbackServer) -> None:
    from openai_compat import RetryPolicy

    seen: list[Any] = []
    client = Client(server.url, model="m", deadline=30, stream_usage=False)
    policy = RetryPolicy(max_retries=4)
    other = client.with_options(retry=policy, deadline=5, stream_usage=True, event_hook=seen.append)
    assert (other.retry, other.max_retries, other.deadline, other.stream_usage) == (policy, 4, 5, True)
    assert (client.retry.max_retries, client.deadline, client.stream_usage, client.event_hook) == (2, 30, False, None)
    "".join(other.chat("hi", stream=True))
    assert server.requests[-1].json["stream_options"] == {"include_usage": True} and seen
    assert client.with_options(max_retries=1).retry.max_retries == 1
    patient = Client(server.url, retry=RetryPolicy(max_retries=3, backoff_cap=30.0)).with_options(max_retries=1)
    assert (patient.retry.max_retries, patient.retry.backoff_cap) == (1, 30.0), "the rest of the policy stays"
    assert other.with_options(model="n").retry is policy, "a policy is kept until one is given"
    assert other.with_options(stream_usage="auto").stream_usage is False, "auto is what the client's server takes"
    from openai_compat import DeepSeekClient

    deepseek = DeepSeekClient(server.url, api_key="sk-x", stream_usage=False)
    assert deepseek.with_options(stream_usage="auto").stream_usage is True
    with pytest.raises(ValueError) as bad:
        client.with_options(stream_usage="yes")
    assert str(bad.value) == "Client.with_options(): stream_usage must be True, False or 'auto', got 'yes'"
    with pytest.raises(TypeError) as wrong:
        client.with_options(api_key="x")
    assert str(wrong.value) == ("with_options() takes timeout, max_retries, retry, deadline, model, headers,"
                                " stream_usage, event_hook; got 'api_key'")


def test_a_subclass_with_a_provider_name_is_a_preset(server: LoopbackServer) -> None:
    from openai_compat import PROVIDERS
    from openai_compat._client import PRESETS

    class Mine(Client, provider="mine-for-a-test"):
        default_base_url = server.url

    class Unnamed(Client):
        pass

    try:
        assert PROVIDERS["mine-for-a-test"] is Mine and Unnamed not in PROVIDERS.values()
        assert repr(Mine(model="m")) == f"Mine(base_url='{server.url}', model='m')"
        assert repr(Unnamed(server.url)) == f"Unnamed(base_url='{server.url}')"
    finally:
        PRESETS.pop("mine-for-a-test", None)


def test_a_presets_missing_key_names_the_preset_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from openai_compat import GroqClient

    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(ValueError) as missing:
        GroqClient(model="m")
    assert str(missing.value) == "GroqClient: no API key: set GROQ_API_KEY or pass api_key="
    monkeypatch.setenv("GROQ_API_KEY", "gsk-0123456789abcdef")
    with pytest.raises(ValueError) as elsewhere:
        GroqClient("http://127.0.0.1:9/v1", model="m")
    assert str(elsewhere.value) == ("GroqClient: GROQ_API_KEY is only sent to api.groq.com; pass api_key= to use"
                                    " http://127.0.0.1:9/v1")


def test_a_plain_client_reads_openais_variables_only_without_a_base_url(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"^Client: no base URL: pass one, or set OPENAI_BASE_URL"):
        Client()
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-456")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-env")
    Client(max_retries=0).chat("hi")
    assert server.requests[-1].headers["authorization"] == "Bearer sk-env-456"
    other = LoopbackServer()
    try:
        Client(other.url, model="m", max_retries=0).chat("hi")
        assert "authorization" not in other.requests[0].headers, "the key goes only with the base URL it came with"
    finally:
        other.close()


def test_from_env_names_the_variables_it_needs() -> None:
    with pytest.raises(ValueError, match=r"Client.from_env\(\): no base URL: pass one, or set MY_BASE_URL"):
        Client.from_env("MY")


# -- query parameters and per-call extras ---------------------------------------------------------


def test_default_query_and_per_call_extras_reach_the_wire_as_named(server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.path.startswith("/v1/embeddings"):
            wire.json({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]})
        else:
            wire.json(completion("ok"))

    server.handler = answer
    client = Client(server.url, model="m", max_retries=0, default_query={"api-version": "2024-10-21"})
    client.chat("hi", extra_headers={"X-Trace": "t-1"}, extra_query={"tenant": "a b"},
                extra_body={"top_k": 5, "max_tokens": 9})
    sent = server.requests[-1]
    assert sent.path == "/v1/chat/completions?api-version=2024-10-21&tenant=a+b"
    assert sent.headers["x-trace"] == "t-1"
    assert sent.json["top_k"] == 5 and sent.json["max_tokens"] == 9
    assert not {"extra_headers", "extra_query", "extra_body"} & set(sent.json)
    client.create_chat_completion(messages=[{"role": "user", "content": "x"}], extra_query={"v": "2"})
    assert server.requests[-1].path == "/v1/chat/completions?api-version=2024-10-21&v=2"
    assert "extra_query" not in server.requests[-1].json
    client.embed("x", extra_headers={"X-Trace": "t-2"})
    assert server.requests[-1].headers["x-trace"] == "t-2"
    client.chat("again")
    assert "x-trace" not in server.requests[-1].headers and server.requests[-1].path.endswith("?api-version=2024-10-21")


def test_default_query_must_map_str_to_str() -> None:
    not_text: Any = {"api-version": 2024}
    with pytest.raises(TypeError) as info:
        Client("http://127.0.0.1:9/v1", default_query=not_text)
    assert str(info.value) == "Client: default_query must be a dict of str to str"


def test_a_secret_in_extra_headers_stays_secret(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": f"bad {req.headers.get('x-api-key')}"}},
                                                 status=400)
    client = Client(server.url, model="m", max_retries=0)
    with pytest.raises(BadRequestError) as info:
        client.chat("hi", extra_headers={"x-api-key": "per-call-secret-789"})
    assert str(info.value) == "HTTP 400: bad ***"
    assert server.requests[-1].headers["x-api-key"] == "per-call-secret-789", "sent to its own server"


@pytest.mark.parametrize(("extras", "words"), [
    ({"extra_headers": {"X": 1}}, "extra_headers must be a dict of str to str"),
    ({"extra_headers": {"X": "a\nb"}}, "header 'X' must be a str without line breaks or control characters"),
    ({"extra_query": "a=b"}, "extra_query must be a dict of str to str"),
    ({"extra_body": ["x"]}, "extra_body must be a dict, got list"),
])
@pytest.mark.parametrize("call", ["chat", "create_chat_completion", "create_completion", "create_response"])
def test_bad_extras_are_refused_before_sending_naming_the_call(client: Client, server: LoopbackServer, call: str,
                                                               extras: dict[str, Any], words: str) -> None:
    firsts: dict[str, dict[str, Any]] = {
        "chat": {"prompt": "hi"}, "create_completion": {"prompt": "hi"}, "create_response": {"input": "hi"},
        "create_chat_completion": {"messages": [{"role": "user", "content": "hi"}]}}
    first = firsts[call]
    error = ValueError if "line breaks" in words else TypeError
    with pytest.raises(error) as info:
        getattr(client, call)(**first, **extras)
    assert str(info.value) == f"{call}: {words}"
    assert server.requests == []


# -- Azure ----------------------------------------------------------------------------------------


def _azure(request: Request, wire: Wire) -> None:
    """Answers like Azure: only with the api-version query and a key, on the deployment's path."""
    if "api-version=2024-10-21" not in request.path:
        wire.json({"error": {"code": "404", "message": "Resource not found"}}, status=404)
    elif request.headers.get("api-key") != "azure-key-1" and request.headers.get("authorization") != "Bearer aad-1":
        wire.json({"error": {"code": "401", "message": "Access denied due to invalid subscription key"}}, status=401)
    else:
        wire.json(completion("hello from azure"))


def test_azure_builds_deployment_urls_and_sends_its_key_in_api_key(server: LoopbackServer) -> None:
    server.handler = _azure
    endpoint = server.url[: -len("/v1")]
    client = AzureClient(endpoint, deployment="gpt-4o", api_key="azure-key-1", max_retries=0)
    assert client.chat("hi") == "hello from azure"
    sent = server.requests[0]
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    assert "authorization" not in sent.headers and sent.json["model"] == "gpt-4o"
    assert "azure-key-1" not in repr(client) and "azure-key-1" not in repr(client._connection.headers)
    tokens = iter(["aad-1"] * 3)
    aad = AzureClient(endpoint, deployment="gpt-4o", token_provider=lambda: next(tokens), max_retries=0)
    assert aad.chat("hi") == "hello from azure"
    sent = server.requests[-1]
    assert sent.headers["authorization"] == "Bearer aad-1" and "api-key" not in sent.headers
    rotating = AzureClient(endpoint, deployment="gpt-4o", api_key=lambda: "azure-key-1", max_retries=0)
    assert rotating.chat("hi") == "hello from azure"
    sent = server.requests[-1]
    assert sent.headers["api-key"] == "azure-key-1" and "authorization" not in sent.headers, "a key that refreshes"


def test_azure_reads_its_key_only_for_its_own_endpoint(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.handler = _azure
    endpoint = server.url[: -len("/v1")]
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-1")
    with pytest.raises(ValueError, match="only sent to AZURE_OPENAI_ENDPOINT's resource"):
        AzureClient(endpoint, deployment="gpt-4o")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    assert AzureClient(deployment="gpt-4o", max_retries=0).chat("hi") == "hello from azure"


# -- keys that refresh ------------------------------------------------------------------------


class TokenProvider:
    """Hands out a new token each time it is called, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"token-{self.calls}"


def test_a_callable_key_is_called_for_each_attempt_and_a_401_tries_a_fresh_one(server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.headers.get("authorization") == "Bearer token-1":
            wire.json({"error": {"message": "token expired"}}, status=401)
        else:
            wire.json(completion(request.headers["authorization"]))

    server.handler = answer
    tokens = TokenProvider()
    client = Client(server.url, model="m", api_key=tokens, max_retries=0)
    assert client.chat("hi") == "Bearer token-2", "the expired token was replaced once"
    assert client.chat("hi") == "Bearer token-3" and tokens.calls == 3
    assert client.last is not None and client.last.attempts == 1
    server.handler = lambda req, wire: wire.json({"error": {"message": "no access"}}, status=401)
    with pytest.raises(AuthenticationError):
        client.chat("hi")
    assert tokens.calls == 5, "one fresh try after a 401, not more"
    assert "token-" not in repr(client) and "token-" not in repr(client._connection.headers)
    static = Client(server.url, model="m", api_key="static-key", max_retries=0)
    with pytest.raises(AuthenticationError):
        static.chat("hi")
    assert len([r for r in server.requests if r.headers.get("authorization") == "Bearer static-key"]) == 1


def test_a_fresh_key_after_a_401_spends_no_retry(server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.headers.get("authorization") == "Bearer token-1":
            wire.json({"error": {"message": "token expired"}}, status=401)
        else:
            wire.json({"error": {"message": "overloaded"}}, status=503, headers={"Retry-After": "0"})

    server.handler = answer
    with pytest.raises(InternalServerError):
        Client(server.url, model="m", api_key=TokenProvider(), max_retries=1).chat("hi")
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer token-1", "Bearer token-2",
                                                                    "Bearer token-3"]


def test_no_fresh_key_is_tried_once_the_calls_deadline_has_passed(server: LoopbackServer) -> None:
    tokens = TokenProvider()

    def slow_tokens() -> str:
        if not tokens.calls:
            time.sleep(0.7)  # the deadline runs out while the first key is fetched
        return tokens()

    server.handler = lambda req, wire: wire.json({"error": {"message": "token expired"}}, status=401)
    client = Client(server.url, model="m", api_key=slow_tokens, max_retries=0)
    with pytest.raises(AuthenticationError, match="token expired"):
        client.chat("hi", deadline=0.5)
    assert tokens.calls == 1 and len(server.requests) == 1, "a fresh key would only be sent past the deadline"


def test_a_callable_key_that_returns_garbage_is_refused_unseen(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", api_key=lambda: "bad key\n", max_retries=0)
    with pytest.raises(ValueError) as info:
        client.chat("hi")
    assert str(info.value) == ("api_key(): api_key is empty, not a str, or holds white space or control characters"
                               " (a trailing newline?)")
    assert server.requests == []


# -- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> Any:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def tls_server(authority: Any) -> Iterator[LoopbackServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    srv = LoopbackServer(tls=context)
    yield srv
    srv.close()


def test_verify_takes_a_ca_bundle_and_an_untrusted_certificate_names_the_fixes(
    tls_server: LoopbackServer, authority: Any, tmp_path: Path
) -> None:
    with pytest.raises(APIConnectionError) as info:
        Client(tls_server.url, model="m", max_retries=3).chat("hi")
    for fix in ("REQUESTS_CA_BUNDLE", "verify=", "trust='system'"):
        assert fix in str(info.value)
    assert info.value.attempts == 1, "an untrusted certificate is not retried"
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    assert Client(tls_server.url, model="m", verify=str(bundle)).chat("hi") == "ok"
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        assert Client(tls_server.url, model="m", verify=False).chat("hi") == "ok"


def test_verify_applies_to_a_callers_session_and_to_media_downloads(
    tls_server: LoopbackServer, authority: Any, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    picture = SAMPLES["image/png"]

    def answer(request: Request, wire: Wire) -> None:
        if request.path == "/cat.png":
            wire.body(picture, headers={"Content-Type": "image/png"})
        else:
            wire.json(completion("a cat"))

    tls_server.handler = answer
    client = Client(tls_server.url, model="m", verify=str(bundle), session=requests.Session())
    image_url = tls_server.url.replace("/v1", "/cat.png")
    assert client.chat("What is this?", images=[image_url], inline_urls=True) == "a cat"
    assert tls_server.requests[0].path == "/cat.png"


def test_cert_sends_a_client_certificate(authority: Any, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    authority.configure_trust(context)
    server = LoopbackServer(tls=context)
    try:
        bundle, identity = tmp_path / "ca.pem", tmp_path / "client.pem"
        authority.cert_pem.write_to_path(str(bundle))
        authority.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(str(identity))
        with pytest.raises(APIConnectionError):
            Client(server.url, model="m", verify=str(bundle), max_retries=0).chat("hi")
        assert Client(server.url, model="m", verify=str(bundle), cert=str(identity)).chat("hi") == "ok"
        server.handler = lambda request, wire: (
            wire.body(SAMPLES["image/png"], headers={"Content-Type": "image/png"}) if request.path == "/cat.png"
            else wire.json(completion("a cat")))
        client = Client(server.url, model="m", verify=str(bundle), cert=str(identity), session=requests.Session())
        image_url = server.url.replace("/v1", "/cat.png")
        assert client.chat("What is this?", images=[image_url], inline_urls=True) == "a cat"
        assert server.requests[-2].path == "/cat.png", "the download showed the certificate too"
    finally:
        server.close()


def test_trust_system_without_truststore_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "truststore", None)  # as on a machine where it is not installed
    assert Client("https://example.com/v1").base_url == "https://example.com/v1", "only trust='system' needs it"
    with pytest.raises(ValueError) as info:
        Client("https://example.com/v1", trust="system")
    assert str(info.value) == "trust='system' needs the truststore package (Python 3.10+): pip install truststore"
    with pytest.raises(ValueError, match="trust must be 'system'"):
        Client("https://example.com/v1", trust="mine")


def test_trust_system_verifies_against_the_operating_systems_store(
    tls_server: LoopbackServer, authority: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("truststore", reason="truststore (Python 3.10+) is what trust='system' uses")
    store = tmp_path / "system-store.pem"  # OpenSSL's store, where SSL_CERT_FILE points it
    authority.cert_pem.write_to_path(str(store))
    monkeypatch.setenv("SSL_CERT_FILE", str(store))
    with pytest.raises(APIConnectionError):
        Client(tls_server.url, model="m", max_retries=0).chat("hi")  # requests' own bundle does not hold it
    assert Client(tls_server.url, model="m", trust="system").chat("hi") == "ok"
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(APIConnectionError, match="certificate"):
        Client(tls_server.url, model="m", trust="system", max_retries=0).chat("hi")


# -- derived clients ------------------------------------------------------------------------------


def test_with_options_derives_a_client_on_the_same_pool(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", max_retries=2, timeout=30)
    other = client.with_options(model="big", max_retries=0, timeout=5, headers={"X-Team": "a"})
    assert (other.model, other.max_retries, other.timeout) == ("big", 0, 5)
    assert (client.model, client.max_retries, client.timeout) == ("m", 2, 30), "the original is unchanged"
    client.chat("hi")
    other.chat("hi")
    first, second = server.requests
    assert first.json["model"] == "m" and "x-team" not in first.headers
    assert second.json["model"] == "big" and second.headers["x-team"] == "a"
    assert server.connections == 1, "one pool for both"
    other.close()
    client.chat("again")
    assert server.connections == 1, "closing the derived client left the pool open"
    with pytest.raises(TypeError, match="with_options\\(\\) takes"):
        client.with_options(api_key="x")


def test_with_options_headers_join_the_clients_own_and_its_key_blocking_and_streamed(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", api_key="sk-own-0123456789", headers={"X-Team": "a"})
    other = client.with_options(headers={"X-Trace": "t", "X-Api-Key": "sk-added-0123456789"})
    other.chat("hi")
    "".join(other.chat("hi", stream=True))
    for sent in server.requests:
        assert (sent.headers["x-team"], sent.headers["x-trace"], sent.headers["x-api-key"]) == ("a", "t",
                                                                                               "sk-added-0123456789")
        assert sent.headers["authorization"] == "Bearer sk-own-0123456789"
    assert server.requests[1].headers["accept"] == "text/event-stream"
    server.handler = lambda req, wire: wire.json({"error": {"message": f"bad key {req.headers['x-api-key']}"}},
                                                 status=400)
    with pytest.raises(BadRequestError) as raised:
        other.chat("hi")
    assert "sk-added-0123456789" not in str(raised.value), "a key added by with_options() is masked too"
    with pytest.raises(ValueError) as wrong:
        client.with_options(headers={"X-Count": 1})
    assert str(wrong.value) == ("Client.with_options(): header 'X-Count' must be a str without line breaks or"
                                " control characters")


def test_a_client_with_options_pickles(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", api_key="secret-key-999").with_options(model="n")
    data = pickle.dumps(client)
    assert pickle.loads(data).chat("hi") == "ok"
    assert server.requests[0].json["model"] == "n"


# -- Perplexity ---------------------------------------------------------------------------------


CITATIONS = ["https://en.wikipedia.org/wiki/Oslo", "https://www.visitoslo.com/"]
SEARCH_RESULTS = [{"title": "Oslo - Wikipedia", "url": CITATIONS[0], "date": "2025-01-02"}]


def test_perplexity_keeps_citations_and_search_results(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("Oslo.", citations=CITATIONS,
                                                            search_results=SEARCH_RESULTS))
    client = PerplexityClient(base_url=server.url, api_key="pplx-key", model="sonar", max_retries=0)
    assert client.chat("Capital of Norway?") == "Oslo."
    assert client.last is not None
    assert client.last.extras == {"citations": CITATIONS, "search_results": SEARCH_RESULTS}
    # Perplexity's stream repeats both in each chunk.
    server.handler = lambda req, wire: wire.sse([
        event(chunk("Os", citations=CITATIONS, search_results=SEARCH_RESULTS)),
        event(chunk("lo.", citations=CITATIONS, search_results=SEARCH_RESULTS)),
        event(chunk(finish_reason="stop", citations=CITATIONS, search_results=SEARCH_RESULTS)),
        "data: [DONE]\n\n"])
    assert "".join(client.chat("Capital of Norway?", stream=True)) == "Oslo."
    assert client.last.extras["citations"] == CITATIONS
    plain = Client(server.url, model="m")
    "".join(plain.chat("x", stream=True))
    assert plain.last is not None and plain.last.extras == {}


# -- the request, shown ---------------------------------------------------------------------------


def test_as_curl_gives_the_exact_request_with_the_key_as_a_variable(server: LoopbackServer) -> None:
    import json
    import shlex
    import subprocess

    client = Client(server.url, model="m", api_key="sk-curl-secret-1", max_retries=0,
                    default_query={"api-version": "1"})
    client.chat("It's 5 o'clock", max_tokens=3, extra_headers={"X-Trace": "t"})
    command = client.last.as_curl() if client.last is not None else ""
    assert "sk-curl-secret-1" not in command and '"Authorization: Bearer $OPENAI_API_KEY"' in command
    assert shlex.split(command)[:4] == ["curl", "-X", "POST", server.url + "/chat/completions?api-version=1"]
    # Run it: the server gets the same body and headers.
    result = subprocess.run(["sh", "-c", command], env={"OPENAI_API_KEY": "sk-curl-secret-1", "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30)
    if result.returncode == 127:
        pytest.skip("curl is not installed")
    first, again = server.requests
    assert again.json == first.json and again.path == first.path
    assert again.headers["authorization"] == "Bearer sk-curl-secret-1" and again.headers["x-trace"] == "t"
    assert json.loads(result.stdout)["choices"][0]["message"]["content"] == "ok"
    assert pickle.loads(pickle.dumps(client.last)).usage == client.last.usage if client.last else False


def test_a_failed_call_can_be_shown_as_curl_too(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "bad"}}, status=400)
    client = Client(server.url, model="m", api_key="sk-curl-secret-2", max_retries=0)
    with pytest.raises(BadRequestError):
        client.chat("hi")
    assert client.last is not None and "/chat/completions" in client.last.as_curl()
    assert "sk-curl-secret-2" not in client.last.as_curl()


def test_the_cli_prints_the_call_as_curl(server: LoopbackServer) -> None:
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--curl", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("curl -X POST ") and '"messages"' in result.stderr


def test_openai_compat_log_debug_logs_bodies_with_the_key_masked(server: LoopbackServer) -> None:
    import subprocess
    import sys

    script = ("from openai_compat import Client\n"
              f"Client({server.url!r}, model='m', api_key='sk-log-secret-3').chat('say sk-log-secret-3')\n")
    result = subprocess.run([sys.executable, "-c", script], env={"OPENAI_COMPAT_LOG": "debug", "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "request body:" in result.stderr and "response body:" in result.stderr
    assert "sk-log-secret-3" not in result.stderr and "say ***" in result.stderr


@pytest.fixture
def bare_loggers() -> Iterator[tuple[logging.Logger, logging.Logger]]:
    """The SDK's loggers as an application that configures no logging leaves them, restored after."""
    logger, bodies = logging.getLogger("openai_compat"), logging.getLogger("openai_compat.bodies")
    saved = (logger.handlers[:], logger.level, bodies.level)
    logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    yield logger, bodies
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])  # setLevel, not .level =, also forgets the levels logging has cached
    bodies.setLevel(saved[2])


@pytest.mark.parametrize("setting", ["debug", "INFO", "warning", "error", "", None])
def test_openai_compat_log_sets_up_one_handler_at_its_level(
    server: LoopbackServer, bare_loggers: tuple[logging.Logger, logging.Logger], setting: str | None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openai_compat._pipeline import log_from_environment

    logger, bodies = bare_loggers
    if setting is None:
        monkeypatch.delenv("OPENAI_COMPAT_LOG", raising=False)
        setting = ""
    else:
        monkeypatch.setenv("OPENAI_COMPAT_LOG", setting)
    log_from_environment()
    log_from_environment()
    added = [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]
    if setting.lower() not in ("debug", "info", "warning"):
        assert added == [] and logger.level == logging.NOTSET
        return
    level = logging.getLevelName(setting.upper())
    assert len(added) == 1 and (logger.level, bodies.level) == (level, level), "set up once, at its level"
    Client(server.url, model="m", api_key="sk-log-secret-4", max_retries=0).chat("say sk-log-secret-4")
    lines = capsys.readouterr().err.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d [\d:,]+ openai_compat (DEBUG|INFO|WARNING) ", line) for line in lines)
    assert any("request body:" in line and "say ***" in line for line in lines) == (setting == "debug")
    assert "sk-log-secret-4" not in "".join(lines)


def test_debug_logs_each_body_and_attempt_exactly_with_the_key_masked(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-log-secret-5"
    for pad in ("", "x"):  # the cut at 4,000 bytes falls inside a two-byte character
        answer = json.dumps(completion(f"you said {key} {pad}" + "é" * 2500), ensure_ascii=False).encode()
        if answer[:4000].decode("utf-8", "replace").endswith("\ufffd"):
            break
    assert answer[:4000].decode("utf-8", "replace").endswith("\ufffd")

    def handler(request: Request, wire: Wire) -> None:
        if "seed" in request.json:
            wire.json({"error": {"message": "Unrecognized request argument supplied: seed",
                                 "type": "invalid_request_error", "param": "seed"}}, status=400)
        else:
            wire.body(answer, headers={"Content-Type": "application/json", "x-request-id": "req-log"})

    server.handler = handler
    client = Client(server.url, model="m", api_key=key, adapt=True, max_retries=0)
    prompt = f"say {key} " + "x" * 5000
    with caplog.at_level(logging.DEBUG, logger="openai_compat"), \
            caplog.at_level(logging.DEBUG, logger="openai_compat.bodies"):
        client.chat(prompt, seed=5)
    lines = [(r.name, r.getMessage()) for r in caplog.records if "dropped" not in r.getMessage()]
    sent = [json.dumps(r.json)[:4000].replace(key, "***") for r in server.requests]
    url = f"{server.url}/chat/completions"
    assert [line for name, line in lines if name == "openai_compat.bodies"] == [
        f"POST /chat/completions request body: {sent[0]}", f"POST /chat/completions request body: {sent[1]}",
        f"POST /chat/completions response body: {answer[:4000].decode('utf-8', 'replace').replace(key, '***')}"]
    attempts = [line for name, line in lines if name == "openai_compat"]
    assert [re.sub(r"in \d+\.\d{3}s", "in Ts", line) for line in attempts] == [
        f"POST {url} -> 400 in Ts (attempt 1 of 1, request id -): HTTP 400: Unrecognized request argument"
        " supplied: seed",
        f"POST {url} -> 200 in Ts (attempt 2 of 2, request id req-log)"], "a resent refused field is free"
    caplog.clear()
    server.handler = lambda req, wire: wire.json({"data": []})
    with caplog.at_level(logging.DEBUG, logger="openai_compat.bodies"):
        client.get_json("/models")
    assert [r.getMessage() for r in caplog.records] == ['GET /models response body: {"data": []}'], \
        "a request without a body logs none"
    caplog.clear()
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b"]))
    with caplog.at_level(logging.DEBUG, logger="openai_compat.bodies"):
        assert "".join(client.chat("hi", stream=True)) == "ab"
    assert [r.getMessage() for r in caplog.records] == [
        f"POST /chat/completions request body: {json.dumps(server.requests[-1].json)}"], \
        "a stream's body is read by the stream, not logged whole"


def test_stream_usage_auto_asks_where_the_preset_knows_the_server_takes_it(server: LoopbackServer) -> None:
    from openai_compat import GroqClient

    def answer(request: Request, wire: Wire) -> None:
        if "stream_options" in request.json and request.json["model"] == "strict":
            wire.json({"error": {"message": "stream_options is not supported", "param": "stream_options"}},
                      status=400)
        else:
            wire.sse([event(chunk("ok")), event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])

    server.handler = answer
    groq = GroqClient(base_url=server.url, api_key="gsk-1", model="m", max_retries=0)
    "".join(groq.chat("x", stream=True))
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    "".join(Client(server.url, model="m").chat("x", stream=True))
    assert "stream_options" not in server.requests[-1].json, "an unknown server is not asked"
    "".join(GroqClient(base_url=server.url, api_key="gsk-1", model="m", stream_usage=False).chat("x", stream=True))
    assert "stream_options" not in server.requests[-1].json
    assert "".join(groq.chat("x", model="strict", stream=True)) == "ok", "a refusal is dropped and remembered"
    with pytest.raises(ValueError, match="stream_usage must be"):
        Client(server.url, stream_usage="always")


# -- what every call takes for itself, and what it keeps of the client's ------------------------------


def _answer_by_path(request: Request, wire: Wire) -> None:
    """An answer of the right shape for each endpoint a call may use."""
    path = request.path.split("?")[0]
    if path.endswith("/embeddings"):
        wire.json({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]})
    elif path.endswith("/responses"):
        message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}
        wire.json({"id": "resp_1", "object": "response", "status": "completed", "output": [message]})
    elif path.endswith("/chat/completions"):
        wire.json(completion('{"ok": true}'))
    elif path.endswith("/completions"):
        wire.json(completion("ok", chat=False))
    else:
        wire.json({"object": "list", "data": []})


HI = [{"role": "user", "content": "hi"}]
CALLS_WITH_SETTINGS = {
    "chat": lambda client, **s: client.chat("hi", **s),
    "chat_message": lambda client, **s: client.chat_message("hi", **s),
    "chat_choices": lambda client, **s: client.chat_choices("hi", n=2, **s),
    "chat_json": lambda client, **s: client.chat_json("hi", **s),
    "complete": lambda client, **s: client.complete("hi", **s),
    "respond": lambda client, **s: client.respond("hi", **s),
    "embed": lambda client, **s: client.embed("hi", **s),
    "create_chat_completion": lambda client, **s: client.create_chat_completion(messages=HI, **s),
    "create_completion": lambda client, **s: client.create_completion(prompt="hi", **s),
    "create_response": lambda client, **s: client.create_response(input="hi", **s),
    "post_json": lambda client, model="slow", **s: client.post_json("/chat/completions",
                                                                    {"model": model, "messages": HI}, **s),
}


@pytest.mark.parametrize("name", list(CALLS_WITH_SETTINGS))
def test_every_call_holds_its_own_timeout_deadline_and_retries_else_the_clients(server: LoopbackServer,
                                                                                name: str) -> None:
    call = CALLS_WITH_SETTINGS[name]
    release = threading.Event()
    busy_once = iter([True])

    def answer(request: Request, wire: Wire) -> None:
        if request.json and "slow" in json.dumps(request.json):
            release.wait(10)
        if next(busy_once, False):
            wire.json({"error": {"message": "busy"}}, status=503)
        else:
            _answer_by_path(request, wire)

    server.handler = answer
    client = Client(server.url, model="slow", max_retries=0, timeout=(1, 5))
    call(client, max_retries=1, model="m")
    assert len(server.requests) == 2, "max_retries=1 held: the busy answer was asked again"
    try:
        with pytest.raises(APITimeoutError, match=r"read timeout=0\.3"):
            call(client, timeout=0.3)
        with pytest.raises(APITimeoutError, match=r"the call's deadline of 0\.3 s passed"):
            call(client, deadline=0.3)
        with pytest.raises(APITimeoutError, match=r"read timeout=0\.3"):
            call(client.with_options(timeout=(1, 0.3)))
        with pytest.raises(APITimeoutError, match=r"the call's deadline of 0\.3 s passed"):
            call(client.with_options(deadline=0.3))
    finally:
        release.set()


def test_a_timeout_is_named_for_what_ran_out(server: LoopbackServer) -> None:
    release = threading.Event()

    def late(request: Request, wire: Wire) -> None:
        release.wait(10)
        wire.json(completion("late"))

    server.handler = late
    client = Client(server.url, model="m", max_retries=0, timeout=(1, 0.2))
    try:
        with pytest.raises(APITimeoutError) as info:
            client.chat("hi", deadline=1.0)
        assert str(info.value) == f"timed out waiting for {server.url}/chat/completions: Read timed out. (read" \
                                  " timeout=0.2)", "the read timeout, well before the deadline"
        with pytest.raises(APITimeoutError) as info:
            client.chat("hi", timeout=5, deadline=0.2)
        assert str(info.value) == f"the call's deadline of 0.2 s passed waiting for {server.url}/chat/completions"
    finally:
        release.set()


CALLS_WITHOUT_SETTINGS = {
    "models": lambda client: client.models(),
    "get_json": lambda client: client.get_json("/models"),
    "get_bytes": lambda client: client.get_bytes("/files/file-1/content"),
    "upload_file": lambda client: client.upload_file(b'{"custom_id": "a"}\n', "a.jsonl", "batch"),
}


@pytest.mark.parametrize("name", list(CALLS_WITHOUT_SETTINGS))
def test_calls_without_settings_of_their_own_keep_the_clients(server: LoopbackServer, name: str) -> None:
    release = threading.Event()

    def slow(request: Request, wire: Wire) -> None:
        release.wait(10)
        wire.json({"object": "list", "data": []})

    server.handler = slow
    try:
        with pytest.raises(APITimeoutError, match=r"read timeout=0\.3"):
            CALLS_WITHOUT_SETTINGS[name](Client(server.url, model="m", max_retries=0, timeout=(1, 0.3)))
        with pytest.raises(APITimeoutError, match=r"the call's deadline of 0\.3 s passed"):
            CALLS_WITHOUT_SETTINGS[name](Client(server.url, model="m", max_retries=0, timeout=(1, 5), deadline=0.3))
    finally:
        release.set()
    assert {r.method for r in server.requests} == {"POST" if name == "upload_file" else "GET"}


def test_the_raw_calls_send_what_they_are_given_unchecked(server: LoopbackServer) -> None:
    server.handler = _answer_by_path
    client = Client(server.url, max_retries=0)  # no model of its own: each call names one
    trace = {"X-Trace": "t-1"}
    client.create_chat_completion(model="m", messages=HI, max_tokesn=3, extra_headers=trace)
    client.create_completion(model="m", prompt="hi", max_tokesn=3, extra_headers=trace)
    client.create_response(model="m", input="hi", max_tokesn=3, extra_headers=trace)
    assert [r.json for r in server.requests] == [{"model": "m", "messages": HI, "max_tokesn": 3},
                                                 {"model": "m", "prompt": "hi", "max_tokesn": 3},
                                                 {"model": "m", "input": "hi", "max_tokesn": 3}]
    assert [r.headers["x-trace"] for r in server.requests] == ["t-1"] * 3
    server.handler = lambda req, wire: wire.sse([event(chunk("Once", chat=False)), "data: [DONE]\n\n"])
    assert [c["choices"][0]["text"] for c in client.create_completion(model="m", prompt="hi", stream=True)] == ["Once"]
    assert (server.requests[-1].path, server.requests[-1].json["stream"]) == ("/v1/completions", True)
    with pytest.raises(ValueError) as bad_path:
        client.get_json("models")
    assert str(bad_path.value) == "the path must start with '/', got 'models'"
    for call, words in [(client.create_chat_completion, "create_chat_completion() needs messages=[...]"),
                        (client.create_completion, "create_completion() needs prompt=..."),
                        (client.create_response, "create_response() needs input=...")]:
        with pytest.raises(TypeError) as info:
            call(model="m")
        assert str(info.value) == words
    assert len(server.requests) == 4, "nothing sent for them"
