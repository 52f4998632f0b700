"""Images and audio in a chat: files, bytes, URLs and PIL images as content parts.

An item becomes an ``image_url`` part (a URL, or a ``data:`` URL with the file inside) or an
``input_audio`` part (``data`` in base64 and its ``format``). The type comes from the file's
first bytes, then from its name; anything unknown, unreadable or empty is refused before
anything is sent.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from typing import Any, Callable, Sequence, Union

import requests

from ._secrets import SECRET_HEADERS

#: What an image or audio item may be: a path, bytes, an http(s) or data: URL, a PIL image.
Media = Union[str, "os.PathLike[str]", bytes, Any]
#: The most a download with ``inline_urls=True`` may bring, and how long it may take.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT = (5.0, 30.0)

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)
#: The audio the API's ``input_audio`` part takes (wav and mp3, as the published spec allows).
AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3"}
_RAW_AUDIO_PART = ('send it anyway as a content part of your own: {"type": "input_audio", "input_audio": {"data":'
                   ' <base64>, "format": "%s"}}')


def sniff(data: bytes, name: str = "") -> str | None:
    """The MIME type of ``data`` from its first bytes, else from ``name``; None if unknown.

        >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n..."), sniff(b"RIFF\\0\\0\\0\\0WAVEfmt "), sniff(b"??", "clip.mp3")
        ('image/png', 'audio/wav', 'audio/mpeg')
    """
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if data[8:12] == b"WEBP" else "audio/wav"
    if data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    guessed = mimetypes.guess_type(name)[0] if name else None
    return "audio/wav" if guessed == "audio/x-wav" else guessed


class _NoSecrets(requests.auth.AuthBase):
    """Takes every secret header off a download: the key never goes to an image host, even
    from a caller's session that carries one (and ``~/.netrc`` is not consulted)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in list(request.headers):
            if name.lower() in SECRET_HEADERS:
                del request.headers[name]
        return request


def downloader(
    session: requests.Session, settings_for: Callable[[str], dict[str, Any]]
) -> Callable[[str], bytes]:
    """Fetch a URL through ``session`` with ``settings_for(url)`` (its proxies and CA bundle),
    capped in size and time."""

    def fetch(url: str) -> bytes:
        settings = settings_for(url)
        try:
            with session.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT, auth=_NoSecrets(), **settings) as response:
                response.raise_for_status()
                data = bytearray()
                for piece in response.iter_content(65536):
                    data += piece
                    if len(data) > MAX_DOWNLOAD_BYTES:
                        raise ValueError(f"{url} is larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB")
                return bytes(data)
        except requests.RequestException as exc:
            raise ValueError(f"cannot download {url}: {exc}") from None

    return fetch


def _read(item: Media, what: str, fetch: Callable[[str], bytes] | None) -> tuple[bytes, str]:
    """The bytes of ``item`` and a name to guess its type from."""
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), ""
    if isinstance(item, str) and item.startswith(("http://", "https://")):
        if fetch is None:
            raise ValueError(f"{what} {item!r} is a URL: pass inline_urls=True to send it inline")
        return fetch(item), item.split("?", 1)[0]
    if callable(getattr(item, "save", None)) and not isinstance(item, (str, os.PathLike)):
        buffer = io.BytesIO()
        item.save(buffer, format="PNG")  # a PIL image, or anything that saves like one
        return buffer.getvalue(), "image.png"
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        try:
            with open(path, "rb") as file:
                return file.read(), path
        except OSError as exc:
            raise ValueError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    raise TypeError(f"{what} must be a path, bytes, a URL or an image with save(), got {type(item).__name__}")


def image_part(item: Media, detail: str | None, fetch: Callable[[str], bytes] | None) -> dict[str, Any]:
    """An ``image_url`` content part for ``item``; http(s) URLs stay URLs unless ``fetch`` is given."""
    if isinstance(item, str) and (item.startswith("data:") or (fetch is None and item.startswith(("http://",
                                                                                                  "https://")))):
        url = item
    else:
        data, name = _read(item, "image", fetch)
        mime = _checked(data, name, "image")
        url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    image: dict[str, Any] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def audio_part(item: Media, fetch: Callable[[str], bytes] | None) -> dict[str, Any]:
    """An ``input_audio`` content part for ``item`` (its data in base64, and its format)."""
    if isinstance(item, str) and item.startswith("data:"):
        head, _, encoded = item.partition(",")
        mime = head[5:].split(";", 1)[0]
        if mime not in AUDIO_FORMATS:
            raise ValueError(f"audio data URL of type {mime!r}: the API takes wav or mp3 audio; convert it, or "
                             + _RAW_AUDIO_PART % mime.split("/")[-1])
        return {"type": "input_audio", "input_audio": {"data": encoded, "format": AUDIO_FORMATS[mime]}}
    data, name = _read(item, "audio", fetch)
    mime = _checked(data, name, "audio")
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode("ascii"),
                                                   "format": AUDIO_FORMATS[mime]}}


def _checked(data: bytes, name: str, what: str) -> str:
    shown = name or f"{len(data)} bytes"
    if not data:
        raise ValueError(f"{what} {shown!r} is empty")
    mime = sniff(data, name)
    wanted = AUDIO_FORMATS if what == "audio" else ("image/png", "image/jpeg", "image/gif", "image/webp")
    if mime is None or mime not in wanted:
        kinds = "WAV or MP3" if what == "audio" else "PNG, JPEG, GIF or WebP"
        fix = f"; convert it, or {_RAW_AUDIO_PART % mime.split('/')[-1]}" if what == "audio" and mime else ""
        raise ValueError(f"{what} {shown!r} is not {kinds} (its type is {mime or 'unknown'}){fix}")
    return mime


def attach(
    messages: list[Any],
    images: Sequence[Media] | None,
    audio: Sequence[Media] | None,
    detail: str | None,
    fetch: Callable[[str], bytes] | None,
) -> list[Any]:
    """``messages`` with the parts of ``images`` and ``audio`` appended to the last user message
    (copied: the caller's messages are never changed)."""
    if not images and not audio:
        return messages
    for name, items in (("images", images), ("audio", audio)):
        if items is not None and (isinstance(items, (str, bytes)) or not isinstance(items, Sequence)):
            raise TypeError(f"{name} must be a list of items, got {type(items).__name__}")
    parts = [image_part(i, detail, fetch) for i in images or ()] + [audio_part(a, fetch) for a in audio or ()]
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    if last is None:
        raise ValueError("images and audio go with a user message, and there is none")
    content = messages[last].get("content")
    text = [{"type": "text", "text": content}] if isinstance(content, str) and content else []
    old = list(content) if isinstance(content, list) else text
    copied = list(messages)
    copied[last] = dict(messages[last], content=[*old, *parts])
    return copied
