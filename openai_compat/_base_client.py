"""What every call of ``Client`` stands on: construction, the key and headers, the transport,
the per-thread call record, and a call's options and body.

The endpoints are in ``_endpoints.py`` (``EndpointsClient``), the front door in ``_client.py``.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, TypeVar
from urllib.parse import urlsplit

import requests

from ._json_output import Ladder
from ._options import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    CallOptions,
    Timeout,
    check_deadline,
    check_retries,
    check_timeout,
    resolve,
)
from ._params import KNOWN_NAMES, build_body, check_params
from ._reasoning import thinking_params
from ._record import CallRecord, UsageTotals
from ._secrets import Secrets, bearer, masked_headers
from ._transport import EventHook, Sent, Transport

if TYPE_CHECKING:
    from ._cassette import Cassette

_Self = TypeVar("_Self", bound="BaseClient")


class BaseClient:
    """Construction and per-call plumbing of ``Client``; use ``Client`` or a preset.

        >>> from openai_compat import Client
        >>> isinstance(Client("http://127.0.0.1:8080/v1"), BaseClient)
        True
    """

    #: Presets set these: the base URL used when none is given, and the variable holding the key.
    default_base_url: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None
    #: How ``thinking=`` reaches this kind of server: ``"reasoning_effort"``,
    #: ``"chat_template_kwargs"``, ``"reasoning"`` or ``"thinking"`` (None: no known switch).
    thinking_style: ClassVar[str | None] = None

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = None,
        session: requests.Session | None = None,
        event_hook: EventHook | None = None,
        stream_usage: bool = False,
        adapt: bool = False,
        cassette: Cassette | str | os.PathLike[str] | None = None,
    ) -> None:
        name = type(self).__name__
        base_url = base_url if base_url is not None else self.default_base_url
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: base_url must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = check_timeout(timeout)
        self.max_retries = check_retries(max_retries)
        self.deadline = check_deadline(deadline)
        secrets = Secrets()
        checked = masked_headers(name, headers, secrets)
        has_authorization = any(k.lower() == "authorization" for k in checked)
        if api_key is None and not has_authorization:
            api_key = self._key_from_env()
        if api_key is not None:
            if has_authorization:
                raise ValueError(f"{name}: pass the key as api_key= or as an Authorization header, not both")
            checked["Authorization"] = bearer(name, api_key, secrets)
        recorder = None
        if cassette is not None:
            from ._cassette import Cassette  # the modules of features not asked for stay unloaded

            cassette = cassette if isinstance(cassette, Cassette) else Cassette(cassette)
            recorder = cassette.adapter(secrets)
        self.cassette = cassette
        adaptations = None
        if adapt:
            from ._adapt import Adaptations

            adaptations = Adaptations()
        self._transport = Transport(self.base_url, checked, secrets, session, event_hook, adaptations, recorder)
        self._json_ladder = Ladder()  # the structured-output format this server took last
        #: Ask streams for their usage (``stream_options.include_usage``); some servers refuse it.
        self.stream_usage = stream_usage
        #: Running totals of every call's usage; ``client.usage.reset()`` starts again.
        self.usage = UsageTotals()
        self._local = threading.local()  # each thread's last call

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}  # a thread's record stays here

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @property
    def event_hook(self) -> EventHook | None:
        """The function called with a ``RequestEvent`` at each step of a call, or None."""
        return self._transport.event_hook

    @event_hook.setter
    def event_hook(self, hook: EventHook | None) -> None:
        self._transport.event_hook = hook

    def _key_from_env(self) -> str | None:
        env = self.api_key_env
        if env is None:
            return None
        default_host = urlsplit(self.default_base_url or "").hostname
        if urlsplit(self.base_url).hostname != default_host:
            # A preset's key belongs to its provider: never send it to another host.
            raise ValueError(
                f"{type(self).__name__}: {env} is only sent to {default_host}; pass api_key= to"
                f" use {self.base_url}"
            )
        key = os.environ.get(env)
        if not key:
            raise ValueError(f"{type(self).__name__}: no API key: set {env} or pass api_key=")
        return key

    def __repr__(self) -> str:
        model = f", model={self.model!r}" if self.model else ""
        return f"{type(self).__name__}(base_url={self.base_url!r}{model})"

    def close(self) -> None:
        """Close the connections, unless the session was yours (then it stays open)."""
        self._transport.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _body(
        self,
        call: str,
        model: str | None,
        base: dict[str, Any],
        params: dict[str, Any],
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """The body of a front-door ``call``, its parameters checked; ``""`` sends them unchecked.

        ``thinking=True/False/"low"...`` becomes the preset's own field; a dict is sent as it is
        (it is DeepSeek's own ``thinking`` field)."""
        if call:
            check_params(call, params, extra, KNOWN_NAMES)
            thinking = extra.get("thinking")
            if isinstance(thinking, (bool, str)):
                extra = {k: v for k, v in extra.items() if k != "thinking"}
                for key, value in thinking_params(self.thinking_style, thinking, type(self).__name__).items():
                    if key in extra or params.get(key) is not None:
                        raise ValueError(f"{call}(): thinking= sets {key}, which you also passed: pass one of them")
                    extra[key] = value
        return build_body(model if model is not None else self.model, type(self).__name__, base, params, extra)

    def _media(
        self, messages: list[Any], images: Any, audio: Any, detail: str | None, inline_urls: bool
    ) -> list[Any]:
        """``messages`` with images and audio added to the last user message."""
        if not images and not audio:
            return messages
        from ._media import attach, downloader

        fetch = downloader(self._transport.session, self._transport.settings_for) if inline_urls else None
        return attach(messages, images, audio, detail, fetch)

    def _call_options(self, timeout: Timeout, max_retries: int | None, deadline: float | None) -> CallOptions:
        """A call's timeout, retries and deadline: its own where given, else the client's."""
        defaults = CallOptions(self.timeout, self.max_retries, self.deadline)
        if timeout is NOT_GIVEN and max_retries is None and deadline is NOT_GIVEN:
            return defaults  # the usual call, with nothing of its own to check
        return resolve(defaults, timeout, max_retries, deadline)

    def _new_record(self, path: str, sent: Sent) -> CallRecord:
        record = CallRecord(path, sent.response.status_code, sent.request_id, sent.attempt, sent.response.headers)
        self._local.last = record
        return record

    @property
    def last(self) -> CallRecord | None:
        """This thread's last call: its usage, finish reason, request id, rate limits, timings.

        Each thread sees its own, so ``batch()`` and your threads never mix them up. A stream's
        record fills in when the stream ends (``partial`` if it was closed before its end).
        """
        return getattr(self._local, "last", None)
