"""What chunks mean, function by function: the text of a choice, and merging every field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from openai_compat import APIResponseError, Client, merge_chunks
from openai_compat._answers import first_choice, parse_completion, parse_object, reply_text
from openai_compat._delta import normalize_tool_calls

from .server import LoopbackServer, event


@pytest.mark.parametrize(("choice", "chat", "text"), [
    ({"delta": {"content": "a"}}, True, ["a"]),
    ({"message": {"content": "b"}}, True, ["b"]),
    ({"delta": {"content": [{"type": "text", "text": "c"}, {"type": "image_url"}, {"type": "text", "text": "d"}]}},
     True, ["c", "d"]),
    ({"text": "e"}, True, ["e"]),  # a chat server answering with text (some do)
    ({"text": "f", "delta": {"content": "g"}}, False, ["f"]),  # completions take text, even beside a delta
    ({"delta": {"content": "h"}}, False, ["h"]),  # a completions stream in chat's shape
    ({"delta": {"content": None}}, True, []),
    ({}, False, []),
])
def test_the_text_of_a_streamed_choice(client: Client, server: LoopbackServer, choice: dict[str, Any], chat: bool,
                                       text: list[str]) -> None:
    server.handler = lambda req, wire: wire.sse([event({"choices": [dict(choice, index=0)]}),
                                                 event({"choices": [{"index": 0, "finish_reason": "stop"}]})])
    assert list(client.chat("x", stream=True) if chat else client.complete("x", stream=True)) == text


def test_the_first_choice_is_the_one_with_index_0_else_the_first() -> None:
    assert first_choice({"choices": [{"index": 1, "x": 1}, {"index": 0, "x": 0}]}) == {"index": 0, "x": 0}
    assert first_choice({"choices": [{"x": 2}]}) == {"x": 2}
    assert first_choice({"choices": [{"index": 3}]}) == {"index": 3}
    assert first_choice({"choices": [{"index": 1, "x": 1}, {"x": 0}]}) == {"x": 0}  # no index: it is 0


def test_reply_text_joins_text_parts_and_leaves_other_parts_out() -> None:
    choice = {"message": {"content": [{"type": "text", "text": "one "}, {"type": "image_url", "image_url": {}},
                                      {"type": "text", "text": "two"}]}, "finish_reason": "stop"}
    assert reply_text(choice) == "one two"
    assert reply_text({"text": "plain", "finish_reason": "stop"}, chat=False) == "plain"


def test_merged_thinking_parts_join_their_text_parts_in_order() -> None:
    def part(*texts: str) -> dict[str, Any]:
        return {"type": "thinking", "thinking": [{"type": "text", "text": t} for t in texts]}

    chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"content": [part("a", "b")]}}]},
              {"choices": [{"index": 0, "delta": {"content": [part("c")]}}]},
              {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "x"}, {"type": "image_url"}]}}]},
              {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "y"}]}}]}]
    assert merge_chunks(chunks)["choices"][0]["message"]["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "abc"}]},
        {"type": "text", "text": "x"}, {"type": "image_url"}, {"type": "text", "text": "y"}]
    assert chunks[0]["choices"][0]["delta"]["content"] == [part("a", "b")], "the chunks themselves are not changed"


def test_merged_reasoning_details_continue_by_type_and_index() -> None:
    def detail(**fields: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": {"reasoning_details": [fields]}}]}

    merged = merge_chunks([
        detail(type="reasoning.summary", index=0, summary="Plan: ", format="f1"),
        detail(type="reasoning.summary", index=0, summary="add."),
        detail(type="reasoning.encrypted", index=1, data="AAA"),
        detail(type="reasoning.encrypted", index=1, data="BBB", signature="s1"),
        detail(type="reasoning.text", index=2, text="x", signature="p"),
        detail(type="reasoning.text", index=2, text="y", signature="q"),
    ])
    assert merged["choices"][0]["message"]["reasoning_details"] == [
        {"type": "reasoning.summary", "index": 0, "summary": "Plan: add.", "format": "f1"},
        {"type": "reasoning.encrypted", "index": 1, "data": "AAABBB", "signature": "s1"},
        {"type": "reasoning.text", "index": 2, "text": "xy", "signature": "pq"},
    ]


def test_a_tool_call_takes_its_type_and_is_routed_by_index() -> None:
    def frag(**call: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}

    merged = merge_chunks([
        frag(index=0, id="a", function={"name": "f", "arguments": "{"}),
        frag(index=1, id="b", type="custom", function={"name": "g", "arguments": "["}),
        frag(index=0, function={"arguments": "}"}),
        frag(index=1, function={"arguments": "]"}),
    ])
    calls = merged["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["arguments"]) for c in calls] == [("a", "function", "{}"),
                                                                                   ("b", "custom", "[]")]


def test_merge_keeps_each_choice_its_own_and_orders_them() -> None:
    merged = merge_chunks([
        {"id": "x", "choices": [{"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A"}}]},
        {"choices": [{"index": 1, "delta": {}, "finish_reason": "length", "logprobs": {"content": []}}]},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}], "model": "m"},
    ])
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in merged["choices"]] == [
        (0, "Aa", "stop"), (1, "B", "length")]
    assert merged["choices"][1]["logprobs"] == {"content": []}
    assert (merged["id"], merged["model"], merged["object"]) == ("x", "m", "chat.completion")


def test_merge_builds_the_whole_answer_and_leaves_the_chunks_untouched() -> None:
    call = {"index": 0, "id": "t1", "type": "function", "function": {"name": "now", "arguments": ""}}
    chunks: list[dict[str, Any]] = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "system_fingerprint": None,
         "choices": [{"index": 1, "delta": {"content": "B"}},  # no role: the message still has one
                     {"index": 0, "delta": {"role": "assistant", "content": "A", "refusal": None, "custom": 1}}]},
        {"id": "c2", "model": "other",
         "choices": ["junk", {"index": 0, "delta": {"content": "a", "custom": 2}, "logprobs": {"content": []}}]},
        {"choices": [{"delta": {"content": "!"}}]},  # no index: the first choice
        {"choices": [{"index": 1, "text": "B repeated as text"}]},  # beside chat deltas, not the answer
        {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "id": "phantom", "function": {}}]}}]},
        {"choices": [{"index": 1, "delta": {}, "finish_reason": "length"},
                     {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]},
        {"choices": [{"index": "b", "finish_reason": "stop"}, {"index": "a", "finish_reason": "stop"},
                     {"index": 2, "finish_reason": "stop"}]},  # no delta at all, odd indexes
        {"choices": [], "usage": {"total_tokens": 3}},
        {"choices": [], "usage": None},
    ]
    before = copy.deepcopy(chunks)
    empty = {"role": "assistant", "content": None}
    assert merge_chunks(chunks) == {
        "id": "c1", "created": 1, "model": "m", "usage": {"total_tokens": 3}, "object": "chat.completion",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "logprobs": {"content": []}, "message": {
                "role": "assistant", "content": "Aa!", "custom": 1,
                "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "now", "arguments": ""}}]}},
            {"index": 1, "finish_reason": "length", "message": {"role": "assistant", "content": "B"}},
            {"index": 2, "finish_reason": "stop", "message": empty},
            {"index": "a", "finish_reason": "stop", "message": empty},
            {"index": "b", "finish_reason": "stop", "message": empty},
        ],
    }
    assert chunks == before


def test_merge_of_completion_chunks_gives_every_choice_its_text() -> None:
    merged = merge_chunks([
        {"id": "k", "object": "text_completion", "choices": [{"index": 0, "text": "Once"}]},
        {"choices": [{"index": 0, "text": " upon"}, {"index": 1, "finish_reason": "length"}]},
        {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
    ])
    assert merged == {"id": "k", "object": "text_completion", "choices": [
        {"index": 0, "finish_reason": "stop", "text": "Once upon"},
        {"index": 1, "finish_reason": "length", "text": ""},
    ]}


def test_merge_joins_text_parts_from_an_empty_start_and_details_gain_new_fields() -> None:
    details = [{"type": "reasoning.text", "index": 0, "text": "Thi"}]
    merged = merge_chunks([
        {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": ""}], "reasoning_details": details}}]},
        {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "3"}], "reasoning_details": [
            {"type": "reasoning.text", "index": 0, "text": "nk", "format": "unknown"}]}}]},
    ])
    message = merged["choices"][0]["message"]
    assert message["content"] == [{"type": "text", "text": "3"}]
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "index": 0, "text": "Think", "format": "unknown"}]
    assert details == [{"type": "reasoning.text", "index": 0, "text": "Thi"}], "the chunk's own item is not changed"


def test_tool_call_fragments_without_id_or_index_continue_the_last_call() -> None:
    # Gemini's compat endpoint sends neither; llama-cpp-python repeats the name in every fragment.
    merged = merge_chunks([
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"name": "add", "arguments": '{"a": '}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"name": "add", "arguments": "1}"}}]}}]},
    ])
    assert merged["choices"][0]["message"]["tool_calls"] == [
        {"id": None, "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]


def test_an_empty_id_name_or_type_in_a_later_fragment_means_not_given() -> None:
    # vLLM and Alibaba's qwen3-max: the first fragment carries the id and name, the rest "".
    merged = merge_chunks([
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                             "function": {"name": "weather", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "", "type": "",
                                                             "function": {"name": "", "arguments": '{"city": '}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "", "type": "function",
                                                             "function": {"arguments": '"Oslo"}'}}]}}]},
    ])
    assert merged["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]


# -- parse_object: a 2xx body that is not the answer ---------------------------------------------

PAGE = "<html><body>" + "maintenance, back soon " * 200 + "</body></html>"  # 4,627 characters


@pytest.mark.parametrize("raw, message, body", [
    pytest.param(PAGE.encode(), f"the response is not JSON: {PAGE[:199] + '…'!r}", PAGE[:1999] + "…", id="a-page"),
    pytest.param(b'{"a": "\xff"}', """the response is not valid UTF-8: '{"a": "\ufffd"}'""", '{"a": "\ufffd"}',
                 id="not-utf-8"),
    pytest.param(b"[1, 2]", "the response is JSON but not an object", [1, 2], id="a-list"),
    pytest.param(b'{"error": {"message": "overloaded", "code": "busy"}, "choices": []}', "overloaded",
                 {"error": {"message": "overloaded", "code": "busy"}, "choices": []}, id="an-error-object"),
    pytest.param(b'{"detail": "Not authenticated"}', "Not authenticated", {"detail": "Not authenticated"},
                 id="a-fastapi-detail"),
])
def test_a_body_that_is_not_an_answer_raises_with_what_it_was(raw: bytes, message: str, body: Any) -> None:
    with pytest.raises(APIResponseError) as caught:
        parse_object(raw, "req-1")
    assert (caught.value.message, caught.value.body, caught.value.request_id) == (message, body, "req-1")


def test_an_error_objects_code_is_kept() -> None:
    with pytest.raises(APIResponseError) as caught:
        parse_object(b'{"error": {"message": "overloaded", "code": "busy"}}', None)
    assert caught.value.code == "busy"


@pytest.mark.parametrize("body", [
    {"object": "list", "data": [{"id": "m"}], "detail": "from cache"},  # a listing with a remark
    {"choices": [{"index": 0, "text": "ok"}], "detail": "served by replica 2"},
    {"id": "x", "status": "completed"},
])
def test_an_answer_with_a_remark_beside_its_data_is_returned_as_it_is(body: dict[str, Any]) -> None:
    assert parse_object(json.dumps(body).encode(), None) == body


def test_choices_are_merged_in_the_order_of_their_numbers() -> None:
    order = [11, 2, 0, 10, 1]
    chunks = [{"choices": [{"index": i, "delta": {"content": str(i)}, "finish_reason": "stop"}]} for i in order]
    assert [c["index"] for c in merge_chunks(chunks)["choices"]] == [0, 1, 2, 10, 11]


def test_values_of_an_unexpected_shape_are_kept_as_they_came() -> None:
    delta = {"role": "model", "tool_calls": 7, "reasoning_content": 5, "reasoning_details": "opaque",
             "content": ["junk", {"type": "text", "text": "a"}]}
    message = merge_chunks([{"choices": [{"index": 0, "delta": delta, "finish_reason": "stop"}]}])["choices"][0][
        "message"]
    assert message == {"role": "model", "content": [{"type": "text", "text": "a"}], "reasoning_content": 5,
                       "reasoning_details": "opaque"}
    details = [{"type": "reasoning.text", "text": "a", "index": 0}, "raw"]
    merged = merge_chunks([{"choices": [{"index": 0, "delta": {"reasoning_details": details}}]}])
    assert merged["choices"][0]["message"]["reasoning_details"] == details


@pytest.mark.parametrize("body, message", [
    ({"id": "x"}, "the response has no choices"),
    ({"choices": []}, "the response has no choices"),
    ({"choices": [{"index": 0, "text": "a"}, "b"]}, "the response has a choice that is not an object"),
])
def test_an_answer_without_proper_choices_raises(body: dict[str, Any], message: str) -> None:
    with pytest.raises(APIResponseError) as caught:
        parse_completion(json.dumps(body).encode(), "req-2")
    assert (caught.value.message, caught.value.body, caught.value.request_id) == (message, body, "req-2")


def test_tool_call_arguments_become_a_json_string_and_other_shapes_stay() -> None:
    message = {"role": "assistant", "tool_calls": [
        "junk", {"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}, {"id": "c2", "function": None}]}
    assert normalize_tool_calls(message)["tool_calls"] == [
        "junk", {"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}, {"id": "c2", "function": None}]
