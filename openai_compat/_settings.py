"""What a client is set up with: its base URL checked, the environment's settings read, and
the switches of a call that are not wire fields.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

#: Paths that end an endpoint's URL, never a base URL.
ENDPOINT_PATHS = ("/chat/completions", "/completions", "/responses", "/embeddings", "/models")


def checked_base_url(owner: str, base_url: Any) -> str:
    """``base_url`` without a trailing slash, or an error that points at the fix."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        hint = ""
        if isinstance(base_url, str) and base_url and "/" not in base_url and ":" not in base_url:
            hint = f": did you mean {owner}(model={base_url!r})? The first argument is the server's base URL"
        raise ValueError(f"{owner}: base_url must be an http:// or https:// URL, got {base_url!r}{hint}")
    base_url = base_url.rstrip("/")
    for path in ENDPOINT_PATHS:
        if base_url.endswith(path):
            raise ValueError(f"{owner}: base_url {base_url!r} ends in the endpoint {path}; pass the base URL"
                             f" before it, {base_url[: -len(path)]!r}: each call adds its own path")
    return str(base_url)


def from_environment(owner: str, prefix: str, api_key: Any, model: str | None, headers: Any,
                      required: bool = True) -> tuple[str | None, Any, str | None]:
    """The base URL, key and model from ``{prefix}_BASE_URL``, ``_API_KEY`` and ``_MODEL``; what
    the caller passed wins. The key is read only with the base URL it belongs to."""
    base_url = os.environ.get(f"{prefix}_BASE_URL") or None
    if base_url is None:
        if required:
            raise ValueError(f"{owner}: no base URL: pass one, or set {prefix}_BASE_URL (with {prefix}_API_KEY and"
                             f" {prefix}_MODEL if the server needs them)")
        return None, api_key, model or os.environ.get(f"{prefix}_MODEL") or None
    has_authorization = any(str(k).lower() == "authorization" for k in (headers or {}))
    if api_key is None and not has_authorization:
        api_key = os.environ.get(f"{prefix}_API_KEY") or None
    return base_url, api_key, model or os.environ.get(f"{prefix}_MODEL") or None


def string_pairs(owner: str, name: str, value: Any) -> dict[str, str]:
    """``value`` (headers or query parameters), checked to map str to str; None gives {}."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{owner}: {name} must be a dict of str to str")
    return dict(value)


def labelled_and_extra(labelled: bool, reasoning: bool | dict[str, Any],
                       extra: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether pieces are labelled, and the wire fields: ``reasoning=True`` is the older spelling
    of ``labelled=True``; a dict is the wire's ``reasoning`` field."""
    if isinstance(reasoning, dict):
        return labelled, dict(extra, reasoning=reasoning)
    if not isinstance(reasoning, bool):
        raise TypeError(f"reasoning must be a dict (the wire field) or a bool (labelled=), got {reasoning!r:.40}")
    return labelled or reasoning, extra
