"""What chunks and answers mean: the text of a choice, text streams, and merging chunks.

A chunk is one parsed event of a stream; an answer is the parsed JSON of a whole response.
Nothing here reads the network: these functions take chunks and answers already parsed.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, Protocol

from ._errors import APIResponseError, UnhandledToolCallsError, error_fields, shorten

Chunk = Dict[str, Any]


class ChunkSource(Protocol):
    """An iterator of chunks that can be closed early (a ``ChunkStream``)."""

    def __iter__(self) -> Iterator[Chunk]: ...

    def close(self) -> None: ...


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
    message, code = error_fields(body)
    if message is not None and not body.get("choices") and not body.get("data"):
        raise APIResponseError(shorten(message), body=body, request_id=request_id, code=code)
    return body


def parse_completion(raw: bytes, request_id: str | None) -> Chunk:
    """The JSON object in a 2xx body, checked to carry choices and no error."""
    body = parse_object(raw, request_id)
    if not isinstance(body.get("choices"), list) or not body["choices"]:
        raise APIResponseError("the response has no choices", body=body, request_id=request_id)
    return body


def choice_text(choice: dict[str, Any], chat: bool) -> str | None:
    """The text one choice of a chunk or response carries, or None.

    Chat takes ``delta.content`` (or ``message.content``) only: Together repeats it in
    ``text``, and ``reasoning_content`` is not part of the answer. Completions take ``text``.
    """
    if chat:
        message = choice.get("delta", choice.get("message"))
        if isinstance(message, dict):
            return _content_text(message.get("content"))
        return _content_text(choice.get("text"))
    text = choice.get("text")
    if text is None and isinstance(choice.get("delta"), dict):
        return _content_text(choice["delta"].get("content"))
    return _content_text(text)


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return None


def first_choice(chunk: Chunk) -> dict[str, Any] | None:
    """The choice with index 0 (or without an index) in ``chunk``, if it has one."""
    for choice in chunk.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def iter_text(chunks: ChunkSource, *, chat: bool) -> Iterator[str]:
    """The non-empty text pieces of the first choice, as they arrive.

    Tool calls cannot travel as text: if the first choice makes any, they are assembled and
    raised as ``UnhandledToolCallsError`` once the stream ends, after all its text.
    """
    tool_chunks: list[Chunk] = []
    try:
        for chunk in chunks:
            choices = chunk.get("choices")
            if not choices:
                continue
            choice = choices[0]
            if type(choice) is not dict or choice.get("index", 0) != 0:
                choice = first_choice(chunk)
                if choice is None:
                    continue
            delta = choice.get("delta")
            if chat and type(delta) is dict:
                # The usual chat chunk, read in place: this runs once per event.
                piece = delta.get("content")
                if type(piece) is not str:
                    piece = _content_text(piece)
                if delta.get("tool_calls"):
                    tool_chunks.append({"choices": [choice]})
            else:
                piece = choice_text(choice, chat)
            if piece:
                yield piece
    finally:
        chunks.close()
    if tool_chunks:
        message = merge_chunks(tool_chunks)["choices"][0]["message"]
        raise UnhandledToolCallsError.from_message(message)


def iter_choices(chunks: ChunkSource) -> Iterator[tuple[int, str]]:
    """``(choice index, piece)`` for the text of every choice of a chat stream, as it arrives."""
    try:
        for chunk in chunks:
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict):
                    piece = choice_text(choice, chat=True)
                    if piece:
                        yield choice.get("index", 0), piece
    finally:
        chunks.close()


def merge_chunks(chunks: Iterable[Chunk]) -> Chunk:
    """Merge streamed chunks into the response a non-streamed call would have returned.

    Chat chunks become a ``chat.completion`` (``message`` with content, ``reasoning_content``
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
    chat = False
    for chunk in chunks:
        for key, value in chunk.items():
            if key == "usage":
                if value:
                    merged["usage"] = value
            elif key not in ("choices", "object") and value is not None:
                merged.setdefault(key, value)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            into = choices.setdefault(index, {"index": index, "finish_reason": None})
            if isinstance(choice.get("delta"), dict):
                chat = True
                _merge_delta(into.setdefault("message", {"role": "assistant", "content": None}), choice["delta"])
            elif isinstance(choice.get("text"), str):
                into["text"] = into.get("text", "") + choice["text"]
            if choice.get("finish_reason") is not None:
                into["finish_reason"] = choice["finish_reason"]
            if choice.get("logprobs") is not None:
                into.setdefault("logprobs", choice["logprobs"])
    for choice in choices.values():
        if chat:
            choice.pop("text", None)
            choice.setdefault("message", {"role": "assistant", "content": None})
        else:
            choice.setdefault("text", "")
    merged["object"] = "chat.completion" if chat else "text_completion"
    merged["choices"] = [choices[i] for i in sorted(choices, key=_index_order)]
    return merged


def _index_order(index: Any) -> Any:
    return (0, index) if isinstance(index, int) else (1, str(index))


def _merge_delta(message: dict[str, Any], delta: dict[str, Any]) -> None:
    for key, value in delta.items():
        if value is None:
            continue
        if key == "tool_calls":
            _merge_tool_calls(message.setdefault("tool_calls", []), value)
        elif key in ("content", "reasoning_content", "reasoning") and isinstance(value, str):
            message[key] = (message.get(key) or "") + value
        elif key == "role":
            message["role"] = value
        else:
            message.setdefault(key, value)


def _merge_tool_calls(calls: list[dict[str, Any]], fragments: Any) -> None:
    for fragment in fragments if isinstance(fragments, list) else ():
        if not isinstance(fragment, dict):
            continue
        index = fragment.get("index")
        if index is None:
            # No index: a new id starts a new call, anything else continues the last one.
            new_id = fragment.get("id")
            starts_new = not calls or (new_id is not None and new_id != calls[-1].get("id"))
            index = len(calls) if starts_new else len(calls) - 1
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": None, "arguments": ""}})
        call = calls[index]
        for key in ("id", "type"):
            if fragment.get(key) is not None and not call.get(key):
                call[key] = fragment[key]
        function = fragment.get("function") or {}
        if function.get("name") and not call["function"]["name"]:
            # Names are not concatenated: llama-cpp-python repeats the name in every fragment.
            call["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]


def reply_text(choice: Any) -> str:
    """The text of an answer's ``choice``; tool calls raise, since a str cannot carry them."""
    if not isinstance(choice, dict):
        return ""
    message = choice.get("message")
    if isinstance(message, dict) and message.get("tool_calls"):
        raise UnhandledToolCallsError.from_message(message)
    return choice_text(choice, chat=True) or ""
