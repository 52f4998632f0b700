"""Reading a response body as it arrives, with per-read timeouts, then handing the connection back.

This is the only module that touches the internals of urllib3 and http.client. It relies on:

- ``response.raw._fp``: the ``http.client.HTTPResponse`` under urllib3's response (urllib3 1.26
  and 2), with ``read1()``, ``chunked``, ``chunk_left``, ``isclosed()`` and ``close()``;
- ``response.raw._fp.fp``: its buffered socket file, whose ``read1()`` returns what has arrived;
- ``response.raw._fp.fp.raw._sock``: the socket, to set a timeout per read (deadline, linger);
- ``response.raw.release_conn()``: to give a connection read to its end back to the pool;
- for recording (``tap_body``), ``_fp.fp`` is replaced by a pass-through that sees every read.

Reading goes through http.client directly, and gzip and deflate are decoded here, so a piece
reaches the caller when its bytes arrive on urllib3 1.26 as on 2 (1.26 has no ``read1``). When
one of these is missing, reading falls back: without ``_fp.fp.read1`` a chunked body is read
through ``_fp.read1`` (one HTTP chunk a read); without ``_fp.read1``, or for an encoding other
than gzip and deflate, through urllib3's ``read1(decode_content=True)`` (urllib3 2.3 and later),
else in whole HTTP chunks (``iter_content``), which holds back a body that is not chunked
until it ends. Without a socket, the read timeout is left as requests set it (no deadline or
linger inside a read). A body not known to be at its clean end is closed, not handed back.
"""

from __future__ import annotations

import socket
import time
import zlib
from http.client import HTTPException
from typing import Any, Callable, Iterator

import requests
from urllib3.exceptions import DecodeError, HTTPError

from ._connection import is_timeout, whole_body
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
        self._deadline_at = deadline_at
        self._socket = _socket_of(response.raw)
        self._read_timeout = self._socket.gettimeout() if self._socket else None
        self._body_complete = False
        self._read_some = self._choose_reader()

    def _choose_reader(self) -> Callable[[], bytes]:
        """A function returning the body bytes that have arrived, decoded, and b"" at its end.

        A chunked body is de-chunked here straight off the connection's buffer, so one read
        takes every event that has arrived: http.client hands over one HTTP chunk, that is one
        event, per read. Any other body is read with http.client's ``read1``.
        """
        raw = self.response.raw
        inner: Any = getattr(raw, "_fp", None)
        buffer = getattr(inner, "fp", None)
        encoding = self.response.headers.get("content-encoding", "identity").strip().lower()
        if hasattr(inner, "read1") and encoding in _DECODERS:
            unread_chunked = inner.chunked and inner.chunk_left is None  # http.client's own state
            if unread_chunked and hasattr(buffer, "read1"):
                pieces = self._dechunk(buffer)
                source: Callable[[], bytes] = lambda: next(pieces, b"")  # noqa: E731
            else:
                source = lambda: inner.read1(READ_SIZE)  # noqa: E731
            return _decoding(source, _DECODERS[encoding]) if _DECODERS[encoding] else source
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
        """The bytes that have arrived (waiting for some), or b"" at the end of the body.

        Once ``lingering``, a timeout or a broken connection ends the body quietly: the answer
        is complete and nothing is lost. Otherwise every failure raises a typed error.
        """
        timeout = self._next_timeout()
        try:
            if timeout is not None and self._socket is not None:
                self._socket.settimeout(timeout)
            return self._read_some()
        except (DecodeError, zlib.error) as exc:
            raise APIResponseError(f"the stream could not be decoded: {exc}", request_id=self.request_id) from exc
        except (HTTPError, HTTPException, OSError, requests.RequestException) as exc:
            if self.lingering:
                return b""
            if not is_timeout(exc):
                raise APIConnectionError(f"the connection broke during the stream: {exc}") from exc
            if self._deadline_at is not None and time.monotonic() >= self._deadline_at:
                raise APITimeoutError("the call's deadline passed while the stream was being read") from exc
            seconds = f" of {self._read_timeout:g} s" if self._read_timeout is not None else ""
            raise APITimeoutError(f"no data arrived within the read timeout{seconds} while reading the stream from"
                                  f" {self.response.url}") from exc
        finally:
            if timeout is not None and self._socket is not None:
                try:
                    self._socket.settimeout(self._read_timeout)
                except OSError:  # the socket was already closed after a failed read
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
            return whole_body(self.response)
        except (requests.RequestException, HTTPError, HTTPException, OSError) as exc:
            raise APIConnectionError(f"the connection broke while reading the answer: {exc}") from exc

    def drain(self) -> None:
        """Read the few bytes left after the answer so the connection can serve the next call."""
        self.lingering = True
        try:
            while self.read():
                pass
        except Exception:  # a broken tail after the answer loses nothing: the socket is dropped
            return
        # A body whose linger ran out is not at its end: http.client's response is still open,
        # and urllib3 has closed a connection whose read failed. Neither goes back to the pool.
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


