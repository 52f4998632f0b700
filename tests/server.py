"""A loopback HTTP server for the tests, writing raw bytes so framing and faults can be staged.

Each test sets ``server.handler`` to a function of ``(request, wire)``: ``request`` is what the
client sent (method, path, headers, parsed JSON body), ``wire`` writes the answer byte by byte:
whole JSON answers, SSE streams in any framing (chunked, close-delimited, gzip), pauses, resets,
stalls. The server records every request and counts connections.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

Piece = Union[bytes, str, float]  # bytes or text to write, or seconds to pause


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    connection: int
    received_at: float = 0.0  # time.monotonic() when the request was read
    number: int = 0  # its place among every request this server has read, from 1

    @property
    def json(self) -> Any:
        return json.loads(self.raw_body) if self.raw_body else None


@dataclass
class Wire:
    """Writes one answer on the socket of one connection."""

    sock: socket.socket
    keep_alive: bool = True
    closed: bool = False

    def write(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def head(self, status: int, headers: dict[str, str], reason: str = "") -> None:
        lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.write("\r\n".join(lines) + "\r\n\r\n")

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.body(raw, status, {"Content-Type": "application/json", **(headers or {})})

    def body(self, raw: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.head(status, {"Content-Length": str(len(raw)), **(headers or {})})
        self.write(raw)

    def sse(
        self,
        pieces: Iterable[Piece],
        *,
        framing: str = "chunked",
        gzip: bool = False,
        write_size: int | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        end: bool = True,
    ) -> None:
        """Stream ``pieces`` (text, bytes, or a float to pause that long).

        ``framing`` is ``chunked`` or ``close`` (no length: the end is the connection closing).
        ``write_size`` splits every piece into writes of that many bytes. ``end=False`` stops
        without the end of the body (no chunked terminator, no close).
        """
        head = {"Content-Type": "text/event-stream", **(headers or {})}
        if framing == "chunked":
            head["Transfer-Encoding"] = "chunked"
        else:
            head["Connection"] = "close"
            self.keep_alive = False
        if gzip:
            head["Content-Encoding"] = "gzip"
            compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        self.head(status, head)
        for piece in pieces:
            if isinstance(piece, float):
                time.sleep(piece)
                continue
            data = piece.encode() if isinstance(piece, str) else piece
            if gzip:
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            step = write_size or len(data) or 1
            for i in range(0, len(data), step):
                part = data[i : i + step]
                self.write(b"%x\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part)
        if not end:
            return
        if gzip:
            tail = compressor.flush()
            self.write(b"%x\r\n%s\r\n" % (len(tail), tail) if framing == "chunked" else tail)
        if framing == "chunked":
            self.write(b"0\r\n\r\n")
        else:
            self.close()

    def slices(self, head: bytes | str, slices: Iterable[bytes | str], close: bool = False) -> None:
        """Write ``head`` and then each slice, waiting for the client to have read the bytes
        before it: each slice reaches the client in reads of its own, so a test decides where
        every read boundary falls. ``close`` ends a close-delimited body."""
        self.write(head)
        for piece in slices:
            self.wait_until_read()
            self.write(piece)
        if close:
            self.wait_until_read()
            self.close()

    def wait_until_read(self, limit: float = 5.0) -> None:
        """Wait until the client's socket holds nothing unread, or ``limit`` seconds.

        The client runs in this process: its socket is found among our own descriptors and
        asked how many bytes wait unread (Linux). Elsewhere, a pause of 50 ms stands in."""
        client_end = (self.sock.getpeername()[:2], self.sock.getsockname()[:2])
        give_up = time.monotonic() + limit
        while time.monotonic() < give_up:
            unread = _unread_at_client(*client_end)
            if unread is not None:
                unread += _queued(self.sock, _NOT_YET_SENT)
            if unread is None:
                time.sleep(0.05)
                return
            if unread == 0:
                return
            time.sleep(0.001)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def reset(self) -> None:
        """Close with a TCP reset, as a crashed server or a proxy cutting in would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.closed = True
        self.sock.close()

    def stall(self, seconds: float) -> None:
        """Say nothing for ``seconds`` (or until the client gives up), then close."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.close()


def _unread_at_client(local: tuple, remote: tuple) -> int | None:
    """Bytes waiting unread on this process's socket from ``local`` to ``remote``, if found."""
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in descriptors:
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            with socket.fromfd(int(name), socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.getsockname()[:2] != local or probe.getpeername()[:2] != remote:
                    continue
                return _queued(probe, "FIONREAD")
        except OSError:
            continue
    return None


_NOT_YET_SENT = 0x894B  # Linux SIOCOUTQNSD: bytes in the send queue not yet sent (unlike TIOCOUTQ,
# which also counts bytes sent and waiting for an ACK the client may delay by 40 ms)


def _queued(sock: socket.socket, request: str | int) -> int:
    import fcntl
    import termios

    code = getattr(termios, request) if isinstance(request, str) else request
    count = fcntl.ioctl(sock.fileno(), code, b"\0\0\0\0")
    return int(struct.unpack("i", count)[0])


Handler = Callable[[Request, Wire], None]


class LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1 (or another loopback address) in a background thread."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.host = host
        self.tls = tls  # serves HTTPS with this context
        self.port = self.listener.getsockname()[1]
        self.requests: list[Request] = []
        self.connections = 0
        self.handler: Handler = lambda request, wire: wire.json(completion("ok"))
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/v1"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # every write goes out at once
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    sock.close()  # a client that does not trust the certificate hangs up
                    with self._lock:
                        self.connections += 1
                    continue
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.append(sock)
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        reader = sock.makefile("rb")
        try:
            while True:
                request = _read_request(reader, number)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    request.number = len(self.requests)
                wire = Wire(sock)
                self.handler(request, wire)
                if wire.closed or not wire.keep_alive:
                    wire.close()
                    return
        except (OSError, ValueError):
            return
        except BaseException as exc:  # a failing handler must show up in the test
            self.errors.append(exc)
        finally:
            try:  # the socket's file descriptor stays open until its reader is closed as well
                reader.close()
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stopped = True
        self.listener.close()
        with self._lock:
            for sock in self._open:
                try:
                    sock.close()
                except OSError:
                    pass


def _read_request(reader: Any, number: int) -> Request | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, value = line.decode("latin-1").split(":", 1)
        headers[key.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body, number, time.monotonic())


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout", 307: "Temporary Redirect", 308: "Permanent Redirect"}


# -- answers in the OpenAI shape ---------------------------------------------------------------


def completion(text: str, *, chat: bool = True, finish_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    """A whole non-streamed answer carrying ``text``."""
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish_reason}
    return {
        "id": "cmpl-1",
        "object": "chat.completion" if chat else "text_completion",
        "model": "test-model",
        "choices": [choice],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        **extra,
    }


def chunk(text: str | None = None, *, chat: bool = True, finish_reason: str | None = None,
          index: int = 0, **extra: Any) -> dict[str, Any]:
    """One streamed chunk."""
    if chat:
        delta = {} if text is None else {"content": text}
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish_reason}
    else:
        choice = {"index": index, "text": text or "", "finish_reason": finish_reason}
    return {"id": "chunk-1", "object": "chat.completion.chunk" if chat else "text_completion",
            "choices": [choice], **extra}


def event(obj: Any) -> str:
    """``obj`` as one SSE data event."""
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def stream_of(pieces: Iterable[str], *, chat: bool = True, done: bool = True) -> list[str]:
    """SSE events for ``pieces``, a finish chunk and ``[DONE]``."""
    events = [event(chunk(p, chat=chat)) for p in pieces]
    events.append(event(chunk(None if chat else "", chat=chat, finish_reason="stop")))
    if done:
        events.append("data: [DONE]\n\n")
    return events



def points_at(filename: str, test_file: str) -> bool:
    """Whether a warning's ``filename`` is the test's own file. Under mutation testing mutmut's
    trampoline stands between a test and the SDK, so there any file outside the SDK counts."""
    import openai_compat

    package = os.path.dirname(os.path.abspath(openai_compat.__file__))
    if f"{os.sep}mutants{os.sep}" not in package:
        return filename == test_file
    return not os.path.abspath(filename).startswith(package + os.sep)


def json_with_id(body: Any, request_id: str) -> Handler:
    """A handler answering every request with ``body`` and an ``x-request-id`` header."""
    return lambda request, wire: wire.json(body, headers={"x-request-id": request_id})
