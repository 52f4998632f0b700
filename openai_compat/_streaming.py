"""Reading a streamed answer: bytes off the socket, Server-Sent Events, parsed chunks, text.

The layers, each a generator feeding the next:

1. ``ChunkStream._feed`` reads whatever bytes have arrived (a plain chunked body is de-chunked
   here, anything else goes through urllib3's ``read1``, which also decodes gzip), folds every
   line ending to ``\\n`` and hands over whole lines only.
2. sseclient-py turns those lines into events.
3. ``ChunkStream.__iter__`` parses each event's JSON, stops at ``[DONE]``, raises on error
   events, and tells a normal end from a cut-off one.
4. ``iter_text`` picks the text of the first choice out of each chunk.
"""

from __future__ import annotations

import json
import socket
import time
from http.client import HTTPException
from typing import Any, Callable, Dict, Generator, Iterable, Iterator

import requests
import sseclient
from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

from ._errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    UnhandledToolCallsError,
    error_fields,
    shorten,
)

Chunk = Dict[str, Any]

#: Bytes asked for per read; ``read1`` returns sooner with whatever has arrived.
READ_SIZE = 65536
#: Once every choice has finished, how long to wait for ``[DONE]`` or the end of the body
#: before ending the stream anyway (some servers hold the connection open).
LINGER_SECONDS = 1.0
_BOM = b"\xef\xbb\xbf"
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)  # where a chunked body is
_raw_decode = json.JSONDecoder().raw_decode


