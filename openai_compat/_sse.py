"""The one reader of Server-Sent Events: bytes in, parsed events out, and a summary at the end.

The layers, each feeding the next:

1. ``BodyReader`` (``_body_reader.py``) hands over the body's bytes as they arrive.
2. ``event_lines`` folds every line ending to ``\\n`` and hands over whole lines only.
3. sseclient-py turns those lines into events.
4. ``EventStream`` asks its dialect what each event is, stops where the dialect says the stream
   ended, and raises when the body ended before that: chat chunks (``ChunkStream``,
   ``_chat_stream.py``) and Responses events (``ResponseStream``, ``_responses.py``).

When the stream ends, however it ends, the response is closed and the function given as
``on_end`` receives the stream's ``CallSummary``: the stream itself never touches a record.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Generator, Generic, Iterator, TypeVar

import requests
import sseclient

from ._body_reader import BodyReader
from ._call_record import CallSummary
from ._delta import Answer, Pieces
from ._error_bodies import error_fields, shorten
from ._errors import APIConnectionError, APIResponseError

_BOM = b"\xef\xbb\xbf"
_NOTHING: Pieces = []
Item = TypeVar("Item")
#: What a dialect makes of an event: an item to hand on, or nothing (the end marker).
EndOfStream = None


class EventStream(Generic[Item]):
    """The events of one streamed response, as an iterator that owns the response.

    It always closes the response when it ends, is closed, or is garbage-collected; one read to
    its end hands its connection back to the pool for the next call. A dialect subclass says
    what an event is (``_item``), whether the stream has ended properly (``_ended_well``) and
    what the stream said (``_summary``).
    """

    #: Named in the error when the body ends before the stream did (``[DONE]``, ...).
    ENDING = "its end"

    def __init__(self, response: requests.Response, *, deadline_at: float | None = None,
                 request_id: str | None = None, on_end: Callable[[CallSummary], None] | None = None,
                 keep_think: bool = False, kept_fields: tuple[str, ...] = ()) -> None:
        self.response = response
        self.request_id = request_id
        #: Whether the stream was read to its proper end.
        self.complete = False
        #: Choice 0's answer as it came: its thinking, its tool calls, how it finished.
        self.answer = Answer(keep_think=keep_think)
        self._pieces: Pieces = _NOTHING  # the answer's pieces in the item last handed on
        self._held: Pieces = _NOTHING  # pieces still held when the stream ended
        self._last = False  # set by a dialect whose item ends the stream once handed on
        self._on_end = on_end
        self._kept_fields = kept_fields
        self._extras: dict[str, Any] = {}
        self._body = BodyReader(response, deadline_at=deadline_at, request_id=request_id)
        self._items: Generator[Item, None, None] = self._generate()

    def __iter__(self) -> Iterator[Item]:
        return self._items

    def __next__(self) -> Item:
        return next(self._items)

    def close(self) -> None:
        """Stop reading and close the connection; the rest of the body is never read."""
        self._items.close()

    def _generate(self) -> Generator[Item, None, None]:
        try:
            whole = self._whole_answer()
            if whole is not None:
                yield from whole
            else:
                ended = False
                event = None
                try:
                    for event in sseclient.SSEClient(event_lines(self._body.read)).events():
                        item = self._item(event.data, event.event)
                        if item is EndOfStream:
                            ended = True
                            break
                        yield item
                        if self._last:  # the item just handed on was the stream's ending
                            ended = True
                            break
                except UnicodeDecodeError as exc:
                    raise APIResponseError(f"the stream is not valid UTF-8: {exc}", request_id=self.request_id) \
                        from None
                if ended:
                    self._body.drain()
                elif not self._ended_well():
                    raise self._cut_off(nothing_came=event is None)
            self._end()
            self.complete = True
            self._after_end()
        finally:
            self._body.close()
            if self._on_end is not None:
                summary = self._summary()
                summary.extras, summary.answer = self._extras, self.answer
                self._on_end(summary)

    # -- what a dialect says -----------------------------------------------------------------

    def _whole_answer(self) -> Iterator[Item] | None:
        """The items of a server that answered with one JSON body instead of a stream, or None."""
        return None

    def _item(self, data: str, name: str) -> Item | None:
        """What the event with ``data`` (named ``name``) is; None when it ends the stream."""
        raise NotImplementedError

    def _ended_well(self) -> bool:
        """Whether the body may end here, though no event ended the stream."""
        return False

    def _end(self) -> None:
        """The stream was read to its end (before ``complete`` is set)."""
        self._held = self.answer.end()

    def _after_end(self) -> None:
        """Once complete: raise for an ending that was an error after all."""

    def _summary(self) -> CallSummary:
        """What the stream said so far: its usage, model, finish reasons, thinking."""
        raise NotImplementedError

    def pieces(self) -> Generator[tuple[str, str], None, None]:
        """The answer's labelled pieces, ``("answer", text)`` or ``("reasoning", text)``, as they
        arrive; the stream is closed when they end or the caller stops."""
        return self.text(labelled=True, check=False)

    def text(self, *, labelled: bool = False, check: bool = True) -> Generator[Any, None, None]:
        """The non-empty answer pieces as they arrive; with ``labelled``, ``("reasoning", piece)``
        beside ``("answer", piece)``. With ``check``, tool calls, or a stream that spent
        ``max_tokens`` thinking, raise once the stream has ended."""
        try:
            for _ in self._items:
                pieces = self._pieces
                if pieces:  # each item's pieces, handed on here in one generator: the hot path
                    self._pieces = _NOTHING
                    for kind, piece in pieces:
                        if labelled:
                            yield kind, piece
                        elif kind == "answer":
                            yield piece
            for kind, piece in self._held:
                if labelled or kind == "answer":
                    yield (kind, piece) if labelled else piece
        finally:
            self.close()
        if check:
            self.answer.check(self._summary().usage, request_id=self.request_id)

    # -- for the dialects ----------------------------------------------------------------------

    def _cut_off(self, nothing_came: bool = False) -> APIConnectionError:
        if nothing_came:
            return APIConnectionError(
                f"the server answered {self.response.status_code} and ended the stream without a single event: the"
                " prompt may be longer than the model's context (llama.cpp's server answers a stream that overflows"
                " its context this way); send it once without stream=True to see the server's own error, or count"
                " its tokens against the context size")
        return APIConnectionError(f"the stream ended before {self.ENDING}: the connection was closed early and"
                                  " the answer is incomplete")

    def _json(self, data: str) -> dict[str, Any]:
        """The JSON object in an event's ``data``, or an error naming what came."""
        try:
            parsed = json.loads(data)
        except ValueError:
            raise APIResponseError(f"the stream sent data that is not JSON: {shorten(data, 200)!r}",
                                   body=shorten(data, 2000), request_id=self.request_id) from None
        if type(parsed) is not dict:
            raise APIResponseError(f"the stream sent JSON that is not an object: {shorten(data, 200)!r}",
                                   request_id=self.request_id)
        return parsed

    def _error(self, data: str, fallback: str, parsed: Any = None) -> APIResponseError:
        """The error for an error event's ``data`` (``parsed``, when the caller parsed it)."""
        if parsed is None:
            try:
                parsed = json.loads(data)
            except ValueError:
                pass
        message, code = error_fields(parsed) if isinstance(parsed, dict) else (None, None)
        if message is None and isinstance(parsed, dict) and parsed.get("message"):
            message, code = str(parsed["message"]), parsed.get("code")
        return APIResponseError(
            shorten(message) if message else f"{fallback}: {shorten(data, 200)!r}",
            body=parsed if parsed is not None else shorten(data, 2000),
            request_id=self.request_id,
            code=None if code is None else str(code),
        )


def event_lines(read: Callable[[], bytes]) -> Iterator[bytes]:
    """Whole lines of the body as ``read()`` returns them, every line ending folded to ``\\n``.

    sseclient-py splits events on ``\\n\\n``, ``\\r\\r`` or ``\\r\\n\\r\\n`` only, so a
    mixed ending such as ``\\n\\r\\n`` would merge two events; folding first avoids that.
    Handing over whole lines keeps its per-line ``bytes +=`` linear for a huge event. A leading
    BOM is dropped: sseclient-py would lose the first event to it.
    """
    held: list[bytes] = []
    after_cr = False
    first = True
    while True:
        data = read()
        if not data:
            break
        if first:
            first = False
            while len(data) < len(_BOM) and _BOM.startswith(data):
                more = read()  # a BOM split across reads
                if not more:
                    break
                data += more
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if after_cr and data.startswith(b"\n"):
            data = data[1:]  # the \n of a \r\n split between two reads
        if b"\r" in data:
            after_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            after_cr = False
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            held.append(data)
            continue
        if held:
            held.append(data[:cut])
            yield b"".join(held)
            held = []
        else:
            yield data[:cut]
        if cut < len(data):
            held.append(data[cut:])
    if held:
        yield b"".join(held)
