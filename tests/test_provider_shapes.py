"""What real providers send that plain OpenAI does not, replayed on loopback.

Each shape is written after a provider's documented or reported behaviour: OpenRouter's errors
mid-generation, Mistral's content parts, tool-call indexes from gateways, Gemini and DeepSeek,
and llama.cpp's arguments sent as an object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import APIResponseError, Client, UnhandledToolCallsError, merge_chunks

from .server import LoopbackServer, chunk, completion, event

DONE = "data: [DONE]\n\n"


def delta_chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "gen-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}


def chunks_of(client: Client) -> list[dict[str, Any]]:
    return list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], stream=True))


# -- 1. an error beside choices (OpenRouter, mid-generation) ------------------------------------

TOKEN_LIMIT = {"code": 400, "message": "Token limit reached"}
ERROR_CHUNKS = {
    "finish_reason error": delta_chunk({"content": ""}, "error", error=TOKEN_LIMIT),
    "normal-looking chunk": delta_chunk({"content": ""}, error=TOKEN_LIMIT),
}


@pytest.mark.parametrize("name", list(ERROR_CHUNKS))
def test_an_error_beside_choices_raises_after_the_text_before_it(
    client: Client, server: LoopbackServer, name: str
) -> None:
    server.handler = lambda req, wire: wire.sse([event(delta_chunk({"content": "Hel"})),
                                                 event(delta_chunk({"content": "lo"})),
                                                 event(ERROR_CHUNKS[name]), DONE])
    pieces = []
    with pytest.raises(APIResponseError) as info:
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["Hel", "lo"]
    assert str(info.value) == "Token limit reached" and info.value.code == "400"
    with pytest.raises(APIResponseError, match="Token limit reached"):
        chunks_of(client)
    with pytest.raises(APIResponseError, match="Token limit reached"):
        list(client.chat_choices("hi", n=1, stream=True))


def test_an_error_beside_choices_in_a_completion_stream_raises(client: Client, server: LoopbackServer) -> None:
    error = dict(chunk("", chat=False, finish_reason="error"), error=TOKEN_LIMIT)
    server.handler = lambda req, wire: wire.sse([event(chunk("Once", chat=False)), event(error), DONE])
    pieces = []
    with pytest.raises(APIResponseError, match="Token limit reached"):
        for piece in client.complete("x", stream=True):
            pieces.append(piece)
    assert pieces == ["Once"]


@pytest.mark.parametrize("error", [None, {}], ids=["null", "empty"])
def test_a_null_or_empty_error_is_no_error(client: Client, server: LoopbackServer, error: Any) -> None:
    server.handler = lambda req, wire: wire.sse([event(delta_chunk({"content": "ok"}, error=error)),
                                                 event(delta_chunk({}, "stop", error=error)), DONE])
    assert list(client.chat("hi", stream=True)) == ["ok"]
    server.handler = lambda req, wire: wire.json(completion("ok", error=error))
    assert client.chat("hi") == "ok"


def test_a_blocking_answer_with_an_error_beside_its_choices_raises(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("", finish_reason="error", error=TOKEN_LIMIT))
    with pytest.raises(APIResponseError, match="Token limit reached"):
        client.chat("hi")


# -- 2. content as a list of parts (Mistral's reasoning models) ---------------------------------


def thinking(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


MAGISTRAL = [
    delta_chunk({"role": "assistant", "content": [thinking("Two plus ")]}),
    delta_chunk({"content": [thinking("two is four.")]}),
    delta_chunk({"content": [text("2 + 2")]}),
    delta_chunk({"content": [text(" = 4")]}),
    delta_chunk({"content": ""}, "stop"),
]


def test_content_parts_stream_merge_and_block_to_the_same_text(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([*(event(c) for c in MAGISTRAL), DONE])
    assert "".join(client.chat("2+2?", stream=True)) == "2 + 2 = 4"
    merged = merge_chunks(chunks_of(client))
    assert merged["choices"][0]["message"]["content"] == [thinking("Two plus two is four."), text("2 + 2 = 4")]
    blocking = completion("")
    blocking["choices"][0]["message"]["content"] = merged["choices"][0]["message"]["content"]
    server.handler = lambda req, wire: wire.json(blocking)
    assert client.chat("2+2?") == "2 + 2 = 4"


def test_a_thinking_part_with_no_text_in_it_adds_no_thinking(client: Client, server: LoopbackServer) -> None:
    empty = {"type": "thinking", "thinking": [{"type": "text"}]}
    events = [delta_chunk({"role": "assistant", "content": [empty, thinking("Two plus two.")]}), *MAGISTRAL[2:]]
    server.handler = lambda req, wire: wire.sse([*(event(c) for c in events), DONE])
    assert list(client.chat("2+2?", stream=True, reasoning=True)) == [
        ("reasoning", "Two plus two."), ("answer", "2 + 2"), ("answer", " = 4")]


def test_a_text_part_after_plain_text_deltas_is_not_lost() -> None:
    merged = merge_chunks([delta_chunk({"content": "3"}), delta_chunk({"content": [text("9")]}),
                           delta_chunk({"content": "1"})])
    assert merged["choices"][0]["message"]["content"] == [text("391")]


# -- 3. tool-call indexes that do not start at 0, are missing, or are reused ---------------------


def call(index: Any = None, id: Any = None, name: Any = None, arguments: Any = "") -> dict[str, Any]:
    fragment: dict[str, Any] = {"function": {"arguments": arguments}}
    if name is not None:
        fragment["function"]["name"] = name
        fragment["type"] = "function"
    if index is not None:
        fragment["index"] = index
    if id is not None:
        fragment["id"] = id
    return fragment


TOOL_STREAMS = {
    "a gateway starting at index 1": (
        [delta_chunk({"content": "Let me check."}),
         delta_chunk({"tool_calls": [call(1, "call_a", "get_weather", "")]}),
         delta_chunk({"tool_calls": [call(1, arguments='{"city": "Paris"}')]})],
        [("call_a", "get_weather", '{"city": "Paris"}')]),
    "ollama: text, then a whole call beside empty content": (
        [delta_chunk({"role": "assistant", "content": "Let me check."}),
         delta_chunk({"role": "assistant", "content": "", "tool_calls": [
             call(0, "call_a", "get_weather", '{"city": "Paris"}')]})],
        [("call_a", "get_weather", '{"city": "Paris"}')]),
    "gemini without index": (
        [delta_chunk({"tool_calls": [call(None, "call_a", "get_weather", '{"city": "Paris"}')]}),
         delta_chunk({"tool_calls": [call(None, "call_b", "get_time", '{"tz": "CET"}')]})],
        [("call_a", "get_weather", '{"city": "Paris"}'), ("call_b", "get_time", '{"tz": "CET"}')]),
    "deepseek reusing an index for a new id": (
        [delta_chunk({"tool_calls": [call(0, "call_a", "get_weather", '{"city": ')]}),
         delta_chunk({"tool_calls": [call(0, arguments='"Paris"}')]}),
         delta_chunk({"tool_calls": [call(0, "call_b", "get_time", "")]}),
         delta_chunk({"tool_calls": [call(0, arguments="{}")]})],
        [("call_a", "get_weather", '{"city": "Paris"}'), ("call_b", "get_time", "{}")]),
    "arguments sent as an object": (
        [delta_chunk({"tool_calls": [call(0, "call_a", "get_weather", {"city": "Paris"})]})],
        [("call_a", "get_weather", '{"city": "Paris"}')]),
}


@pytest.mark.parametrize("name", list(TOOL_STREAMS))
def test_tool_calls_are_routed_by_id_then_index_in_order_and_never_nameless(
    client: Client, server: LoopbackServer, name: str
) -> None:
    fragments, expected = TOOL_STREAMS[name]
    body = [*(event(c) for c in fragments), event(delta_chunk({}, "tool_calls")), DONE]
    server.handler = lambda req, wire: wire.sse(body)
    merged = merge_chunks(chunks_of(client))
    calls = merged["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == expected
    with pytest.raises(UnhandledToolCallsError) as info:
        list(client.chat("hi", stream=True))
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in info.value.tool_calls] == expected


def test_blocking_arguments_sent_as_an_object_come_back_as_a_string(client: Client, server: LoopbackServer) -> None:
    answer = completion("")
    answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    server.handler = lambda req, wire: wire.json(answer)
    message = client.chat_message("hi")
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    with pytest.raises(UnhandledToolCallsError) as info:
        client.chat("hi")
    assert info.value.tool_calls[0]["function"]["arguments"] == '{"city": "Paris"}'
