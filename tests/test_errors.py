"""Error bodies of every shape become one typed exception with the server's message."""

from __future__ import annotations

import json
import pickle
import socket
import time

import pytest

import openai_compat
from openai_compat import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    OpenAICompatError,
    PermissionDeniedError,
    RateLimitError,
    RateLimits,
    RetryPolicy,
    UnprocessableEntityError,
)

from .server import LoopbackServer, completion

BODIES = {
    "openai": (b'{"error": {"message": "Invalid model", "type": "invalid_request_error", "code": "model_not_found"}}',
               "Invalid model", "model_not_found"),
    "tgi string": (b'{"error": "Input validation error: max_new_tokens too big"}',
                   "Input validation error: max_new_tokens too big", None),
    "vllm": (b'{"object": "error", "message": "The model does not exist.", "type": "NotFoundError", "code": 404}',
             "The model does not exist.", "404"),
    "fastapi detail": (b'{"detail": "Not authenticated"}', "Not authenticated", None),
    "fastapi validation": (b'{"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}',
                           "body.messages: field required", None),
    "html": (b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
             "502 Bad Gateway", None),
    "plain text": (b"upstream connect error or disconnect/reset before headers", "upstream connect error", None),
    "empty": (b"", "(empty body)", None),
}


@pytest.mark.parametrize("status, error", [
    (400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError),
    (409, ConflictError), (422, UnprocessableEntityError), (429, RateLimitError), (500, InternalServerError),
    (502, InternalServerError), (503, InternalServerError), (529, InternalServerError), (418, APIStatusError),
])
@pytest.mark.parametrize("shape", list(BODIES))
def test_each_status_and_body_shape_becomes_a_typed_error(
    client: Client, server: LoopbackServer, status: int, error: type, shape: str
) -> None:
    raw, message, code = BODIES[shape]
    content_type = "application/json" if raw.startswith(b"{") else "text/html"
    server.handler = lambda req, wire: wire.body(raw, status, {"Content-Type": content_type,
                                                               "x-request-id": "req-42"})
    with pytest.raises(error) as info:
        client.chat("hi")
    exc = info.value
    assert isinstance(exc, APIStatusError) and type(exc) is error
    assert exc.status_code == status
    assert message in exc.message
    assert exc.code == code
    assert exc.request_id == "req-42"
    assert str(exc).startswith(f"HTTP {status}: ")
    assert message in str(exc) and "req-42" in str(exc)
    assert len(server.requests) == 1, "max_retries=0 sends once"


def test_a_streamed_call_raises_its_status_error_before_returning_the_generator(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "bad key"}}, status=401)
    with pytest.raises(AuthenticationError, match="bad key"):
        client.chat("hi", stream=True)


