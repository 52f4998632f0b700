"""Record and replay: test code that calls a server, without the server or its key.

A cassette is a JSON-lines file, one line per call: the request (method, path, JSON body) and
the response (status, headers, and the body's bytes as they came off the connection, with the
pause before each piece). Replay builds a real HTTP response from those bytes, so the whole
reading stack (http.client, urllib3, the chunked decoder, Server-Sent Events, chunk parsing)
runs exactly as it did live. Nothing secret is written: request headers are not kept at all,
and the key is redacted from every body.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import threading
import time
import zlib
from typing import Any, Iterable

import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

from ._body_reader import tap_body
from ._errors import OpenAICompatError
from ._secrets import Secrets

MODES = ("record", "replay", "once")
#: Response headers never written (they may carry a session or a secret).
_DROPPED_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authorization", "www-authenticate"})


class CassetteError(OpenAICompatError):
    """A request in replay that the cassette did not record; the message shows the closest one."""


class Cassette:
    """A file of recorded calls, for ``Client(cassette=...)``.

    ``mode`` is ``"record"`` (call the server, write every call), ``"replay"`` (never touch the
    network; a request not in the file raises ``CassetteError``) or ``"once"`` (replay when the
    file exists, else record). ``ignore`` names body fields left out of matching (``"user"``,
    ``"seed"``, ...). ``realtime=True`` keeps the recorded pauses in replay.

        >>> from openai_compat import Cassette, Client
        >>> cassette = Cassette("/tmp/openai-compat-doc.jsonl", mode="record")
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny", cassette=cassette)
        >>> text = client.chat("Hi", max_tokens=5)
        >>> replayed = Client("http://127.0.0.1:9/v1", model="tiny",
        ...                   cassette=Cassette("/tmp/openai-compat-doc.jsonl", mode="replay"))
        >>> replayed.chat("Hi", max_tokens=5) == text
        True
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "once", *, ignore: Iterable[str] = (),
                 realtime: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"cassette mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.path = os.fspath(path)
        self.mode = "replay" if mode == "once" and os.path.exists(self.path) else (
            "record" if mode == "once" else mode)
        self.ignore = frozenset(ignore)
        self.realtime = realtime
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._used: set[int] = set()
        if self.mode == "replay":
            try:
                with open(self.path, encoding="utf-8") as file:
                    self._entries = [json.loads(line) for line in file if line.strip()]
            except OSError as exc:
                raise CassetteError(f"cannot replay {self.path}: {exc.strerror or exc} (record it first)") from None
        else:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            open(self.path, "w").close()  # record: start the file afresh

    def __repr__(self) -> str:
        return f"Cassette({self.path!r}, mode={self.mode!r}, {len(self._entries)} calls)"

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}  # a lock belongs to its process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _adapter(self, secrets: Secrets) -> BaseAdapter:
        """The requests adapter that records into, or replays from, this cassette."""
        return _ReplayAdapter(self) if self.mode == "replay" else _RecordAdapter(self, secrets)

    # -- recording ----------------------------------------------------------------------------------

    def _add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    # -- replaying ----------------------------------------------------------------------------------

    def _take(self, method: str, path: str, body: Any) -> dict[str, Any]:
        wanted = self._key(method, path, body)
        with self._lock:
            for i, entry in enumerate(self._entries):
                if i not in self._used and self._key(**entry["request"]) == wanted:
                    self._used.add(i)
                    return entry
        raise CassetteError(self._miss(method, path, body))

    def _key(self, method: str, path: str, body: Any) -> str:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in self.ignore}
        return json.dumps([method.upper(), path, body], sort_keys=True)

    def _miss(self, method: str, path: str, body: Any) -> str:
        def differences(recorded: dict[str, Any]) -> list[str]:
            diffs = [f"{name}: {recorded[name]!r} recorded, {now!r} now" for name, now in
                     (("method", method), ("path", path)) if recorded[name] != now]
            old = recorded["body"] if isinstance(recorded["body"], dict) else {}
            new = body if isinstance(body, dict) else {}
            for key in sorted((set(old) | set(new)) - self.ignore):
                if old.get(key) != new.get(key):
                    was, now = json.dumps(old.get(key))[:80], json.dumps(new.get(key))[:80]
                    diffs.append(f"body.{key}: {was} recorded, {now} now")
            return diffs

        if not self._entries:
            return f"the cassette {self.path} holds no calls, and replay never calls the server"
        closest = min((differences(e["request"]) for e in self._entries), key=len)
        shown = "\n  ".join(closest) or "(the same request, but every recorded answer to it was used already)"
        return (f"{method} {path} is not in the cassette {self.path}; the closest recorded call differs in:\n  {shown}"
                "\nRecord again (mode='record'), or pass ignore=(...) for fields that change from run to run")


