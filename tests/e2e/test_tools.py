"""The tool loop against a real server that parses tool calls: llama-cpp-python with its
``chatml-function-calling`` format, whose grammar makes even the tiny random model write a
valid call when one is forced."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from openai_compat import LlamaCppClient, ToolLoopError

from .llama_server import LlamaServer


@pytest.fixture(scope="module")
def tool_server() -> Iterator[LlamaServer]:
    with LlamaServer(extra_args=["--chat_format", "chatml-function-calling"]) as server:
        yield server


def add(a: int, b: int) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def test_a_forced_call_runs_and_the_server_takes_the_round_trip_back(tool_server: LlamaServer) -> None:
    seen: list[tuple[str, Any, str]] = []
    client = LlamaCppClient(tool_server.base_url, model="tiny", timeout=(5, 120), max_retries=0)
    choice = {"type": "function", "function": {"name": "add"}}
    try:
        answer: Any = client.run_tools("What is 2 + 3?", tools=[add], tool_choice=choice, max_turns=2,
                                       max_tokens=40, on_tool=lambda *call: seen.append(call))
        conversation = None
    except ToolLoopError as exc:  # the random model called again on its second turn: also a round trip
        answer, conversation = None, exc.messages
    name, arguments, result = seen[0]
    assert name == "add" and set(arguments) == {"a", "b"}
    assert result == str(arguments["a"] + arguments["b"]) or result.startswith("Error: the arguments do not fit")
    assert answer is None or isinstance(answer, str)
    if conversation is not None:
        assert [m["role"] for m in conversation[:3]] == ["user", "assistant", "tool"]
    # The second request (the assistant message with content "" and the tool's result) was
    # taken: before, llama-cpp-python refused it with HTTP 500 and 7 validation errors.
    assert client.usage.calls == 2