@pytest.mark.parametrize("status_line, message", [
    ("HTTP/1.1 502 Bad Gateway", "HTTP 502: Bad Gateway (empty body)"),
    ("HTTP/1.1 502 ", "HTTP 502: (empty body)"),
])
def test_an_empty_error_body_is_told_by_the_reason_phrase(
    client: Client, server: LoopbackServer, status_line: str, message: str
) -> None:
    server.handler = lambda req, wire: wire.write(f"{status_line}\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(InternalServerError) as info:
        client.chat("hi")
    assert str(info.value) == message


def test_a_huge_error_body_gives_a_bounded_message(client: Client, server: LoopbackServer) -> None:
    trace = "Traceback (most recent call last):\n" + "  File 'x.py', line 1\n" * 5000 + "ValueError: bad"
    server.handler = lambda req, wire: wire.json({"error": {"message": trace}}, status=500)
    with pytest.raises(InternalServerError) as info:
        client.chat("hi")
    assert len(str(info.value)) < 700
    assert info.value.message.startswith("Traceback")


@pytest.mark.parametrize("body, words", [
    (b"not json at all", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"id": "x", "choices": []}', "no choices"),
    (b'{"id": "x"}', "no choices"),
    (b'{"error": {"message": "model overloaded", "code": "overloaded"}}', "model overloaded"),
    (b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', "not valid UTF-8"),
])
def test_a_2xx_the_sdk_cannot_use_is_an_api_response_error(
    client: Client, server: LoopbackServer, body: bytes, words: str
) -> None:
    server.handler = lambda req, wire: wire.body(body, 200, {"Content-Type": "application/json",
                                                             "x-request-id": "r1"})
    with pytest.raises(APIResponseError, match=words) as info:
        client.chat("hi")
    assert info.value.request_id == "r1"


def test_a_refused_connection_is_an_api_connection_error() -> None:
    with pytest.raises(APIConnectionError) as info:
        Client("http://127.0.0.1:9/v1", model="m", max_retries=0).chat("hi")
    assert isinstance(info.value.__cause__, Exception), "the requests error is chained, not lost"


def test_a_failed_call_leaves_its_record_on_client_last(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "overloaded"}}, status=503,
                                                 headers={"x-request-id": "req-503", "Retry-After": "0"})
    client = Client(server.url, model="m", max_retries=1)
    started = time.monotonic()
    with pytest.raises(InternalServerError) as info:
        client.chat("hi")
    took = time.monotonic() - started
    record = client.last
    assert record is not None
    assert (record.method, record.endpoint, record.status_code, record.request_id, record.attempts, record.error) == (
        "POST", "/chat/completions", 503, "req-503", 2, str(info.value))
    assert record.elapsed is not None and 0 < record.elapsed <= took
    assert (record.raw_usage, record.extras, record.partial, record.refusal, record.reasoning) == (
        None, {}, False, None, ""), "no answer began: nothing was cut, refused or thought"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = Client(f"http://127.0.0.1:{port}/v1", model="m", max_retries=0)
    with pytest.raises(APIConnectionError):
        refused.chat("hi")
    assert refused.last is not None and refused.last.status_code is None
    assert (refused.last.rate_limits, refused.last.raw_usage) == (RateLimits(), None), "no answer, nothing it said"
    server.handler = lambda req, wire: wire.body(b"<html>gateway page</html>", headers={"x-request-id": "req-html"})
    with pytest.raises(APIResponseError) as garbled:
        client.embed("hi")
    record = client.last
    assert record is not None
    assert (record.method, record.endpoint, record.status_code, record.request_id, record.attempts, record.error) == (
        "POST", "/embeddings", 200, "req-html", 1, str(garbled.value)), "a 2xx the SDK cannot read is a failure too"
    server.handler = lambda req, wire: wire.json(completion("fine"))
    assert client.chat("hi") == "fine" and client.last is not None and client.last.extras == {}
    server.handler = lambda req, wire: wire.json({"data": [{"index": 0, "embedding": [0.5]}]})
    assert client.embed("hi") == [0.5]
    record = client.last
    assert record is not None and (record.method, record.status_code, record.reasoning, record.error) == (
        "POST", 200, "", None)


def _every_exception() -> list:
    return [
        OpenAICompatError("root"),
        APIConnectionError("refused"),
        openai_compat.APITimeoutError("slow"),
        APIStatusError("m", status_code=418, body={"a": 1}, request_id="r", code="c", retry_after=1.5),
        RateLimitError("slow down", status_code=429, retry_after=90.0),
        InternalServerError("boom", status_code=502, body="<html>"),
        APIResponseError("no choices", body={"id": "x"}, request_id="r"),
        openai_compat.UnhandledToolCallsError.from_message(
            {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}]}),
    ]


@pytest.mark.parametrize("exc", _every_exception(), ids=lambda e: type(e).__name__)
def test_every_exception_pickles_with_all_its_data(exc: Exception) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert vars(copy) == vars(exc)
    assert str(copy) == str(exc)


