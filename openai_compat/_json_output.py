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
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable

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
    try:
        return json.loads(_inside_fence(text.strip()).strip())
    except ValueError as exc:
        problem = f"the model's answer is not JSON ({exc})"
        raise JSONOutputError(f"{problem}: {text[:200]!r}", text=text, errors=[problem]) from None


def _inside_fence(text: str) -> str:
    """``text`` without a code fence around it. The fence closes at the first line that starts
    with ```` ``` ````, which no JSON text holds (a JSON string writes a newline as ``\\n``), or at
    a ```` ``` ```` that ends the text; what follows is the model's own words."""
    opened = text.lstrip()
    if not opened.startswith("```"):
        return text
    inside = re.split(r"\n[ \t]*```", opened.split("\n", 1)[1], maxsplit=1)[0] if "\n" in opened else opened[3:]
    inside = inside.rstrip()
    return inside[:-3] if inside.endswith("```") else inside


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


def refuses_format(error: APIStatusError) -> bool:
    """Whether ``error`` is a server refusing the response format it was sent (a 400 or 422, or
    a validation error sent as 500, whose message names it)."""
    if error.status_code not in (400, 422) and not validation_problems(error.body):
        return False
    return bool(_FORMAT_WORDS.search(error.message) or _FORMAT_WORDS.search(json.dumps(error.body, default=str)))


def refuses_tools(error: APIStatusError) -> bool:
    """Whether ``error`` is a server refusing tools or a forced ``tool_choice``."""
    words = f"{error.message} {error.body!r}"
    return error.status_code in (400, 422) and bool(re.search(r"tool|function", words, re.I))


def tool_request(schema: Schema) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The one tool whose parameters are ``schema``, and the ``tool_choice`` that forces it."""
    tool = {"type": "function", "function": {"name": schema.name, "parameters": schema.schema,
                                             "description": "Give the answer as this function's arguments."}}
    return [tool], {"type": "function", "function": {"name": schema.name}}


def _is_json(text: str) -> bool:
    try:
        parse_json_output(text)
    except JSONOutputError:
        return False
    return True


def with_instructions(messages: list[Any], text: str) -> list[Any]:
    """``messages`` with ``text`` added to the system message (a new one first if none)."""
    if not text:
        return messages
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system" and isinstance(
            messages[0].get("content"), str):
        return [dict(messages[0], content=messages[0]["content"] + "\n\n" + text), *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


class Ladder:
    """The rung a client last saw work, shared by its threads; ``tool`` says whether a forced
    function call gave the JSON that a format did not (a server that ignores formats)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start: dict[bool, int] = {}  # with a schema or without: the rung to start on
        self.tool = False

    def __getstate__(self) -> tuple[dict[bool, int], bool]:
        return dict(self._start), self.tool  # a lock does not pickle, and belongs to this process

    def __setstate__(self, state: tuple[dict[bool, int], bool]) -> None:
        self._lock = threading.Lock()
        self._start, self.tool = dict(state[0]), state[1]

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


def partial_json(text: str) -> Any:
    r"""The JSON value in the beginning of an answer, its open strings and brackets closed, or
    None while it does not parse yet.

        >>> partial_json('```json\n{"name": "Os'), partial_json('{"name": "Oslo", "pop')
        ({'name': 'Os'}, None)
    """
    from ._tool_calls import closers

    candidate = _inside_fence(text).rstrip()
    candidate = candidate[:-1] if candidate.endswith(",") else candidate
    if not candidate:
        return None
    try:
        return json.loads(candidate + closers(candidate))
    except ValueError:
        return None


def stream_json(chat: Callable[..., Any], ladder: Ladder, messages: list[Any],
                schema: Schema | None) -> Generator[Any, None, None]:
    """The partial values of a streamed JSON answer as it grows (each a valid parse of the text
    so far), then the whole value, checked and built into the schema's type. The request is
    sent now (the ladder stepped down on a refusal, as for a blocking call); the values come
    as the generator is read."""
    from ._schema import strict_allowed

    rung = ladder.start(schema is not None)
    strict = schema is not None and strict_allowed(schema.schema)
    while True:
        format_, instructions = rung_request(RUNGS[rung], schema, strict)
        try:
            pieces = chat(with_instructions(messages, instructions), response_format=format_, stream=True)
        except APIStatusError as exc:
            if rung + 1 >= len(RUNGS) or not refuses_format(exc):
                raise
            rung += 1
            continue
        ladder.worked(schema is not None, rung)
        return _growing_values(pieces, schema)


def _growing_values(pieces: Iterable[str], schema: Schema | None) -> Generator[Any, None, None]:
    text, shown = "", None
    for piece in pieces:
        text += piece
        value = partial_json(text)
        if value is not None and value != shown:
            shown = value
            yield value
    yield parse_checked(text, schema)


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
    use_tool = with_schema and ladder.tool
    not_json: JSONOutputError | None = None  # what a format got, before a function call was tried
    while True:
        format_, instructions = rung_request(RUNGS[rung], schema, strict)
        asked = with_instructions(messages, instructions) if not use_tool else messages
        try:
            text = chat(asked, response_format=None, tool=schema) if use_tool else chat(asked, response_format=format_)
        except APIStatusError as exc:
            if use_tool and refuses_tools(exc):
                logger.info("the server refused a forced function call (%s); back to formats", exc.message)
                use_tool = ladder.tool = False
                if not_json is not None:
                    raise not_json from None
                continue
            if use_tool or rung + 1 >= len(RUNGS) or not refuses_format(exc):
                raise
            logger.info("the server refused the %s format (%s); trying %s", RUNGS[rung], exc.message, RUNGS[rung + 1])
            rung += 1
            continue
        ladder.worked(with_schema, rung)
        try:
            value = parse_checked(text, schema)
            ladder.tool = use_tool
            return value
        except JSONOutputError as exc:
            if with_schema and not use_tool and not_json is None and not _is_json(text):
                # The server took the format and ignored it: one forced function call instead.
                logger.info("the answer is not JSON despite the %s format; asking by a function call", RUNGS[rung])
                use_tool, not_json = True, exc
                continue
            if retries <= 0:
                raise
            errors = exc.errors
        retries -= 1
        logger.info("the answer broke the schema (%s); asking once more", "; ".join(errors)[:200])
        messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": (
            "That answer does not fit the JSON Schema: " + "; ".join(errors) + ". Answer again with JSON only.")}]
