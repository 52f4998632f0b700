"""The tool loop against a real server that parses tool calls: llama-cpp-python with its
``chatml-function-calling`` format, whose grammar makes even the tiny random model write a
valid call when one is forced."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from openai_compat import LlamaCppClient

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


def test_one_whole_loop_a_forced_call_with_valid_arguments_then_a_text_answer(tool_server: LlamaServer) -> None:
    seen: list[tuple[str, Any, str]] = []
    client = LlamaCppClient(tool_server.base_url, model="tiny", timeout=(5, 120), max_retries=0)
    choice = {"type": "function", "function": {"name": "add"}}
    # Greedy, so the tiny random model answers the same way every run; the server's grammar
    # for a named tool_choice makes its call fit the schema.
    answer = client.run_tools("What is 2 + 3?", tools=[add], tool_choice=choice, max_turns=2, max_tokens=40,
                              temperature=0, seed=1, on_tool=lambda *call: seen.append(call))
    [(name, arguments, result)] = seen
    assert name == "add" and set(arguments) == {"a", "b"} and all(isinstance(v, int) for v in arguments.values())
    assert result == str(arguments["a"] + arguments["b"])
    assert isinstance(answer, str)
    # The second request (the assistant message with content "" and the tool's result) was
    # taken: before, llama-cpp-python refused it with HTTP 500 and 7 validation errors.
    assert client.usage.calls == 2
