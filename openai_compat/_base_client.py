"""The lower layer of ``Client``: construction, ``create_*`` calls, and the glue to sending.

``create_chat_completion()`` and ``create_completion()`` take a request body in wire names and
return the parsed JSON, or the parsed chunks of a stream. ``Client`` (``_client.py``) builds its
front-door methods on the private helpers here.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, ClassVar, Literal, Mapping, TypeVar, overload
from urllib.parse import urlsplit

import requests

from ._adapt import Adaptations
from ._chunks import parse_completion, parse_object
from ._json_output import Ladder
from ._media import attach, downloader
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
from ._params import KNOWN_NAMES, build_body, check_messages, check_params
from ._probe import ProbeReport, models_of, run_probe
from ._reasoning import message_reasoning, split_think, thinking_params
from ._record import CallRecord, RateLimits, UsageTotals
from ._secrets import Secrets, bearer, masked_headers
from ._sse import ChunkStream
from ._transport import EventHook, Sent, Transport

_Self = TypeVar("_Self", bound="BaseClient")


class BaseClient:
    """Construction and the lower layer of ``Client``; use ``Client`` or a preset.

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
        self._transport = Transport(self.base_url, checked, secrets, session, event_hook,
                                    Adaptations() if adapt else None)
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

    # -- the lower layer -------------------------------------------------------------------

    @overload
    def create_chat_completion(
        self, *, stream: Literal[False] = False, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any]: ...

    @overload
    def create_chat_completion(
        self, *, stream: Literal[True], timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> ChunkStream: ...

    @overload
    def create_chat_completion(
        self, *, stream: bool, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any] | ChunkStream: ...

    def create_chat_completion(
        self,
        *,
        stream: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **body: Any,
    ) -> dict[str, Any] | ChunkStream:
        """POST ``body`` to ``/chat/completions`` and return the parsed JSON, or the chunks.

        ``body`` is the request in wire names, sent as given (``model`` defaults to the
        client's). With ``stream=True`` the result iterates over parsed chunk dicts; pass the
        ones you kept to ``merge_chunks()`` for the complete response.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> done = client.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
            >>> done["object"], done["choices"][0]["message"]["role"]
            ('chat.completion', 'assistant')
        """
        if "messages" not in body:
            raise TypeError("create_chat_completion() needs messages=[...]")
        check_messages(body["messages"])
        return self._create("/chat/completions", body, stream, self._call_options(timeout, max_retries, deadline))

    @overload
    def create_completion(
        self, *, stream: Literal[False] = False, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any]: ...

    @overload
    def create_completion(
        self, *, stream: Literal[True], timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> ChunkStream: ...

    @overload
    def create_completion(
        self, *, stream: bool, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any] | ChunkStream: ...

    def create_completion(
        self,
        *,
        stream: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **body: Any,
    ) -> dict[str, Any] | ChunkStream:
        """POST ``body`` to ``/completions`` and return the parsed JSON, or the chunks.

        It works like ``create_chat_completion()``, with ``prompt=`` in place of ``messages=``.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> done = client.create_completion(prompt="Once", max_tokens=5)
            >>> done["object"], done["choices"][0]["finish_reason"] in ("stop", "length")
            ('text_completion', True)
        """
        if "prompt" not in body:
            raise TypeError("create_completion() needs prompt=...")
        return self._create("/completions", body, stream, self._call_options(timeout, max_retries, deadline))

    def post_json(
        self,
        path: str,
        body: dict[str, Any],
        *,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` under the base URL and return the JSON object it answers.

        For endpoints the SDK has no method for; retries, timeouts, secrets and the event hook
        work as for every call. ``body`` is sent exactly as given.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answer = client.post_json("/chat/completions", {"model": "tiny", "max_tokens": 5,
            ...                           "messages": [{"role": "user", "content": "Hi"}]})
            >>> answer["object"]
            'chat.completion'
        """
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"post_json(): path must start with '/', got {path!r}")
        sent = self._transport.send(path, body, self._call_options(timeout, max_retries, deadline), stream=False)
        self._transport.emit("response", path, sent.attempt, sent.response.status_code, sent.elapsed, sent.request_id)
        return parse_object(sent.raw, sent.request_id)

    def models(self) -> list[dict[str, Any]]:
        """The models the server lists at ``/models``, each a dict of the server's own fields
        plus ``context_length``, read from whichever field the server uses (or None).

            >>> from openai_compat import Client
            >>> [model["id"] for model in Client("http://127.0.0.1:8080/v1").models()]
            ['tiny']
        """
        path = "/models"
        sent = self._transport.send(path, None, self._call_options(NOT_GIVEN, None, NOT_GIVEN), stream=False,
                                    method="GET")
        return models_of(parse_object(sent.raw, sent.request_id))

    def probe(self, model: str | None = None) -> ProbeReport:
        """What this server really does with ``model``, each item probed with one tiny request.

        Blocking and streamed chat, ``[DONE]``, usage, ``stream_options``, ``n``, ``json_object``,
        ``json_schema``, tools, ``max_completion_tokens``, reasoning fields, ``/completions``,
        ``/embeddings``, ``/responses`` and the shape of an error body: at most 12 requests and
        about 100 generated tokens. Each item says ok / no / unknown / skipped, with its evidence.

            >>> from openai_compat import Client
            >>> report = Client("http://127.0.0.1:8080/v1").probe("tiny")
            >>> report.ok, report.result("n > 1")
            (True, 'no')
        """
        model = model if model is not None else self.model
        if not model:
            raise ValueError(f"no model to probe: pass probe(model=...) or {type(self).__name__}(model=...)")
        return run_probe(self, model)

    def _create(
        self, path: str, body: dict[str, Any], stream: bool, options: CallOptions
    ) -> dict[str, Any] | ChunkStream:
        body = self._body("", body.pop("model", None), {}, {}, body)
        if stream:
            return self._stream(path, body, options)
        return self._call(path, body, options)

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
        fetch = downloader(self._transport.session) if inline_urls else None
        return attach(messages, images, audio, detail, fetch)

    def _call_options(self, timeout: Timeout, max_retries: int | None, deadline: float | None) -> CallOptions:
        """A call's timeout, retries and deadline: its own where given, else the client's."""
        return resolve(CallOptions(self.timeout, self.max_retries, self.deadline), timeout, max_retries, deadline)

    def _call(self, path: str, body: dict[str, Any], options: CallOptions) -> dict[str, Any]:
        start = time.monotonic()
        sent = self._transport.send(path, body, options, stream=False)
        result = parse_completion(sent.raw, sent.request_id)
        record = self._new_record(path, sent)
        record.finish(result, time.monotonic() - start)
        choice = result["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            record.reasoning = lambda: message_reasoning(message)
        elif isinstance(choice, dict) and isinstance(choice.get("text"), str):
            record.reasoning = lambda: split_think(choice["text"])[0]
        self.usage.add(record.usage)
        self._transport.emit("response", path, sent.attempt, sent.response.status_code, sent.elapsed, sent.request_id,
                             result.get("usage"))
        return result

    def _new_record(self, path: str, sent: Sent) -> CallRecord:
        record = CallRecord(path, sent.response.status_code, sent.request_id, sent.attempt,
                            RateLimits.from_headers(sent.response.headers))
        self._local.last = record
        return record

    @property
    def last(self) -> CallRecord | None:
        """This thread's last call: its usage, finish reason, request id, rate limits, timings.

        Each thread sees its own, so ``batch()`` and your threads never mix them up. A stream's
        record fills in when the stream ends (``partial`` if it was closed before its end).
        """
        return getattr(self._local, "last", None)

    def _stream(self, path: str, body: dict[str, Any], options: CallOptions) -> ChunkStream:
        body["stream"] = True
        if self.stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
        start = time.monotonic()
        transport = self._transport
        sent = transport.send(path, body, options, stream=True)
        status = sent.response.status_code
        transport.emit("response", path, sent.attempt, status, sent.elapsed, sent.request_id)

        record = self._new_record(path, sent)
        totals = self.usage

        def on_end(stream: ChunkStream) -> None:
            elapsed = time.monotonic() - start
            record.finish({"model": stream.model, "usage": stream.usage, "choices": [
                {"index": i, "finish_reason": r} for i, r in stream.finish_reasons.items()]}, elapsed)
            if stream.first_piece_at is not None:
                record.time_to_first_piece = stream.first_piece_at - start
            record.partial = not stream.complete
            totals.add(record.usage)
            if stream.complete:
                transport.emit("stream_end", path, sent.attempt, status, elapsed, sent.request_id, stream.usage)

        chunks = ChunkStream(
            sent.response,
            expected_choices=body["n"] if isinstance(body.get("n"), int) else 1,
            deadline_at=None if options.deadline is None else start + options.deadline,
            request_id=sent.request_id,
            on_end=on_end,
        )
        chunks.record = record
        return chunks
