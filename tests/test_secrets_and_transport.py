"""The key never leaks; redirects, TLS, proxies, logging and the event hook."""

from __future__ import annotations

import logging
import re
import shutil
import ssl
import subprocess
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import requests

from openai_compat import APIConnectionError, APIStatusError, AuthenticationError, Client, RequestEvent, Usage

from .server import LoopbackServer, completion, stream_of

KEY = "sk-live-0123456789abcdef"


def _echo_key_error(req, wire) -> None:
    # Some servers quote the key they rejected; it must not reach the exception.
    wire.json({"error": {"message": f"Incorrect API key provided: {KEY}", "key": KEY}}, status=401,
              headers={"x-request-id": "req-9"})


def test_the_key_never_appears_in_an_exception_or_its_traceback(server: LoopbackServer) -> None:
    server.handler = _echo_key_error
    client = Client(server.url, api_key=KEY, model="m")
    with pytest.raises(AuthenticationError) as info:
        client.chat("hi")
    exc = info.value
    assert "Incorrect API key provided: ***" in str(exc)
    shown = [str(exc), repr(exc), repr(vars(exc)), "".join(traceback.format_exception(type(exc), exc,
                                                                                     exc.__traceback__))]
    assert not any(KEY in text for text in shown)


def test_the_bare_token_of_a_users_own_authorization_header_is_a_secret(server: LoopbackServer) -> None:
    token = "tok-user-abcdef123456"
    server.handler = lambda req, wire: wire.json({"error": {"message": f"token {token} expired"}}, status=401)
    client = Client(server.url, headers={"Authorization": f"Bearer {token}"}, model="m")
    with pytest.raises(AuthenticationError) as info:
        client.chat("hi")
    assert server.requests[0].headers["authorization"] == f"Bearer {token}"
    assert token not in str(info.value) and token not in repr(info.value.body)
    assert "token *** expired" in str(info.value)


