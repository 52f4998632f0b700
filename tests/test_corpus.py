"""Every answer in ``../shared/corpus/cases.jsonl``, served as it was recorded, read as a correct
client reads it (the case's ``expect``).

The corpus holds other projects' recordings of real providers; it stays where it is and the
test skips where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import openai_compat
from openai_compat import Client, UnhandledToolCallsError

from .server import LoopbackServer, Request, Wire

CASES_FILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text().splitlines()] if CASES_FILE.exists() else []
_DROPPED_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}

pytestmark = pytest.mark.skipif(not CASES, reason=f"the recorded answers are not here: {CASES_FILE} is absent")


def _serve(server: LoopbackServer, case: dict[str, Any]) -> None:
    headers = {k: v for k, v in (case.get("headers") or {}).items() if k.lower() not in _DROPPED_HEADERS}

    def answer(request: Request, wire: Wire) -> None:
        wire.keep_alive = False
        wire.body(case["body"].encode(), case["status"], {**headers, "Connection": "close"})

    server.handler = answer


def _call(client: Client, case: dict[str, Any], seen: list[str]) -> Any:
    """Make the call the case records and return what it gives back; stream pieces land in ``seen``."""
    request = dict(case.get("request") or {})
    expect = case["expect"]
    stream = bool(request.pop("stream", False))
    request.pop("model", None)
    if case["endpoint"] == "embeddings":
        return client.embed(request.pop("input"), **request)
    if case["endpoint"] == "completions":
        prompt = request.pop("prompt")
        if stream:
            seen.extend(client.complete(prompt, stream=True, **request))
            return "".join(seen)
        return client.complete(prompt, **request)
    messages = request.pop("messages", None) or [{"role": "user", "content": "Hi"}]
    keep_think = expect.get("text", "").lstrip().startswith("<think>")
    if stream:
        for kind, piece in client.chat(messages, stream=True, reasoning=True, keep_think=keep_think, **request):
            if kind == "answer":
                seen.append(piece)
        return "".join(seen)
    return client.chat(messages, keep_think=keep_think, **request)


def _check_error(expected: dict[str, Any], exc: BaseException) -> None:
    assert isinstance(exc, getattr(openai_compat, expected["error"])), repr(exc)
    if "status_code" in expected:
        assert getattr(exc, "status_code", None) == expected["status_code"]
    if "message_contains" in expected:
        assert expected["message_contains"] in str(exc)


def _calls_of(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": call["function"]["name"], "arguments": call["function"].get("arguments")} for call in tool_calls]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_a_recorded_answer_reads_as_expected(server: LoopbackServer, case: dict[str, Any]) -> None:
    _serve(server, case)
    expect = case["expect"]
    seen: list[str] = []
    with Client(server.url, model=(case.get("request") or {}).get("model", "m"), max_retries=0) as client:
        if "error" in expect:
            with pytest.raises(openai_compat.OpenAICompatError) as info:
                _call(client, case, seen)
            _check_error(expect, info.value)
            return
        failure = expect.get("stream_error") or expect.get("truncated")
        tool_calls: list[dict[str, Any]] = []
        try:
            got = _call(client, case, seen)
        except UnhandledToolCallsError as exc:
            assert "tool_calls" in expect, repr(exc)
            got = exc.assistant_message.get("content") or "".join(seen)
            tool_calls = exc.tool_calls
        except openai_compat.OpenAICompatError as exc:
            assert failure, repr(exc)
            _check_error(failure, exc)
            got = "".join(seen)
        else:
            assert not failure, f"expected {failure}"
        record = client.last
    if case["endpoint"] == "embeddings":
        assert len(got) == expect["embedding_count"]
        assert all(len(vector) == expect["dims"] for vector in got)
        return
    if "text" in expect:
        assert got == expect["text"]
    if "tool_calls" in expect:
        wanted = expect["tool_calls"]
        assert [c["name"] for c in _calls_of(tool_calls)] == [c["name"] for c in wanted]
        for call, want in zip(_calls_of(tool_calls), wanted):
            if want["arguments"] is None:
                assert call["arguments"] in (None, "", "{}")
            else:
                assert json.loads(call["arguments"]) == json.loads(want["arguments"])
    assert record is not None
    if "finish_reason" in expect:
        assert record.finish_reason == expect["finish_reason"]
    if "reasoning" in expect:
        assert record.reasoning == expect["reasoning"]
    if "usage" in expect:
        assert {name: getattr(record.usage, name) for name in expect["usage"]} == expect["usage"]
