"""Keeping the API key out of sight: masked values, redaction, and headers checked unseen."""

from __future__ import annotations

from typing import Any, Dict, Mapping

import requests

#: Headers whose values are secrets, in lower case.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key"})


class Secret(str):
    """A value that shows as ``'***'`` in reprs, so a printed dict never leaks it."""

    def __repr__(self) -> str:
        return "'***'"


class MaskedHeaders(Dict[str, str]):
    """Headers whose values are plain ``str`` (requests 2.28 refuses a ``str`` subclass), shown
    with every secret header's value as ``***``."""

    def __repr__(self) -> str:
        shown = {k: "***" if k.lower() in SECRET_HEADERS else v for k, v in self.items()}
        return repr(shown)


class Secrets:
    """The secret values of one client, to be replaced by ``***`` wherever text is shown."""

    def __init__(self) -> None:
        self._values: list[Secret] = []

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} hidden)"

    def add(self, value: str) -> None:
        if value and len(value) >= 4 and value not in self._values:
            self._values.append(Secret(value))

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._values:
            text = text.replace(secret, "***")
        return text

    def mask_bytes(self, raw: bytes) -> bytes:
        """``raw`` with every secret replaced by as many ``*``: lengths (and so the framing of
        an HTTP body around them) stay as they were."""
        for secret in self._values:
            encoded = secret.encode("utf-8", "replace")
            raw = raw.replace(encoded, b"*" * len(encoded))
        return raw

    def found_in(self, raw: bytes) -> bool:
        """Whether any secret appears in ``raw``."""
        return any(secret.encode("utf-8", "replace") in raw for secret in self._values)

    def redact_bytes(self, raw: bytes) -> bytes:
        for secret in self._values:
            raw = raw.replace(secret.encode("utf-8", "replace"), b"***")
        return raw


class KeepAuthorization(requests.auth.AuthBase):
    """Leaves the request as it is.

    requests replaces an ``Authorization`` header with ``~/.netrc`` credentials for the host
    unless the request names an auth of its own: this one changes nothing.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def masked_headers(owner: str, headers: Mapping[str, str] | None, secrets: Secrets) -> dict[str, str]:
    """``headers`` checked, with secret values masked and added to ``secrets``.

    A bad value is refused without being shown: it may be a key.
    """
    checked: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if not isinstance(value, str) or any(ord(c) < 32 and c != "\t" for c in value):
            raise ValueError(f"{owner}: header {key!r} must be a str without line breaks or control characters")
        if key.lower() in SECRET_HEADERS:
            secrets.add(value.split(" ", 1)[-1])  # the bare token of "Bearer <token>"
            secrets.add(value)
            value = Secret(value)
        checked[key] = value
    return checked


def checked_key(owner: str, api_key: Any, secrets: Secrets) -> str:
    """``api_key``, checked and remembered as a secret (never shown, even when it is wrong)."""
    if not isinstance(api_key, str) or not api_key or any(c.isspace() or ord(c) < 32 for c in api_key):
        raise ValueError(f"{owner}: api_key is empty, not a str, or holds white space or control characters"
                         " (a trailing newline?)")
    secrets.add(api_key)
    return api_key
