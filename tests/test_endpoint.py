"""Knowing the endpoint: models(), probe() and doctor against servers built to disagree, and
adaptive retries."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import warnings
from typing import Any, Callable

import pytest

from openai_compat import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    Client,
    InternalServerError,
    ProbeItem,
    ProbeReport,
)

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, points_at

# -- models() -----------------------------------------------------------------------------------------

LISTINGS = {
    "vllm": ({"id": "qwen", "object": "model", "max_model_len": 32768}, 32768),
    "llama.cpp": ({"id": "tiny", "object": "model", "meta": {"n_ctx_train": 4096, "n_params": 1}}, 4096),
    "openrouter": ({"id": "a/b", "context_length": 128000, "top_provider": {"context_length": 64000}}, 128000),
    "groq": ({"id": "llama", "context_window": 131072}, 131072),
    "lmstudio": ({"id": "m", "max_context_length": 8192}, 8192),
    "none": ({"id": "m", "object": "model", "owned_by": "me"}, None),
    "llama.cpp n_ctx": ({"id": "m", "meta": {"n_ctx": 2048, "n_ctx_train": 4096}}, 2048),
    "metadata": ({"id": "m", "metadata": {"context_size": 1024}}, 1024),
    "gemini-like": ({"id": "m", "max_input_tokens": 1048576}, 1048576),
    "not a number": ({"id": "m", "context_length": True, "max_model_len": "8k", "context_window": 0}, None),
    "a later place": ({"id": "m", "context_length": -1, "top_provider": {"context_length": 4000}}, 4000),
    "one token": ({"id": "m", "n_ctx": 1}, 1),
}


def test_models_keep_the_servers_fields_and_find_the_context_length(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"object": "list", "data": [m for m, _ in LISTINGS.values()]})
    models = client.models()
    assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"
    assert [m["context_length"] for m in models] == [length for _, length in LISTINGS.values()]
    assert models[1]["meta"] == {"n_ctx_train": 4096, "n_params": 1}


@pytest.mark.parametrize(("listing", "ids"), [
    ({"object": "list", "data": [{"id": "a"}, "b", {"id": "c"}]}, ["a", "c"]),
    ({"object": "list", "data": {"id": "a"}}, []),
    ({"models": [{"id": "a"}]}, []),
], ids=["an-entry-not-a-model", "data-not-a-list", "no-data"])
def test_models_skips_what_is_not_a_model(client: Client, server: LoopbackServer,
                                                                 listing: Any, ids: list[str]) -> None:
    server.handler = lambda req, wire: wire.json(listing)
    assert [(m["id"], m["context_length"]) for m in client.models()] == [(i, None) for i in ids]


# -- probe(): two servers that disagree on everything ------------------------------------------------------


def full_server(req: Request, wire: Wire) -> None:
    """Honours every feature the probe asks about."""
    body = req.json
    if req.path.endswith("/embeddings"):
        wire.json({"data": [{"index": 0, "embedding": [0.1, 0.2]}]})
    elif req.path.endswith("/responses"):
        wire.json({"object": "response", "output": []})
    elif not isinstance(body.get("messages", []), list):
        wire.json({"error": {"message": "messages must be a list", "type": "invalid_request_error"}}, status=400)
    elif body.get("stream"):
        events = [event({"choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]}),
                  event(chunk("hi", finish_reason="stop"))]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}))
        wire.sse([*events, "data: [DONE]\n\n"])
    else:
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 8
        usage = {"prompt_tokens": 3, "completion_tokens": min(2, limit), "total_tokens": 5}
        answer = completion("hi", chat="messages" in body, usage=usage)
        answer["choices"] = [dict(answer["choices"][0], index=i) for i in range(body.get("n") or 1)]
        wire.json(answer)


def bare_server(req: Request, wire: Wire) -> None:
    """The opposite answer to every question."""
    body = req.json
    if req.path in ("/v1/embeddings", "/v1/responses", "/v1/completions"):
        wire.body(b"<html><body>404 Not Found</body></html>", 404, {"Content-Type": "text/html"})
    elif not isinstance(body.get("messages", []), list):
        wire.body(b"<html><title>500</title><body>oops</body></html>", 500, {"Content-Type": "text/html"})
    elif "stream_options" in body:
        wire.json({"detail": [{"loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted"}]},
                  status=422)
    elif (body.get("response_format") or {}).get("type") in ("json_schema", "json_object") or "tools" in body:
        wire.json({"error": {"message": f"unsupported: {list(body)}"}}, status=400)
    elif body.get("stream"):
        wire.sse([event(chunk("hi")), event(chunk(None, finish_reason="stop"))])  # no [DONE]
    else:
        answer = completion("hi")  # one choice whatever n says, and no usage
        del answer["usage"]
        if "max_completion_tokens" in body:
            answer["usage"] = {"completion_tokens": 8}
        wire.json(answer)


EXPECTED = {
    "blocking chat": ("ok", "ok"), "usage in blocking answers": ("ok", "no"), "streaming chat": ("ok", "ok"),
    "[DONE]": ("ok", "no"), "stream_options.include_usage": ("ok", "no"), "n > 1": ("ok", "no"),
    "json_object": ("ok", "no"), "json_schema": ("ok", "no"), "tools": ("ok", "no"),
    "max_completion_tokens": ("ok", "no"), "reasoning field": ("ok", "no"), "/completions": ("ok", "no"),
    "/embeddings": ("ok", "no"), "/responses": ("ok", "no"), "error body": ("ok", "ok"),
}


@pytest.mark.parametrize(("handler", "column"), [(full_server, 0), (bare_server, 1)], ids=["full", "bare"])
def test_each_report_item_tells_what_the_server_really_does(server: LoopbackServer, handler: Any, column: int) -> None:
    server.handler = handler
    report = Client(server.url, max_retries=2).probe("m")
    assert {item.name: item.result for item in report.items} == {k: v[column] for k, v in EXPECTED.items()}
    assert report.ok
    assert len(server.requests) <= 14, "the probe stays small"
    assert all((r.json or {}).get("max_tokens", 0) <= 8 for r in server.requests)
    reasons = {item.name: item.reason for item in report.items}
    if handler is bare_server:
        assert "HTTP 422" in reasons["stream_options.include_usage"]
        assert "ignored: 1 choice" in reasons["n > 1"]
        assert "an HTML page" in reasons["error body"]
    else:
        assert "{error: {message}} (OpenAI style)" in reasons["error body"]


FULL_TABLE = """\
blocking chat                 ok      HTTP 200: 'hi'
usage in blocking answers     ok      {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens"…
streaming chat                ok      2 chunks
[DONE]                        ok      sent
stream_options.include_usage  ok      accepted and honoured: a usage chunk came
n > 1                         ok      2 choices
json_object                   ok      accepted
json_schema                   ok      accepted
tools                         ok      accepted
max_completion_tokens         ok      accepted and honoured (2 tokens)
reasoning field               ok      reasoning_content seen
/completions                  ok      accepted
/embeddings                   ok      accepted
/responses                    ok      accepted
error body                    ok      HTTP 400, {error: {message}} (OpenAI style): messages must be a list"""

BARE_TABLE = """\
blocking chat                 ok      HTTP 200: 'hi'
usage in blocking answers     no      no usage object
streaming chat                ok      2 chunks
[DONE]                        no      the stream ended without it (by finish_reason or by closing)
stream_options.include_usage  no      HTTP 422: body.stream_options: Extra inputs are not permitted
n > 1                         no      ignored: 1 choice came
json_object                   no      HTTP 400: unsupported: ['model', 'messages', 'max_tokens', 'response_…
json_schema                   no      HTTP 400: unsupported: ['model', 'messages', 'max_tokens', 'response_…
tools                         no      HTTP 400: unsupported: ['model', 'messages', 'max_tokens', 'tools']
max_completion_tokens         no      accepted but ignored (8 tokens for a limit of 4)
reasoning field               no      none seen in these short answers
/completions                  no      HTTP 404: 404 Not Found (POST {url}/completions)
/embeddings                   no      HTTP 404: 404 Not Found (POST {url}/embeddings)
/responses                    no      {responses}
error body                    ok      HTTP 500, an HTML page: 500"""


@pytest.mark.parametrize(("handler", "table", "statuses"), [
    (full_server, FULL_TABLE, [200] * 14 + [400]),
    (bare_server, BARE_TABLE, [200, 200, 200, 200, 422, 200, 400, 400, 400, 200, 200, 404, 404, 404, 500]),
], ids=["full", "bare"])
def test_the_report_reads_exactly_what_each_answer_showed(server: LoopbackServer, handler: Any, table: str,
                                                         statuses: list[int]) -> None:
    server.handler = handler
    report = Client(server.url).probe("m")
    responses = (f"404 Not Found (POST {server.url}/responses; this server may have no Responses API: chat()"
                 " works on /chat/completions)")
    responses = "HTTP 404: " + responses[:59] + "…"
    assert report.table() == table.replace("{url}", server.url).replace("{responses}", responses)
    assert [item.status for item in report.items] == statuses
    assert report.as_dict() == {"base_url": server.url, "model": "m", "ok": True,
                                "items": [item._asdict() for item in report.items]}


def test_each_probe_is_one_small_request_and_none_is_retried(server: LoopbackServer) -> None:
    server.handler = full_server
    with pytest.raises(ValueError) as info:
        Client(server.url).probe()
    assert str(info.value) == "no model to probe: pass probe(model=...) or Client(model=...)"
    Client(server.url, model="m", max_retries=2).probe()
    say_hi = {"model": "m", "messages": [{"role": "user", "content": "Say hi."}]}
    schema = {"type": "json_schema", "json_schema": {"name": "probe", "schema": {
        "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}}
    noop = [{"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}]
    assert [(r.path, r.json) for r in server.requests] == [
        ("/v1/chat/completions", {**say_hi, "max_tokens": 8}),
        ("/v1/chat/completions", {**say_hi, "max_tokens": 8, "stream": True}),
        ("/v1/chat/completions", {**say_hi, "max_tokens": 8, "stream_options": {"include_usage": True},
                                  "stream": True}),
        ("/v1/chat/completions", {**say_hi, "max_tokens": 4, "n": 2}),
        ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Answer in JSON."}],
                                  "max_tokens": 8, "response_format": {"type": "json_object"}}),
        ("/v1/chat/completions", {**say_hi, "max_tokens": 8, "response_format": schema}),
        ("/v1/chat/completions", {**say_hi, "max_tokens": 8, "tools": noop}),
        ("/v1/chat/completions", {**say_hi, "max_completion_tokens": 4, "max_tokens": 8}),
        ("/v1/completions", {"model": "m", "prompt": "Hi", "max_tokens": 4}),
        ("/v1/embeddings", {"model": "m", "input": "hi"}),
        ("/v1/responses", {"model": "m", "input": "Say hi.", "max_output_tokens": 16}),
        ("/v1/chat/completions", {"model": "m", "messages": "this should be a list", "max_tokens": 1}),
    ]
    server.requests.clear()
    server.handler = lambda req, wire: wire.json({"error": {"message": "busy"}}, status=503)
    Client(server.url, max_retries=2).probe("m")
    assert len(server.requests) == 2, "a 503 is an answer to note, not to retry"


def test_a_model_that_cannot_be_asked_skips_the_rest_and_says_why(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "model 'nope' does not exist"}}, status=404)
    report = Client(server.url).probe("nope")
    failure = f"HTTP 404: model 'nope' does not exist (POST {server.url}/chat/completions)"
    assert report.items[0] == ("blocking chat", "no", failure, 404), "the reason in full, not cut short"
    names = [item.name for item in report.items]
    assert names == [name for name, _ in EXPECTED.items()], "the same rows in the same order as a probe that ran"
    assert report.items[1:-1] == [(name, "skipped", "see blocking chat", None) for name in names[1:-1]]
    assert report.items[-1].result == "ok" and report.items[-1].status == 404
    assert (report.ok, report.as_dict()["ok"]) == (False, False)


def chatting(blocking: Callable[[Request], Any] = lambda req: completion("hi"), bad_request: Any = None) -> Any:
    """A server that streams "hi" and ``[DONE]``, answers any other request with
    ``blocking(request)``, and the probe's malformed chat with ``bad_request(wire)`` if given."""

    def handler(req: Request, wire: Wire) -> None:
        if bad_request is not None and isinstance(req.json.get("messages"), str):
            bad_request(wire)
        elif req.json.get("stream"):
            wire.sse([event(chunk("hi", finish_reason="stop")), "data: [DONE]\n\n"])
        else:
            wire.json(blocking(req))

    return handler


def refusing_the_bad_request(wire: Wire) -> None:
    wire.json({"error": {"message": "bad"}}, status=400)


@pytest.mark.parametrize(("bad_request", "item"), [
    (lambda wire: wire.json({"error": "messages: not a list"}, status=400),
     ("ok", "HTTP 400, {error: text}: messages: not a list", 400)),
    (lambda wire: wire.json({"object": "error", "message": "not a list", "type": "BadRequestError", "code": 400},
                            status=400),
     ("ok", "HTTP 400, {object: error, message} (vLLM style): not a list", 400)),
    (lambda wire: wire.json({"detail": "Unprocessable"}, status=422),
     ("ok", "HTTP 422, {detail} (FastAPI style): Unprocessable", 422)),
    (lambda wire: wire.json({"reason": "bad"}, status=400), ("ok", "HTTP 400, a JSON object of its own:", 400)),
    (lambda wire: wire.body(b"messages must be a list", 400, {"Content-Type": "text/plain"}),
     ("ok", "HTTP 400, plain text: messages must be a list", 400)),
    (lambda wire: wire.body(b"", 400, {"Content-Type": "text/plain"}), ("ok", "HTTP 400, an empty body:", 400)),
    (lambda wire: wire.json([{"error": "not a list"}], status=400), ("ok", "HTTP 400, a JSON value of its own:", 400)),
    (lambda wire: wire.json(completion("sure")), ("no", "a bad request was accepted (HTTP 2xx)", 200)),
], ids=["error-text", "vllm", "fastapi", "own-object", "plain-text", "empty", "json-list", "accepted"])
def test_the_error_body_row_names_the_shape_of_the_servers_errors(server: LoopbackServer, bad_request: Any,
                                                                  item: tuple[str, str, int]) -> None:
    server.handler = chatting(bad_request=bad_request)
    last = Client(server.url).probe("m").items[-1]
    assert last.name == "error body"
    assert (last.result, last.reason[: len(item[1])], last.status) == item


def test_an_error_row_that_is_not_an_answer_says_what_happened(server: LoopbackServer) -> None:
    server.handler = chatting(bad_request=lambda wire: wire.close())
    client = Client(server.url)
    last = client.probe("m").items[-1]
    with pytest.raises(APIConnectionError) as raised:
        client.post_json("/chat/completions", {"model": "m", "messages": "x"}, max_retries=0)
    assert (last.name, last.result, last.status) == ("error body", "no", None)
    assert last.reason == str(raised.value)[:59] + "…", "the error's own words, cut to 60 characters"


@pytest.mark.parametrize(("answer", "row"), [
    ({"reasoning": "hm"}, ("reasoning field", "ok", "reasoning seen")),
    ({"content": None}, ("blocking chat", "ok", "HTTP 200: 'null'")),
    ({"content": "x" * 60}, ("blocking chat", "ok", f"HTTP 200: {'x' * 60!r}")),
    ({"content": "x" * 61}, ("blocking chat", "ok", f"HTTP 200: {'x' * 59 + chr(0x2026)!r}")),
    ({"content": [{"type": "text", "text": "hi"}]},
     ("blocking chat", "ok", "HTTP 200: '[{\"type\": \"text\", \"text\": \"hi\"}]'")),
], ids=["reasoning-in-the-blocking-answer", "null-content", "sixty-characters", "cut-at-sixty", "content-parts"])
def test_what_a_blocking_answer_shows(server: LoopbackServer, answer: dict[str, Any],
                                      row: tuple[str, str, str]) -> None:
    reply = completion("hi")
    reply["choices"][0]["message"].update(answer)
    server.handler = chatting(lambda req: reply)
    items = {item.name: item for item in Client(server.url).probe("m").items}
    assert items[row[0]][:3] == row


def test_max_completion_tokens_without_usage_is_unknown(server: LoopbackServer) -> None:
    answer = completion("hi")
    del answer["usage"]
    server.handler = chatting(lambda req: answer)
    items = {item.name: item for item in Client(server.url).probe("m").items}
    assert items["max_completion_tokens"] == ("max_completion_tokens", "unknown",
                                              "accepted; no usage to tell whether it was honoured", 200)
    assert items["usage in blocking answers"] == ("usage in blocking answers", "no", "no usage object", 200)


def test_doctor_prints_the_table_or_json_and_exits_by_what_works(server: LoopbackServer) -> None:
    server.handler = full_server
    base = ["doctor", "--base-url", server.url, "--model", "m"]
    table = run_command(*base)
    assert table.returncode == 0, table.stderr
    assert "blocking chat" in table.stdout and "[DONE]" in table.stdout
    as_json = run_command(*base, "--json")
    assert json.loads(as_json.stdout)["ok"] is True
    server.handler = lambda req, wire: wire.json({"error": {"message": "no such model"}}, status=404)
    failing = run_command(*base)
    assert failing.returncode == 1 and "skipped" in failing.stdout


def test_doctor_errors_are_one_line(server: LoopbackServer) -> None:
    result = run_command("doctor", "--model", "m")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--provider NAME or --base-url URL" in result.stderr


# -- adaptive retries ------------------------------------------------------------------------------------------


def refusing(field: str, status: int = 400, message: str = "") -> Any:
    def handler(req: Request, wire: Wire) -> None:
        if field in req.json:
            wire.json({"error": {"message": message or f"Unrecognized request argument supplied: {field}",
                                 "type": "invalid_request_error", "param": field}}, status=status)
        elif req.json.get("stream"):
            wire.sse([event(chunk("ok", finish_reason="stop")), "data: [DONE]\n\n"])
        else:
            wire.json(completion("ok"))
    return handler


def test_adapt_drops_a_refused_field_once_and_remembers(server: LoopbackServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    server.handler = refusing("stream_options", 422)
    client = Client(server.url, model="m", adapt=True, stream_usage=True, max_retries=0, timeout=(2, 5))
    with caplog.at_level(logging.INFO, logger="openai_compat"):
        assert "".join(client.chat("x", stream=True)) == "ok"
    assert ["stream_options" in r.json for r in server.requests] == [True, False]
    assert any("dropped stream_options" in r.getMessage() for r in caplog.records)
    assert "".join(client.chat("y", stream=True)) == "ok"
    assert len(server.requests) == 3, "remembered: the next call goes without it at once"


def test_sending_again_without_a_refused_field_spends_no_retry(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if "seed" in req.json:
            refusing("seed")(req, wire)
        else:
            wire.json({"error": {"message": "overloaded"}}, status=503, headers={"Retry-After": "0"})

    server.handler = handler
    with pytest.raises(InternalServerError):
        Client(server.url, model="m", adapt=True, max_retries=1).chat("x", seed=1)
    assert ["seed" in r.json for r in server.requests] == [True, False, False], "the resend, then one retry"


def test_adapt_renames_max_completion_tokens(server: LoopbackServer) -> None:
    server.handler = refusing("max_completion_tokens", message="Unsupported parameter: 'max_completion_tokens'")
    client = Client(server.url, model="m", adapt=True, timeout=(2, 5))
    assert client.chat("x", max_completion_tokens=5) == "ok"
    assert server.requests[1].json["max_tokens"] == 5 and "max_completion_tokens" not in server.requests[1].json


@pytest.mark.parametrize(("field", "status", "error"), [("response_format", 400, BadRequestError),
                                                        ("tools", 400, BadRequestError),
                                                        ("seed", 401, AuthenticationError)])
def test_adapt_never_touches_meaning_or_authentication(server: LoopbackServer, field: str, status: int,
                                                       error: type) -> None:
    server.handler = refusing(field, status)
    client = Client(server.url, model="m", adapt=True, timeout=(2, 5))
    params: dict[str, Any] = {"response_format": {"type": "json_object"}, "tools": [], "seed": 1}
    with pytest.raises(error):
        client.chat("x", **{field: params[field]})
    assert len(server.requests) == 1


def test_without_adapt_a_refused_field_raises(server: LoopbackServer) -> None:
    server.handler = refusing("seed")
    with pytest.raises(BadRequestError, match="seed"):
        Client(server.url, model="m", adapt=False).chat("x", seed=1)
    assert len(server.requests) == 1


OPENAI_MAX_TOKENS = ("Unsupported parameter: 'max_tokens' is not supported with this model."
                     " Use 'max_completion_tokens' instead.")


def test_adapt_renames_max_tokens_when_openai_names_both_fields(server: LoopbackServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    server.handler = refusing("max_tokens", message=OPENAI_MAX_TOKENS)
    client = Client(server.url, model="m", adapt=True, timeout=(2, 5))
    with caplog.at_level(logging.INFO, logger="openai_compat"):
        assert client.chat("x", max_tokens=5) == "ok"
    assert f"the server refused max_tokens for m (HTTP 400: {OPENAI_MAX_TOKENS}): renamed max_tokens to" \
        " max_completion_tokens from now on" in [r.getMessage() for r in caplog.records]
    assert [r.json.get("max_tokens") for r in server.requests] == [5, None]
    assert server.requests[1].json["max_completion_tokens"] == 5
    assert client.chat("y", max_tokens=7) == "ok"
    assert len(server.requests) == 3 and server.requests[2].json["max_completion_tokens"] == 7


def test_adaptation_is_on_by_default(server: LoopbackServer) -> None:
    server.handler = refusing("seed")
    assert Client(server.url, model="m", max_retries=0).chat("x", seed=1) == "ok"
    assert ["seed" in r.json for r in server.requests] == [True, False]


def test_with_both_fields_sent_the_one_openai_refuses_goes(server: LoopbackServer) -> None:
    # The call carries both; OpenAI's reasoning models refuse max_tokens and name both fields.
    server.handler = refusing("max_tokens", message=OPENAI_MAX_TOKENS)
    client = Client(server.url, model="o3", max_retries=0)
    assert client.chat("x", max_tokens=5, max_completion_tokens=50) == "ok"
    resent = server.requests[1].json
    assert "max_tokens" not in resent and resent["max_completion_tokens"] == 50
    assert client._calls.adapt is not None and client._calls.adapt.rules == {"o3": (("rename", "max_tokens"),)}


def test_the_error_param_names_the_field_before_the_words_do(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if "temperature" in req.json:
            wire.json({"error": {"message": "Unsupported value: only the default (1) is supported; top_p also",
                                 "type": "invalid_request_error", "param": "temperature",
                                 "code": "unsupported_value"}}, status=400)
        else:
            wire.json(completion("ok"))

    server.handler = handler
    client = Client(server.url, model="o3", max_retries=0)
    with pytest.warns(UserWarning, match="refused temperature for o3: dropped temperature"):
        assert client.chat("x", temperature=0.2, top_p=0.5) == "ok"
    assert server.requests[1].json["top_p"] == 0.5 and "temperature" not in server.requests[1].json


def test_what_is_learned_is_kept_per_model(server: LoopbackServer) -> None:
    # A gateway: one model refuses seed, another takes it.
    def handler(req: Request, wire: Wire) -> None:
        if req.json["model"] == "strict" and "seed" in req.json:
            wire.json({"error": {"message": "seed is not supported", "param": "seed"}}, status=400)
        else:
            wire.json(completion("ok"))

    server.handler = handler
    client = Client(server.url, max_retries=0)
    client.chat("x", model="strict", seed=1)
    client.chat("x", model="lenient", seed=1)
    assert [("seed" in r.json, r.json["model"]) for r in server.requests] == [
        (True, "strict"), (False, "strict"), (True, "lenient")]


def test_a_capabilities_cache_keeps_what_was_learned_for_the_next_run(server: LoopbackServer, tmp_path: Any) -> None:
    server.handler = refusing("seed")
    cache = tmp_path / "capabilities.json"
    Client(server.url, model="m", capabilities_cache=cache, max_retries=0).chat("x", seed=1)
    assert len(server.requests) == 2 and json.loads(cache.read_text())
    again = Client(server.url, model="m", capabilities_cache=cache, max_retries=0)
    assert again.chat("x", seed=1) == "ok"
    assert len(server.requests) == 3 and "seed" not in server.requests[2].json, "learned once, on the first run"
    other_host = Client(server.url.replace("127.0.0.1", "localhost"), model="m", capabilities_cache=cache,
                        max_retries=0)
    assert other_host._calls.adapt is not None and other_host._calls.adapt.rules == {}, "kept per host"


def test_the_openai_preset_sends_max_completion_tokens_to_reasoning_models(server: LoopbackServer) -> None:
    from openai_compat import OpenAIClient

    client = OpenAIClient(base_url=server.url, api_key="sk-test", max_retries=0)
    client.chat("x", model="o3-mini", max_tokens=5)
    client.chat("x", model="gpt-4o", max_tokens=5)
    client.create_chat_completion(model="o3-mini", messages=[{"role": "user", "content": "x"}], max_tokens=5,
                                  max_tokesn=1)
    first, second, raw = (r.json for r in server.requests)
    assert first["max_completion_tokens"] == 5 and "max_tokens" not in first
    assert second["max_tokens"] == 5 and "max_completion_tokens" not in second
    assert (raw["max_tokens"], raw["max_tokesn"]) == (5, 1) and "max_completion_tokens" not in raw, \
        "the raw call sends what it is given"
    with pytest.raises(TypeError) as info:
        client.chat("x", extra_body=["not", "a", "dict"])
    assert str(info.value) == "chat: extra_body must be a dict, got list"


def test_a_server_that_refuses_both_spellings_is_not_asked_back_and_forth(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": OPENAI_MAX_TOKENS}}, status=400)
    with pytest.raises(BadRequestError):
        Client(server.url, model="m", max_retries=0).chat("x", max_tokens=5)
    assert [sorted(set(r.json) & {"max_tokens", "max_completion_tokens"}) for r in server.requests] == [
        ["max_tokens"], ["max_completion_tokens"]]


LONG_WORDS = "Unsupported value: 'temperature' does not support 0.2 with this model. " + "Only the default (1). " * 20


def test_a_dropped_sampling_field_warns_at_the_callers_line_and_logs_what_it_did(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.handler = refusing("temperature", message=LONG_WORDS)
    client = Client(server.url, model="o3", max_retries=0)
    host = server.url.split("/")[2]
    with pytest.warns(UserWarning) as caught, caplog.at_level(logging.INFO, logger="openai_compat"):
        assert client.chat("x", temperature=0.2) == "ok"
    assert str(caught[0].message) == (f"{host} refused temperature for o3: dropped temperature, so the answer is"
                                      f" sampled the server's way ({LONG_WORDS[:200]})")
    assert points_at(caught[0].filename, __file__)
    assert f"the server refused temperature for o3 (HTTP 400: {LONG_WORDS[:200]}): dropped temperature from now on" \
        in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("words", "code", "sent_again"), [
    ("max_tokens is too large for this model; temperature is fine", "invalid_request_error", "max_completion_tokens"),
    ("temperature is fine; max_tokens is too large for this model", "invalid_request_error", "temperature dropped"),
    ("max_tokens is too large for this model; temperature is fine", None, None),
    ("temperature and top_p cannot both be specified for this model", "invalid_request_error", None),
], ids=["first-named-rename", "first-named-drop", "two-named-without-a-code", "two-named-neither-a-rename"])
def test_words_that_name_two_fields_adapt_only_when_they_say_a_field_is_refused(
    server: LoopbackServer, words: str, code: str | None, sent_again: str | None
) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if len(server.requests) == 1:
            wire.json({"error": {"message": words, "type": code}}, status=400)
        else:
            wire.json(completion("ok"))

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sent_again is None:
            with pytest.raises(BadRequestError):
                client.chat("x", max_tokens=5, temperature=0.2, top_p=0.9)
            assert len(server.requests) == 1
            return
        assert client.chat("x", max_tokens=5, temperature=0.2, top_p=0.9) == "ok"
    resent = server.requests[1].json
    if sent_again == "max_completion_tokens":
        assert resent["max_completion_tokens"] == 5 and "max_tokens" not in resent and resent["temperature"] == 0.2
    else:
        assert "temperature" not in resent and resent["max_tokens"] == 5


def test_the_capabilities_cache_adds_to_what_it_holds_and_keeps_other_hosts(server: LoopbackServer,
                                                                            tmp_path: Any) -> None:
    cache = tmp_path / "capabilities.json"
    cache.write_text(json.dumps({"other.example:443": {"big": [["drop", "seed"]]}}))
    host = server.url.split("/")[2]

    def handler(req: Request, wire: Wire) -> None:
        refused = next((f for f in ("seed", "n") if f in req.json), None)
        if refused:
            wire.json({"error": {"message": f"{refused} is not supported", "param": refused}}, status=400)
        else:
            wire.json(completion("ok"))

    server.handler = handler
    client = Client(server.url, model="m", capabilities_cache=cache, max_retries=0)
    client.chat("x", seed=1, n=1)
    assert cache.read_text() == json.dumps({"other.example:443": {"big": [["drop", "seed"]]},
                                            host: {"m": [["drop", "seed"], ["drop", "n"]]}}, indent=1)


def test_a_capabilities_cache_this_client_did_not_write_is_ignored_with_a_warning(
    server: LoopbackServer, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "capabilities.json"
    cache.write_text("[1, 2]")
    server.handler = refusing("seed")
    with caplog.at_level(logging.WARNING, logger="openai_compat"):
        client = Client(server.url, model="m", capabilities_cache=cache, max_retries=0)
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring the capabilities cache {cache}: it is not what this client writes"]
    assert client.chat("x", seed=1) == "ok"
    assert ["seed" in r.json for r in server.requests] == [True, False]
    assert json.loads(cache.read_text()) == {server.url.split("/")[2]: {"m": [["drop", "seed"]]}}, "written anew"


def test_a_client_unpickled_still_learns(server: LoopbackServer) -> None:
    server.handler = refusing("seed")
    client = pickle.loads(pickle.dumps(Client(server.url, model="m", max_retries=0)))
    assert client.chat("x", seed=1) == "ok"
    assert ["seed" in r.json for r in server.requests] == [True, False]


@pytest.mark.parametrize(("choices", "row"), [
    (["hi"], ("no", "the response has a choice that is not an object")),
    ([{"index": 0, "message": "hi", "finish_reason": "stop"}], ("ok", "HTTP 200: 'null'")),
], ids=["choice-not-an-object", "message-not-an-object"])
def test_an_answer_of_an_odd_shape_is_noted_not_a_crash(server: LoopbackServer, choices: list[Any],
                                                        row: tuple[str, str]) -> None:
    server.handler = chatting(lambda req: dict(completion("hi"), choices=choices))
    items = {item.name: item[:3] for item in Client(server.url).probe("m").items}
    assert items["blocking chat"][:2] == ("blocking chat", row[0]) and items["blocking chat"][2].startswith(row[1])


def test_a_usage_chunk_asked_for_and_not_sent_and_a_limit_met_exactly(server: LoopbackServer) -> None:
    def counted(req: Request) -> Any:
        tokens = req.json.get("max_completion_tokens") or 2
        return completion("hi", usage={"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 7})

    server.handler = chatting(counted)  # its streams never send a usage chunk
    items = {item.name: item for item in Client(server.url).probe("m").items}
    assert items["stream_options.include_usage"] == ("stream_options.include_usage", "no",
                                                     "accepted but ignored: no usage chunk", 200)
    assert items["max_completion_tokens"] == ("max_completion_tokens", "ok", "accepted and honoured (4 tokens)", 200)


def test_an_endpoint_that_gives_no_answer_is_a_no_with_the_reason(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if req.path.endswith("/embeddings"):
            wire.close()
        else:
            chatting(bad_request=refusing_the_bad_request)(req, wire)

    server.handler = handler
    item = {item.name: item for item in Client(server.url).probe("m").items}["/embeddings"]
    assert (item.result, item.status) == ("no", None)
    assert item.reason.startswith(f"could not reach {server.url}/embeddings"), item.reason


def test_no_endpoint_probe_is_retried(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if req.path.endswith("/chat/completions"):
            chatting(bad_request=refusing_the_bad_request)(req, wire)
        else:
            wire.json({"error": {"message": "busy"}}, status=503)

    server.handler = handler
    report = Client(server.url, max_retries=3).probe("m")
    paths = [r.path for r in server.requests]
    assert [paths.count(p) for p in ("/v1/completions", "/v1/embeddings", "/v1/responses")] == [1, 1, 1]
    assert [report.result(p) for p in ("/completions", "/embeddings", "/responses")] == ["no", "no", "no"]
    assert report.result("not probed") == "unknown"


def test_an_unreachable_server_is_one_reason_shown_once() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1"
    report = Client(url).probe("m")
    assert report.items[0].reason.startswith(f"could not reach {url}/chat/completions: ")
    assert len(report.items[0].reason) > 60, "the first row keeps the reason in full"
    assert report.items[-1] == ("error body", "skipped", "see blocking chat", None)


def test_an_empty_report_is_an_empty_table_and_a_row_without_a_reason_ends_with_its_result() -> None:
    assert ProbeReport("http://127.0.0.1:9/v1", "m", []).table() == ""
    rows = [ProbeItem("tools", "ok", ""), ProbeItem("n > 1", "no", "ignored")]
    assert ProbeReport("http://127.0.0.1:9/v1", "m", rows).table() == "tools  ok\nn > 1  no      ignored"