def test_the_tree_has_one_root() -> None:
    errors = [getattr(openai_compat, n) for n in openai_compat.__all__ if n.endswith("Error")]
    assert all(issubclass(e, OpenAICompatError) for e in errors)
    assert issubclass(openai_compat.APITimeoutError, APIConnectionError)
    assert issubclass(RateLimitError, APIStatusError)


def test_a_200_with_a_good_body_after_an_error_status_is_not_mixed_up(client: Client, server: LoopbackServer) -> None:
    answers = iter([(404, {"error": {"message": "no such model"}}), (200, completion("fine"))])

    def handler(req, wire):
        status, body = next(answers)
        wire.json(body, status=status)
    server.handler = handler
    with pytest.raises(NotFoundError):
        client.chat("hi")
    assert client.chat("hi") == "fine"


def test_a_servers_python_traceback_stays_in_the_body_not_the_message(client: Client, server: LoopbackServer) -> None:
    message = ("Internal error: boom\n  File \"/srv/app/main.py\", line 88, in handle\n    result = run(body)\n"
               "  File \"/srv/app/model.py\", line 12, in run\n    raise RuntimeError('boom')")
    server.handler = lambda req, wire: wire.json({"error": {"message": message, "type": "server_error"}}, status=500)
    with pytest.raises(InternalServerError) as info:
        client.chat("x")
    assert str(info.value) == "HTTP 500: Internal error: boom"
    assert info.value.body["error"]["message"] == message, "nothing is lost"


EXACT_BODIES = {
    "msg instead of message": (b'{"error": {"msg": "bad thing"}}', "bad thing", None),
    "an error object with no words": (b'{"error": {"type": "server_error"}}', '{"type": "server_error"}',
                                      "server_error"),
    "a code of 0": (b'{"error": {"message": "odd", "code": 0, "type": "t"}}', "odd", "0"),
    "vllm without a code": (b'{"object": "error", "message": "no such model", "type": "NotFoundError"}',
                            "no such model", "NotFoundError"),
    "a number for error": (b'{"error": 429, "message": "slow down"}', "slow down", None),
    "a message and no error": (b'{"message": "just words", "status": 400}', '{"message": "just words", "status": 400}',
                               None),
    "detail list of each kind": (b'{"detail": [{"loc": ["body", "messages", 0], "msg": "field required"},'
                                 b' {"msg": "no place"}, "plain words"]}',
                                 "body.messages.0: field required; no place; plain words", None),
    "detail object": (b'{"detail": {"reason": "quota"}}', '{"reason": "quota"}', None),
    "html without a title": (b"<p>Service <b>down</b> now</p>", "Service down now", None),
    "a title not in UTF-8": (b"<html><title>caf\xe9 closed</title></html>", "caf\ufffd closed", None),
    "text not in UTF-8": (b"caf\xe9 closed", "caf\ufffd closed", None),
    "a traceback after the message": (b'{"error": {"message": "boom\\n  File \\"a.py\\", line 1\\n  File \\"b.py\\""}}',
                                      "boom", None),
    "an invalid request with its param": (
        b'{"error": {"message": "1 validation error: too hot", "type": "invalid_request_error",'
        b' "param": "temperature"}}',
        "the server rejected the request: temperature: 1 validation error: too hot", "invalid_request_error"),
    "an invalid request without a param": (
        b'{"error": {"message": "1 validation error: too hot", "type": "invalid_request_error"}}',
        "the server rejected the request: 1 validation error: too hot", "invalid_request_error"),
    "an html page with a title": (b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                                   "502 Bad Gateway", None),
    "pydantic's dump with a deep field and a long input": (
        json.dumps({"error": {"message": "1 validation error for Request\n[{'loc': ('body', 'messages', 0, 'content'),"
                                         " 'msg': 'bad', 'input': '" + "y" * 60 + "'}, {'loc': ('body',), 'msg':"
                                         " 'empty'}]"}}).encode(),
        "the server rejected the request: messages.0.content: bad (got '" + "y" * 38 + "…); request: empty", None),
    "an openai invalid request without validation words": (
        b'{"error": {"message": "bad model", "type": "invalid_request_error", "param": "model"}}', "bad model",
        "invalid_request_error"),
    "a message of exactly the shown length": (b'{"error": {"message": "' + b"x" * 500 + b'"}}', "x" * 500, None),
    "pydantic's dump of two errors": (
        json.dumps({"error": {"message": "2 validation errors for Request\n[{'loc': ('body', 'n'), 'msg': 'too big',"
                                         " 'input': 9}, {'loc': ('body', 'stop'), 'msg': 'bad'}]"}}).encode(),
        "the server rejected the request: n: too big (got 9); stop: bad", None),
    "pydantic's dump without an input": (
        b'{"error": {"message": "1 validation error for Request\\n[{\'type\': \'missing\', \'loc\': (\'body\','
        b' \'model\'), \'msg\': \'Field required\'}]", "type": "internal_server_error"}}',
        "the server rejected the request: model: Field required", "internal_server_error"),
}


