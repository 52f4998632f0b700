"""The ``Client``: request bodies, the one retry loop, and the front-door methods on top.

``chat()`` and ``complete()`` return a ``str`` (or a generator of ``str`` with ``stream=True``);
``create_chat_completion()`` and ``create_completion()`` return the whole parsed JSON (or an
iterator of parsed chunks) for everything else: usage, finish reasons, every choice, tool calls.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import (
    Any,
    Callable,
    ClassVar,
    Iterator,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)
from urllib.parse import urlsplit

import requests

from ._batch import run_batch
from ._errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    JSONOutputError,
    OpenAICompatError,
    UnhandledToolCallsError,
    request_id_of,
    status_error,
)
from ._streaming import ChunkStream, choice_text, is_timeout, iter_choices, iter_text, parse_completion, parse_object
from ._templates import render

logger = logging.getLogger("openai_compat")

#: ``(connect, read)`` seconds. The read timeout bounds each wait for bytes, so a long
#: generation that streams steadily never times out; a silent server does.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 600.0)
DEFAULT_MAX_RETRIES = 2
#: Backoff between retries: 0.5 s doubling up to 8 s, each shortened by up to a quarter.
BACKOFF_START = 0.5
BACKOFF_CAP = 8.0
#: A server asking to wait longer than this is not waited for: the error is raised with it.
MAX_RETRY_WAIT = 60.0
RETRY_STATUSES = frozenset({408, 409, 429})

Timeout = Union[float, Tuple[Optional[float], Optional[float]], None]
Message = Mapping[str, Any]
Prompt = Union[str, Sequence[Message]]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key"})


class _NotGiven:
    """Marks an option the caller left out, where ``None`` has a meaning of its own."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


class _Secret(str):
    """A header value that shows as ``'***'`` in reprs, so a printed dict never leaks it."""

    def __repr__(self) -> str:
        return "'***'"


