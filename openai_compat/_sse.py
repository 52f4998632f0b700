"""Server-Sent Events into chunks: ``[DONE]``, finishes, error events, cut-off streams.

The layers, each feeding the next:

1. ``BodyReader`` (``_body_reader.py``) hands over the body's bytes as they arrive.
2. ``event_lines`` folds every line ending to ``\\n`` and hands over whole lines only.
3. sseclient-py turns those lines into events.
4. ``ChunkStream`` parses each event's JSON, stops at ``[DONE]``, raises on error events, and
   tells a normal end from a cut-off one.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Generator, Iterator

import requests
import sseclient

from ._body_reader import BodyReader
from ._chunks import Chunk, parse_completion
from ._errors import APIConnectionError, APIResponseError, error_fields, shorten

_BOM = b"\xef\xbb\xbf"
_raw_decode = json.JSONDecoder().raw_decode


class ChunkStream:
    """The parsed chunks of one streamed response, as an iterator that owns the response.

    It always closes the response when it ends, is closed, or is garbage-collected; a fully
    read response hands its connection back to the pool for the next call.

        >>> from openai_compat import Client, merge_chunks
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
        >>> stream = client.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
        ...                                        stream=True)
        >>> chunks = list(stream)
        >>> merge_chunks(chunks)["choices"][0]["finish_reason"] in ("stop", "length")
        True
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        expected_choices: int = 1,
        deadline_at: float | None = None,
        request_id: str | None = None,
        on_end: Callable[[ChunkStream], None] | None = None,
    ) -> None:
        self.response = response
        self.request_id = request_id
        #: What the stream said so far: its usage, model, finish reasons (by choice index),
        #: when its first piece of text came, and whether it was read to its end.
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.finish_reasons: dict[Any, str] = {}
        self.first_piece_at: float | None = None
        self.complete = False
        self.ended_with_done = False
        #: The client's record of this call, which the stream fills in as it ends.
        self.record: Any = None
        self._expected_choices = max(1, expected_choices)
        self._on_end = on_end
        self._body = BodyReader(response, deadline_at=deadline_at, request_id=request_id)
        self._chunks: Generator[Chunk, None, None] = self._generate()

    def __iter__(self) -> Iterator[Chunk]:
        return self._chunks

    def __next__(self) -> Chunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and close the connection; the rest of the body is never read."""
        self._chunks.close()

    def _generate(self) -> Generator[Chunk, None, None]:
        try:
            content_type = self.response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                chunk = self._whole_body_as_chunk()
                self._note(chunk)
                self.usage = chunk.get("usage") or None
                for choice in chunk["choices"]:
                    if isinstance(choice.get("finish_reason"), str):
                        self.finish_reasons[choice.get("index", 0)] = choice["finish_reason"]
                yield chunk
                self.complete = True
                return
            seen: set[Any] = set()
            finished = self.finish_reasons
            done = False
            try:
                for event in sseclient.SSEClient(event_lines(self._body.read)).events():
                    data = event.data
                    if event.event == "error":
                        raise self._error(data, "the server sent an error event")
                    if data[:1] != "{" and data.strip() == "[DONE]":
                        done = True
                        break
                    chunk = self._parse(data)
                    if chunk.get("usage"):
                        self.usage = chunk["usage"]
                    if self.first_piece_at is None:
                        self._note(chunk)
                    for choice in chunk.get("choices") or ():
                        if isinstance(choice, dict):
                            index = choice.get("index", 0)
                            seen.add(index)
                            if isinstance(choice.get("finish_reason"), str):
                                finished[index] = choice["finish_reason"]
                                every = len(finished) >= self._expected_choices and seen <= finished.keys()
                                self._body.lingering = every
                    yield chunk
            except UnicodeDecodeError as exc:
                raise APIResponseError(
                    f"the stream is not valid UTF-8: {exc}", request_id=self.request_id
                ) from None
            if done:
                self.ended_with_done = True
                self._body.drain()
            elif not (self._body.lingering or (finished and seen <= finished.keys())):
                raise APIConnectionError(
                    "the stream ended before [DONE] or a finish_reason: the connection was"
                    " closed early and the answer is incomplete"
                )
            self.complete = True
        finally:
            self._body.close()
            if self._on_end is not None:
                self._on_end(self)

    def _note(self, chunk: Chunk) -> None:
        """Until the first piece of text: the answering model, and when that piece came."""
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        for choice in chunk.get("choices") or ():
            part = choice.get("delta") or choice if isinstance(choice, dict) else None
            if isinstance(part, dict) and (part.get("content") or part.get("text") or part.get("reasoning_content")
                                           or part.get("reasoning")):
                self.first_piece_at = time.monotonic()
                return

    def _parse(self, data: str) -> Chunk:
        try:
            # raw_decode skips json.loads' extra layers; it is the hot path of a stream.
            chunk, end = _raw_decode(data)
            if end != len(data) and data[end:].strip():
                raise ValueError("extra data")
        except ValueError:
            try:
                chunk = json.loads(data)  # white space around the object, say
            except ValueError:
                raise APIResponseError(
                    f"the stream sent data that is not JSON: {shorten(data, 200)!r}",
                    body=shorten(data, 2000),
                    request_id=self.request_id,
                ) from None
        if type(chunk) is not dict:
            raise APIResponseError(
                f"the stream sent JSON that is not an object: {shorten(data, 200)!r}",
                request_id=self.request_id,
            )
        if chunk.get("error"):
            # OpenRouter sends an error mid-generation as an ordinary chunk, choices and all.
            raise self._error(data, "the server sent an error in the stream", chunk)
        return chunk

    def _error(self, data: str, fallback: str, parsed: Any = None) -> APIResponseError:
        """The error for an error event's ``data`` (``parsed``, when the caller parsed it)."""
        if parsed is None:
            try:
                parsed = json.loads(data)
            except ValueError:
                pass
        message, code = error_fields(parsed) if isinstance(parsed, dict) else (None, None)
        return APIResponseError(
            shorten(message) if message else f"{fallback}: {shorten(data, 200)!r}",
            body=parsed if parsed is not None else shorten(data, 2000),
            request_id=self.request_id,
            code=code,
        )

    def _whole_body_as_chunk(self) -> Chunk:
        """The answer of a server that ignored ``stream: true``, in the shape of one chunk."""
        body = parse_completion(self._body.read_all(), self.request_id)
        choices = []
        for choice in body["choices"]:
            if "message" in choice:
                choice = dict(choice)
                choice["delta"] = choice.pop("message")
            choices.append(choice)
        return dict(body, choices=choices)


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