@pytest.mark.parametrize("shape", list(EXACT_BODIES))
@pytest.mark.parametrize("status", [400, 500])
def test_each_error_body_gives_exactly_its_message_and_code(server: LoopbackServer, status: int, shape: str) -> None:
    raw, message, code = EXACT_BODIES[shape]
    server.handler = lambda req, wire: wire.body(raw, status, {"Content-Type": "application/json"})
    with pytest.raises(APIStatusError) as info:
        Client(server.url, model="m", max_retries=0).chat("hi")
    assert (info.value.message, info.value.code) == (message, code)


@pytest.mark.parametrize("code", ["context_length_exceeded", "exceed_context_size_error"])
def test_a_context_code_alone_makes_a_context_length_error(server: LoopbackServer, code: str) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "Too long.", "code": code}}, status=400)
    with pytest.raises(ContextLengthError):
        Client(server.url, model="m", max_retries=0).chat("hi")


@pytest.mark.parametrize("body, final", [
    (b'{"error": {"message": "out of credit", "type": "insufficient_quota"}}', True),
    (b'{"error": {"message": "out of credit", "code": "insufficient_quota"}}', True),
    (b'{"detail": [{"loc": ["body", "n"], "msg": "too large", "input": 99}]}', True),
    (b'{"error": {"message": "overloaded", "type": "server_error"}}', False),
    (b"<html><title>503 Service Unavailable</title></html>", False),
    (b'{"error": {"message": "out of credit", "type": "insufficient_quota", "code": "quota_429"}}', True),
    (b'{"detail": ["a msg in plain text"]}', False),
], ids=["quota by type", "quota by code", "a validation list", "overloaded", "html", "quota by type beside a code",
        "a detail list of text"])
def test_a_5xx_that_waiting_cannot_change_is_not_retried(server: LoopbackServer, body: bytes, final: bool) -> None:
    server.handler = lambda req, wire: wire.body(body, 500, {"Content-Type": "application/json"})
    with pytest.raises(InternalServerError):
        Client(server.url, model="m", max_retries=1, retry=RetryPolicy(backoff_start=0.01)).chat("hi")
    assert len(server.requests) == (1 if final else 2)


def test_a_body_that_is_not_json_is_kept_as_text_with_bad_bytes_replaced(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.body(b"caf\xe9 closed\n  for   now", 502)
    with pytest.raises(APIStatusError) as info:
        Client(server.url, model="m", max_retries=0).chat("hi")
    assert info.value.body == "caf\ufffd closed for now"


def test_a_text_body_keeps_two_thousand_characters_and_shows_five_hundred(server: LoopbackServer) -> None:
    text = "word " * 300  # 1,500 characters of a proxy's plain-text page
    server.handler = lambda req, wire: wire.body(text.encode(), 502)
    with pytest.raises(APIStatusError) as info:
        Client(server.url, model="m", max_retries=0).chat("hi")
    assert info.value.body == text.strip() and len(info.value.message) == 500
