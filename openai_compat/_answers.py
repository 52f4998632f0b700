"""Whole answers: the JSON object in a 2xx body, and the text of a blocking chat or completion.

Every JSON answer (chat, completions, Responses, ``/models``, ``/files``, ``/batches``) is
read by ``parse_object()``; those with choices by ``parse_completion()``. Nothing here reads
the network: these functions take bytes already read, or answers already parsed.
"""

from __future__ import annotations

import json
from typing import Any, Dict

from ._delta import Answer, content_text, normalize_tool_calls, plain_text
from ._error_bodies import error_fields, shorten
from ._errors import APIResponseError, UnhandledToolCallsError

Chunk = Dict[str, Any]


def parse_object(raw: bytes, request_id: str | None) -> Chunk:
    """The JSON object in a 2xx body, checked to carry no error object."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        what = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "not JSON"
        raise APIResponseError(
            f"the response is {what}: {shorten(raw[:400].decode('utf-8', 'replace'), 200)!r}",
            body=shorten(raw[:4000].decode("utf-8", "replace"), 2000),
            request_id=request_id,
        ) from None
    if not isinstance(body, dict):
        raise APIResponseError("the response is JSON but not an object", body=body, request_id=request_id)
    if "error" not in body and body.get("choices"):
        return body  # the usual answer: nothing below could raise
    message, code = error_fields(body)
    if message is not None and (body.get("error") or (not body.get("choices") and not body.get("data"))):
        raise APIResponseError(shorten(message), body=body, request_id=request_id, code=code)
    return body


def parse_completion(raw: bytes, request_id: str | None) -> Chunk:
    """The JSON object in a 2xx body, checked to carry no error and choices that are objects."""
    body = parse_object(raw, request_id)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise APIResponseError("the response has no choices", body=body, request_id=request_id)
    if not all(isinstance(choice, dict) for choice in choices):
        raise APIResponseError("the response has a choice that is not an object", body=body, request_id=request_id)
    return body


def first_choice(answer: Chunk) -> dict[str, Any]:
    """The choice with index 0 (or without an index), else the first one."""
    choices = answer["choices"]
    return next((c for c in choices if c.get("index", 0) == 0), choices[0])


def reply_text(choice: dict[str, Any], *, chat: bool = True, keep_think: bool = False, usage: Any = None,
               request_id: str | None = None) -> str:
    """The answer in a whole response's ``choice``, without its reasoning (unless ``keep_think``
    for an inline ``<think>`` block). Tool calls raise, since a str cannot carry them; so do a
    refusal, a content filter's stop and an empty answer after the model spent ``max_tokens``
    thinking, with the answer's ``request_id``."""
    message = choice.get("message")
    answer = Answer(keep_think=keep_think)
    answer.finish_reason = choice.get("finish_reason")
    if chat and isinstance(message, dict):
        if message.get("tool_calls"):
            raise UnhandledToolCallsError.from_message(normalize_tool_calls(message))
        plain = plain_text(message, keep_think)
        if plain and not message.get("refusal") and answer.finish_reason != "content_filter":
            return plain  # the usual answer: plain text, no thinking anywhere
        pieces = answer.feed(message)
    else:
        pieces = answer.feed_text(content_text(choice.get("text")) or "")
    pieces += answer.end()
    text = "".join(piece for kind, piece in pieces if kind == "answer")
    answer.check(usage, text, request_id)
    return text


def reasoning_of(choice: dict[str, Any]) -> str:
    """The thinking in a whole response's ``choice``, whichever form the server used."""
    message = choice.get("message")
    answer = Answer()
    if isinstance(message, dict):
        answer.feed(message)
    else:
        answer.feed_text(content_text(choice.get("text")) or "")
    answer.end()
    return answer.reasoning