class ChunkStream:
    """The parsed chunks of one streamed response, as an iterator that owns the response.

    It always closes the response when it ends, is closed, or is garbage-collected; a fully
    read response hands its connection back to the pool for the next call.

        >>> from openai_compat import Client, merge_chunks
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
        >>> stream = client.create_chat_completion(                          # doctest: +SKIP
        ...     messages=[{"role": "user", "content": "Hi"}], stream=True)
        >>> chunks = list(stream)                                           # doctest: +SKIP
        >>> merge_chunks(chunks)["choices"][0]["finish_reason"]             # doctest: +SKIP
        'stop'
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        expected_choices: int = 1,
        deadline_at: float | None = None,
        request_id: str | None = None,
        on_end: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> None:
        self.response = response
        self.request_id = request_id
        self._expected_choices = max(1, expected_choices)
        self._deadline_at = deadline_at
        self._on_end = on_end
        self._lingering = False
        self._linger_expired = False
        self._socket = _socket_of(response.raw)
        self._read_timeout = self._socket.gettimeout() if self._socket else None
        self._body_complete = False
        self._read_some = self._choose_reader()
        self._chunks: Generator[Chunk, None, None] = self._generate()

    def __iter__(self) -> Iterator[Chunk]:
        return self._chunks

    def __next__(self) -> Chunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and close the connection; the rest of the body is never read."""
        self._chunks.close()

    def _choose_reader(self) -> Callable[[], bytes]:
        """A function returning the body bytes that have arrived, b"" at its end.

        A plain chunked body (the usual stream) is de-chunked here straight off the
        connection's buffer, so one read takes every event that has arrived: urllib3 and
        http.client hand over one HTTP chunk, that is one event, per read. Any other body goes
        through urllib3's ``read1``, which returns what has arrived and decodes gzip; urllib3
        1.x has no ``read1``, so there whole HTTP chunks are the fallback.
        """
        raw = self.response.raw
        inner = getattr(raw, "_fp", None)
        buffer = getattr(inner, "fp", None)
        if (
            getattr(inner, "chunked", False)
            and getattr(inner, "chunk_left", 0) is None
            and hasattr(buffer, "read1")
            and self.response.headers.get("content-encoding", "identity").lower() == "identity"
        ):
            pieces = self._dechunk(buffer)
            return lambda: next(pieces, b"")
        if hasattr(raw, "read1"):
            return lambda: bytes(raw.read1(READ_SIZE, decode_content=True))
        chunks = self.response.iter_content(chunk_size=None)
        return lambda: next(chunks, b"")

    def _dechunk(self, buffer: Any) -> Iterator[bytes]:
        """The data of a chunked body (RFC 9112, section 7.1), whatever has arrived per read."""
        data = b""
        pos = 0
        left = 0  # bytes of the current chunk's data still to come
        state = _SIZE
        while True:
            more = buffer.read1(READ_SIZE)
            if not more:
                raise APIConnectionError("the connection closed in the middle of the chunked body")
            data = data[pos:] + more if pos < len(data) else more
            pos = 0
            out = []
            while True:
                if state == _SIZE:
                    end = data.find(b"\n", pos)
                    if end < 0:
                        if len(data) - pos > 4096:
                            raise APIConnectionError("the chunked body is malformed: no chunk size line")
                        break
                    left = _chunk_size(data[pos:end])
                    pos = end + 1
                    if not left:
                        state = _TRAILER
                        continue
                    stop = pos + left
                    if data.startswith(b"\r\n", stop):  # the whole chunk is here: the usual case
                        out.append(data[pos:stop])
                        pos = stop + 2
                        continue
                    state = _DATA
                if state == _DATA:
                    piece = data[pos : pos + left]
                    if piece:  # an empty piece would read as the end of the body
                        out.append(piece)
                    left -= len(piece)
                    pos += len(piece)
                    if left:
                        break
                    state = _DATA_END
                if state == _DATA_END:
                    if len(data) - pos < 2:
                        break
                    if not data.startswith(b"\r\n", pos):
                        raise APIConnectionError("the chunked body is malformed: no CRLF after a chunk")
                    pos += 2
                    state = _SIZE
                    continue
                end = data.find(b"\n", pos)  # _TRAILER: header lines up to a blank one
                if end < 0:
                    break
                line = data[pos:end]
                pos = end + 1
                if not line.strip():
                    self._body_complete = pos == len(data)
                    if out:
                        yield b"".join(out)
                    return
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)

    def _generate(self) -> Generator[Chunk, None, None]:
        usage: dict[str, Any] | None = None
        try:
            content_type = self.response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                chunk = self._whole_body_as_chunk()
                usage = chunk.get("usage")
                yield chunk
                return
            seen: set[Any] = set()
            finished: set[Any] = set()
            done = False
            try:
                for event in sseclient.SSEClient(self._feed()).events():
                    data = event.data
                    if event.event == "error":
                        raise self._error(data, "the server sent an error event")
                    if data[:1] != "{" and data.strip() == "[DONE]":
                        done = True
                        break
                    chunk = self._parse(data)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        if isinstance(choice, dict):
                            index = choice.get("index", 0)
                            seen.add(index)
                            if isinstance(choice.get("finish_reason"), str):
                                finished.add(index)
                                self._lingering = len(finished) >= self._expected_choices and seen <= finished
                    yield chunk
            except UnicodeDecodeError as exc:
                raise APIResponseError(
                    f"the stream is not valid UTF-8: {exc}", request_id=self.request_id
                ) from None
            if done:
                self._lingering = True
                self._drain()
            elif not (self._lingering or (finished and seen <= finished)):
                raise APIConnectionError(
                    "the stream ended before [DONE] or a finish_reason: the connection was"
                    " closed early and the answer is incomplete"
                )
        finally:
            self._close()
        if self._on_end is not None:
            self._on_end(usage)

    def _feed(self) -> Iterator[bytes]:
        """Whole lines of the body as they arrive, every line ending folded to ``\\n``.

        sseclient-py splits events on ``\\n\\n``, ``\\r\\r`` or ``\\r\\n\\r\\n`` only, so a
        mixed ending such as ``\\n\\r\\n`` would merge two events; folding first avoids that.
        Handing over whole lines keeps its per-line ``bytes +=`` linear for a huge event.
        """
        held: list[bytes] = []
        after_cr = False
        first = True
        while True:
            data = self._read()
            if not data:
                break
            if first:
                first = False
                while len(data) < len(_BOM) and _BOM.startswith(data):
                    more = self._read()  # a BOM split across reads
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

    def _read(self) -> bytes:
        timeout = self._next_timeout()
        if timeout is not None and self._socket is not None:
            self._socket.settimeout(timeout)
        try:
            return self._read_some()
        except (ReadTimeoutError, socket.timeout) as exc:
            if self._lingering:
                self._linger_expired = True
                return b""
            if self._deadline_at is not None and time.monotonic() >= self._deadline_at:
                raise APITimeoutError("the call's deadline passed while the stream was being read") from exc
            raise APITimeoutError(f"no data arrived within the read timeout: {exc}") from exc
        except DecodeError as exc:
            raise APIResponseError(f"the stream could not be decoded: {exc}", request_id=self.request_id) from exc
        except (HTTPError, HTTPException, OSError, requests.RequestException) as exc:
            if is_timeout(exc):
                raise APITimeoutError(f"the stream timed out: {exc}") from exc
            raise APIConnectionError(f"the connection broke during the stream: {exc}") from exc
        finally:
            if timeout is not None and self._socket is not None:
                try:
                    self._socket.settimeout(self._read_timeout)
                except OSError:  # urllib3 already closed the socket after a failed read
                    pass

    def _next_timeout(self) -> float | None:
        """The socket timeout for the next read, or None to leave the read timeout as it is."""
        timeout = None
        if self._lingering:
            timeout = LINGER_SECONDS
        if self._deadline_at is not None:
            left = self._deadline_at - time.monotonic()
            if left <= 0:
                raise APITimeoutError("the call's deadline passed while the stream was being read")
            timeout = left if timeout is None else min(timeout, left)
        if timeout is not None and self._read_timeout is not None:
            timeout = min(timeout, self._read_timeout)
        return timeout

    def _drain(self) -> None:
        """Read the few bytes after ``[DONE]`` so the connection can serve the next call."""
        try:
            while not self._linger_expired and self._read():
                pass
        except Exception:  # a broken tail after [DONE] loses nothing: the socket is dropped
            return
        if self._linger_expired:
            return
        raw = self.response.raw
        inner = getattr(raw, "_fp", None)
        if self._body_complete and inner is not None:
            inner.close()  # read to its end here, not by http.client: tell it so
        elif inner is not None and not inner.isclosed():
            return  # not known to be at a clean end: let the connection go
        release = getattr(raw, "release_conn", None)
        if release is not None:
            release()

    def _close(self) -> None:
        try:
            self.response.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass

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
        if "error" in chunk and chunk["error"] and not chunk.get("choices"):
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
        try:
            raw = self.response.content
        except (requests.RequestException, HTTPError, HTTPException, OSError) as exc:
            raise APIConnectionError(f"the connection broke while reading the answer: {exc}") from exc
        body = parse_completion(raw, self.request_id)
        choices = []
        for choice in body["choices"]:
            if isinstance(choice, dict) and "message" in choice:
                choice = dict(choice)
                choice["delta"] = choice.pop("message")
            choices.append(choice)
        return dict(body, choices=choices)


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (hexadecimal, maybe with ``;extensions``)."""
    try:
        size = int(line, 16)
    except ValueError:
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            size = -1
    if size < 0:
        raise APIConnectionError(f"the chunked body is malformed: {line[:40]!r}")
    return size


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


def iter_text(chunks: ChunkStream, *, chat: bool) -> Iterator[str]:
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


def iter_choices(chunks: ChunkStream) -> Iterator[tuple[int, str]]:
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


def _socket_of(raw: Any) -> socket.socket | None:
    """The socket under a urllib3 response, to set per-read timeouts (deadline, linger)."""
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a timeout (requests reports a
    read timeout during the body as a ``ConnectionError``)."""
    while exc is not None:
        if isinstance(exc, (socket.timeout, ReadTimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