def _text_or_base64(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _bytes_of(piece: dict[str, str]) -> bytes:
    return piece["text"].encode("utf-8") if "text" in piece else base64.b64decode(piece["base64"])


def _without_secrets(pieces: list[tuple[float, bytes]], headers: dict[str, str],
                     secrets: Secrets) -> list[tuple[float, bytes]]:
    """The body's pieces with every secret masked, same length for same length, so the body's
    framing stays valid. A compressed body whose text holds a secret is kept decoded instead
    (its encoding headers dropped): compressed bytes cannot be masked."""
    encoding = headers.get("Content-Encoding", headers.get("content-encoding", "identity")).lower()
    if encoding in ("gzip", "deflate"):
        decoded = _decoded_body(b"".join(data for _, data in pieces), headers, encoding)
        if decoded is not None and secrets.found_in(decoded):
            framing = ("content-encoding", "transfer-encoding", "content-length")
            for name in [k for k in headers if k.lower() in framing]:
                del headers[name]
            headers["Content-Length"] = str(len(decoded))
            return [(0.0, secrets.mask_bytes(decoded))]
    # Masking keeps lengths: mask the whole body at once (a secret may straddle two reads) and
    # cut it again where the reads ended.
    masked, kept, at = secrets.mask_bytes(b"".join(data for _, data in pieces)), [], 0
    for after, data in pieces:
        kept.append((after, masked[at : at + len(data)]))
        at += len(data)
    return kept


def _decoded_body(raw: bytes, headers: dict[str, str], encoding: str) -> bytes | None:
    """The body as its reader would see it: de-chunked and decompressed; None if it cannot be."""
    chunked = headers.get("Transfer-Encoding", headers.get("transfer-encoding", "")).lower() == "chunked"
    response = http.client.HTTPResponse(_RecordedSocket(_Pieces(  # type: ignore[arg-type]
        ("HTTP/1.1 200 OK\r\n" + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(raw)}\r\n")
         + "\r\n").encode("latin-1"), [{"base64": base64.b64encode(raw).decode()}], False)))
    try:
        response.begin()
        return zlib.decompress(response.read(), 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    except (OSError, http.client.HTTPException, zlib.error):
        return None


class _RecordAdapter(HTTPAdapter):
    """Sends as usual, and writes each call to the cassette once its body has been read."""

    def __init__(self, cassette: Cassette, secrets: Secrets) -> None:
        super().__init__()
        self.cassette = cassette
        self.secrets = secrets

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        body = request.body.decode("utf-8") if isinstance(request.body, bytes) else request.body
        path = request.path_url
        last = [time.monotonic()]

        pieces: list[tuple[float, bytes]] = []

        def seen(data: bytes) -> None:
            now = time.monotonic()
            pieces.append((round(now - last[0], 4), data))
            last[0] = now

        def done() -> None:
            headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS}
            kept = _without_secrets(pieces, headers, self.secrets)
            self.cassette._add({
                "request": {"method": request.method or "GET", "path": path,
                            "body": json.loads(self.secrets.redact(body)) if body else None},
                "response": {"status": response.status_code, "reason": response.reason, "headers": headers,
                             "pieces": [{"after": after, **_text_or_base64(data)} for after, data in kept]},
            })

        tap_body(response, seen, done)
        return response


class _Pieces(io.RawIOBase):
    """A socket's worth of bytes: the recorded head, then each piece, pausing when told to."""

    def __init__(self, head: bytes, pieces: list[dict[str, Any]], realtime: bool) -> None:
        self._queue = [(0.0, head)] + [(float(p.get("after", 0)), _bytes_of(p)) for p in pieces]
        self._realtime = realtime
        self._current = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._current:
            if not self._queue:
                return 0
            pause, self._current = self._queue.pop(0)
            if self._realtime and pause > 0:
                time.sleep(pause)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


class _RecordedSocket:
    """What ``http.client.HTTPResponse`` needs of a socket: ``makefile()``."""

    def __init__(self, raw: _Pieces) -> None:
        self._raw = raw

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(self._raw)


class _ReplayAdapter(BaseAdapter):
    """Answers each request from the cassette, through the real HTTP reading stack."""

    def __init__(self, cassette: Cassette) -> None:
        super().__init__()
        self.cassette = cassette

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        body = request.body.decode("utf-8") if isinstance(request.body, bytes) else request.body
        entry = self.cassette._take(request.method or "GET", request.path_url, json.loads(body) if body else None)
        recorded = entry["response"]
        head = f"HTTP/1.1 {recorded['status']} {recorded.get('reason') or ''}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in recorded["headers"].items()) + "\r\n"
        raw = _Pieces(head.encode("latin-1"), recorded["pieces"], self.cassette.realtime)
        parsed = http.client.HTTPResponse(_RecordedSocket(raw), method=request.method)  # type: ignore[arg-type]
        parsed.begin()
        response = urllib3.HTTPResponse(
            body=parsed, headers=dict(parsed.getheaders()), status=parsed.status, reason=parsed.reason,
            preload_content=False, decode_content=False, original_response=parsed,
        )
        return HTTPAdapter().build_response(request, response)

    def close(self) -> None:
        pass
