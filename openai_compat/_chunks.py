"""What chunks and answers mean: the text of a choice, text streams, and merging chunks.

A chunk is one parsed event of a stream; an answer is the parsed JSON of a whole response.
Nothing here reads the network: these functions take chunks and answers already parsed.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, Protocol

from ._errors import APIResponseError, UnhandledToolCallsError, error_fields, shorten
from ._reasoning import OPEN, ThinkSplitter, check_answer, delta_pieces, split_think

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


def iter_text(
    chunks: ChunkSource, *, chat: bool, keep_think: bool, labelled: bool = False
) -> Iterator[Any]:
    """The non-empty answer pieces of the first choice, as they arrive.

    Reasoning is never part of the answer: reasoning fields, thinking parts and (unless
    ``keep_think``) an inline ``<think>`` block are left out, or, with ``labelled``, yielded as
    ``("reasoning", piece)`` beside ``("answer", piece)``. A stream that ends with no answer
    because the model spent ``max_tokens`` thinking raises ``EmptyAnswerError``. Tool calls
    cannot travel as text: they are raised as ``UnhandledToolCallsError`` once the stream ends.
    """
    tool_chunks: list[Chunk] = []
    splitter = None if keep_think else ThinkSplitter()
    answered = False
    reasoning: list[str] = []
    finish_reason = usage = None
    try:
        for chunk in chunks:
            if chunk.get("usage"):
                usage = chunk["usage"]
            choices = chunk.get("choices")
            if not choices:
                continue
            choice = choices[0]
            if type(choice) is not dict or choice.get("index", 0) != 0:
                choice = first_choice(chunk)
                if choice is None:
                    continue
            if choice.get("finish_reason") is not None:
                finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            if chat and type(delta) is dict:
                if delta.get("tool_calls"):
                    tool_chunks.append({"choices": [choice]})
                piece = delta.get("content")
                # The usual chat chunk, read in place: this runs once per event.
                if type(piece) is str and (splitter is None or splitter.answering) and not (
                    "reasoning_content" in delta or "reasoning" in delta
                ):
                    if piece:
                        answered = True
                        yield ("answer", piece) if labelled else piece
                    continue
                pieces = delta_pieces(delta, splitter)
            else:
                text = choice_text(choice, chat)
                pieces = (splitter.feed(text) if splitter is not None else [("answer", text)]) if text else []
            for kind, piece in pieces:
                if kind == "answer":
                    answered = True
                elif kind == "reasoning":
                    reasoning.append(piece)
                if labelled:
                    yield kind, piece
                elif kind == "answer":
                    yield piece
        for kind, piece in splitter.end() if splitter is not None else ():
            answered = answered or kind == "answer"
            if labelled or kind == "answer":
                yield (kind, piece) if labelled else piece
    finally:
        chunks.close()
        record = getattr(chunks, "record", None)
        if record is not None:
            record.reasoning = "".join(reasoning)
    if tool_chunks:
        message = merge_chunks(tool_chunks)["choices"][0]["message"]
        raise UnhandledToolCallsError.from_message(message)
    check_answer("x" if answered else "", finish_reason, "".join(reasoning), usage)


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
    routes: dict[Any, _ToolCallRoutes] = {}
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
                route = routes.get(index) or routes.setdefault(index, _ToolCallRoutes(message))
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


def _merge_delta(message: dict[str, Any], delta: dict[str, Any], routes: _ToolCallRoutes) -> None:
    for key, value in delta.items():
        if value is None:
            continue
        if key == "tool_calls":
            for fragment in value if isinstance(value, list) else ():
                if isinstance(fragment, dict):
                    routes.add(fragment)
        elif key == "content":
            _merge_content(message, value)
        elif key in ("reasoning_content", "reasoning") and isinstance(value, str):
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


class _ToolCallRoutes:
    """Where each tool-call fragment of one choice goes: to the call with its ``id`` when it has
    one, else to the call last seen at its ``index``, else (no id, no index: Gemini) to the last
    call. A fragment that matches none starts a new call, so calls keep the order in which they
    first appeared, whatever indexes a server uses (a gateway starting at 1, DeepSeek reusing
    an index for a new id)."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self.by_id: dict[Any, dict[str, Any]] = {}
        self.by_index: dict[Any, dict[str, Any]] = {}

    def add(self, fragment: dict[str, Any]) -> None:
        calls = self.message.setdefault("tool_calls", [])
        call_id, index = fragment.get("id"), fragment.get("index")
        if call_id is not None:
            call = self.by_id.get(call_id)
        elif index is not None:
            call = self.by_index.get(index)
        else:
            call = calls[-1] if calls else None
        if call is None:
            call = {"id": call_id, "type": fragment.get("type") or "function",
                    "function": {"name": None, "arguments": ""}}
            calls.append(call)
            if call_id is not None:
                self.by_id[call_id] = call
        if index is not None:
            self.by_index[index] = call
        function = fragment.get("function") or {}
        if function.get("name") and not call["function"]["name"]:
            # Names are not concatenated: llama-cpp-python repeats the name in every fragment.
            call["function"]["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, (dict, list)):
            arguments = json.dumps(arguments)  # some servers send an object: the wire form is a string
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments

    def finish(self) -> None:
        """Drop phantom calls (no name and no arguments: nothing to dispatch or to lose)."""
        calls = self.message.get("tool_calls")
        if calls is not None:
            calls[:] = [c for c in calls if c["function"]["name"] or c["function"]["arguments"]]
            if not calls:
                del self.message["tool_calls"]


def normalize_tool_calls(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with each tool call's ``arguments`` as a JSON string, as strict servers want it
    back (llama.cpp's server sent them as an object for a while)."""
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), (dict, list)):
            function["arguments"] = json.dumps(function["arguments"])
    return message


def reply_text(choice: dict[str, Any], *, chat: bool = True, keep_think: bool = False, usage: Any = None) -> str:
    """The answer in a whole response's ``choice``, without its reasoning (unless ``keep_think``
    for an inline ``<think>`` block). Tool calls raise, since a str cannot carry them; so does
    an empty answer after the model spent ``max_tokens`` thinking."""
    message = choice.get("message")
    if chat and isinstance(message, dict):
        if message.get("tool_calls"):
            raise UnhandledToolCallsError.from_message(normalize_tool_calls(message))
        content = message.get("content")
        if (type(content) is str and content and "reasoning_content" not in message and "reasoning" not in message
                and (keep_think or not content.lstrip().startswith(OPEN))):
            return content  # the usual answer: plain text, no thinking anywhere
        splitter = None if keep_think else ThinkSplitter()
        pieces = delta_pieces(message, splitter) + (splitter.end() if splitter is not None else [])
    else:
        text = choice_text(choice, chat) or ""
        pieces = [("answer", text)] if keep_think else list(zip(("reasoning", "answer"), split_think(text)))
    answer = "".join(text for kind, text in pieces if kind == "answer")
    reasoning = "".join(text for kind, text in pieces if kind == "reasoning")
    check_answer(answer, choice.get("finish_reason"), reasoning, usage)
    return answer
