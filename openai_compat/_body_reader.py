"""Reading a response body as it arrives, with per-read timeouts, then handing the connection back.

This is the only module that touches the internals of urllib3 and http.client. It relies on:

- ``response.raw._fp``: the ``http.client.HTTPResponse`` under urllib3's response, with
  ``chunked``, ``chunk_left``, ``isclosed()`` and ``close()``;
- ``response.raw._fp.fp``: its buffered socket file, whose ``read1()`` returns what has arrived;
- ``response.raw._connection.sock`` (urllib3 2) or ``response.raw._fp.fp.raw._sock`` (urllib3
  1.26): the socket, to set a timeout per read (deadline, linger);
- ``response.raw.release_conn()``: to give a connection read to its end back to the pool.

When one is missing, reading falls back: a plain chunked body without ``_fp.fp.read1`` is read
with urllib3's ``read1`` (urllib3 2) or in whole HTTP chunks (``iter_content``); without a
socket, the read timeout is left as requests set it (no deadline or linger inside a read); a
body not known to be at its clean end is closed rather than handed back.
"""

from __future__ import annotations

import socket
import time
from http.client import HTTPException
from typing import Any, Callable, Iterator

import requests
from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

from ._errors import APIConnectionError, APIResponseError, APITimeoutError

#: Bytes asked for per read; ``read1`` returns sooner with whatever has arrived.
READ_SIZE = 65536
#: Once the answer is complete, how long to wait for the end of the body before ending the
#: stream anyway (some servers hold the connection open).
LINGER_SECONDS = 1.0
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)  # where a chunked body is


class BodyReader:
    """The bytes of one response body, a read at a time, as they arrive.

    ``read()`` returns what has arrived (b"" at the end of the body), raising a typed error on
    a timeout, a broken connection or an undecodable body. Set ``lingering`` once nothing more
    is needed: reads then wait at most ``LINGER_SECONDS`` and end quietly.
    """

    def __init__(
        self, response: requests.Response, *, deadline_at: float | None = None, request_id: str | None = None
    ) -> None:
        self.response = response
        self.request_id = request_id
        self.lingering = False
        self.linger_expired = False
        self._deadline_at = deadline_at
        self._socket = _socket_of(response.raw)
        self._read_timeout = self._socket.gettimeout() if self._socket else None
        self._body_complete = False
        self._read_some = self._choose_reader()

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

    def read(self) -> bytes:
        """The bytes that have arrived (waiting for some), or b"" at the end of the body."""
        timeout = self._next_timeout()
        if timeout is not None and self._socket is not None:
            self._socket.settimeout(timeout)
        try:
            return self._read_some()
        except (ReadTimeoutError, socket.timeout) as exc:
            if self.lingering:
                self.linger_expired = True
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
        if self.lingering:
            timeout = LINGER_SECONDS
        if self._deadline_at is not None:
            left = self._deadline_at - time.monotonic()
            if left <= 0:
                raise APITimeoutError("the call's deadline passed while the stream was being read")
            timeout = left if timeout is None else min(timeout, left)
        if timeout is not None and self._read_timeout is not None:
            timeout = min(timeout, self._read_timeout)
        return timeout

    def read_all(self) -> bytes:
        """The whole body, for an answer that is not a stream."""
        try:
            return self.response.content
        except (requests.RequestException, HTTPError, HTTPException, OSError) as exc:
            raise APIConnectionError(f"the connection broke while reading the answer: {exc}") from exc

    def drain(self) -> None:
        """Read the few bytes left after the answer so the connection can serve the next call."""
        self.lingering = True
        try:
            while not self.linger_expired and self.read():
                pass
        except Exception:  # a broken tail after the answer loses nothing: the socket is dropped
            return
        if self.linger_expired:
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

    def close(self) -> None:
        """Close the response; a connection given back by ``drain()`` stays in the pool."""
        try:
            self.response.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass


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
