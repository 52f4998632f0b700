"""The Responses API (``/responses``): its named-event streams, its output text, its endings.

A stream is a sequence of named events (``response.created``, ``response.output_text.delta``,
..., ``response.completed``), each a JSON object with its ``type``. It ends on
``response.completed``, ``response.incomplete``, ``response.failed`` or ``error``; ``[DONE]``
is optional. Anything else before the body ends means the stream was cut off.
"""

from __future__ import annotations

from typing import Any, Dict

from ._call_record import CallSummary, summary_of
from ._error_bodies import error_fields, shorten
from ._errors import APIResponseError, RefusalError, UnhandledToolCallsError
from ._sse import EventStream

#: Events that end a response stream.
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
TEXT_DELTA = "response.output_text.delta"
REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
REFUSAL_DELTA = "response.refusal.delta"


class ResponseStream(EventStream[Dict[str, Any]]):
    """The parsed events of one streamed response, as an iterator that owns the connection.

    Every event is a dict with its ``type``. After the last one, ``final`` holds the response
    object the terminal event carried. A failed or incomplete response, or an ``error`` event,
    raises ``APIResponseError`` once its event has been yielded.

        >>> from openai_compat import ResponseStream
        >>> ResponseStream.ENDING
        'response.completed (or another ending)'
    """

    ENDING = "response.completed (or another ending)"

    def __init__(self, response: Any, **options: Any) -> None:
        self.final: dict[str, Any] | None = None
        self._ending: dict[str, Any] | None = None
        super().__init__(response, **options)

    def _item(self, data: str, name: str) -> dict[str, Any] | None:
        if data.strip() == "[DONE]":
            return None
        event = self._json(data)
        kind = event.setdefault("type", name if name != "message" else "")
        delta = event.get("delta")
        if kind == TEXT_DELTA and isinstance(delta, str):
            self._pieces = self.answer.add("answer", delta)
        elif kind in REASONING_DELTAS and isinstance(delta, str):
            self._pieces = self.answer.add("reasoning", delta)
        elif kind == REFUSAL_DELTA and isinstance(delta, str):
            self.answer.add("refusal", delta)
        elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            for call in function_calls({"output": [event["item"]]}):
                self.answer.add_call(call)
        elif kind in TERMINAL:
            self._ending = event
            self._last = True
        return event

    def _end(self) -> None:
        if self._ending is None:
            raise self._cut_off()  # [DONE] came, but no ending before it
        final = self._ending.get("response")
        self.final = final if isinstance(final, dict) else None
        super()._end()

    def _after_end(self) -> None:
        ending = self._ending or {}
        raise_for_status(ending if ending.get("type") == "error" else self.final or {}, self.request_id)

    def _summary(self) -> CallSummary:
        summary = summary_of(self.final or {}, self.answer.reasoning)
        summary.complete = self.complete
        return summary


def raise_for_status(response: dict[str, Any], request_id: str | None) -> None:
    """Raise for a failed or incomplete response, or an error event, with the server's words."""
    status = response.get("status")
    if response.get("type") == "error" or status == "failed":
        message, code = error_fields(response)
        if message is None:
            message, code = response.get("message"), response.get("code")
        raise APIResponseError(shorten(str(message or "the response failed")), body=response,
                               request_id=request_id, code=None if code is None else str(code))
    if status in ("queued", "in_progress"):
        raise APIResponseError(f"the response is {status}, not finished: it runs in the background; fetch it later"
                               f" with client.get_json('/responses/{response.get('id')}')", body=response,
                               request_id=request_id, code=status)
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        raise APIResponseError(f"the response is incomplete ({reason or 'no reason given'}): what came is in"
                               " .body", body=response, request_id=request_id, code=reason)


def output_text(response: dict[str, Any]) -> str:
    """The text of a whole response's output messages (``output_text`` parts), in order."""
    parts = [part for item in _items(response, "message") for part in item.get("content") or ()]
    return "".join(p.get("text") or "" for p in parts if isinstance(p, dict) and p.get("type") == "output_text")


def output_reasoning(response: dict[str, Any]) -> str:
    """The reasoning of a whole response: its summaries, or its reasoning text."""
    texts = []
    for item in _items(response, "reasoning"):
        for key in ("summary", "content"):
            texts += [p.get("text") or "" for p in item.get(key) or () if isinstance(p, dict)]
    return "".join(texts)


def function_calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The function calls of a response, in chat's tool-call shape."""
    return [{"id": item.get("call_id") or item.get("id"), "type": "function",
             "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}}
            for item in _items(response, "function_call")]


def _items(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in response.get("output") or () if isinstance(i, dict) and i.get("type") == kind]


def response_text(response: dict[str, Any], request_id: str | None) -> str:
    """The output text of a whole response; a failed or incomplete one raises, and function
    calls raise ``UnhandledToolCallsError`` (a ``str`` cannot carry them)."""
    raise_for_status(response, request_id)
    refusal = "".join(part.get("refusal") or "" for item in _items(response, "message")
                      for part in item.get("content") or () if isinstance(part, dict) and part.get("type") == "refusal")
    if refusal:
        raise RefusalError(f"the model refused: {shorten(refusal)}", refusal=refusal, text=output_text(response),
                           request_id=request_id)
    calls = function_calls(response)
    if calls:
        raise UnhandledToolCallsError.from_message({"role": "assistant", "content": None, "tool_calls": calls})
    return output_text(response)