class _KeepAuthorization(requests.auth.AuthBase):
    """Leaves the request as it is (see ``Client.__init__``)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class RequestEvent(NamedTuple):
    """What ``Client(event_hook=...)`` is called with, once per step of a call.

    ``kind`` is ``"request"`` (about to send), ``"response"`` (an answer or a failure came back:
    ``status_code`` is None for a connection failure, ``error`` names it) or ``"stream_end"``
    (a stream was read to its end). ``attempt`` counts from 1; ``elapsed`` is seconds since the
    attempt (or, for ``stream_end``, the call) began; ``usage`` is the token usage when known.

        >>> from openai_compat import Client, RequestEvent
        >>> seen = []
        >>> client = Client("http://127.0.0.1:8080/v1", event_hook=seen.append)
    """

    kind: str
    method: str
    url: str
    attempt: int
    status_code: int | None = None
    elapsed: float | None = None
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None


class Client:
    """A connection to one server that speaks the OpenAI HTTP API.

    ``base_url`` ends in the API version (``.../v1``); ``api_key`` is sent as
    ``Authorization: Bearer ...``; ``headers`` go with every request; ``model`` is the default
    for calls that name none. ``timeout`` is seconds or ``(connect, read)``; ``deadline``
    bounds a whole call, stream included; ``max_retries`` counts retries after the first try.
    ``session`` is your own ``requests.Session`` (proxies, CA bundle, adapters): it is used as
    is and left open by ``close()``. ``event_hook`` is called with a ``RequestEvent`` at
    each step, for metering.

    One client may be shared by many threads as long as nobody changes its session meanwhile.

        >>> from openai_compat import Client
        >>> client = Client("http://127.0.0.1:8080/v1/", model="tiny")
        >>> client.base_url
        'http://127.0.0.1:8080/v1'
        >>> client
        Client(base_url='http://127.0.0.1:8080/v1', model='tiny')
    """

    #: Presets set these: the base URL used when none is given, and the variable holding the key.
    default_base_url: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None

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
        event_hook: Callable[[RequestEvent], None] | None = None,
    ) -> None:
        name = type(self).__name__
        base_url = base_url if base_url is not None else self.default_base_url
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: base_url must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = _check_timeout(timeout)
        self.max_retries = _check_retries(max_retries)
        self.deadline = _check_deadline(deadline)
        self.event_hook = event_hook
        self._headers: dict[str, str] = {}
        self._secrets: list[str] = []
        for key, value in (headers or {}).items():
            if not isinstance(value, str) or any(ord(c) < 32 and c != "\t" for c in value):
                # The value is not shown: it may be a key.
                raise ValueError(f"{name}: header {key!r} must be a str without line breaks or control characters")
            if key.lower() in _SECRET_HEADERS:
                self._add_secret(value.split(" ", 1)[-1])
                self._add_secret(value)
                value = _Secret(value)
            self._headers[key] = value
        has_authorization = any(k.lower() == "authorization" for k in self._headers)
        if api_key is None and not has_authorization:
            api_key = self._key_from_env()
        if api_key is not None:
            if has_authorization:
                raise ValueError(f"{name}: pass the key as api_key= or as an Authorization header, not both")
            if not isinstance(api_key, str) or not api_key or any(c.isspace() or ord(c) < 32 for c in api_key):
                raise ValueError(
                    f"{name}: api_key is empty or holds white space or control characters (a trailing newline?)"
                )
            self._add_secret(api_key)
            self._headers["Authorization"] = _Secret(f"Bearer {api_key}")
            has_authorization = True
        # requests replaces an Authorization header with ~/.netrc credentials for the host
        # unless the request names an auth of its own: name one that changes nothing.
        self._auth = _KeepAuthorization() if has_authorization else None
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()

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

    def _add_secret(self, value: str) -> None:
        if value and len(value) >= 4 and value not in self._secrets:
            self._secrets.append(_Secret(value))

    def _redact(self, text: str) -> str:
        """``text`` with this client's key and secret header values replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        model = f", model={self.model!r}" if self.model else ""
        return f"{type(self).__name__}(base_url={self.base_url!r}{model})"

    def close(self) -> None:
        """Close the connections, unless the session was yours (then it stays open)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the front door --------------------------------------------------------------------

    @overload
    def chat(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def chat(self, prompt: Prompt, *, stream: Literal[True], **params: Any) -> Iterator[str]: ...

    @overload
    def chat(self, prompt: Prompt, *, stream: bool, **params: Any) -> str | Iterator[str]: ...

    def chat(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        system: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        response_format: dict[str, Any] | None = None,
        user: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Iterator[str]:
        """Send a chat and return the answer's text, or a generator of its pieces.

        ``prompt`` is a string (one user message) or a list of message dicts, sent as given;
        ``system`` puts a system message first. The OpenAI parameters keep their wire names and
        ``None`` leaves them out; any other keyword (``top_k``, ``min_p``, ...) goes into the
        JSON body unchanged. ``timeout``, ``max_retries`` and ``deadline`` override the client's
        for this call.

        With ``stream=True`` the request is sent (and a status error raised) before this
        returns; the generator then yields each non-empty piece as it arrives and closes the
        connection when it ends, is closed or is dropped.

        If the model answers with tool calls, ``UnhandledToolCallsError`` carries them:
        use ``chat_message()`` to handle tools.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.chat("Write a haiku", max_tokens=30)          # doctest: +SKIP
            >>> for piece in client.chat("Write a haiku", stream=True):     # doctest: +SKIP
            ...     print(piece, end="", flush=True)
        """
        body = self._body(
            model,
            {"messages": _messages(prompt, system)},
            dict(
                max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n,
                seed=seed, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                logit_bias=logit_bias, response_format=response_format, user=user, tools=tools,
                tool_choice=tool_choice,
            ),
            extra,
        )
        options = self._options(timeout, max_retries, deadline)
        if stream:
            return iter_text(self._stream("/chat/completions", body, options), chat=True)
        return _reply_text(self._call("/chat/completions", body, options)["choices"][0])

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[True], **params: Any) -> Iterator[str]: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: bool, **params: Any) -> str | Iterator[str]: ...

    def complete(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        template: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        echo: bool | None = None,
        logprobs: int | None = None,
        suffix: str | None = None,
        user: str | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Iterator[str]:
        """Continue ``prompt`` over ``/completions``; the same shape and options as ``chat()``.

        ``template`` (``"chatml"``, ``"llama3"``, ``"mistral"`` or ``"plain"``) renders a message
        list (or a string, as one user message) into a chat prompt for a completion model, and
        adds the template's stop sequence to yours.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.complete("Once upon a time", max_tokens=20)   # doctest: +SKIP
            >>> reply = client.complete([{"role": "user", "content": "Hi"}],  # doctest: +SKIP
            ...                         template="chatml")
        """
        if template is not None:
            prompt, template_stop = render(_messages(prompt, None), template)
            given = [stop] if isinstance(stop, str) else list(stop or [])
            stop = given + [s for s in template_stop if s not in given]
        elif not isinstance(prompt, str):
            raise TypeError(
                f"complete(): prompt must be a str, or a message list with template=, got {type(prompt).__name__}"
            )
        body = self._body(
            model,
            {"prompt": prompt},
            dict(
                max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n,
                seed=seed, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                logit_bias=logit_bias, echo=echo, logprobs=logprobs, suffix=suffix, user=user,
            ),
            extra,
        )
        options = self._options(timeout, max_retries, deadline)
        if stream:
            return iter_text(self._stream("/completions", body, options), chat=False)
        completion = self._call("/completions", body, options)
        return choice_text(completion["choices"][0], chat=False) or ""

    # -- beyond plain text ------------------------------------------------------------------

    def chat_message(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        system: str | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **params: Any,
    ) -> dict[str, Any]:
        """Send a chat and return the assistant message dict: ``content``, and ``tool_calls``
        when the model calls tools. Append it to your messages as it is for the next turn.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> tools = [{"type": "function", "function": {"name": "get_weather",
            ...           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
            >>> messages = [{"role": "user", "content": "Weather in Paris?"}]
            >>> reply = client.chat_message(messages, tools=tools)              # doctest: +SKIP
            >>> messages.append(reply)                                          # doctest: +SKIP
            >>> for call in reply.get("tool_calls") or []:                      # doctest: +SKIP
            ...     messages.append({"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"})
            >>> client.chat(messages, tools=tools)                              # doctest: +SKIP
            'It is 18 C and sunny in Paris.'
        """
        body = self._body(model, {"messages": _messages(prompt, system)}, *_split(params))
        completion = self._call("/chat/completions", body, self._options(timeout, max_retries, deadline))
        choice = completion["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise APIResponseError("the response's first choice has no message", body=completion)
        return message

    def chat_json(
        self,
        prompt: Prompt,
        *,
        response_format: dict[str, Any] | None = NOT_GIVEN,
        **params: Any,
    ) -> Any:
        """Send a chat asking for JSON and return the parsed value.

        ``response_format`` defaults to ``{"type": "json_object"}`` (pass a JSON schema format,
        or ``None`` to send none to a server that rejects it). A fenced ````json`` block is
        accepted. Output that is not JSON raises ``JSONOutputError``, whose ``text`` is
        the model's raw answer.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> client.chat_json("Give three primes as {\"primes\": [...]}")     # doctest: +SKIP
            {'primes': [2, 3, 5]}
        """
        if response_format is NOT_GIVEN:
            response_format = {"type": "json_object"}
        text = self.chat(prompt, response_format=response_format, **params)
        return parse_json_output(text)

    @overload
    def chat_choices(self, prompt: Prompt, *, n: int, stream: Literal[False] = False, **params: Any) -> list[str]: ...

    @overload
    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: Literal[True], **params: Any
    ) -> Iterator[tuple[int, str]]: ...

    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: bool = False, **params: Any
    ) -> list[str] | Iterator[tuple[int, str]]:
        """Ask for ``n`` answers: a list of their texts by choice index, or, with ``stream=True``,
        a generator of ``(index, piece)`` as the pieces of every choice arrive.

        A server that ignores ``n`` (llama.cpp does) sends fewer: the list holds what came.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> names = client.chat_choices("Name a cat", n=3, temperature=1.0)   # doctest: +SKIP
            >>> for index, piece in client.chat_choices("Name a cat", n=3, stream=True):  # doctest: +SKIP
            ...     print(index, piece)
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        options = self._options(params.pop("timeout", NOT_GIVEN), params.pop("max_retries", None),
                                params.pop("deadline", NOT_GIVEN))
        body = self._body(params.pop("model", None),
                          {"messages": _messages(prompt, params.pop("system", None)), "n": n}, *_split(params))
        if stream:
            return iter_choices(self._stream("/chat/completions", body, options))
        completion = self._call("/chat/completions", body, options)
        choices = sorted((c for c in completion["choices"] if isinstance(c, dict)), key=lambda c: c.get("index", 0))
        return [_reply_text(choice) for choice in choices]

    #: How many inputs ``embed()`` sends per request; larger lists are split.
    embed_batch_size: int = 128

    @overload
    def embed(self, texts: str, *, model: str | None = None, **params: Any) -> list[float]: ...

    @overload
    def embed(self, texts: Sequence[str], *, model: str | None = None, **params: Any) -> list[list[float]]: ...

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        model: str | None = None,
        batch_size: int | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> list[float] | list[list[float]]:
        """Embed one text (one vector back) or a list of texts (vectors in input order).

        Lists longer than ``batch_size`` (default ``embed_batch_size``) go in several
        requests. Extra keywords (``dimensions``, ``encoding_format``, ...) go into each body.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="nomic-embed-text")
            >>> vector = client.embed("hello")                                  # doctest: +SKIP
            >>> vectors = client.embed(["hello", "world"])                      # doctest: +SKIP
        """
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"embed(): input {i} must be a str, got {type(item).__name__}")
        size = batch_size if batch_size is not None else self.embed_batch_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {size!r}")
        options = self._options(timeout, max_retries, deadline)
        vectors: list[list[float]] = []
        for start in range(0, len(items), size):
            part = items[start : start + size]
            body = self._body(model, {"input": part}, {}, extra)
            sent = self._send("/embeddings", body, options, stream=False)
            vectors += _vectors(parse_object(sent.raw, sent.request_id), len(part), sent.request_id)
            self._emit("response", "/embeddings", sent.attempt, sent.response.status_code, sent.elapsed,
                       sent.request_id)
        return vectors[0] if single else vectors

    def batch(
        self,
        prompts: Sequence[Prompt],
        *,
        complete: bool = False,
        max_workers: int = 8,
        return_exceptions: bool = True,
        progress: bool = False,
        **params: Any,
    ) -> list[Any]:
        """Run ``chat()`` (or ``complete()``) on every prompt, ``max_workers`` at a time.

        Results come in input order. A prompt that fails leaves its exception in its place
        (``return_exceptions=False`` raises the first failure instead, after stopping the
        rest). Each call retries and honours rate limits as usual. ``progress=True`` shows a
        progress bar (tqdm's when it is installed).

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answers = client.batch([f"Translate {w!r} to French" for w in ["cat", "dog"]],  # doctest: +SKIP
            ...                        max_tokens=10, progress=True)
        """
        if params.get("stream"):
            raise ValueError("batch() returns whole answers: stream=True is not supported")
        call = self.complete if complete else self.chat
        return run_batch(lambda prompt: call(prompt, **params), list(prompts), max_workers=max_workers,
                         return_exceptions=return_exceptions, progress=progress)

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
            >>> done = client.create_chat_completion(                               # doctest: +SKIP
            ...     messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
            >>> done["usage"]["completion_tokens"]                                # doctest: +SKIP
            5
        """
        if "messages" not in body:
            raise TypeError("create_chat_completion() needs messages=[...]")
        _check_messages(body["messages"])
        return self._create("/chat/completions", body, stream, self._options(timeout, max_retries, deadline))

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
            >>> done = client.create_completion(prompt="Once", max_tokens=5)      # doctest: +SKIP
            >>> done["choices"][0]["finish_reason"]                               # doctest: +SKIP
            'length'
        """
        if "prompt" not in body:
            raise TypeError("create_completion() needs prompt=...")
        return self._create("/completions", body, stream, self._options(timeout, max_retries, deadline))

    def _create(
        self, path: str, body: dict[str, Any], stream: bool, options: _Options
    ) -> dict[str, Any] | ChunkStream:
        body = self._body(body.pop("model", None), {}, {}, body)
        if stream:
            return self._stream(path, body, options)
        return self._call(path, body, options)

    def _body(
        self, model: str | None, base: dict[str, Any], params: dict[str, Any], extra: dict[str, Any]
    ) -> dict[str, Any]:
        model = model if model is not None else self.model
        if not model:
            raise ValueError(f"no model: pass model=... to the call or to {type(self).__name__}(...)")
        if not isinstance(model, str):
            raise TypeError(f"model must be a str, got {type(model).__name__}")
        body: dict[str, Any] = {"model": model, **base}
        body.update((k, v) for k, v in params.items() if v is not None)
        body.update(extra)
        return body

    # -- sending ---------------------------------------------------------------------------

    def _call(self, path: str, body: dict[str, Any], options: _Options) -> dict[str, Any]:
        sent = self._send(path, body, options, stream=False)
        result = parse_completion(sent.raw, sent.request_id)
        status = sent.response.status_code
        self._emit("response", path, sent.attempt, status, sent.elapsed, sent.request_id, result.get("usage"))
        return result

    def _stream(self, path: str, body: dict[str, Any], options: _Options) -> ChunkStream:
        body["stream"] = True
        start = time.monotonic()
        sent = self._send(path, body, options, stream=True)
        status = sent.response.status_code
        self._emit("response", path, sent.attempt, status, sent.elapsed, sent.request_id)
        deadline = options.deadline

        def on_end(usage: dict[str, Any] | None) -> None:
            elapsed = time.monotonic() - start
            self._emit("stream_end", path, sent.attempt, status, elapsed, sent.request_id, usage)

        return ChunkStream(
            sent.response,
            expected_choices=body["n"] if isinstance(body.get("n"), int) else 1,
            deadline_at=None if deadline is None else start + deadline,
            request_id=sent.request_id,
            on_end=on_end if self.event_hook is not None else None,
        )

    def _send(
        self, path: str, body: dict[str, Any], options: _Options, *, stream: bool
    ) -> _Sent:
        """POST ``body``, retrying what may be retried, until a 2xx response (and its body).

        The only retry loop: connection failures and timeouts before an answer, and 408, 409,
        429 and 5xx answers, wait ``Retry-After`` (or ``retry-after-ms``) when the server names a
        wait, else 0.5 s doubling to 8 s with jitter. A stream is never retried once returned.
        """
        url = self.base_url + path
        headers = dict(self._headers, Accept="text/event-stream") if stream else self._headers
        retries, timeout, deadline = options.max_retries, options.timeout, options.deadline
        deadline_at = None if deadline is None else time.monotonic() + deadline
        for attempt in range(1, retries + 2):
            start = time.monotonic()
            self._emit("request", path, attempt)
            error: OpenAICompatError
            cause: Exception | None = None
            wait: float | None = None
            try:
                response = self._session.post(
                    url,
                    json=body,
                    headers=headers,
                    auth=self._auth,
                    timeout=_within(timeout, deadline_at),
                    stream=True,
                    allow_redirects=False,
                )
                # A non-streamed body is read inside the attempt: a connection that breaks
                # half-way through it is retried like one that broke before the headers.
                raw = b"" if stream and response.ok else response.content
            except requests.exceptions.InvalidJSONError as exc:
                raise TypeError(f"the request body cannot be sent as JSON: {exc}") from None
            except requests.RequestException as exc:
                error = self._transport_error(exc, url)
                cause = exc
                status = None
                request_id = None
            else:
                status = response.status_code
                request_id = request_id_of(response.headers)
                if 200 <= status < 300:
                    self._log(url, attempt, retries, status, start, request_id)
                    return _Sent(response, raw, attempt, time.monotonic() - start, request_id)
                response.close()
                wait = _retry_after(response.headers)
                error = self._status_error(response, raw, request_id, wait)
            self._log(url, attempt, retries, status, start, request_id, error)
            self._emit("response", path, attempt, status, time.monotonic() - start, request_id, error=str(error))
            retryable = status is None or status in RETRY_STATUSES or status >= 500
            delay = wait if wait is not None else _backoff(attempt)
            if (
                not retryable
                or attempt > retries
                or delay > MAX_RETRY_WAIT
                or (deadline_at is not None and time.monotonic() + delay >= deadline_at)
            ):
                raise error from cause
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(self, exc: requests.RequestException, url: str) -> OpenAICompatError:
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the real one
        text = self._redact(str(reason).split("): ", 1)[-1])
        if isinstance(exc, requests.Timeout) or is_timeout(exc):
            return APITimeoutError(f"timed out waiting for {url}: {text}")
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return APIConnectionError("a header value is invalid (values are not shown, they may be secret)")
        return APIConnectionError(f"could not reach {url}: {text}")

    def _status_error(
        self, response: requests.Response, raw: bytes, request_id: str | None, wait: float | None
    ) -> APIStatusError:
        status = response.status_code
        if 300 <= status < 400:
            location = self._redact(response.headers.get("location", "(no Location)"))
            return APIStatusError(
                f"the server redirected to {location}; the SDK does not follow redirects, so the"
                " request and its key never go to another URL: set base_url to the new address"
                " if you trust it",
                status_code=status,
                request_id=request_id,
            )
        for secret in self._secrets:
            raw = raw.replace(secret.encode("utf-8", "replace"), b"***")
        return status_error(status, raw, request_id=request_id, retry_after=wait, reason=response.reason or "")

    def _options(self, timeout: Timeout, max_retries: int | None, deadline: float | None) -> _Options:
        """A call's timeout, retries and deadline: its own where given, else the client's."""
        return _Options(
            self.timeout if timeout is NOT_GIVEN else _check_timeout(timeout),
            self.max_retries if max_retries is None else _check_retries(max_retries),
            self.deadline if deadline is NOT_GIVEN else _check_deadline(deadline),
        )

    def _log(
        self,
        url: str,
        attempt: int,
        retries: int,
        status: int | None,
        start: float,
        request_id: str | None,
        error: Exception | None = None,
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST %s -> %s in %.3fs (attempt %d of %d, request id %s)%s",
                self._redact(url),
                status if status is not None else "no response",
                time.monotonic() - start,
                attempt,
                retries + 1,
                request_id or "-",
                f": {self._redact(str(error))}" if error is not None else "",
            )

    def _emit(
        self,
        kind: str,
        path: str,
        attempt: int,
        status_code: int | None = None,
        elapsed: float | None = None,
        request_id: str | None = None,
        usage: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if self.event_hook is not None:
            url = self.base_url + path
            self.event_hook(RequestEvent(kind, "POST", url, attempt, status_code, elapsed, request_id, usage, error))


class _Sent(NamedTuple):
    """A 2xx answer, its body (for a non-streamed call) and the attempt that got it."""

    response: requests.Response
    raw: bytes
    attempt: int
    elapsed: float
    request_id: str | None


class _Options(NamedTuple):
    """The timeout, retries and deadline of one call."""

    timeout: Timeout
    max_retries: int
    deadline: float | None


def _messages(prompt: Prompt, system: str | None) -> list[Message]:
    if isinstance(prompt, str):
        messages: list[Message] = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, (list, tuple)):
        messages = list(prompt)
    else:
        raise TypeError(f"chat(): prompt must be a str or a list of message dicts, got {type(prompt).__name__}")
    if system is not None:
        if not isinstance(system, str):
            raise TypeError(f"chat(): system must be a str, got {type(system).__name__}")
        messages.insert(0, {"role": "system", "content": system})
    _check_messages(messages)
    return messages


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of message dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"message {i} must be a dict, got {type(message).__name__}")
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise ValueError(f"message {i} has no role: {message!r:.200}")


_CHAT_PARAMETERS = frozenset({
    "max_tokens", "temperature", "top_p", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "response_format", "user", "tools", "tool_choice",
})


def _split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAI parameters in ``params`` (None: leave out) and the rest (sent unchanged)."""
    named = {k: v for k, v in params.items() if k in _CHAT_PARAMETERS}
    return named, {k: v for k, v in params.items() if k not in _CHAT_PARAMETERS}


def parse_json_output(text: str) -> Any:
    """The JSON value in a model's answer, allowing a fenced code block around it."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[-1] if "\n" in candidate else candidate[3:]
        candidate = candidate.rsplit("```", 1)[0].strip()
    try:
        return json.loads(candidate)
    except ValueError as exc:
        raise JSONOutputError(f"the model's answer is not JSON ({exc}): {text[:200]!r}", text=text) from None


def _vectors(body: dict[str, Any], expected: int, request_id: str | None) -> list[list[float]]:
    data = body.get("data")
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise APIResponseError(f"asked for {expected} embeddings, got {got}", body=body, request_id=request_id)
    vectors = []
    for item in sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str):  # encoding_format="base64": little-endian float32
            import array
            import base64

            vector = array.array("f", base64.b64decode(vector)).tolist()
        if not isinstance(vector, list):
            raise APIResponseError("an embedding is missing from the response", body=body, request_id=request_id)
        vectors.append(vector)
    return vectors


def _reply_text(choice: Any) -> str:
    """The text of an answer's ``choice``; tool calls raise, since a str cannot carry them."""
    if not isinstance(choice, dict):
        return ""
    message = choice.get("message")
    if isinstance(message, dict) and message.get("tool_calls"):
        raise UnhandledToolCallsError.from_message(message)
    return choice_text(choice, chat=True) or ""


def _check_timeout(timeout: Timeout) -> Timeout:
    parts = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(parts) not in (1, 2) or not all(
        p is None or (isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0) for p in parts
    ):
        raise ValueError(f"timeout must be seconds > 0, (connect, read), or None, got {timeout!r}")
    return timeout


def _check_retries(max_retries: int) -> int:
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
    return max_retries


def _check_deadline(deadline: float | None) -> float | None:
    if deadline is not None and (
        not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or not deadline > 0
    ):
        raise ValueError(f"deadline must be seconds > 0 or None, got {deadline!r}")
    return deadline


def _within(timeout: Timeout, deadline_at: float | None) -> Timeout:
    """``timeout`` shortened so that no wait runs past ``deadline_at``."""
    if deadline_at is None:
        return timeout
    left = max(deadline_at - time.monotonic(), 0.001)
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (min(connect or left, left), min(read or left, left))


def _backoff(attempt: int) -> float:
    import random  # imported on the first retry, not at start-up

    return min(BACKOFF_CAP, BACKOFF_START * 2.0 ** (attempt - 1)) * (1 - random.random() / 4)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or
    as an HTTP date; None if it named no wait."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    import email.utils  # only a server naming an HTTP date needs it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(float(when.timestamp()) - time.time(), 0.0)

