"""Reasoning models: every wire form of the thinking, the answer alone, nothing silently empty."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from openai_compat import (
    PROVIDERS,
    Client,
    DeepSeekClient,
    EmptyAnswerError,
    merge_chunks,
)
from openai_compat._delta import message_reasoning

from .command import run_command
from .server import LoopbackServer, Request, Wire, completion, event

DONE = "data: [DONE]\n\n"
THOUGHT = "2 plus 2: count two, then two more. That is 4."
ANSWER = "The answer is 4."


def delta(d: dict[str, Any], finish_reason: str | None = None) -> str:
    return event({"id": "c", "object": "chat.completion.chunk", "model": "m",
                  "choices": [{"index": 0, "delta": d, "finish_reason": finish_reason}]})


def thinking_part(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


# name: (the streamed events, the blocking message), each carrying THOUGHT and ANSWER
FORMS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "reasoning_content (DeepSeek, llama.cpp)": (
        [delta({"role": "assistant", "content": None, "reasoning_content": "2 plus 2: count two, "}),
         delta({"reasoning_content": "then two more. That is 4."}),
         delta({"content": "The answer"}), delta({"content": " is 4."}), delta({}, "stop")],
        {"role": "assistant", "content": ANSWER, "reasoning_content": THOUGHT}),
    "reasoning with details (OpenRouter)": (
        [delta({"role": "assistant", "content": "", "reasoning": "2 plus 2: count two, ", "reasoning_details": [
            {"type": "reasoning.text", "text": "2 plus 2: count two, ", "index": 0, "format": "unknown"}]}),
         delta({"content": "", "reasoning": "then two more. That is 4.", "reasoning_details": [
             {"type": "reasoning.text", "text": "then two more. That is 4.", "index": 0, "format": "unknown"}]}),
         delta({"content": ANSWER}), delta({}, "stop")],
        {"role": "assistant", "content": ANSWER, "reasoning": THOUGHT, "reasoning_details": [
            {"type": "reasoning.text", "text": THOUGHT, "index": 0, "format": "unknown"}]}),
    "reasoning (Ollama /v1, vLLM)": (
        [delta({"role": "assistant", "content": "", "reasoning": THOUGHT}),
         delta({"content": ANSWER}), delta({}, "stop")],
        {"role": "assistant", "content": ANSWER, "reasoning": THOUGHT}),
    "thinking parts (Mistral Magistral)": (
        [delta({"role": "assistant", "content": [thinking_part("2 plus 2: count two, ")]}),
         delta({"content": [thinking_part("then two more. That is 4.")]}),
         delta({"content": [{"type": "text", "text": "The answer"}]}),
         delta({"content": [{"type": "text", "text": " is 4."}]}), delta({"content": ""}, "stop")],
        {"role": "assistant", "content": [thinking_part(THOUGHT), {"type": "text", "text": ANSWER}]}),
    "inline think tags (Together R1, Groq raw)": (
        [delta({"role": "assistant", "content": "<thi"}), delta({"content": "nk>\n2 plus 2: count two, "}),
         delta({"content": "then two more. That is 4.\n</th"}), delta({"content": "ink>\n\nThe answer is 4."}),
         delta({}, "stop")],
        {"role": "assistant", "content": f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}"}),
}


def inline_thought(name: str) -> str:
    return f"\n{THOUGHT}\n" if name.startswith("inline") else THOUGHT


@pytest.mark.parametrize("name", list(FORMS))
@pytest.mark.parametrize("write_size", [None, 1], ids=["whole", "byte-by-byte"])
def test_every_form_streams_the_answer_alone_and_labels_the_thinking(
    client: Client, server: LoopbackServer, name: str, write_size: Any
) -> None:
    server.handler = lambda req, wire: wire.sse([*FORMS[name][0], DONE], write_size=write_size)
    assert "".join(client.chat("2+2?", stream=True)) == ANSWER
    labelled = list(client.chat("2+2?", stream=True, reasoning=True))
    assert "".join(p for k, p in labelled if k == "reasoning") == inline_thought(name)
    assert "".join(p for k, p in labelled if k == "answer") == ANSWER
    assert [k for k, _ in labelled] == sorted((k for k, _ in labelled), reverse=True), "thinking comes first"


@pytest.mark.parametrize("name", list(FORMS))
def test_every_form_blocking_returns_the_answer_and_keeps_the_thinking(
    client: Client, server: LoopbackServer, name: str
) -> None:
    answer = completion("")
    answer["choices"][0]["message"] = FORMS[name][1]
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat("2+2?") == ANSWER
    message = client.chat_message("2+2?")
    assert message == FORMS[name][1], "the message comes back as the server sent it, to go back as it is"
    assert message_reasoning(message) == inline_thought(name)


@pytest.mark.parametrize("name", list(FORMS))
def test_merged_chunks_agree_with_the_streamed_pieces_and_the_blocking_message(
    client: Client, server: LoopbackServer, name: str
) -> None:
    server.handler = lambda req, wire: wire.sse([*FORMS[name][0], DONE])
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": "2+2?"}], stream=True))
    merged = merge_chunks(chunks)["choices"][0]["message"]
    assert {k: v for k, v in merged.items() if v is not None} == FORMS[name][1]


def test_keep_think_keeps_an_inline_block_in_the_text(client: Client, server: LoopbackServer) -> None:
    events, message = FORMS["inline think tags (Together R1, Groq raw)"]
    server.handler = lambda req, wire: wire.sse([*events, DONE])
    assert "".join(client.chat("2+2?", stream=True, keep_think=True)) == message["content"]
    answer = completion("")
    answer["choices"][0]["message"] = message
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat("2+2?", keep_think=True) == message["content"]


def test_the_text_of_a_raw_stream_leaves_an_inline_block_out(client: Client, server: LoopbackServer) -> None:
    events, _ = FORMS["inline think tags (Together R1, Groq raw)"]
    server.handler = lambda req, wire: wire.sse([*events, DONE])
    stream = client.create_chat_completion(messages=[{"role": "user", "content": "2+2?"}], stream=True)
    assert "".join(stream.text()) == ANSWER


def test_think_tags_later_in_the_text_are_part_of_the_answer(client: Client, server: LoopbackServer) -> None:
    text = "Use <think> tags like <think>this</think> in prompts."
    server.handler = lambda req, wire: wire.sse([delta({"content": text}), delta({}, "stop"), DONE])
    assert "".join(client.chat("how?", stream=True)) == text


def test_a_completion_with_an_inline_block_returns_the_answer(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion(f"<think>{THOUGHT}</think>{ANSWER}", chat=False))
    assert client.complete("2+2=") == ANSWER


# -- nothing silently empty --------------------------------------------------------------------------

SPENT = {"prompt_tokens": 9, "completion_tokens": 70, "total_tokens": 79,
         "completion_tokens_details": {"reasoning_tokens": 64}}
EMPTY_ANSWER = ("the model spent its max_tokens thinking{} and gave no answer: raise max_tokens, or think less"
                " (thinking=False, or an effort such as thinking=\"low\")")


@pytest.mark.parametrize("content", ["", None])
def test_thinking_through_max_tokens_raises_instead_of_returning_empty(
    client: Client, server: LoopbackServer, content: Any
) -> None:
    answer = completion("", finish_reason="length", usage=SPENT)
    answer["choices"][0]["message"] = {"role": "assistant", "content": content, "reasoning_content": THOUGHT}
    server.handler = lambda req, wire: wire.json(answer)
    with pytest.raises(EmptyAnswerError) as info:
        client.chat("2+2?", max_tokens=64)
    assert info.value.args[0] == EMPTY_ANSWER.format(" (64 tokens of it)")  # the thinking's, not all 70
    assert info.value.reasoning == THOUGHT


def test_an_empty_answer_without_usage_says_no_count(client: Client, server: LoopbackServer) -> None:
    answer = completion("", finish_reason="length")
    answer.pop("usage", None)
    answer["choices"][0]["message"] = {"role": "assistant", "content": "", "reasoning_content": THOUGHT}
    server.handler = lambda req, wire: wire.json(answer)
    with pytest.raises(EmptyAnswerError) as info:
        client.chat("2+2?")
    assert info.value.args[0] == EMPTY_ANSWER.format("")


def test_a_stream_that_only_thinks_raises_after_the_thinking(client: Client, server: LoopbackServer) -> None:
    usage = event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21}})
    server.handler = lambda req, wire: wire.sse([delta({"reasoning_content": THOUGHT}),
                                                 delta({"content": ""}, "length"), usage, DONE])
    seen = []
    with pytest.raises(EmptyAnswerError, match=r"max_tokens thinking \(16 tokens of it\)") as info:
        for piece in client.chat("2+2?", stream=True, reasoning=True):
            seen.append(piece)
    assert seen == [("reasoning", THOUGHT)]
    assert info.value.reasoning == THOUGHT
    with pytest.raises(EmptyAnswerError):
        list(client.chat("2+2?", stream=True))


def test_a_short_answer_cut_by_length_is_no_error(client: Client, server: LoopbackServer) -> None:
    events = [delta({"reasoning_content": "hm"}), delta({"content": "The"}, "length"), DONE]
    server.handler = lambda req, wire: wire.sse(events)
    assert "".join(client.chat("2+2?", stream=True)) == "The"


def test_an_answer_after_thinking_kept_inline_is_no_error(client: Client, server: LoopbackServer) -> None:
    events = [delta({"reasoning_content": "hm"}), delta({"content": "The"}), delta({"content": " end"}, "length"),
              DONE]
    server.handler = lambda req, wire: wire.sse(events)
    assert "".join(client.chat("2+2?", stream=True, keep_think=True)) == "The end"


def test_reasoning_labels_need_a_stream(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="stream=True"):
        client.chat("hi", reasoning=True)
    assert server.requests == []


# -- sending the thinking back: DeepSeek's thinking mode with tools ------------------------------------


def test_deepseek_gets_its_reasoning_back_with_the_tool_results(server: LoopbackServer) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}

    def deepseek(req: Request, wire: Wire) -> None:
        assistant = [m for m in req.json["messages"] if m["role"] == "assistant"]
        if not assistant:
            answer = completion("", finish_reason="tool_calls")
            answer["choices"][0]["message"] = {"role": "assistant", "content": "", "reasoning_content": THOUGHT,
                                               "tool_calls": [call]}
            wire.json(answer)
        elif assistant[0].get("reasoning_content") != THOUGHT:
            wire.json({"error": {"message": "The reasoning_content in the thinking mode must be passed back to"
                                 " the API.", "type": "invalid_request_error"}}, status=400)
        else:
            wire.json(completion(ANSWER))

    server.handler = deepseek
    client = DeepSeekClient(server.url, api_key="sk-test", model="deepseek-chat", max_retries=0)
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "2+2?"}]
    reply = client.chat_message(messages, tools=tools, thinking=True)
    messages.append(reply)
    messages.append({"role": "tool", "tool_call_id": "call_1", "content": "4"})
    assert client.chat(messages, tools=tools, thinking=True) == ANSWER
    assert server.requests[1].json["messages"][1]["reasoning_content"] == THOUGHT
    assert server.requests[0].json["thinking"] == {"type": "enabled"}


# -- one switch, each server's own knob -----------------------------------------------------------------

KNOBS: dict[str, dict[Any, dict[str, Any]]] = {
    "deepseek": {False: {"thinking": {"type": "disabled"}}, True: {"thinking": {"type": "enabled"}}},
    "openrouter": {False: {"reasoning": {"enabled": False}}, "low": {"reasoning": {"effort": "low"}}},
    "together": {False: {"reasoning": {"enabled": False}}, True: {"reasoning": {"enabled": True}}},
    "fireworks": {False: {"reasoning_effort": "none"}, "high": {"reasoning_effort": "high"}, True: {}},
    "groq": {False: {"reasoning_effort": "none"}, "low": {"reasoning_effort": "low"}},
    "ollama": {False: {"reasoning_effort": "none"}, True: {}},
    "openai": {"low": {"reasoning_effort": "low"}},
    "deepinfra": {False: {"reasoning_effort": "none"}},
    "lmstudio": {False: {"reasoning_effort": "none"}},
    "vllm": {False: {"chat_template_kwargs": {"enable_thinking": False}},
             True: {"chat_template_kwargs": {"enable_thinking": True}}, "low": {"reasoning_effort": "low"}},
    "llamacpp": {False: {"chat_template_kwargs": {"enable_thinking": False}}},
}
KNOWN_FIELDS = {"thinking", "reasoning", "reasoning_effort", "chat_template_kwargs"}


@pytest.mark.parametrize(("provider", "value"), [(p, v) for p, values in KNOBS.items() for v in values])
def test_thinking_maps_to_each_presets_own_knob(server: LoopbackServer, provider: str, value: Any) -> None:
    client = PROVIDERS[provider](server.url, api_key="k", model="m")
    client.chat("hi", thinking=value)
    sent = server.requests[0].json
    assert {k: v for k, v in sent.items() if k in KNOWN_FIELDS} == KNOBS[provider][value]


def test_a_plain_client_takes_the_servers_own_field(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="pass its own field"):
        client.chat("hi", thinking=False)
    groq = PROVIDERS["groq"](server.url, api_key="k", model="m")
    with pytest.raises(ValueError, match="pass one of them"):
        groq.chat("hi", thinking=False, reasoning_effort="low")
    assert server.requests == []
    client.chat("hi", thinking={"type": "disabled"})  # a dict is DeepSeek's own field, sent as it is
    assert server.requests[0].json["thinking"] == {"type": "disabled"}


# -- the command line ------------------------------------------------------------------------------------


def test_the_cli_keeps_stdout_for_the_answer_and_shows_thinking_on_request(server: LoopbackServer) -> None:
    events, message = FORMS["reasoning_content (DeepSeek, llama.cpp)"]
    blocking_answer = completion("")
    blocking_answer["choices"][0]["message"] = message
    server.handler = lambda req, wire: (wire.sse([*events, DONE]) if req.json.get("stream")
                                        else wire.json(blocking_answer))
    base = ["chat", "--base-url", server.url, "--model", "m"]
    quiet = run_command(*base, "2+2?")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, ANSWER + "\n", "")
    shown = run_command(*base, "--reasoning", "2+2?")
    assert (shown.returncode, shown.stdout) == (0, ANSWER + "\n")
    assert shown.stderr == THOUGHT + "\n", "the thinking, then a line break before the answer"
    blocking = run_command(*base, "--reasoning", "--no-stream", "2+2?")
    assert blocking.stdout == ANSWER + "\n" and blocking.stderr == THOUGHT + "\n"


def test_the_cli_sends_the_thinking_switch(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("ok"))
    result = run_command("chat", "--provider", "deepseek", "--base-url", server.url, "--api-key-env", "PATH",
                         "--model", "m", "--thinking", "off", "--no-stream", "hi")
    assert result.returncode == 0, result.stderr
    assert json.loads(server.requests[0].raw_body)["thinking"] == {"type": "disabled"}


def test_on_a_terminal_the_cli_shows_thinking_then_clears_it(server: LoopbackServer) -> None:
    import os
    import pty

    events, _ = FORMS["reasoning_content (DeepSeek, llama.cpp)"]
    server.handler = lambda req, wire: wire.sse([*events, DONE])
    terminal, stderr_side = pty.openpty()  # stderr is a terminal; stdout stays a pipe
    try:
        result = subprocess.run([sys.executable, "-m", "openai_compat", "chat", "--base-url", server.url, "--model",
                                 "m", "2+2?"], stdout=subprocess.PIPE, stderr=stderr_side, timeout=30)
        os.close(stderr_side)
        shown = b""
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:
                break
            if not data:
                break
            shown += data
    finally:
        os.close(terminal)
    assert result.returncode == 0 and result.stdout == (ANSWER + "\n").encode()
    assert shown == "thinking…\r\x1b[K".encode(), "the indicator, then the line cleared for the answer"


# -- a whole answer's reasoning, every path -----------------------------------------------------------


def _answer(message: dict[str, Any] | None = None, *, text: Any = None, finish_reason: str = "stop") -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    if message is not None:
        choice["message"] = {"role": "assistant", **message}
    else:
        choice["text"] = text
    return {"id": "a-1", "object": "chat.completion" if message is not None else "text_completion",
            "choices": [choice]}


@pytest.mark.parametrize("message, keep_think, expected", [
    ({"content": " \n<think>x</think>42"}, False, "42"),  # a think block after white space
    ({"content": "<think>x</think>42", "reasoning_content": ""}, True, "<think>x</think>42"),
    ({"content": "x <", "reasoning_content": "hm"}, False, "x <"),  # a "<" that starts no tag, at the end
    ({"content": "<thi", "reasoning_content": "hm"}, False, "<thi"),  # what might have opened a tag
], ids=["think-after-space", "keep-think-beside-reasoning", "trailing-lt", "a-tag-that-never-came"])
def test_a_blocking_answer_keeps_exactly_its_answer(
    client: Client, server: LoopbackServer, message: dict[str, Any], keep_think: bool, expected: str
) -> None:
    server.handler = lambda req, wire: wire.json(_answer(message))
    assert client.chat("q", keep_think=keep_think) == expected


def test_thinking_in_two_forms_that_fills_max_tokens_raises_with_all_of_it(
    client: Client, server: LoopbackServer
) -> None:
    message = {"content": "<think>two</think>", "reasoning_content": "one, "}
    server.handler = lambda req, wire: wire.json(_answer(message, finish_reason="length"))
    with pytest.raises(EmptyAnswerError) as info:
        client.chat("q")
    assert info.value.reasoning == "one, two"


APART = {name: events for name, (events, _) in FORMS.items() if not name.startswith("inline")}
APART["reasoning_content beside empty content (SGLang)"] = [
    delta({"role": "assistant", "content": "", "reasoning_content": THOUGHT}),
    delta({"content": ANSWER, "reasoning_content": None}), delta({}, "stop")]


@pytest.mark.parametrize("name", list(APART))
def test_keep_think_changes_nothing_for_thinking_sent_apart(client: Client, server: LoopbackServer, name: str) -> None:
    server.handler = lambda req, wire: wire.sse([*APART[name], DONE])
    labelled = list(client.chat("2+2?", stream=True, reasoning=True, keep_think=True))
    assert "".join(p for k, p in labelled if k == "reasoning") == THOUGHT
    assert "".join(p for k, p in labelled if k == "answer") == ANSWER
    assert all(type(p) is str for _, p in labelled)


def test_thinking_parts_that_fill_max_tokens_raise_with_all_their_text(client: Client, server: LoopbackServer) -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    server.handler = lambda req, wire: wire.json(_answer({"content": [thinking]}, finish_reason="length"))
    with pytest.raises(EmptyAnswerError) as info:
        client.chat("q")
    assert info.value.reasoning == "ab"


@pytest.mark.parametrize("text, keep_think, expected", [
    ("<think>x</think>42", True, "<think>x</think>42"),
    ("<think>x</think>42", False, "42"),
    (None, False, ""),  # no text at all, a normal stop: an empty answer the server gave
], ids=["keep-think", "think-left-out", "no-text"])
def test_a_completion_answer_keeps_exactly_its_text(
    client: Client, server: LoopbackServer, text: Any, keep_think: bool, expected: str
) -> None:
    server.handler = lambda req, wire: wire.json(_answer(text=text))
    assert client.complete("q", keep_think=keep_think) == expected


def test_a_completion_that_thinks_through_max_tokens_raises(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(_answer(text="<think>still going", finish_reason="length"))
    with pytest.raises(EmptyAnswerError) as info:
        client.complete("q")
    assert info.value.reasoning == "still going"


def test_text_held_back_as_a_possible_think_tag_comes_out_at_the_end(client: Client, server: LoopbackServer) -> None:
    # "<thi" could open a think block, so it waits; the stream ends, and it is the answer.
    events = [delta({"content": "", "reasoning_content": "hm, "}), delta({"content": "", "reasoning": "well"}),
              delta({"content": "<thi"}, "length"), DONE]
    server.handler = lambda req, wire: wire.sse(events)
    assert list(client.chat("q", stream=True)) == ["<thi"]
    assert list(client.chat("q", stream=True, reasoning=True)) == [
        ("reasoning", "hm, "), ("reasoning", "well"), ("answer", "<thi")]
    assert client.last is not None and client.last.reasoning == "hm, well"


def test_a_stream_cut_by_length_inside_its_thinking_raises_with_all_of_it(
    client: Client, server: LoopbackServer
) -> None:
    events = [delta({"content": "", "reasoning_content": "one, "}), delta({"content": "", "reasoning": "two"}),
              delta({"content": ""}, "length"), DONE]
    server.handler = lambda req, wire: wire.sse(events)
    with pytest.raises(EmptyAnswerError) as info:
        list(client.chat("q", stream=True))
    assert info.value.reasoning == "one, two"


def test_an_inline_block_cut_by_length_inside_its_closing_tag_is_all_thinking(
    client: Client, server: LoopbackServer
) -> None:
    events = [delta({"content": "<think>one, two"}), delta({"content": "</thi"}, "length"), DONE]
    server.handler = lambda req, wire: wire.sse(events)
    seen = []
    with pytest.raises(EmptyAnswerError) as info:
        for piece in client.chat("q", stream=True, reasoning=True):
            seen.append(piece)
    assert seen == [("reasoning", "one, two"), ("reasoning", "</thi")]
    assert info.value.reasoning == "one, two</thi"


def test_chat_choices_leave_each_think_block_out(client: Client, server: LoopbackServer) -> None:
    answer = completion("")
    answer["choices"] = [{"index": i, "message": {"role": "assistant", "content": f"<think>t{i}</think>a{i}"},
                          "finish_reason": "stop"} for i in range(2)]
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat_choices("q", n=2) == ["a0", "a1"]


def test_a_chat_answer_given_as_text_is_read(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(_answer(text="plain"))
    assert client.chat("q") == "plain"


def test_an_empty_answer_that_finished_normally_is_no_error(client: Client, server: LoopbackServer) -> None:
    message = {"role": "assistant", "content": "", "reasoning_content": THOUGHT}
    server.handler = lambda req, wire: wire.json({"choices": [{"index": 0, "message": message,
                                                               "finish_reason": "stop"}]})
    assert client.chat("x") == ""
    assert client.last is not None and (client.last.finish_reason, client.last.reasoning) == ("stop", THOUGHT)
    server.handler = lambda req, wire: wire.sse([delta({"reasoning_content": THOUGHT}), delta({"content": ""}, "stop"),
                                                 DONE])
    assert list(client.chat("x", stream=True)) == []
    assert client.last is not None and client.last.reasoning == THOUGHT


def test_a_closing_tag_cut_just_before_its_bracket_stays_out_of_the_answer(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([delta({"content": "<think>2+2</think"}), delta({"content": ">4"}),
                                                 delta({}, "stop"), DONE])
    assert list(client.chat("x", stream=True, reasoning=True)) == [("reasoning", "2+2"), ("answer", "4")]
    assert "".join(client.chat("x", stream=True)) == "4"


# name: the content pieces of one inline block and its answer, and the labelled pieces a reader gets
BLOCK_EDGES = {
    "the answer's white space and text come after the closing tag": (
        ["<think>x</think>", "\n\n4", " and", " more"], [("answer", "4"), ("answer", " and"), ("answer", " more")]),
    "the answer starts with the closing tag, the rest comes after": (
        ["<think>x</think>4", " and more"], [("answer", "4"), ("answer", " and more")]),
    "the answer writes the closing tag again": (
        ["<think>x</think>Close it with </think>."], [("answer", "Close it with </think>.")]),
    "a piece that may be the closing tag and is": (["<think>x", "</th", "ink>4"], [("answer", "4")]),
}


@pytest.mark.parametrize("name", list(BLOCK_EDGES))
def test_an_inline_block_ends_at_its_first_closing_tag_and_the_answer_keeps_its_text(
    client: Client, server: LoopbackServer, name: str
) -> None:
    contents, answer = BLOCK_EDGES[name]
    events = [delta({"content": content}) for content in contents]
    server.handler = lambda req, wire: wire.sse([*events, delta({}, "stop"), DONE])
    assert list(client.chat("x", stream=True, reasoning=True)) == [("reasoning", "x"), *answer]
    assert "".join(client.chat("x", stream=True)) == "".join(text for _, text in answer)


def test_a_delta_with_both_reasoning_fields_gives_the_thinking_once(client: Client, server: LoopbackServer) -> None:
    both = {"reasoning_content": "let me see", "reasoning": "let me see"}
    server.handler = lambda req, wire: wire.sse([delta(both), delta({"content": "4"}, "stop"), DONE])
    assert list(client.chat("x", stream=True, reasoning=True)) == [("reasoning", "let me see"), ("answer", "4")]
    assert client.last is not None and client.last.reasoning == "let me see"
    server.handler = lambda req, wire: wire.json({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "4", **both}}]})
    assert client.chat("x") == "4"
    assert client.last is not None and client.last.reasoning == "let me see"


def test_a_completions_think_block_is_kept_as_the_calls_reasoning(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("<think>Count.</think>4", chat=False))
    assert client.complete("2+2=") == "4"
    assert client.last is not None and client.last.reasoning == "Count."
    parts = completion("", chat=False)
    parts["choices"][0]["text"] = [{"type": "text", "text": "<think>Add."}, {"type": "text", "text": None},
                                   {"type": "text", "text": "</think>5"}]
    server.handler = lambda req, wire: wire.json(parts)
    assert client.complete("2+3=") == "5"
    assert client.last is not None and client.last.reasoning == "Add."
