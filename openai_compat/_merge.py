"""Merging streamed chunks into the answer a blocking call would have returned.

Content parts (Mistral) merge part by part, reasoning fields and OpenRouter's
``reasoning_details`` grow, tool-call fragments are assembled by ``ToolCallRoutes``
(``_delta.py``), and the last usage seen is kept.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable

from ._delta import REASONING_FIELDS, ToolCallRoutes

Chunk = Dict[str, Any]


def merge_chunks(chunks: Iterable[Chunk]) -> Chunk:
    """Merge streamed chunks into the response a non-streamed call would have returned.

    Chat chunks become a ``chat.completion`` (``message`` with content, the reasoning field
    and ``tool_calls`` assembled from their fragments by index), completion chunks a
    ``text_completion``; each choice keeps its ``finish_reason``, and the last ``usage`` seen is
    kept.

        >>> from openai_compat import merge_chunks
        >>> chunks = [
        ...     {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        ...     {"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        ...     {"id": "c1", "choices": [], "usage": {"total_tokens": 7}},
        ... ]
        >>> done = merge_chunks(chunks)
        >>> done["choices"][0]["message"]["content"], done["choices"][0]["finish_reason"], done["usage"]
        ('Hello', 'stop', {'total_tokens': 7})
    """
    merged: Chunk = {}
    choices: dict[Any, dict[str, Any]] = {}
    routes: dict[Any, ToolCallRoutes] = {}
    chat = False
    for chunk in chunks:
        for key, value in chunk.items():
            if key == "usage":
                if value:
                    merged["usage"] = value
            elif value is not None:
                merged.setdefault(key, value)  # "choices" and "object" are set at the end
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            into = choices.setdefault(index, {"index": index, "finish_reason": None})
            if isinstance(choice.get("delta"), dict):
                chat = True
                message = into.setdefault("message", {"role": "assistant", "content": None})
                route = routes.get(index) or routes.setdefault(index, ToolCallRoutes(message))
                _merge_delta(message, choice["delta"], route)
            elif isinstance(choice.get("text"), str):
                into["text"] = into.get("text", "") + choice["text"]
            if choice.get("finish_reason") is not None:
                into["finish_reason"] = choice["finish_reason"]
            if choice.get("logprobs") is not None:
                into.setdefault("logprobs", choice["logprobs"])
    for index, choice in choices.items():
        if chat:
            choice.pop("text", None)
            choice.setdefault("message", {"role": "assistant", "content": None})
            if index in routes:
                routes[index].finish()
        else:
            choice.setdefault("text", "")
    merged["object"] = "chat.completion" if chat else "text_completion"
    merged["choices"] = [choices[i] for i in sorted(choices, key=_index_order)]
    return merged


def _index_order(index: Any) -> Any:
    return (0, index) if isinstance(index, int) else (1, str(index))


def _merge_delta(message: dict[str, Any], delta: dict[str, Any], routes: ToolCallRoutes) -> None:
    for key, value in delta.items():
        if value is None:
            continue
        if key == "tool_calls":
            for fragment in value if isinstance(value, list) else ():
                if isinstance(fragment, dict):
                    routes.add(fragment)
        elif key == "content":
            _merge_content(message, value)
        elif key in REASONING_FIELDS and isinstance(value, str):
            message[key] = (message.get(key) or "") + value
        elif key == "reasoning_details" and isinstance(value, list):
            _merge_details(message.setdefault(key, []), value)
        elif key == "role":
            message["role"] = value
        else:
            message.setdefault(key, value)


def _merge_content(message: dict[str, Any], value: Any) -> None:
    """Append a delta's content: text to text; content parts (Mistral) part by part."""
    current = message.get("content")
    if isinstance(value, str) and not isinstance(current, list):
        message["content"] = (current or "") + value
        return
    parts = current if isinstance(current, list) else ([{"type": "text", "text": current}] if current else [])
    _append_parts(parts, value if isinstance(value, list) else [{"type": "text", "text": value}])
    message["content"] = parts


def _append_parts(parts: list[Any], more: list[Any]) -> None:
    """Parts of the same kind continue the last one: text is joined, a thinking part's own list
    of parts is merged the same way; any other part is kept as it came."""
    for part in more:
        if not isinstance(part, dict):
            continue
        last: Any = parts[-1] if parts else {}
        kind = part.get("type") if isinstance(last, dict) and last.get("type") == part.get("type") else None
        if kind == "text" and isinstance(part.get("text"), str):
            last["text"] = (last.get("text") or "") + part["text"]
        elif kind == "thinking" and isinstance(part.get("thinking"), list):
            _append_parts(last.setdefault("thinking", []), part["thinking"])
        else:
            part = dict(part)
            if isinstance(part.get("thinking"), list):
                inner: list[Any] = []
                _append_parts(inner, part["thinking"])  # copied, its text parts joined
                part["thinking"] = inner
            parts.append(part)


def _merge_details(details: list[Any], more: list[Any]) -> None:
    """OpenRouter's ``reasoning_details``: an item continues the last one of the same type and
    index (its text, summary and signature grow); anything else is kept as it came."""
    for item in more:
        last = details[-1] if details else None
        if (
            isinstance(item, dict) and isinstance(last, dict)
            and (item.get("type"), item.get("index")) == (last.get("type"), last.get("index"))
        ):
            for field in ("text", "summary", "signature", "data"):
                if isinstance(item.get(field), str):
                    last[field] = (last.get(field) or "") + item[field]
            for field, value in item.items():
                last.setdefault(field, value)
        else:
            details.append(dict(item) if isinstance(item, dict) else item)
