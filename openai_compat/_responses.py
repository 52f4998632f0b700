"""The Responses API (``/responses``): its named-event streams, its output text, its endings.

A stream is a sequence of named events (``response.created``, ``response.output_text.delta``,
..., ``response.completed``), each a JSON object with its ``type``. It ends on
``response.completed``, ``response.incomplete``, ``response.failed`` or ``error``; ``[DONE]``
is optional. Anything else before the body ends means the stream was cut off.
"""

from __future__ import annotations

import json
from http.client import HTTPException
from typing import Any, Callable, Generator, Iterator

import requests
import sseclient
from urllib3.exceptions import HTTPError

from ._body_reader import BodyReader
from ._errors import APIConnectionError, APIResponseError, UnhandledToolCallsError, error_fields, shorten
from ._sse import event_lines

#: Events that end a response stream.
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
TEXT_DELTA = "response.output_text.delta"
REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


class ResponseStream:
    """The parsed events of one streamed response, as an iterator that owns the connection.

    Every event is a dict with its ``type``. After the last one, ``final`` holds the response
    object the terminal event carried. A failed or incomplete response, or an ``error`` event,
    raises ``APIResponseError`` once its event has been yielded.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        deadline_at: float | None = None,
        request_id: str | None = None,
        on_end: Callable[[ResponseStream], None] | None = None,
    ) -> None:
        self.response = response
        self.request_id = request_id
        self.final: dict[str, Any] | None = None
        self.complete = False
        self.record: Any = None
        self._on_end = on_end
        self._body = BodyReader(response, deadline_at=deadline_at, request_id=request_id)
        self._events: Generator[dict[str, Any], None, None] = self._generate()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._events

    def __next__(self) -> dict[str, Any]:
        return next(self._events)

    def close(self) -> None:
        """Stop reading and close the connection."""
        self._events.close()

    def _generate(self) -> Generator[dict[str, Any], None, None]:
        ending = None
        try:
            try:
                for event in sseclient.SSEClient(event_lines(self._body.read)).events():
                    if event.data.strip() == "[DONE]":
                        break
                    parsed = self._parse(event.data, event.event)
                    yield parsed
                    if parsed["type"] in TERMINAL:
                        ending = parsed
                        break
            except UnicodeDecodeError as exc:
                raise APIResponseError(f"the stream is not valid UTF-8: {exc}", request_id=self.request_id) from None
            except (OSError, HTTPError, HTTPException, requests.RequestException) as exc:
                raise APIConnectionError(f"the connection broke during the stream: {exc}") from exc
            if ending is None:
                raise APIConnectionError("the stream ended before response.completed (or another ending): the"
                                         " connection was closed early and the response is incomplete")
            self._body.drain()
            final = ending.get("response")
            self.final = final if isinstance(final, dict) else None
            self.complete = True
            raise_for_status(ending if ending["type"] == "error" else self.final or {}, self.request_id)
        finally:
            self._body.close()
            if self._on_end is not None:
                self._on_end(self)

    def _parse(self, data: str, name: str) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except ValueError:
            raise APIResponseError(f"the stream sent data that is not JSON: {shorten(data, 200)!r}",
                                   body=shorten(data, 2000), request_id=self.request_id) from None
        if not isinstance(parsed, dict):
            raise APIResponseError(f"the stream sent JSON that is not an object: {shorten(data, 200)!r}",
                                   request_id=self.request_id)
        parsed.setdefault("type", name if name != "message" else "")
        return parsed


def raise_for_status(response: dict[str, Any], request_id: str | None) -> None:
    """Raise for a failed or incomplete response, or an error event, with the server's words."""
    status = response.get("status")
    if response.get("type") == "error" or status == "failed":
        message, code = error_fields(response)
        if message is None:
            message, code = response.get("message"), response.get("code")
        raise APIResponseError(shorten(str(message or "the response failed")), body=response,
                               request_id=request_id, code=None if code is None else str(code))
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


def raise_for_calls(calls: list[dict[str, Any]]) -> None:
    """Function calls cannot travel as text: never drop them silently."""
    if calls:
        raise UnhandledToolCallsError.from_message({"role": "assistant", "content": None, "tool_calls": calls})


def iter_response_text(events: ResponseStream, *, labelled: bool = False) -> Iterator[Any]:
    """The output text pieces of a response stream as they arrive (with ``labelled``,
    ``("answer", piece)`` and ``("reasoning", piece)``); function calls raise at the end."""
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    try:
        for event in events:
            kind = event["type"]
            delta = event.get("delta")
            if kind == TEXT_DELTA and isinstance(delta, str) and delta:
                yield ("answer", delta) if labelled else delta
            elif kind in REASONING_DELTAS and isinstance(delta, str) and delta:
                reasoning.append(delta)
                if labelled:
                    yield "reasoning", delta
            elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
                calls += function_calls({"output": [event["item"]]})
    finally:
        events.close()
        if events.record is not None:
            events.record.reasoning = "".join(reasoning)
    raise_for_calls(calls)
