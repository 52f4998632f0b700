"""The fault suite: each fault, the exact outcome, how many requests the server saw.

Every client here allows two retries with short timeouts; servers that ask for a wait ask
for a short one, so the whole table runs in seconds.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import requests

from openai_compat import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestEvent,
    RetryPolicy,
    UnprocessableEntityError,
)

from .server import LoopbackServer, Request, Wire, chunk, completion, event, stream_of

SHORT = {"Retry-After": "0"}


def reset_before_headers(req: Request, wire: Wire) -> None:
    wire.reset()


def reset_after_headers(req: Request, wire: Wire) -> None:
    wire.head(200, {"Content-Type": "application/json", "Content-Length": "500"})
    wire.write(b'{"choices": [')
    time.sleep(0.05)
    wire.reset()


def stall_before_headers(req: Request, wire: Wire) -> None:
    wire.stall(2)


def truncated_body(req: Request, wire: Wire) -> None:
    wire.head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    wire.write(b"200\r\n" + b'{"choices": [')
    wire.close()


def status(code: int, body: bytes = b"", content_type: str = "application/json", headers: dict | None = None):
    def handler(req: Request, wire: Wire) -> None:
        wire.body(body, code, {"Content-Type": content_type, "x-request-id": f"req-{len(req.path)}",
                               **(headers or {})})
    return handler


def then_ok(first: Callable[[Request, Wire], None], times: int = 1):
    """``first`` for the first ``times`` requests a server sees, then a good answer."""
    def handler(req: Request, wire: Wire) -> None:
        if req.number <= times:
            first(req, wire)
        else:
            wire.json(completion("recovered"))
    return handler


@dataclass
class Fault:
    handler: Callable[[Request, Wire], None]
    outcome: object  # an exception type, or the text the call returns
    requests: int
    waited: float = 0.0  # the least time between the first two requests
    #: The read timeout: short, so that stalls fail fast; a big body gets one that a loaded
    #: machine's pauses between two reads of it never reach.
    read_timeout: float = 0.3


JSON_500 = b'{"error": {"message": "internal failure"}}'
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
TEN_MB = "x" * (10 * 1024 * 1024)

FAULTS = {
    "reset before headers": Fault(reset_before_headers, APIConnectionError, 3),
    "reset before headers, then ok": Fault(then_ok(reset_before_headers), "recovered", 2),
    "reset after headers": Fault(reset_after_headers, APIConnectionError, 3),
    "reset after headers, then ok": Fault(then_ok(reset_after_headers, 2), "recovered", 3),
    "stall before headers": Fault(stall_before_headers, APITimeoutError, 3),
    "truncated chunked body": Fault(truncated_body, APIConnectionError, 3),
    # Each named wait is longer than any backoff (at most 0.5 s before the first retry).
    "429 Retry-After seconds": Fault(then_ok(status(429, headers={"Retry-After": "1"})), "recovered", 2, 0.9),
    # An HTTP date has whole seconds: two seconds ahead is a wait of more than one.
    "429 Retry-After http date": Fault(then_ok(lambda r, w: status(429, headers={
        "Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)})(r, w)), "recovered", 2, 0.9),
    # Read as seconds, 700 would be over the cap and raise at once.
    "429 retry-after-ms": Fault(then_ok(status(429, headers={"retry-after-ms": "700"})), "recovered", 2, 0.65),
    "429 wait above the cap": Fault(status(429, headers={"Retry-After": "120"}), RateLimitError, 1),
    "429 every time": Fault(status(429, headers=SHORT), RateLimitError, 3),
    "408": Fault(then_ok(status(408, headers=SHORT)), "recovered", 2),
    "409": Fault(status(409, headers=SHORT), ConflictError, 3),
    "400 not retried": Fault(status(400, b'{"error": "bad"}', headers=SHORT), BadRequestError, 1),
    "401 not retried": Fault(status(401, headers=SHORT), AuthenticationError, 1),
    "404 not retried": Fault(status(404, headers=SHORT), NotFoundError, 1),
    "422 not retried": Fault(status(422, headers=SHORT), UnprocessableEntityError, 1),
    "200 with an error object": Fault(status(200, b'{"error": {"message": "overloaded"}}'), APIResponseError, 1),
    "200 with no choices": Fault(status(200, b'{"id": "x", "choices": []}'), APIResponseError, 1),
    "200 with invalid JSON": Fault(status(200, b'{"choices": [}'), APIResponseError, 1),
    "200 with invalid UTF-8": Fault(status(200, b'{"choices": [{"text": "\xc3\x28"}]}'), APIResponseError, 1),
    "200 with a 10 MB body": Fault(lambda r, w: w.json(completion(TEN_MB)), TEN_MB, 1, read_timeout=10),
}
for code in (500, 502, 503, 504):
    for kind, body, content_type in (("JSON", JSON_500, "application/json"), ("HTML", HTML_502, "text/html"),
                                     ("empty", b"", "text/plain")):
        FAULTS[f"{code} {kind}"] = Fault(status(code, body, content_type, SHORT), InternalServerError, 3)
        FAULTS[f"{code} {kind}, then ok"] = Fault(then_ok(status(code, body, content_type, SHORT)), "recovered", 2)


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(server: LoopbackServer, name: str) -> None:
    fault = FAULTS[name]
    server.handler = fault.handler
    client = Client(server.url, model="m", max_retries=2, timeout=(1, fault.read_timeout))
    if isinstance(fault.outcome, str):
        assert client.chat("hi") == fault.outcome
    else:
        with pytest.raises(fault.outcome) as info:  # type: ignore[call-overload]
            client.chat("hi")
        assert type(info.value) is fault.outcome
    assert len(server.requests) == fault.requests
    if fault.waited:
        assert server.requests[1].received_at - server.requests[0].received_at >= fault.waited


def test_a_wait_above_the_cap_is_not_slept_but_carried(server: LoopbackServer) -> None:
    server.handler = status(429, b'{"error": {"message": "slow down"}}', headers={"Retry-After": "120"})
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        Client(server.url, model="m").chat("hi")
    assert time.monotonic() - started < 5, "a 120 s wait is handed to the caller, not slept"
    assert len(server.requests) == 1
    assert info.value.retry_after == 120
    assert "retry after 120 s" in str(info.value)


def test_a_wait_of_exactly_the_cap_is_slept(server: LoopbackServer) -> None:
    server.handler = then_ok(status(429, b'{"error": {"message": "slow down"}}', headers={"retry-after-ms": "50"}))
    client = Client(server.url, model="m", retry=RetryPolicy(max_wait=0.05))
    assert client.chat("hi") == "recovered"
    assert len(server.requests) == 2


def test_a_calls_own_max_retries_keeps_the_clients_policy(server: LoopbackServer) -> None:
    server.handler = then_ok(status(429, b'{"error": {"message": "slow down"}}', headers={"retry-after-ms": "1500"}))
    client = Client(server.url, model="m", max_retries=0, retry=RetryPolicy(max_wait=1.0))
    with pytest.raises(RateLimitError) as info:
        client.chat("hi", max_retries=1)
    assert (len(server.requests), info.value.retry_after) == (1, 1.5), "a wait over the client's max_wait"


def test_a_failure_without_a_status_or_a_say_on_retrying_is_retryable() -> None:
    policy = RetryPolicy()
    assert policy.retryable(ConnectionResetError("reset by peer")) is True
    assert policy.wait(1, ConnectionResetError("reset by peer"), None) is not None
    refused = APIConnectionError("certificate verify failed")
    refused.retryable = False
    assert policy.retryable(refused) is False and policy.wait(1, refused, None) is None


@pytest.mark.parametrize("headers, wait", [
    ({"Retry-After": "0"}, 0.0),
    ({"Retry-After": "-3"}, 0.0),
    ({"Retry-After": "2.5"}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "0"}, 0.0),
    ({"retry-after-ms": "soon", "Retry-After": "4"}, 4.0),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ({"Retry-After": "soon"}, None),
], ids=["zero", "negative", "fraction", "ms", "ms-zero", "bad-ms-then-seconds", "past-date", "unreadable"])
def test_the_named_wait_is_read_as_the_server_meant_it(
    server: LoopbackServer, headers: dict[str, str], wait: float | None
) -> None:
    server.handler = status(429, b'{"error": {"message": "slow down"}}', headers=headers)
    with pytest.raises(RateLimitError) as info:
        Client(server.url, model="m", max_retries=0).chat("hi")
    assert info.value.retry_after == wait


@pytest.mark.parametrize("attempt, low, high", [
    (1, 0.375, 0.5), (2, 0.75, 1.0), (3, 1.5, 2.0), (5, 6.0, 8.0), (9, 6.0, 8.0)])
def test_the_backoff_doubles_from_half_a_second_to_eight_shortened_by_up_to_a_quarter(
    attempt: int, low: float, high: float
) -> None:
    waits = [RetryPolicy().backoff(attempt) for _ in range(2000)]
    # Each eighth of the range gets about 250 of the 2000 waits; an empty end eighth means the
    # jitter is narrower than a quarter (missing it by chance: (7/8) ** 2000, about 1e-116).
    assert low <= min(waits) < low + (high - low) / 8, "the jitter reaches down to three quarters"
    assert high - (high - low) / 8 < max(waits) <= high


def test_without_a_named_wait_retries_back_off(server: LoopbackServer) -> None:
    server.handler = then_ok(status(503, b"busy"), times=2)
    seen: list[RequestEvent] = []
    client = Client(server.url, model="m", max_retries=2, event_hook=seen.append)
    assert client.chat("hi") == "recovered"
    sent = [e for e in seen if e.kind == "request"]
    assert [e.attempt for e in sent] == [1, 2, 3]
    first, second, third = (r.received_at for r in server.requests)
    assert second - first >= 0.375, "0.5 s, shortened by at most a quarter"
    assert third - second >= 0.75, "then doubled"
    assert third - first < 5


def test_the_deadline_is_checked_before_a_retry_sleep(server: LoopbackServer) -> None:
    server.handler = status(503, JSON_500, headers={"Retry-After": "3"})
    started = time.monotonic()
    with pytest.raises(InternalServerError):
        Client(server.url, model="m", max_retries=2, deadline=1).chat("hi")
    assert time.monotonic() - started < 2.5, "a 3 s wait cannot fit in a 1 s deadline: raise at once"
    assert len(server.requests) == 1


def test_the_deadline_shortens_the_read_timeout(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.stall(5)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        Client(server.url, model="m", max_retries=0, timeout=(5, 5), deadline=0.5).chat("hi")
    assert time.monotonic() - started < 3, "the 5 s read timeout was cut to the 0.5 s deadline"


def test_the_deadline_shortens_the_connect_timeout() -> None:
    # A listener whose backlog is full: the kernel drops further SYNs, so connecting hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        time.sleep(0.1)
        client = Client(f"http://127.0.0.1:{address[1]}/v1", model="m", max_retries=0, timeout=(5, 5),
                        deadline=0.5)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.chat("hi")
        assert time.monotonic() - started < 3, "the 5 s connect timeout was cut to the 0.5 s deadline"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_the_deadline_never_lengthens_the_read_timeout_of_a_stream(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a"))], end=False)
        wire.stall(5)
    server.handler = handler
    client = Client(server.url, model="m", timeout=(1, 0.3), deadline=30)
    stream = client.chat("hi", stream=True)
    assert next(stream) == "a"
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        next(stream)
    assert time.monotonic() - started < 3, "the 0.3 s read timeout applies, not the 30 s left"
    assert "deadline" not in str(info.value)


def test_an_answer_cut_short_of_its_length_is_a_broken_connection_and_retried(server: LoopbackServer) -> None:
    # urllib3 2 notices the missing bytes; on urllib3 1.26 the SDK checks the length itself.
    answers = iter(["cut", "whole"])

    def handler(req: Request, wire: Wire) -> None:
        if next(answers) == "cut":
            wire.head(200, {"Content-Type": "application/json", "Content-Length": "500"})
            wire.write(b'{"choices": [')
            wire.close()
        else:
            wire.json(completion("ok"))
    server.handler = handler
    assert Client(server.url, model="m", max_retries=1, timeout=(2, 5)).chat("hi") == "ok"
    assert len(server.requests) == 2


def test_an_answer_cut_short_of_its_length_says_how_much_came_on_every_urllib3(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.head(200, {"Content-Type": "application/json", "Content-Length": "500"})
        wire.write(b'{"choices": [')
        wire.close()
    server.handler = handler
    with pytest.raises(APIConnectionError) as raised:
        Client(server.url, model="m", max_retries=0, timeout=(2, 5)).chat("hi")
    assert str(raised.value) == (f"the connection broke while reading the answer from {server.url}/chat/completions:"
                                 " the connection closed after 13 of the answer's 500 bytes")


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_an_answer_broken_off_says_the_connection_broke_in_one_sentence(server: LoopbackServer, framing: str) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if framing == "chunked":
            wire.head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            wire.write(b'd\r\n{"choices": [\r\n')
            wire.close()
        else:
            wire.head(200, {"Content-Type": "application/json", "Content-Length": "500"})
            wire.write(b'{"choices": [')
            time.sleep(0.05)
            wire.reset()
    server.handler = handler
    with pytest.raises(APIConnectionError) as raised:
        Client(server.url, model="m", max_retries=0, timeout=(2, 5)).chat("hi")
    head, _, why = str(raised.value).partition(": ")
    assert head == f"the connection broke while reading the answer from {server.url}/chat/completions"
    # urllib3's error without the tuple of its arguments around it, nor the error again after it.
    if framing == "length":
        assert re.fullmatch(r"Connection broken: ConnectionResetError\(\d+, 'Connection reset by peer'\)", why), why
    else:  # urllib3 2: "Response ended prematurely"; 1.26: "Connection broken: InvalidChunkLength(...)"
        assert why and not why.startswith("("), why


def test_an_answer_that_stalls_half_way_is_a_timeout(server: LoopbackServer) -> None:
    # requests reports a read timeout inside the body as a ConnectionError wrapping urllib3's.
    def handler(req: Request, wire: Wire) -> None:
        wire.head(200, {"Content-Type": "application/json", "Content-Length": "100"})
        wire.write(b'{"choices": [')
        wire.stall(2)
    server.handler = handler
    with pytest.raises(APITimeoutError, match=r"^timed out waiting for "):
        Client(server.url, model="m", max_retries=0, timeout=(2, 0.3)).chat("hi")


def test_a_refused_connection_is_retried_then_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    seen: list[RequestEvent] = []
    client = Client(f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, event_hook=seen.append)
    with pytest.raises(APIConnectionError, match="refused"):
        client.chat("hi")
    assert [e.attempt for e in seen if e.kind == "request"] == [1, 2]


def test_a_server_that_accepts_and_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts the connection; nobody ever reads or answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        client = Client(url, model="m", max_retries=0, timeout=(1, 0.3))
        with pytest.raises(APITimeoutError) as info:
            client.chat("hi")
        assert str(info.value) == f"timed out waiting for {url}/chat/completions: Read timed out. (read timeout=0.3)"
    finally:
        listener.close()


# -- streams: never retried once returned, nothing lost or duplicated -------------------------------


def test_reset_mid_stream_is_not_retried_and_keeps_the_text_before(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a")), event(chunk("b"))], end=False)
        time.sleep(0.05)
        wire.reset()
    server.handler = handler
    pieces = []
    with pytest.raises(APIConnectionError):
        for piece in Client(server.url, model="m", max_retries=2).chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["a", "b"]
    assert len(server.requests) == 1


def test_reset_after_stream_headers_is_not_retried(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([], end=False)
        wire.reset()
    server.handler = handler
    with pytest.raises(APIConnectionError):
        list(Client(server.url, model="m", max_retries=2).chat("hi", stream=True))
    assert len(server.requests) == 1


def test_a_stream_that_fails_before_its_headers_is_retried(server: LoopbackServer) -> None:
    server.handler = (lambda first: lambda req, wire: first(req, wire) if len(server.requests) == 1
                      else wire.sse(stream_of(["a", "b"])))(status(503, JSON_500, headers=SHORT))
    assert list(Client(server.url, model="m", max_retries=2).chat("hi", stream=True)) == ["a", "b"]
    assert len(server.requests) == 2


def test_stall_mid_stream_times_out(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a"))], end=False)
        wire.stall(3)
    server.handler = handler
    pieces = []
    with pytest.raises(APITimeoutError):
        for piece in Client(server.url, model="m", timeout=(1, 0.3)).chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["a"]
    assert len(server.requests) == 1


def test_a_deadline_bounds_a_steady_stream_that_never_ends(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        try:
            wire.sse((p for i in range(100) for p in (event(chunk(str(i))), 0.05)), end=False)
        except OSError:
            pass
    server.handler = handler
    client = Client(server.url, model="m", timeout=(1, 5), deadline=0.4)
    pieces = []
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match=r"^the call's deadline passed while the stream was being read$"):
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == [str(i) for i in range(len(pieces))], "nothing lost or duplicated"
    assert time.monotonic() - started < 4, "the read timeout alone would never fire on a steady stream"


def test_per_call_options_override_the_clients(server: LoopbackServer) -> None:
    server.handler = status(500, JSON_500, headers=SHORT)
    client = Client(server.url, model="m", max_retries=0)
    with pytest.raises(InternalServerError):
        client.chat("hi", max_retries=3)
    assert len(server.requests) == 4
    server.handler = stall_before_headers
    with pytest.raises(APITimeoutError):
        client.chat("hi", timeout=0.2)


# -- threads and connections ---------------------------------------------------------------------


def test_one_client_shared_by_eight_threads_has_no_cross_talk(server: LoopbackServer) -> None:
    def echo(req: Request, wire: Wire) -> None:
        prompt = req.json["messages"][-1]["content"] if "messages" in req.json else req.json["prompt"]
        if req.json.get("stream"):
            wire.sse(stream_of([prompt[: len(prompt) // 2], prompt[len(prompt) // 2 :]]))
        else:
            wire.json(completion(prompt))
    server.handler = echo
    client = Client(server.url, model="m")
    failures = []

    def work(thread: int) -> None:
        for i in range(50):
            prompt = f"thread {thread} call {i}"
            got = "".join(client.chat(prompt, stream=True)) if i % 2 else client.chat(prompt)
            if got != prompt:
                failures.append((prompt, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(server.requests) == 400
    assert server.connections <= 10, "connections are pooled and reused"


def test_sequential_calls_reuse_one_keep_alive_connection(server: LoopbackServer) -> None:
    client = Client(server.url, model="m")
    for _ in range(5):
        client.chat("hi")
    assert server.connections == 1


def test_a_deadline_that_passes_while_the_caller_dawdles_ends_the_stream_at_its_next_read(
    server: LoopbackServer,
) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), 0.6, event(chunk("b")),
                                                 event(chunk(None, finish_reason="stop"))])
    stream = Client(server.url, model="m", timeout=(1, 5), deadline=0.3).chat("hi", stream=True)
    assert next(stream) == "a"
    time.sleep(0.4)  # the caller is slow: the deadline passes between two reads
    with pytest.raises(APITimeoutError) as info:
        next(stream)
    assert str(info.value) == "the call's deadline passed while the stream was being read"


def test_a_calls_deadline_none_switches_off_the_clients_deadline(server: LoopbackServer) -> None:
    def slow(req: Request, wire: Wire) -> None:
        time.sleep(0.6)
        wire.json(completion("slow but whole"))

    server.handler = slow
    client = Client(server.url, model="m", max_retries=0, deadline=0.3)
    with pytest.raises(APITimeoutError):
        client.chat("hi")
    assert client.chat("hi", deadline=None) == "slow but whole"
    assert list(client.chat("hi", deadline=None, stream=True)) == ["slow but whole"]


# -- one policy for every resend ---------------------------------------------------------------------


def test_a_kept_alive_connection_closed_as_it_is_reused_is_sent_again_at_once(server: LoopbackServer) -> None:
    served: dict[int, int] = {}

    def handler(req: Request, wire: Wire) -> None:
        served[req.connection] = served.get(req.connection, 0) + 1
        if served[req.connection] > 1:
            wire.close()  # as llama-server or uvicorn do now and then: closed, not answered
        else:
            wire.json(completion("ok"))

    server.handler = handler
    seen: list[RequestEvent] = []
    client = Client(server.url, model="m", max_retries=0, event_hook=seen.append)
    assert [client.chat("hi"), client.chat("hi"), client.chat("hi")] == ["ok", "ok", "ok"]
    assert len(server.requests) == 5 and server.connections == 3
    assert client.last is not None and client.last.attempts == 2
    assert [e.status_code for e in seen if e.kind == "response"] == [200, None, 200, None, 200]


def test_sending_again_on_a_fresh_connection_spends_no_retry(server: LoopbackServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if req.number == 1:
            wire.json(completion("ok"))
        elif req.number == 2:
            wire.close()  # the kept-alive connection, closed as it is reused
        else:
            wire.json({"error": {"message": "overloaded"}}, status=503, headers={"Retry-After": "0"})

    server.handler = handler
    client = Client(server.url, model="m", max_retries=1)
    client.chat("hi")
    caplog.clear()  # the first call's line, logged when an earlier test left the logger at DEBUG
    with caplog.at_level(logging.DEBUG, logger="openai_compat"), pytest.raises(InternalServerError):
        client.chat("hi")
    assert len(server.requests) == 4, "the resend, then the one retry max_retries=1 allows"
    assert [re.search(r"attempt \d of \d", r.getMessage()).group() for r in caplog.records  # type: ignore[union-attr]
            if "attempt" in r.getMessage()] == ["attempt 1 of 2", "attempt 2 of 3", "attempt 3 of 3"]


class StreamThenSlowReader:
    """A server on one kept-alive connection: it answers a stream, then reads the next request's
    head and leaves its body unread for ``unread_for`` seconds. Its receive buffer is small, so a
    large body fills it and the client's send waits. Then it reads the body and answers, or
    (``answer=False``) closes the connection and stops listening."""

    def __init__(self, unread_for: float, answer: bool) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.unread_for, self.answer = unread_for, answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection, connection.makefile("rb") as incoming:
            incoming.read(self._head_length(incoming))
            stream = "".join(stream_of(["ok"])).encode()
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
                               b"\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream))
            length = self._head_length(incoming)
            time.sleep(self.unread_for)
            if not self.answer:
                self.listener.close()
                return
            incoming.read(length)
            body = json.dumps(completion("read late")).encode()
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                               % (len(body), body))

    @staticmethod
    def _head_length(incoming: Any) -> int:
        """Reads a request's head; its Content-Length."""
        length = 0
        for line in iter(incoming.readline, b"\r\n"):
            name, _, value = line.decode().partition(":")
            length = int(value) if name.lower() == "content-length" else length
        return length


