"""The chat and completion stream dialect: ``[DONE]``, finishes, error events, cut-off streams.

``ChunkStream`` reads each event as a chunk, notes every choice's ``finish_reason`` and the
usage, raises on error events, and takes choice 0's pieces through its ``Answer``
(``_delta.py``). ``iter_choices()`` yields the text of every choice, for ``chat_choices()``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Generator, Iterator

from ._answers import parse_completion
from ._call_record import CallSummary
from ._delta import REASONING_FIELDS, Pieces, ThinkSplitter, content_text
from ._sse import EventStream

Chunk = Dict[str, Any]
_raw_decode = json.JSONDecoder().raw_decode


class ChunkStream(EventStream[Chunk]):
    """The parsed chunks of one streamed chat or completion, as an iterator that owns the response.

    It always closes the response when it ends, is closed, or is garbage-collected; a fully
    read response hands its connection back to the pool for the next call. ``usage``,
    ``model``, ``finish_reasons`` (by choice index) and ``ended_with_done`` say what the stream
    said so far; ``answer`` holds choice 0's thinking and tool calls.

        >>> from openai_compat import Client, merge_chunks
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
        >>> stream = client.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
        ...                                        stream=True)
        >>> chunks = list(stream)
        >>> merge_chunks(chunks)["choices"][0]["finish_reason"] in ("stop", "length")
        True
    """

    ENDING = "[DONE] or a finish_reason"

    def __init__(self, response: Any, *, expected_choices: int = 1, chat: bool = True, **options: Any) -> None:
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.finish_reasons: dict[Any, str] = {}
        self.first_piece_at: float | None = None
        self.ended_with_done = False
        self._chat = chat
        self._expected_choices = max(1, expected_choices)
        self._seen: set[Any] = set()
        super().__init__(response, **options)

    def _item(self, data: str, name: str) -> Chunk | None:
        if name == "error":
            raise self._error(data, "the server sent an error event")
        if data[0] != "{" and data.strip() == "[DONE]":  # sseclient-py hands on no empty data
            self.ended_with_done = True
            return None
        chunk: Any
        try:
            # raw_decode skips json.loads' extra layers; it is the hot path of a stream.
            chunk, end = _raw_decode(data)
            if end != len(data) and data[end:].strip():
                raise ValueError("extra data")
        except ValueError:
            chunk = self._json(data)  # white space around the object, say, or the error
        if type(chunk) is not dict:
            chunk = self._json(data)
        if chunk.get("error"):
            # OpenRouter sends an error mid-generation as an ordinary chunk, choices and all.
            raise self._error(data, "the server sent an error in the stream", chunk)
        # What the chunk says (usage, model, finishes, choice 0's pieces), read in place: this
        # runs once per event.
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        if self._kept_fields:
            self._extras.update((name, chunk[name]) for name in self._kept_fields if name in chunk)
        if self.first_piece_at is None:
            self._first_piece(chunk)
        choices = chunk.get("choices")
        if choices:
            zero = choices[0]
            if type(zero) is dict and len(choices) == 1 and zero.get("index", 0) == 0:
                self._seen.add(0)  # the usual chunk: one choice, choice 0
                finish = zero.get("finish_reason")
                if finish is not None:
                    self._finished(0, finish)
            else:
                zero = self._note_choices(choices)
            if zero is not None:
                delta = zero.get("delta")
                if type(delta) is dict and self._chat:
                    self._pieces = self.answer.feed(delta)
                else:
                    self._pieces = self._other_shape(zero, delta)
        parsed: Chunk = chunk
        return parsed

    def _note_choices(self, choices: list[Any]) -> dict[str, Any] | None:
        """Every choice's finish, in a chunk of several (or odd) choices; returns choice 0."""
        zero = None
        for choice in choices:
            if type(choice) is dict:
                index = choice.get("index", 0)
                self._seen.add(index)
                if index == 0 and zero is None:
                    zero = choice
                if choice.get("finish_reason") is not None:
                    self._finished(index, choice["finish_reason"])
        return zero

    def _finished(self, index: Any, finish: Any) -> None:
        if index == 0:
            self.answer.finish_reason = finish
        if isinstance(finish, str):
            finished = self.finish_reasons
            finished[index] = finish
            self._body.lingering = len(finished) >= self._expected_choices and self._seen <= finished.keys()

    def _other_shape(self, choice: dict[str, Any], delta: Any) -> Pieces:
        """The pieces of a choice with no delta: a message (a chunk shaped like a whole answer),
        or a completion's text."""
        if self._chat and isinstance(choice.get("message"), dict):
            return self.answer.feed(choice["message"])
        text = choice.get("text")
        if text is None and isinstance(delta, dict):
            text = delta.get("content")
        return self.answer.feed_text(content_text(text) or "")

    def _first_piece(self, chunk: Chunk) -> None:
        """Until the first piece of text: the answering model, and when that piece came."""
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        for choice in chunk.get("choices") or ():
            part = choice.get("delta") or choice if isinstance(choice, dict) else None
            if isinstance(part, dict) and (part.get("content") or part.get("text")
                                           or any(part.get(field) for field in REASONING_FIELDS)):
                self.first_piece_at = time.monotonic()
                return

    def _whole_answer(self) -> Iterator[Chunk] | None:
        content_type = self.response.headers.get("content-type", "")
        if "json" not in content_type or "event-stream" in content_type:
            return None
        # A server that ignored stream: true: its answer, in the shape of one chunk.
        body = parse_completion(self._body.read_all(), self.request_id)
        choices = []
        for choice in body["choices"]:
            if "message" in choice:
                choice = dict(choice)
                choice["delta"] = choice.pop("message")
            choices.append(choice)
        chunk = self._item(json.dumps(dict(body, choices=choices)), "message")
        return iter([chunk] if chunk is not None else [])

    def _ended_well(self) -> bool:
        finished = self.finish_reasons
        return self._body.lingering or bool(finished and self._seen <= finished.keys())

    def _summary(self) -> CallSummary:
        return CallSummary(self.model, self.usage, self.finish_reasons, self.answer.reasoning, self.first_piece_at,
                           self.complete)


def iter_choices(chunks: ChunkStream) -> Generator[tuple[int, str], None, None]:
    """``(choice index, piece)`` for the answer of every choice of a chat stream, as it arrives;
    an inline ``<think>`` block that opens a choice is left out, as ``chat()`` leaves it out."""
    splitters: dict[int, ThinkSplitter] = {}
    try:
        for chunk in chunks:
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict):
                    message = choice.get("delta", choice.get("message"))
                    piece = content_text(message.get("content") if isinstance(message, dict) else choice.get("text"))
                    if piece:
                        index = choice.get("index", 0)
                        splitter = splitters.get(index) or splitters.setdefault(index, ThinkSplitter())
                        yield from _answers_of(index, splitter.feed(piece))
        for index, splitter in splitters.items():
            yield from _answers_of(index, splitter.end())
    finally:
        chunks.close()


def _answers_of(index: int, pieces: Pieces) -> Iterator[tuple[int, str]]:
    return ((index, text) for label, text in pieces if label == "answer" and text)
