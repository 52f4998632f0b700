"""JSON output: parsing it out of an answer, and the ladder of formats a server may accept.

Servers differ on structured output: most take ``json_schema``, DeepSeek only ``json_object``,
LM Studio only ``json_schema``, llama-cpp-python ``json_object`` with a ``schema`` beside it.
``chat_json()`` starts on the most exact rung and steps down when a server refuses a format.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Callable

from ._error_bodies import validation_problems
from ._errors import APIStatusError, JSONOutputError

if TYPE_CHECKING:
    from ._schema import Schema

logger = logging.getLogger("openai_compat")


def parse_json_output(text: str) -> Any:
    r"""The JSON value in a model's answer, allowing a fenced code block around it.

        >>> parse_json_output('```json\n{"ok": true}\n```')
        {'ok': True}
    """
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[-1] if "\n" in candidate else candidate[3:]
        candidate = candidate.rsplit("```", 1)[0].strip()
    try:
        return json.loads(candidate)
    except ValueError as exc:
        problem = f"the model's answer is not JSON ({exc})"
        raise JSONOutputError(f"{problem}: {text[:200]!r}", text=text, errors=[problem]) from None


def check_not_cut_off(text: str, max_tokens: Any) -> None:
    """Raise when an answer that stopped at ``max_tokens`` is not whole JSON: asking again the
    same way would be cut off again, so this is never retried."""
    try:
        parse_json_output(text)
    except JSONOutputError:
        limit = f" ({max_tokens})" if max_tokens is not None else " (the server's default)"
        problem = (f"the model's answer was cut off at max_tokens{limit} before its JSON ended"
                   " (finish_reason \"length\")")
        raise JSONOutputError(f"{problem}: raise max_tokens, or ask for a smaller object; the text that came is"
                              " in .text", text=text, errors=[problem]) from None


# -- the format ladder ------------------------------------------------------------------------------

#: The rungs, most exact first: a JSON Schema format; json_object with the schema beside it
#: (llama-cpp-python constrains its output with it) and in the system text; plain json_object
#: with the schema in the system text; no format, the instructions in the prompt alone.
RUNGS = ("json_schema", "json_object_with_schema", "json_object", "prompt")
_FORMAT_WORDS = re.compile(r"response_format|response format|json_schema|json_object|json schema|guided", re.I)


def rung_request(rung: str, schema: Schema | None, strict: bool) -> tuple[dict[str, Any] | None, str]:
    """The ``response_format`` for ``rung`` (None: send none) and the instructions to add."""
    if schema is None:
        format_ = {"type": "json_object"} if rung != "prompt" else None
        return format_, "" if rung != "prompt" else "Answer with a JSON value only, no other text."
    text = ("Answer with JSON only, no other text, matching this JSON Schema:\n"
            + json.dumps(schema.schema, separators=(",", ":")))
    if rung == "json_schema":
        described: dict[str, Any] = {"name": schema.name, "schema": schema.schema}
        if strict:
            described["strict"] = True
        return {"type": "json_schema", "json_schema": described}, ""
    if rung == "json_object_with_schema":
        return {"type": "json_object", "schema": schema.schema}, text
    return ({"type": "json_object"} if rung == "json_object" else None), text


def refuses_format(error: Exception) -> bool:
    """Whether ``error`` is a server refusing the response format it was sent (a 400 or 422, or
    a validation error sent as 500, whose message names it)."""
    if not isinstance(error, APIStatusError):
        return False
    if error.status_code not in (400, 422) and not validation_problems(error.body):
        return False
    return bool(_FORMAT_WORDS.search(error.message) or _FORMAT_WORDS.search(json.dumps(error.body, default=str)))


def with_instructions(messages: list[Any], text: str) -> list[Any]:
    """``messages`` with ``text`` added to the system message (a new one first if none)."""
    if not text:
        return messages
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system" and isinstance(
            messages[0].get("content"), str):
        return [dict(messages[0], content=messages[0]["content"] + "\n\n" + text), *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


class Ladder:
    """The rung a client last saw work, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start: dict[bool, int] = {}  # with a schema or without: the rung to start on

    def __getstate__(self) -> dict[bool, int]:
        return dict(self._start)  # a lock does not pickle, and belongs to this process

    def __setstate__(self, state: dict[bool, int]) -> None:
        self._lock = threading.Lock()
        self._start = dict(state)

    def start(self, with_schema: bool) -> int:
        with self._lock:
            return self._start.get(with_schema, 0 if with_schema else RUNGS.index("json_object"))

    def worked(self, with_schema: bool, rung: int) -> None:
        with self._lock:
            self._start[with_schema] = rung


def parse_checked(text: str, schema: Schema | None) -> Any:
    """The JSON value in ``text``, checked against ``schema`` and built into its type; raises
    ``JSONOutputError`` listing what was wrong."""
    value = parse_json_output(text)
    if schema is None:
        return value
    from ._schema import check

    errors = check(value, schema.schema)
    if errors:
        raise JSONOutputError(f"the model's answer does not fit the schema: {'; '.join(errors)[:300]}",
                              text=text, errors=errors)
    return schema.build(value)


def ask_json(
    chat: Callable[..., str], ladder: Ladder, messages: list[Any], schema: Schema | None, retries: int
) -> Any:
    """Ask through ``chat(messages, response_format=...)`` for JSON, stepping down the ladder
    when the server refuses a format; check the answer against ``schema``, asking ``retries``
    more times with the errors shown to the model. Returns the value, built into the
    schema's type."""
    from ._schema import strict_allowed

    with_schema = schema is not None
    rung = ladder.start(with_schema)
    strict = schema is not None and strict_allowed(schema.schema)
    while True:
        format_, instructions = rung_request(RUNGS[rung], schema, strict)
        asked = with_instructions(messages, instructions)
        try:
            text = chat(asked, response_format=format_)
        except APIStatusError as exc:
            if rung + 1 >= len(RUNGS) or not refuses_format(exc):
                raise
            logger.info("the server refused the %s format (%s); trying %s", RUNGS[rung], exc.message, RUNGS[rung + 1])
            rung += 1
            continue
        ladder.worked(with_schema, rung)
        try:
            return parse_checked(text, schema)
        except JSONOutputError as exc:
            if retries <= 0:
                raise
            errors = exc.errors
        retries -= 1
        logger.info("the answer broke the schema (%s); asking once more", "; ".join(errors)[:200])
        messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": (
            "That answer does not fit the JSON Schema: " + "; ".join(errors) + ". Answer again with JSON only.")}]
