"""Tool calls as models write them: arguments parsed and repaired, and calls written into the
answer's text by chat templates that have no tool-call parser behind them (Hermes and Qwen
templates on vLLM and llama.cpp: ``<tool_call>{...}</tool_call>`` blocks, or a bare JSON call).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ._errors import ToolArgumentsError, call_name

_TOOL_CALL_BLOCK = r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)"
_FENCE = r"^```(?:json)?\s*|\s*```$"


def parse_arguments(call: dict[str, Any] | str) -> dict[str, Any]:
    """The arguments of a tool ``call`` (or its arguments text) as a dict.

    Repairs what models commonly get wrong: a trailing comma, closing braces left off, a code
    fence around the JSON, the JSON sent inside a JSON string. Anything else raises
    ``ToolArgumentsError`` holding the text, to hand back to the model.

        >>> from openai_compat import parse_arguments
        >>> parse_arguments({"id": "call_1", "type": "function",
        ...                  "function": {"name": "weather", "arguments": '{"city": "Oslo",'}})
        {'city': 'Oslo'}
    """
    name = None
    if isinstance(call, dict):
        name = call_name(call)
        function = call.get("function")
        text: Any = function.get("arguments") if isinstance(function, dict) else None
    else:
        text = call
    if isinstance(text, dict):
        return text
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if not isinstance(text, str):
        raise ToolArgumentsError(f"the arguments of {name or 'the tool call'} are {type(text).__name__}, not a"
                                 " JSON object", text=str(text), name=name)
    value = _loads(text)
    if isinstance(value, str):  # JSON inside a JSON string
        value = _loads(value)
    if not isinstance(value, dict):
        shown = text if len(text) <= 200 else text[:199] + "…"
        raise ToolArgumentsError(f"the arguments of {name or 'the tool call'} are not a JSON object: {shown!r}",
                                 text=text, name=name)
    return value


def _loads(text: str) -> Any:
    """``text`` as JSON, repaired if it must be; a value the repairs cannot save is returned as None."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    fixed = _without_trailing_commas(re.sub(_FENCE, "", text.strip()))
    fixed += closers(fixed)
    try:
        return json.loads(fixed)
    except ValueError:
        return None


def _outside_strings(text: str) -> tuple[list[bool], bool]:
    """For each character of ``text``, whether it is outside every JSON string (quotes count as
    inside); and whether ``text`` ends inside a string."""
    outside: list[bool] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            outside.append(False)
        else:
            in_string = char == '"'
            outside.append(not in_string)
    return outside, in_string


def _without_trailing_commas(text: str) -> str:
    """``text`` without the commas right before a closer or the end (outside strings)."""
    outside, _ = _outside_strings(text)
    return "".join(char for index, char in enumerate(text) if not (
        outside[index] and char == "," and text[index + 1:].lstrip()[:1] in ("", "}", "]")))


def closers(text: str) -> str:
    """What closes the strings and brackets ``text`` leaves open: ``'"}'`` for ``'{"a": "b'``."""
    outside, in_string = _outside_strings(text)
    open_brackets: list[str] = []
    for index, char in enumerate(text):
        if outside[index] and char in "{[":
            open_brackets.append("}" if char == "{" else "]")
        elif outside[index] and char in "}]" and open_brackets:
            open_brackets.pop()
    return ('"' if in_string else "") + "".join(reversed(open_brackets))


def calls_from_content(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with the tool calls its content holds as text moved into ``tool_calls``:
    ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, or a content that is
    nothing but such a call (or a list of them). A message that has ``tool_calls`` already,
    or whose content holds none, comes back as it is.

        >>> from openai_compat._tool_calls import calls_from_content
        >>> reply = calls_from_content({"role": "assistant", "content":
        ...     'Let me look.<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>'})
        >>> reply["content"], reply["tool_calls"][0]["function"]
        ('Let me look.', {'name': 'weather', 'arguments': '{"city": "Oslo"}'})
    """
    content = message.get("content")
    if message.get("tool_calls") or not isinstance(content, str) or not content.strip():
        return message
    blocks = re.findall(_TOOL_CALL_BLOCK, content, re.S)
    if blocks:
        found = [_loads(block) for block in blocks]
        text = re.sub(_TOOL_CALL_BLOCK, "", content, flags=re.S).strip()
    else:
        whole = _loads(content.strip()) if content.strip()[:1] in "{[" else None
        found = whole if isinstance(whole, list) else [whole]
        text = ""
    calls = [_as_call(item) for item in found]
    if not calls or any(call is None for call in calls):
        return message
    return dict(message, content=text, tool_calls=calls)


def _as_call(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": item["name"], "arguments": arguments}}
