"""Answers that are not what they look like: a refusal, a content filter's stop, a prompt over the
context, a response still running. Each raises a typed error instead of coming back as text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import (
    APIResponseError,
    BadRequestError,
    Client,
    ContentFilterError,
    ContextLengthError,
    InternalServerError,
    JSONOutputError,
    RefusalError,
    UnhandledToolCallsError,
)

from .server import LoopbackServer, Request, Wire, chunk, completion, event
from .test_responses import named, response

REFUSAL = "I'm sorry, I can't help with that."


def _refusal_completion(content: Any = None) -> dict[str, Any]:
    answer = completion("")
    answer["choices"][0]["message"] = {"role": "assistant", "content": content, "refusal": REFUSAL}
    return answer


@pytest.mark.parametrize("content", [None, "", "Here is part of it. "])
def test_a_blocking_refusal_raises_with_the_models_words(client: Client, server: LoopbackServer, content: Any) -> None:
    server.handler = lambda req, wire: wire.json(_refusal_completion(content))
    with pytest.raises(RefusalError, match="the model refused: I'm sorry") as info:
        client.chat("Help me with something bad")
    assert info.value.refusal == REFUSAL and info.value.text == (content or "")  # any text rides on the error
    assert client.last is not None and client.last.refusal == REFUSAL and client.last.finish_reason == "stop"


def delta_event(delta: dict[str, Any], finish_reason: str | None = None) -> str:
    answer = chunk(finish_reason=finish_reason)
    answer["choices"][0]["delta"] = delta
    return event(answer)


def streamed_until_refused(client: Client, server: LoopbackServer, events: list[str]) -> tuple[list[str], RefusalError]:
    """The pieces a streaming reader got before the refusal, and the refusal."""
    server.handler = lambda req, wire: wire.sse([*events, "data: [DONE]\n\n"])
    seen = []
    with pytest.raises(RefusalError) as info:
        for piece in client.chat("Help me", stream=True):
            seen.append(piece)
    return seen, info.value


def test_a_streamed_refusal_raises_after_the_text_before_it(client: Client, server: LoopbackServer) -> None:
    # OpenAI's shape: every delta carries "refusal": null until the refusal starts.
    events = [delta_event({"role": "assistant", "content": "", "refusal": None}),
              delta_event({"content": "Well", "refusal": None}),
              delta_event({"refusal": "I'm sorry, "}), delta_event({"refusal": "I can't help with that."}),
              delta_event({}, "stop")]
    seen, refused = streamed_until_refused(client, server, events)
    assert seen == ["Well"] and refused.refusal == REFUSAL
    assert client.last is not None and client.last.refusal == REFUSAL and client.last.finish_reason == "stop"


@pytest.mark.parametrize("delta", [
    {"content": "", "refusal": REFUSAL},  # a server that always sends content, beside the refusal
    {"role": "assistant", "content": "", "refusal": REFUSAL},
])
def test_a_refusal_beside_empty_content_after_text_is_not_lost(client: Client, server: LoopbackServer,
                                                               delta: dict[str, Any]) -> None:
    events = [event(chunk("Well")), delta_event(delta), delta_event({}, "stop")]
    seen, refused = streamed_until_refused(client, server, events)
    assert seen == ["Well"] and refused.refusal == REFUSAL


def test_fields_of_a_type_no_server_sends_are_passed_over(client: Client, server: LoopbackServer) -> None:
    odd_fields = {"content": " done", "refusal": 1, "tool_calls": 5, "reasoning_content": 3}
    events = [event(chunk("Well")), delta_event(odd_fields), delta_event({}, "stop")]
    server.handler = lambda req, wire: wire.sse([*events, "data: [DONE]\n\n"])
    assert "".join(client.chat("Help me", stream=True)) == "Well done"
    assert client.last is not None and client.last.refusal is None


REFUSAL_ITEM = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "refusal", "refusal": REFUSAL}]}


def test_a_responses_refusal_raises_blocking_and_streamed(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(response(output=[REFUSAL_ITEM]))
    with pytest.raises(RefusalError) as info:
        client.respond("Help me")
    assert info.value.refusal == REFUSAL
    assert client.last is not None and client.last.refusal == REFUSAL
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response("in_progress")},
              {"type": "response.refusal.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
               "delta": "I'm sorry, "},
              {"type": "response.refusal.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
               "delta": "I can't help with that."},
              {"type": "response.refusal.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
               "refusal": REFUSAL},
              {"type": "response.completed", "response": response(output=[REFUSAL_ITEM])}]
    server.handler = lambda req, wire: wire.sse([named(e) for e in events])
    with pytest.raises(RefusalError) as info:
        list(client.respond("Help me", stream=True))
    assert info.value.refusal == REFUSAL
    assert client.last is not None and client.last.refusal == REFUSAL


def test_a_content_filter_stop_raises_blocking_and_streamed(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("", finish_reason="content_filter"))
    with pytest.raises(ContentFilterError, match=r"content filter stopped the answer.*before any text"):
        client.chat("Tell me a story")
    server.handler = lambda req, wire: wire.json(completion("Once upon", finish_reason="content_filter"))
    with pytest.raises(ContentFilterError) as info:
        client.chat("Tell me a story")
    assert info.value.text == "Once upon"
    server.handler = lambda req, wire: wire.sse([event(chunk("Once")), event(chunk(" upon")),
                                                 event(chunk(finish_reason="content_filter")), "data: [DONE]\n\n"])
    seen = []
    with pytest.raises(ContentFilterError, match="after the text already handed on"):
        for piece in client.chat("Tell me a story", stream=True):
            seen.append(piece)
    assert seen == ["Once", " upon"]
    assert client.last is not None and client.last.finish_reason == "content_filter"


@pytest.mark.parametrize("status", ["queued", "in_progress"])
def test_a_background_response_still_running_is_not_an_empty_answer(
    client: Client, server: LoopbackServer, status: str
) -> None:
    server.handler = lambda req, wire: wire.json(response(status))
    with pytest.raises(APIResponseError, match=f"the response is {status}.*/responses/resp_1") as info:
        client.respond("Write a long essay", background=True)
    assert info.value.code == status


# Each server's own words for a prompt over its context, as its docs and issues show them.
OVERFLOWS = {
    "openai": (400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages"
                                          " resulted in 9000 tokens. Please reduce the length of the messages.",
                               "type": "invalid_request_error", "param": "messages",
                               "code": "context_length_exceeded"}}),
    "vllm": (400, {"object": "error", "message": "This model's maximum context length is 4096 tokens. However,"
                                                 " you requested 5000 tokens (4000 in the messages, 1000 in the"
                                                 " completion). Please reduce the length of the messages or"
                                                 " completion.",
                   "type": "BadRequestError", "param": None, "code": 400}),
    "vllm v1": (400, {"object": "error", "message": "The decoder prompt (length 5000) is longer than the maximum"
                                                    " model length of 4096. Make sure that `max_model_len` is no"
                                                    " smaller than the number of text tokens.",
                      "type": "BadRequestError", "param": None, "code": 400}),
    "llama.cpp": (400, {"error": {"code": 400, "message": "request (4476 tokens) exceeds the available context size"
                                                          " (4096 tokens), try increasing it",
                                  "type": "exceed_context_size_error", "n_prompt_tokens": 4476, "n_ctx": 4096}}),
    "llama-cpp-python": (400, {"error": {"message": "Requested tokens (2100) exceed context window of 2048",
                                         "type": "internal_server_error", "param": None, "code": None}}),
    "tgi": (422, {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000"
                           " `inputs` tokens and 200 `max_new_tokens`", "error_type": "validation"}),
    "ollama": (400, {"error": "the input length exceeds the context length"}),
    "litellm": (400, {"error": {"message": "litellm.ContextWindowExceededError: litellm.BadRequestError: prompt is"
                                           " too long: 210000 tokens > 200000 maximum", "type": None,
                                "param": None, "code": "400"}}),
    "groq": (400, {"error": {"message": "Please reduce the length of the messages or completion.",
                             "type": "invalid_request_error", "param": "messages"}}),
    "a server answering 500": (500, {"error": {"message": "This model's maximum context length is 2048 tokens",
                                               "type": "server_error"}}),
}


@pytest.mark.parametrize("server_name", list(OVERFLOWS))
def test_a_prompt_over_the_context_is_a_context_length_error_never_retried(
    server: LoopbackServer, server_name: str
) -> None:
    status, body = OVERFLOWS[server_name]
    server.handler = lambda req, wire: wire.json(body, status=status)
    with Client(server.url, model="m", max_retries=3, timeout=5) as client:
        with pytest.raises(ContextLengthError) as info:
            client.chat("a very long prompt")
    assert info.value.status_code == status and info.value.attempts == 1
    assert len(server.requests) == 1, "waiting will not shorten the prompt"
    assert isinstance(info.value, BadRequestError) and not isinstance(info.value, InternalServerError)


@pytest.mark.parametrize("body", [
    {"error": {"message": "Requested 1228288 tokens, max 300000 tokens per request", "code": "max_tokens_per_request"}},
    {"error": {"message": "Invalid value for 'max_tokens': must be a positive integer", "code": "invalid_value"}},
])
def test_other_token_limits_are_not_context_errors(client: Client, server: LoopbackServer, body: Any) -> None:
    server.handler = lambda req, wire: wire.json(body, status=400)
    with pytest.raises(BadRequestError) as info:
        client.chat("hi")
    assert not isinstance(info.value, ContextLengthError)


def test_a_custom_tool_call_is_named_by_its_name_and_type(client: Client, server: LoopbackServer) -> None:
    answer = completion("", finish_reason="tool_calls")
    answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "custom", "custom": {"name": "code_exec", "input": "print(1)"}},
        {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}

    def answer_it(request: Request, wire: Wire) -> None:
        wire.json(json.loads(json.dumps(answer)))

    server.handler = answer_it
    with pytest.raises(UnhandledToolCallsError, match=r"tool calls \(code_exec \(custom\), add\)"):
        client.chat("run it")


def test_chat_json_cut_off_at_max_tokens_says_so_and_does_not_ask_again(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion('{"name": "Os', finish_reason="length"))
    with pytest.raises(JSONOutputError, match=r"cut off at max_tokens \(12\) before its JSON ended") as info:
        client.chat_json("The largest city of Norway?", max_tokens=12, retries=2)
    assert info.value.text == '{"name": "Os' and len(server.requests) == 1
    server.handler = lambda req, wire: wire.json(completion('{"name": "Oslo"}', finish_reason="length"))
    assert client.chat_json("The largest city of Norway?", max_tokens=8) == {"name": "Oslo"}, "whole JSON is kept"