class _Inflate:
    """Decodes a gzip (every member) or deflate body, zlib-wrapped or raw, piece by piece."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        # "deflate" is a zlib stream by the RFC, but some servers send it raw. Until the zlib
        # header (2 bytes) has checked out, the bytes are kept to start over as raw.
        self._undecided: bytes | None = b"" if wbits == zlib.MAX_WBITS else None
        self._decompressor = zlib.decompressobj(wbits)

    def __call__(self, data: bytes) -> bytes:
        if self._undecided is None:
            out = self._decompressor.decompress(data)
        else:
            self._undecided += data
            try:
                out = self._decompressor.decompress(data)
            except zlib.error:
                self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._decompressor.decompress(self._undecided)
                self._undecided = None
            else:
                if len(self._undecided) >= 2:
                    self._undecided = None
        while self._decompressor.eof and self._decompressor.unused_data:
            rest = self._decompressor.unused_data  # the next gzip member
            self._decompressor = zlib.decompressobj(self._wbits)
            out += self._decompressor.decompress(rest)
        return out


_DECODERS = {"identity": 0, "": 0, "gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
             "deflate": zlib.MAX_WBITS}


def _decoding(source: Callable[[], bytes], wbits: int) -> Callable[[], bytes]:
    """``source`` decompressed; never b"" before the body ends (a read may decode to nothing)."""
    inflate = _Inflate(wbits)

    def read() -> bytes:
        while True:
            data = source()
            if not data:
                return b""
            out = inflate(data)
            if out:
                return out

    return read


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
    """The socket under a urllib3 response, to set per-read timeouts (deadline, linger): under
    http.client's buffered socket file, the same on urllib3 1.26 and 2."""
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Tap:
    """Passes reads through from a buffered socket file, telling ``seen`` what each brought."""

    def __init__(self, inner: Any, seen: Callable[[bytes], None], done: Callable[[], None]) -> None:
        self._inner = inner
        self._seen = seen
        self._done: Callable[[], None] | None = done

    def _pass(self, data: bytes) -> bytes:
        if data:
            self._seen(bytes(data))
        return data

    def read(self, *args: Any) -> bytes:
        return self._pass(self._inner.read(*args))

    def read1(self, *args: Any) -> bytes:
        return self._pass(self._inner.read1(*args))

    def readline(self, *args: Any) -> bytes:
        return self._pass(self._inner.readline(*args))

    def readinto(self, buffer: Any) -> int:
        count = int(self._inner.readinto(buffer))
        self._pass(bytes(memoryview(buffer)[:count]))
        return count

    def close(self) -> None:
        self._inner.close()
        if self._done is not None:
            done, self._done = self._done, None
            done()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def tap_body(response: requests.Response, seen: Callable[[bytes], None], done: Callable[[], None]) -> None:
    """Have ``seen`` called with the body's bytes as they are read off the connection (chunk
    framing and compression included), and ``done`` once the body has been read or closed."""
    inner = getattr(response.raw, "_fp", None)
    if inner is None or getattr(inner, "fp", None) is None:
        done()  # no body left to read (or no http.client under it)
        return
    inner.fp = _Tap(inner.fp, seen, done)