def test_a_large_request_after_a_stream_is_sent_under_the_read_timeout_not_the_linger() -> None:
    # After a stream's end the SDK reads what is left under a 1 s linger, then sets the socket's
    # timeout back. urllib3 1.26.0, the floor, sends the next request on that socket as it is.
    slow = StreamThenSlowReader(unread_for=2, answer=True)
    client = Client(slow.url, model="m", max_retries=0, timeout=(10, 10))
    assert "".join(client.chat("hi", stream=True)) == "ok"
    assert client.chat("x" * 16_000_000) == "read late"
    slow.thread.join()


def test_a_large_request_after_a_stream_that_the_server_never_reads_times_out() -> None:
    slow = StreamThenSlowReader(unread_for=4, answer=False)
    client = Client(slow.url, model="m", max_retries=0, timeout=(1.5, 1.5))
    assert "".join(client.chat("hi", stream=True)) == "ok"
    with pytest.raises(APITimeoutError):
        client.chat("x" * 16_000_000)
    slow.thread.join()


def test_a_garbled_answer_on_a_kept_alive_connection_is_not_sent_again(server: LoopbackServer) -> None:
    served: dict[int, int] = {}

    def handler(req: Request, wire: Wire) -> None:
        served[req.connection] = served.get(req.connection, 0) + 1
        if served[req.connection] > 1:
            wire.write(b"HELLO THERE\r\n\r\n")  # the server answered, wrongly: sending again is not free
            wire.close()
        else:
            wire.json(completion("ok"))

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0)
    assert client.chat("hi") == "ok"
    with pytest.raises(APIConnectionError, match="could not reach"):
        client.chat("hi")
    assert len(server.requests) == 2