def test_the_key_never_appears_in_log_records_at_any_level(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.handler = _echo_key_error
    client = Client(server.url, api_key=KEY, model="m", max_retries=0)
    with pytest.raises(AuthenticationError):
        client.chat("hi")
    server.handler = lambda req, wire: wire.json(completion("ok"), headers={"x-request-id": "req-1"})
    client.chat("hi")
    assert caplog.records, "DEBUG logging says something"
    assert not any(KEY in record.getMessage() for record in caplog.records)


def test_debug_logging_gives_one_line_per_request(server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    server.handler = lambda req, wire: wire.json(completion("ok"), headers={"x-request-id": "req-77"})
    client = Client(server.url, api_key=KEY, model="m")
    with caplog.at_level(logging.DEBUG, logger="openai_compat"):
        client.chat("hi")
    ours = [r for r in caplog.records if r.name == "openai_compat"]
    assert len(ours) == 1
    line = ours[0].getMessage()
    assert line.startswith(f"POST {server.url}/chat/completions -> 200 in ")
    assert "attempt 1 of 3" in line and "request id req-77" in line


ELAPSED = r"[0-4]\.\d{3}s"  # a loopback call takes milliseconds


def test_debug_lines_of_a_retried_call_say_each_attempt_in_full(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter([lambda w: w.json({"error": {"message": "busy"}}, status=503,
                                     headers={"Retry-After": "0", "x-request-id": "req-8"}),
                    lambda w: w.json(completion("ok"), headers={"x-request-id": "req-9"})])
    server.handler = lambda req, wire: next(answers)(wire)
    with caplog.at_level(logging.DEBUG, logger="openai_compat"):
        Client(server.url, api_key=KEY, model="m", max_retries=1).chat("hi")
    lines = [r.getMessage() for r in caplog.records if r.name == "openai_compat"]
    url = re.escape(f"{server.url}/chat/completions")
    assert len(lines) == 2, lines
    first = (rf"POST {url} -> 503 in {ELAPSED} \(attempt 1 of 2, request id req-8\): HTTP 503: busy"
             r" \(retry after 0 s\) \(request id req-8\)")
    assert re.fullmatch(first, lines[0]), lines[0]
    assert re.fullmatch(rf"POST {url} -> 200 in {ELAPSED} \(attempt 2 of 2, request id req-9\)", lines[1]), lines[1]


def test_a_debug_line_says_when_no_response_came(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"  # nothing listens there
    with caplog.at_level(logging.DEBUG, logger="openai_compat"), pytest.raises(APIConnectionError):
        Client("http://127.0.0.1:9/v1", api_key=KEY, model="m", max_retries=0).chat("hi")
    line = next(r.getMessage() for r in caplog.records if r.name == "openai_compat")
    expected = rf"POST {re.escape(url)} -> no response in {ELAPSED} \(attempt 1 of 1, request id -\): could not .+"
    assert re.fullmatch(expected, line), line


def test_the_library_is_silent_by_default(server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    Client(server.url, model="m").chat("hi")
    assert capsys.readouterr() == ("", "")


def test_an_invalid_header_value_is_refused_without_showing_it(server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="header 'api-key' must be a str without line breaks") as info:
        Client(server.url, model="m", headers={"api-key": "s3cr3t\nvalue"})
    assert "s3cr3t" not in str(info.value)


@pytest.fixture
def other_host() -> Iterator[LoopbackServer]:
    try:
        srv = LoopbackServer("127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not routable here")
    yield srv
    srv.close()


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_to_another_host_never_carries_the_key(
    server: LoopbackServer, other_host: LoopbackServer, code: int
) -> None:
    target = f"{other_host.url}/chat/completions"
    server.handler = lambda req, wire: wire.body(b"", code, {"Location": target})
    client = Client(server.url, api_key=KEY, model="m", headers={"x-api-key": "another-secret"})
    with pytest.raises(APIStatusError, match=r"redirected to http://127\.0\.0\.2") as info:
        client.chat("hi")
    assert info.value.status_code == code
    assert all("authorization" not in r.headers and "x-api-key" not in r.headers for r in other_host.requests)
    assert other_host.requests == [], "the request is not re-sent anywhere"


@pytest.mark.parametrize("code, location", [(300, None), (303, "/v2/chat/completions")])
def test_a_redirect_says_where_it_pointed_and_carries_the_request_id(
    server: LoopbackServer, code: int, location: str | None
) -> None:
    headers = {"x-request-id": "req-3xx", **({"Location": location} if location else {})}
    server.handler = lambda req, wire: wire.body(b"", code, headers)
    with pytest.raises(APIStatusError) as info:
        Client(server.url, api_key=KEY, model="m", max_retries=0).chat("hi")
    assert str(info.value) == (
        f"HTTP {code}: the server redirected to {location or '(no Location)'}; the SDK does not follow"
        " redirects, so the request and its key never go to another URL: set base_url to the new address"
        " if you trust it (request id req-3xx)"
    )
    assert (info.value.status_code, info.value.request_id) == (code, "req-3xx")
    assert len(server.requests) == 1


def test_a_bad_header_on_a_callers_session_is_named_but_never_shown(server: LoopbackServer) -> None:
    session = requests.Session()
    session.headers["X-Token"] = f" {KEY}"  # a leading space: requests refuses to send it
    client = Client(server.url, model="m", max_retries=3, session=session)
    with pytest.raises(APIConnectionError) as info:
        client.chat("hi")
    assert str(info.value) == "a header value is invalid (values are not shown, they may be secret)"
    assert client.last is not None and client.last.attempts == 1, "the same header fails the same way: not retried"
    assert KEY not in "".join(traceback.format_exception(type(info.value), info.value, info.tb))
    assert server.requests == []


def test_a_refused_connection_names_the_url_and_the_cause_not_urllib3s_wrapping() -> None:
    url = "http://127.0.0.1:9/v1"  # nothing listens there
    with pytest.raises(APIConnectionError) as info:
        Client(url, model="m", max_retries=0).chat("hi")
    message = str(info.value)
    assert message.startswith(f"could not reach {url}/chat/completions: ")
    assert "Connection refused" in message
    assert "Max retries" not in message and "HTTPConnectionPool" not in message


def test_tls_is_verified_by_default() -> None:
    assert Client("https://api.example.com/v1")._connection.session.verify is True


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"choices": [{"index": 0, "message": {"content": "over tls"}}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/v1", Path(cert)
    httpd.shutdown()


def test_an_unknown_certificate_is_refused(tls_server: tuple) -> None:
    url, _ = tls_server
    with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
        Client(url, model="m", max_retries=0).chat("hi")


def test_a_custom_ca_bundle_works_through_the_users_session(tls_server: tuple) -> None:
    url, cert = tls_server
    session = requests.Session()
    session.verify = str(cert)
    assert Client(url, model="m", session=session).chat("hi") == "over tls"


def test_a_proxy_works_through_the_users_session(server: LoopbackServer) -> None:
    session = requests.Session()
    session.proxies = {"http": f"http://127.0.0.1:{server.port}"}
    client = Client("http://api.example.invalid/v1", api_key=KEY, model="m", session=session)
    assert client.chat("hi") == "ok"
    assert server.requests[0].path == "http://api.example.invalid/v1/chat/completions"


# -- the environment: proxies and the CA bundle, read when the client is made --------------------


def test_the_environments_proxy_is_used(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    client = Client("http://api.example.invalid/v1", api_key=KEY, model="m")
    assert client.chat("hi") == "ok"
    assert server.requests[0].path == "http://api.example.invalid/v1/chat/completions"


def test_no_proxy_goes_straight_to_the_server(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert Client(server.url, model="m", max_retries=0).chat("hi") == "ok"
    assert server.requests[0].path == "/v1/chat/completions"


def test_the_environments_ca_bundle_is_trusted(tls_server: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert Client(url, model="m").chat("hi") == "over tls"


def test_the_environment_is_read_when_the_client_is_made(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(server.url, model="m", max_retries=0)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert client.chat("hi") == "ok", "a proxy set later applies to clients made later"
    with pytest.raises(APIConnectionError):
        Client(server.url, model="m", max_retries=0).chat("hi")


# -- the event hook ------------------------------------------------------------------------------


def test_the_event_hook_sees_attempts_status_elapsed_and_usage(server: LoopbackServer) -> None:
    usage_event = 'data: {"choices": [], "usage": {"total_tokens": 11}}\n\n'
    answers = iter([lambda w: w.json({"error": "busy"}, status=503, headers={"Retry-After": "0"}),
                    lambda w: w.json(completion("ok"), headers={"x-request-id": "req-5"}),
                    lambda w: w.sse([*stream_of(["a"])[:-1], usage_event, "data: [DONE]\n\n"])])
    server.handler = lambda req, wire: next(answers)(wire)
    events: list[RequestEvent] = []
    client = Client(server.url, model="m", event_hook=events.append)
    client.chat("hi")
    list(client.chat("hi", stream=True, stream_options={"include_usage": True}))
    kinds = [(e.kind, e.attempt, e.status_code) for e in events]
    assert kinds == [("request", 1, None), ("response", 1, 503), ("request", 2, None), ("response", 2, 200),
                     ("request", 1, None), ("response", 1, 200), ("stream_end", 1, 200)]
    assert events[1].error and "busy" in events[1].error
    assert events[3].usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert events[3].request_id == "req-5"
    assert events[-1].usage == {"total_tokens": 11}
    assert all(e.elapsed is not None and 0 <= e.elapsed < 5 for e in events if e.kind != "request")
    assert all(e.url == f"{server.url}/chat/completions" and e.method == "POST" for e in events)
    assert events[3].normalized_usage == Usage(3, 2, 5) and events[-1].normalized_usage == Usage(total_tokens=11)
    assert [e.normalized_usage for e in events if e.kind == "request"] == [None] * 3


@pytest.fixture
def netrc_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~/.netrc with a login for the loopback server, as requests would find it."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))


@pytest.mark.usefixtures("netrc_login")
def test_a_netrc_entry_does_not_replace_the_key(server: LoopbackServer) -> None:
    Client(server.url, api_key=KEY, model="m").chat("hi")
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    Client(server.url, model="m").chat("hi")  # no key of ours: requests' own rules apply
    assert server.requests[1].headers["authorization"].startswith("Basic ")


def test_events_of_a_get_name_its_method_and_each_failed_attempts_request_id(server: LoopbackServer) -> None:
    answers = iter([lambda w: w.json({"error": "busy"}, status=503, headers={"Retry-After": "0", "x-request-id": "r1"}),
                    lambda w: w.json({"data": [{"id": "m"}]}, headers={"x-request-id": "r2"})])
    server.handler = lambda req, wire: next(answers)(wire)
    events: list[RequestEvent] = []
    assert [m["id"] for m in Client(server.url, event_hook=events.append).models()] == ["m"]
    assert [(e.kind, e.method, e.attempt, e.status_code, e.request_id) for e in events] == [
        ("request", "GET", 1, None, None), ("response", "GET", 1, 503, "r1"),
        ("request", "GET", 2, None, None), ("response", "GET", 2, 200, "r2")]
    assert all(0 <= e.elapsed < 5 for e in events if e.elapsed is not None)
    assert [e.elapsed is None for e in events] == [True, False, True, False]


def test_the_event_of_a_refused_connection_has_no_status_and_no_request_id() -> None:
    events: list[RequestEvent] = []
    with pytest.raises(APIConnectionError):
        Client("http://127.0.0.1:9/v1", model="m", max_retries=0, event_hook=events.append).chat("hi")
    response = events[-1]
    assert (response.kind, response.status_code, response.request_id) == ("response", None, None)
    assert response.error is not None and response.error.startswith("could not reach ")
    assert response.elapsed is not None and 0 <= response.elapsed < 5


def test_a_stream_asks_for_events_with_every_header_of_the_client(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: (wire.sse(stream_of(["a"])) if req.json.get("stream")
                                        else wire.json(completion("b")))
    client = Client(server.url, api_key=KEY, model="m", headers={"X-Team": "blue"})
    assert client.chat("hi") == "b"
    assert list(client.chat("hi", stream=True)) == ["a"]
    blocking, streamed = server.requests
    assert streamed.headers["accept"] == "text/event-stream"
    assert blocking.headers["accept"] != "text/event-stream"
    for request in (blocking, streamed):
        assert (request.headers["authorization"], request.headers["x-team"]) == (f"Bearer {KEY}", "blue")


@pytest.mark.usefixtures("netrc_login")
def test_a_netrc_entry_does_not_replace_the_key_on_a_callers_session(server: LoopbackServer) -> None:
    session = requests.Session()  # trust_env stays on: requests would put ~/.netrc's login in
    Client(server.url, api_key=KEY, model="m", session=session).chat("hi")
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_an_upload_has_its_request_and_response_events(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"id": "file-1", "object": "file"}, headers={"x-request-id": "r3"})
    events: list[RequestEvent] = []
    assert Client(server.url, event_hook=events.append).upload_file(b"{}\n", "in.jsonl", "batch")["id"] == "file-1"
    assert [(e.kind, e.method, e.url, e.status_code, e.request_id) for e in events] == [
        ("request", "POST", f"{server.url}/files", None, None), ("response", "POST", f"{server.url}/files", 200, "r3")]


# -- secrets in other headers and places ------------------------------------------------------------


def test_an_x_api_key_header_is_a_secret_in_errors_logs_and_reprs(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = "xak-live-0123456789abcdef"
    server.handler = lambda req, wire: wire.json({"error": {"message": f"key {token} is revoked"}}, status=401)
    client = Client(server.url, model="m", headers={"x-api-key": token}, max_retries=0)
    with caplog.at_level(logging.DEBUG, logger="openai_compat"), pytest.raises(AuthenticationError) as info:
        client.chat("hi")
    assert server.requests[0].headers["x-api-key"] == token, "sent to its own server"
    assert str(info.value) == "HTTP 401: key *** is revoked (the key sent came from the x-api-key header)"
    assert token not in repr(info.value.body) and token not in repr(client)
    assert caplog.records and not any(token in r.getMessage() for r in caplog.records)


def test_a_redirect_location_carrying_the_key_is_shown_redacted(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.body(b"", 302, {"Location": f"https://elsewhere.example/v1?key={KEY}"})
    with pytest.raises(APIStatusError) as info:
        Client(server.url, api_key=KEY, model="m", max_retries=0).chat("hi")
    assert "redirected to https://elsewhere.example/v1?key=***;" in str(info.value)
    assert KEY not in "".join(traceback.format_exception(type(info.value), info.value, info.tb))
