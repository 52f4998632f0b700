"""What chunks mean, function by function: the text of a choice, and merging every field."""

from __future__ import annotations

from typing import Any

import pytest

from openai_compat import merge_chunks
from openai_compat._chunks import choice_text, first_choice, reply_text


@pytest.mark.parametrize(("choice", "chat", "text"), [
    ({"delta": {"content": "a"}}, True, "a"),
    ({"message": {"content": "b"}}, True, "b"),
    ({"delta": {"content": [{"type": "text", "text": "c"}, {"type": "image_url"}, {"type": "text", "text": "d"}]}},
     True, "cd"),
    ({"text": "e"}, True, "e"),  # a chat server answering with text (some do)
    ({"text": "f", "delta": {"content": "g"}}, False, "f"),  # completions take text, even beside a delta
    ({"delta": {"content": "h"}}, False, "h"),  # a completions stream in chat's shape
    ({"delta": {"content": None}}, True, None),
    ({}, False, None),
])
def test_the_text_of_a_choice(choice: dict[str, Any], chat: bool, text: Any) -> None:
    assert choice_text(choice, chat) == text


def test_the_first_choice_is_the_one_with_index_0() -> None:
    assert first_choice({"choices": [{"index": 1, "x": 1}, {"index": 0, "x": 0}]}) == {"index": 0, "x": 0}
    assert first_choice({"choices": [{"x": 2}]}) == {"x": 2}
    assert first_choice({"choices": [{"index": 3}]}) is None
    assert first_choice({}) is None


def test_reply_text_joins_text_parts_and_leaves_other_parts_out() -> None:
    choice = {"message": {"content": [{"type": "text", "text": "one "}, {"type": "image_url", "image_url": {}},
                                      {"type": "text", "text": "two"}]}, "finish_reason": "stop"}
    assert reply_text(choice) == "one two"
    assert reply_text({"text": "plain", "finish_reason": "stop"}, chat=False) == "plain"


def test_merged_thinking_parts_join_their_text_parts_in_order() -> None:
    def part(*texts: str) -> dict[str, Any]:
        return {"type": "thinking", "thinking": [{"type": "text", "text": t} for t in texts]}

    chunks = [{"choices": [{"index": 0, "delta": {"content": [part("a", "b")]}}]},
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