def test_a_refused_connection_says_where_and_why_in_one_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(APIConnectionError) as raised:
        Client(f"http://127.0.0.1:{port}/v1", model="m", max_retries=0).chat("hi")
    assert str(raised.value) == (f"could not reach http://127.0.0.1:{port}/v1/chat/completions: Failed to establish"
                                 " a new connection: [Errno 111] Connection refused")


def test_a_refused_proxy_is_named_with_why_in_one_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    session = requests.Session()
    session.proxies = {"http": f"http://127.0.0.1:{port}"}
    with pytest.raises(APIConnectionError) as raised:
        Client("http://example.invalid/v1", model="m", max_retries=0, session=session).chat("hi")
    # urllib3 2 says "Unable to connect to proxy", 1.26 "Cannot connect to proxy."
    assert re.fullmatch(r"could not reach http://example\.invalid/v1/chat/completions: (Unable to|Cannot) connect"
                        r" to proxy: Failed to establish a new connection: \[Errno 111\] Connection refused",
                        str(raised.value)), str(raised.value)


def test_a_server_that_closes_every_new_connection_gets_no_free_resend(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.close()
    with pytest.raises(APIConnectionError, match="could not reach"):
        Client(server.url, model="m", max_retries=1).chat("hi")
    assert len(server.requests) == 2


def test_a_resend_without_a_refused_field_keeps_the_calls_deadline(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if "seed" in req.json:
            time.sleep(1.0)
            wire.json({"error": {"message": "Unrecognized request argument supplied: seed", "param": "seed"}},
                      status=400)
        else:
            wire.stall(3)  # say nothing until the client gives up

    server.handler = handler
    client = Client(server.url, model="m", adapt=True, deadline=2.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match=r"the call's deadline of 2 s passed waiting for http://"):
        client.chat("hi", seed=1)
    assert [("seed" in r.json) for r in server.requests] == [True, False], "the field was dropped and sent again"
    # Armed again for the resend, the deadline would end 3 s after the call began.
    assert time.monotonic() - started < 2.5


def test_a_404_names_the_method_really_used(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"detail": "Not Found"}, status=404)
    with pytest.raises(NotFoundError) as info:
        Client(server.url, model="m").models()
    assert str(info.value) == f"HTTP 404: Not Found (GET {server.url}/models)"
