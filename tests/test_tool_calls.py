"""Tool calls as models write them, and answers cut off at max_tokens carried on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import (
    Client,
    ContentFilterError,
    LlamaCppClient,
    MistralClient,
    ToolArgumentsError,
    UnhandledToolCallsError,
    VLLMClient,
    parse_arguments,
)
from openai_compat._continuation import GO_ON

from .server import LoopbackServer, Request, Wire, chunk, completion, event


def call_with(arguments: Any, name: str = "weather") -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(("arguments", "parsed"), [
    ('{"city": "Oslo"}', {"city": "Oslo"}),
    ({"city": "Oslo"}, {"city": "Oslo"}),  # llama.cpp's server sent an object for a while
    ("", {}),
    (None, {}),
    ('{"city": "Oslo",}', {"city": "Oslo"}),  # a trailing comma
    ('{"cities": ["Oslo", "Bergen",]}', {"cities": ["Oslo", "Bergen"]}),
    ('{"city": "Oslo"', {"city": "Oslo"}),  # the closing brace left off
    ('{"where": {"city": "Oslo"', {"where": {"city": "Oslo"}}),
    ('{"city": "Os', {"city": "Os"}),  # cut inside a string
    ('"{\\"city\\": \\"Oslo\\"}"', {"city": "Oslo"}),  # JSON inside a JSON string
    ('```json\n{"city": "Oslo"}\n```', {"city": "Oslo"}),
    ('{"note": "a, }"}', {"note": "a, }"}),  # brackets and commas inside strings are text
])
def test_parse_arguments_reads_and_repairs_what_models_write(arguments: Any, parsed: dict[str, Any]) -> None:
    assert parse_arguments(call_with(arguments)) == parsed
    if isinstance(arguments, str):
        assert parse_arguments(arguments) == parsed


@pytest.mark.parametrize("arguments", ['{"city": Oslo}', "[1, 2]", "Oslo", '"just text"'])
def test_arguments_beyond_repair_raise_with_the_text_and_the_name(arguments: str) -> None:
    with pytest.raises(ToolArgumentsError, match="the arguments of weather are not a JSON object") as info:
        parse_arguments(call_with(arguments))
    assert info.value.text == arguments and info.value.name == "weather"


HERMES = ('I will check.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
          '<tool_call>\n{"name": "time", "arguments": {"zone": "CET"}}\n</tool_call>')


def _content_server(content: str) -> Any:
    def answer(request: Request, wire: Wire) -> None:
        wire.json(completion(content))
    return answer


@pytest.mark.parametrize(("content", "text", "calls"), [
    (HERMES, "I will check.", [("weather", {"city": "Oslo"}), ("time", {"zone": "CET"})]),
    ('{"name": "weather", "parameters": {"city": "Oslo"}}', "", [("weather", {"city": "Oslo"})]),  # Llama 3.1
    ('[{"name": "weather", "arguments": {"city": "Oslo"}}]', "", [("weather", {"city": "Oslo"})]),
])
def test_tool_calls_written_into_the_content_become_tool_calls_when_asked(
    client: Client, server: LoopbackServer, content: str, text: str, calls: list[Any]
) -> None:
    server.handler = _content_server(content)
    assert client.chat_message("Weather?")["content"] == content, "off unless asked for"
    reply = client.chat_message("Weather?", tool_calls_from_content=True)
    assert reply["content"] == text
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in reply["tool_calls"]] == calls
    assert len({c["id"] for c in reply["tool_calls"]}) == len(calls) and all(c["id"] for c in reply["tool_calls"])
    with pytest.raises(UnhandledToolCallsError):
        client.chat("Weather?", tool_calls_from_content=True)


@pytest.mark.parametrize("content", ['{"city": "Oslo"}', "<tool_call>{not json}</tool_call>", "Plain text."])
def test_content_that_holds_no_whole_call_is_left_as_text(client: Client, server: LoopbackServer, content: str) -> None:
    server.handler = _content_server(content)
    assert client.chat("Weather?", tool_calls_from_content=True) == content


def test_reading_calls_from_the_content_keeps_how_the_answer_ended(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("", finish_reason="content_filter"))
    with pytest.raises(ContentFilterError):
        client.chat("Weather?", tool_calls_from_content=True)
    with pytest.raises(ValueError, match=r"^chat\(\): tool_calls_from_content=True reads a whole answer: leave"
                                         r" stream=True off$"):
        client.chat("Weather?", stream=True, tool_calls_from_content=True)
    with pytest.raises(ValueError, match=r"^chat\(\): labelled=True labels the pieces of a stream: pass stream=True"
                                         r" too \(a blocking call's reasoning is in client.last.reasoning\)$"):
        client.chat("Weather?", labelled=True)


# -- continue_on_length --------------------------------------------------------------------------

def _cut_server(parts: list[str], stream: bool = False) -> Any:
    """Answers with each of ``parts`` in turn (by the request's number), every one but the last
    cut off at max_tokens."""
    def answer(request: Request, wire: Wire) -> None:
        turn = request.number - 1
        finish = "length" if turn < len(parts) - 1 else "stop"
        if stream:
            wire.sse([event(chunk(parts[turn])), event(chunk(finish_reason=finish)), "data: [DONE]\n\n"])
        else:
            wire.json(completion(parts[turn], finish_reason=finish))
    return answer


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streamed"])
@pytest.mark.parametrize(("preset", "shape"), [
    (Client, "user turn"), (VLLMClient, "continue_final_message"), (MistralClient, "prefix"),
    (LlamaCppClient, "final assistant"),
])
def test_continue_on_length_goes_on_from_where_the_answer_stopped(
    server: LoopbackServer, stream: bool, preset: type[Client], shape: str
) -> None:
    server.handler = _cut_server(["Once upon", " a time", " the end."], stream)
    client = preset(base_url=server.url, api_key="key", model="m", max_retries=0)
    if stream:
        answer = "".join(client.chat("Tell a story", max_tokens=3, stream=True, continue_on_length=5))
    else:
        answer = client.chat("Tell a story", max_tokens=3, continue_on_length=5)
    assert answer == "Once upon a time the end."
    assert len(server.requests) == 3 and client.last is not None and client.last.finish_reason == "stop"
    assert {r.path for r in server.requests} == {"/v1/chat/completions"}
    assert client.usage.calls == 3
    last = server.requests[-1].json
    assert last["max_tokens"] == 3 and last["messages"][0] == {"role": "user", "content": "Tell a story"}
    said = {"role": "assistant", "content": "Once upon a time"}
    if shape == "user turn":
        assert last["messages"][1:] == [said, {"role": "user", "content": GO_ON}]
    elif shape == "continue_final_message":
        assert last["messages"][1:] == [said]
        assert last["continue_final_message"] is True and last["add_generation_prompt"] is False
    elif shape == "prefix":
        assert last["messages"][1:] == [dict(said, prefix=True)]
    else:
        assert last["messages"][1:] == [said] and "continue_final_message" not in last


def test_continue_on_length_stops_after_n_turns_and_the_default_returns_the_cut_text(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = _cut_server(["a", "b", "c", "d"])
    assert client.chat("x", max_tokens=1) == "a"
    assert client.last is not None and client.last.finish_reason == "length"
    server.requests.clear()
    assert client.chat("x", max_tokens=1, continue_on_length=2) == "abc", "two more turns, then as it came"
    assert len(server.requests) == 3 and client.last is not None and client.last.finish_reason == "length"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streamed"])
def test_continue_on_length_keeps_the_think_block_when_asked(client: Client, server: LoopbackServer,
                                                             stream: bool) -> None:
    server.handler = _cut_server(["<think>Short.</think>Once", " upon a time."], stream)
    answer: Any = client.chat("x", stream=stream, continue_on_length=1, keep_think=True)
    assert (answer if isinstance(answer, str) else "".join(answer)) == "<think>Short.</think>Once upon a time."


def test_continue_on_length_streamed_goes_on_exactly_n_times_labelled_too(client: Client,
                                                                          server: LoopbackServer) -> None:
    server.handler = _cut_server(["a", "b", "c"], stream=True)
    pieces = list(client.chat("x", stream=True, continue_on_length=1, labelled=True))
    assert pieces == [("answer", "a"), ("answer", "b")]
    assert len(server.requests) == 2
    assert server.requests[1].json["messages"][1] == {"role": "assistant", "content": "a"}


@pytest.mark.parametrize(("value", "error"), [(-1, ">= 0"), (1.5, "whole number"), (True, "whole number")])
def test_continue_on_length_is_checked(client: Client, value: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        client.chat("x", continue_on_length=value)
    with pytest.raises(ValueError, match=r"^chat\(\): continue_on_length continues one answer: leave n out$"):
        client.chat("x", n=2, continue_on_length=1)


def test_argument_errors_say_what_came_in_full_words() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        parse_arguments(call_with(42))
    assert str(info.value) == "the arguments of weather are int, not a JSON object"
    assert (info.value.text, info.value.name) == ("42", "weather")
    with pytest.raises(ToolArgumentsError) as info:
        parse_arguments("[1]")
    assert str(info.value) == "the arguments of the tool call are not a JSON object: '[1]'"
    assert (info.value.text, info.value.name) == ("[1]", None)
    long = "x" * 300
    with pytest.raises(ToolArgumentsError) as info:
        parse_arguments(long)
    assert str(info.value) == f"the arguments of the tool call are not a JSON object: {'x' * 199 + '…'!r}"
    assert info.value.text == long
    exact = "y" * 200
    with pytest.raises(ToolArgumentsError, match=f"object: '{exact}'$"):
        parse_arguments(exact)


@pytest.mark.parametrize(("text", "parsed"), [
    ('{"city": "Oslo",', {"city": "Oslo"}),  # cut after a comma
    ('{"list": [1, 2', {"list": [1, 2]}),
    ('{"say": "a \\"quoted\\" word, }", "n": [1', {"say": 'a "quoted" word, }', "n": [1]}),
    ('{"path": "C:\\\\dir", "deep": {"x": [', {"path": "C:\\dir", "deep": {"x": []}}),
])
def test_repairs_close_what_is_open_outside_strings(text: str, parsed: dict[str, Any]) -> None:
    assert parse_arguments(text) == parsed


def test_calls_from_content_keeps_the_message_and_makes_whole_calls() -> None:
    from openai_compat._tool_calls import calls_from_content

    given = {"role": "assistant", "content": 'Sure.<tool_call>\n{"name": "now",\n "arguments": {}}\n</tool_call>',
             "reasoning_content": "think"}
    reply = calls_from_content(given)
    assert reply["role"] == "assistant" and reply["reasoning_content"] == "think" and reply["content"] == "Sure."
    [call] = reply["tool_calls"]
    assert call["type"] == "function" and call["function"] == {"name": "now", "arguments": "{}"}
    assert call["id"].startswith("call_") and len(call["id"]) == 5 + 24
    assert given["content"].startswith("Sure.<tool_call>"), "the server's message is left as it came"
    bare = calls_from_content({"role": "assistant", "content": '{"name": "now"}'})
    assert bare["content"] == "" and bare["tool_calls"][0]["function"] == {"name": "now", "arguments": "{}"}
    as_text = calls_from_content({"role": "assistant", "content": '{"name": "f", "arguments": "{\\"x\\": 1}"}'})
    assert as_text["tool_calls"][0]["function"]["arguments"] == '{"x": 1}', "arguments already text stay as they are"
    has_calls = {"role": "assistant", "content": '<tool_call>{"name": "a", "arguments": {}}</tool_call>',
                 "tool_calls": [call_with("{}")]}
    assert calls_from_content(has_calls) is has_calls


def test_a_comma_inside_a_string_stays_after_an_escaped_quote() -> None:
    assert parse_arguments('{"a": "x \\" y, }", "b": [1,],}') == {"a": 'x " y, }', "b": [1]}


def test_odd_inputs_get_plain_answers() -> None:
    from openai_compat._tool_calls import calls_from_content

    with pytest.raises(ToolArgumentsError, match=r"^the arguments of the tool call are int, not a JSON object$"):
        parse_arguments(42)  # type: ignore[arg-type]
    assert parse_arguments({"id": "c1", "type": "custom", "custom": {"name": "run", "input": "ls"}}) == {}
    assert parse_arguments('{"a": [1, ], }') == {"a": [1]}
    just_over = "z" * 201
    with pytest.raises(ToolArgumentsError) as info:
        parse_arguments(just_over)
    assert str(info.value).endswith(f"{'z' * 199 + '…'!r}")
    empty = {"role": "assistant", "content": None}
    assert calls_from_content(empty) is empty
