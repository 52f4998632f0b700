"""Knowing the endpoint: models(), probe() and doctor against servers built to disagree, and
adaptive retries."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import warnings
from typing import Any

import pytest

from openai_compat import AuthenticationError, BadRequestError, Client

from .server import LoopbackServer, Request, Wire, chunk, completion, event, points_at

# -- models() -----------------------------------------------------------------------------------------

LISTINGS = {
    "vllm": ({"id": "qwen", "object": "model", "max_model_len": 32768}, 32768),
    "llama.cpp": ({"id": "tiny", "object": "model", "meta": {"n_ctx_train": 4096, "n_params": 1}}, 4096),
    "openrouter": ({"id": "a/b", "context_length": 128000, "top_provider": {"context_length": 64000}}, 128000),
    "groq": ({"id": "llama", "context_window": 131072}, 131072),
    "lmstudio": ({"id": "m", "max_context_length": 8192}, 8192),
    "none": ({"id": "m", "object": "model", "owned_by": "me"}, None),
}


def test_models_keep_the_servers_fields_and_find_the_context_length(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"object": "list", "data": [m for m, _ in LISTINGS.values()]})
    models = client.models()
    assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"
    assert [m["context_length"] for m in models] == [length for _, length in LISTINGS.values()]
    assert models[1]["meta"] == {"n_ctx_train": 4096, "n_params": 1}


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


def test_a_model_that_cannot_be_asked_skips_the_rest_and_says_why(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "model 'nope' does not exist"}}, status=404)
    report = Client(server.url).probe("nope")
    assert not report.ok
    assert report.items[0].result == "no" and "does not exist" in report.items[0].reason
    assert {item.result for item in report.items[1:-1]} == {"skipped"}


def test_doctor_prints_the_table_or_json_and_exits_by_what_works(server: LoopbackServer) -> None:
    server.handler = full_server
    base = [sys.executable, "-m", "openai_compat", "doctor", "--base-url", server.url, "--model", "m"]
    table = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "blocking chat" in table.stdout and "[DONE]" in table.stdout
    as_json = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(as_json.stdout)["ok"] is True
    server.handler = lambda req, wire: wire.json({"error": {"message": "no such model"}}, status=404)
    failing = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert failing.returncode == 1 and "skipped" in failing.stdout


def test_doctor_errors_are_one_line(server: LoopbackServer) -> None:
    result = subprocess.run([sys.executable, "-m", "openai_compat", "doctor", "--model", "m"], capture_output=True,
                            text=True, timeout=60)
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
    first, second = (r.json for r in server.requests)
    assert first["max_completion_tokens"] == 5 and "max_tokens" not in first
    assert second["max_tokens"] == 5 and "max_completion_tokens" not in second


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


def test_a_client_unpickled_still_learns(server: LoopbackServer) -> None:
    server.handler = refusing("seed")
    client = pickle.loads(pickle.dumps(Client(server.url, model="m", max_retries=0)))
    assert client.chat("x", seed=1) == "ok"
    assert ["seed" in r.json for r in server.requests] == [True, False]
