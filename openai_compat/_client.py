"""The ``Client``: the front door, and the parts it is made of.

A client owns three parts: the ``Connection`` (``_connection.py``: the session, the headers
and key, one attempt at a time), the call pipeline ``Calls`` (``_pipeline.py``: retries,
records, totals, events) and its settings (the model, timeout, ``RetryPolicy``, deadline).
``chat()``, ``complete()``, ``respond()`` and ``chat_message()`` are here; the endpoint
methods (``create_*``, ``embed()``, ``models()``, ...) are in ``_endpoints.py`` and the calls
built on chat (``chat_json()``, ``chat_choices()``, ``batch()``) in ``_beyond_text.py``.
"""

from __future__ import annotations

import copy
import os
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generator,
    Iterator,
    Literal,
    Mapping,
    NoReturn,
    Sequence,
    TypeVar,
    overload,
)
from urllib.parse import urlsplit

import requests

from ._answers import first_choice
from ._beyond_text import BeyondText
from ._call_record import CallRecord, UsageTotals
from ._connection import Connection
from ._continuation import check_turns, continue_blocking, continue_stream
from ._endpoints import Endpoints
from ._options import DEFAULT_TIMEOUT, NOT_GIVEN, Timeout, check_deadline, check_timeout
from ._params import Prompt, check_stream, messages_of, unknown_option
from ._pipeline import Calls, EventHook
from ._retry import RetryPolicy, check_policy
from ._secrets import SECRET_HEADERS, Secret, Secrets, checked_key, masked_headers
from ._settings import checked_base_url, from_environment, labelled_and_extra, string_pairs
from ._tool_use import ToolUse

if TYPE_CHECKING:
    from ._cassette import Cassette
    from ._media import Media
    from ._reasoning import Thinking

_Self = TypeVar("_Self", bound="Client")
#: Every preset, by its ``provider=`` name (``PROVIDERS`` shows it, read-only).
PRESETS: dict[str, type[Client]] = {}


class Client(BeyondText, ToolUse, Endpoints):
    """A connection to one server that speaks the OpenAI HTTP API.

    ``base_url`` ends in the API version (``.../v1``); without one, ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY`` and ``OPENAI_MODEL`` are read (see ``from_env()``). ``api_key`` is sent
    as ``Authorization: Bearer ...``; a function that returns the key is called for each
    attempt, and a 401 is tried once more with a fresh key. ``headers`` go with every request,
    ``default_query`` in every URL (``{"api-version": ...}``); ``model`` is the default for
    calls that name none. ``timeout`` is seconds or ``(connect, read)``; ``deadline``
    bounds a whole call, stream included; ``max_retries`` counts retries after the first try,
    and ``retry`` is the whole ``RetryPolicy``. ``session`` is your own ``requests.Session``
    (proxies, CA bundle, adapters): it is used as is and left open by ``close()``.
    ``event_hook`` is called with a ``RequestEvent`` at each step, for metering.
    ``stream_usage=True`` asks every stream for its usage (``stream_options``, which some
    servers refuse; adaptation then drops it); the default, ``"auto"``, asks where the preset
    knows the server takes it. The client learns, model by model, which optional fields the server
    refuses (``stream_options``, ``n``, ``seed``, ``logprobs``, ``parallel_tool_calls``,
    sampling fields with a warning, ``max_tokens`` renamed to ``max_completion_tokens``) and
    stops sending them; ``capabilities_cache`` (a file) keeps that for the next run, and
    ``adapt=False`` switches it off. ``cassette`` (a ``Cassette``, or a path to record once and
    replay after) records every call to a file, or replays calls from it without the network.
    ``verify`` (a CA bundle path, or False) and ``cert`` (a client certificate) apply to every
    request, media downloads included; ``trust="system"`` uses the operating system's trust
    store (``pip install truststore``).

    One client may be shared by many threads as long as nobody changes its session meanwhile,
    and by forked worker processes: a child never touches the parent's pooled connections. A
    client pickles into a working client (for Spark, Ray, Dask and ``spawn`` pools).

        >>> from openai_compat import Client
        >>> client = Client("http://127.0.0.1:8080/v1/", model="tiny")
        >>> client.base_url
        'http://127.0.0.1:8080/v1'
        >>> client
        Client(base_url='http://127.0.0.1:8080/v1', model='tiny')
    """

    #: Presets set these: the base URL used when none is given, and the variable holding the key.
    default_base_url: str | None = None
    api_key_env: str | None = None
    #: How the server continues a final assistant message (``chat(continue_on_length=)``):
    #: ``"continue_final_message"`` (vLLM), ``"prefix"`` (Mistral), ``"final_assistant"``
    #: (llama.cpp's server), or None: a user turn asks the model to go on.
    prefill_style: str | None = None
    #: Whether the server takes ``stream_options`` (``stream_usage="auto"`` asks for usage then).
    streams_usage = False
    #: Top-level fields of an answer kept on ``client.last.extras`` (Perplexity's citations).
    kept_fields: tuple[str, ...] = ()
    #: The header the key goes in, and what comes before the key in it.
    key_header: tuple[str, str] = ("Authorization", "Bearer ")

    def __init_subclass__(cls, provider: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if provider is not None:
            PRESETS[provider] = cls  # a preset: ``class GroqClient(Client, provider="groq")``

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | Callable[[], str] | None = None,
        headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        session: requests.Session | None = None,
        event_hook: EventHook | None = None,
        stream_usage: bool | str = "auto",
        adapt: bool = True,
        capabilities_cache: str | os.PathLike[str] | None = None,
        cassette: Cassette | str | os.PathLike[str] | None = None,
        verify: bool | str | None = None,
        cert: str | tuple[str, str] | None = None,
        trust: str | None = None,
        **unknown_options: NoReturn,
    ) -> None:
        name = type(self).__name__
        if unknown_options:
            raise unknown_option(name, next(iter(unknown_options)), Client.__init__)
        key_given = api_key is not None
        if base_url is None and self.default_base_url is None:
            base_url, api_key, model = from_environment(name, "OPENAI", api_key, model, headers)
        self.base_url = checked_base_url(name, base_url if base_url is not None else self.default_base_url)
        self.model = model
        self.timeout = check_timeout(timeout)
        self.retry = check_policy(retry, max_retries)
        self.deadline = check_deadline(deadline)
        secrets = Secrets()
        checked = masked_headers(name, headers, secrets)
        key_provider, key_source = self._key(name, api_key, key_given, checked, secrets)
        if trust not in (None, "system"):
            raise ValueError(f"{name}: trust must be 'system' or None, got {trust!r}")
        if trust is not None:
            from ._tls import system_context

            system_context()  # truststore is there, or the error says how to get it
        recorder = None
        if cassette is not None:
            from ._cassette import Cassette  # the modules of features not asked for stay unloaded

            cassette = cassette if isinstance(cassette, Cassette) else Cassette(cassette)
            recorder = cassette._adapter(secrets)
        self.cassette = cassette
        adaptations = None
        if adapt:
            from ._adapt import Adaptations

            adaptations = Adaptations(capabilities_cache, urlsplit(self.base_url).netloc)
        self._connection = Connection(self.base_url, checked, secrets, session, recorder,
                                      query=string_pairs(name, "default_query", default_query),
                                      key_provider=key_provider, key_header=self.key_header, verify=verify, cert=cert,
                                      trust=trust)
        self._connection.key_source = key_source
        self._calls = Calls(self._connection, event_hook, adaptations)
        self._calls.kept_fields = self.kept_fields
        self._calls.key_variable = self.api_key_env or "OPENAI_API_KEY"
        if stream_usage not in (True, False, "auto"):
            raise ValueError(f"{name}: stream_usage must be True, False or 'auto', got {stream_usage!r}")
        #: Ask streams for their usage (``stream_options.include_usage``); some servers refuse it.
        self.stream_usage = self.streams_usage if stream_usage == "auto" else bool(stream_usage)

    @classmethod
    def from_env(cls: type[_Self], prefix: str = "OPENAI", **settings: Any) -> _Self:
        """A client from ``{prefix}_BASE_URL``, ``{prefix}_API_KEY`` and ``{prefix}_MODEL``, as
        openai-python reads them; ``settings`` go to the constructor and win over the variables.
        ``Client()`` with no base URL reads the ``OPENAI_`` ones the same way.

            >>> import os
            >>> from openai_compat import Client
            >>> os.environ["LOCAL_BASE_URL"] = "http://127.0.0.1:8080/v1"
            >>> Client.from_env("LOCAL", model="tiny")
            Client(base_url='http://127.0.0.1:8080/v1', model='tiny')
        """
        owner = f"{cls.__name__}.from_env()"
        base_url, api_key, model = from_environment(owner, prefix, settings.pop("api_key", None),
                                                     settings.pop("model", None), settings.get("headers"),
                                                     required=cls.default_base_url is None)
        return cls(base_url, api_key=api_key, model=model, **settings)

    def with_options(self: _Self, **settings: Any) -> _Self:
        """A client like this one, sharing its connection pool, with other ``timeout``,
        ``max_retries``, ``retry``, ``deadline``, ``model``, ``headers`` (added to this
        client's), ``stream_usage`` or ``event_hook``. This client is left as it is; closing the
        new one leaves the shared pool open.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> patient = client.with_options(timeout=600, max_retries=5)
            >>> patient.max_retries, client.max_retries
            (5, 2)
        """
        allowed = ("timeout", "max_retries", "retry", "deadline", "model", "headers", "stream_usage", "event_hook")
        for key in settings:
            if key not in allowed:
                raise TypeError(f"with_options() takes {', '.join(allowed)}; got {key!r}")
        derived = copy.copy(self)
        derived._connection = self._connection.twin(f"{type(self).__name__}.with_options()", settings.get("headers"))
        derived._calls = copy.copy(self._calls)
        derived._calls.connection = derived._connection
        if "model" in settings:
            derived.model = settings["model"]
        if "timeout" in settings:
            derived.timeout = check_timeout(settings["timeout"])
        if "max_retries" in settings or "retry" in settings:
            derived.retry = check_policy(settings.get("retry", self.retry), settings.get("max_retries"))
        if "deadline" in settings:
            derived.deadline = check_deadline(settings["deadline"])
        if "stream_usage" in settings:
            derived.stream_usage = settings["stream_usage"]
        if "event_hook" in settings:
            derived._calls.event_hook = settings["event_hook"]
        return derived

    @property
    def max_retries(self) -> int:
        """Retries after the first try (the ``retry`` policy's)."""
        return self.retry.max_retries

    @property
    def last(self) -> CallRecord | None:
        """This thread's last call, done or failed: its usage, finish reason, request id, rate
        limits, timings, and for a failed call its ``error``.

        Each thread sees its own, so ``batch()`` and your threads never mix them up. A stream's
        record fills in when the stream ends (``partial`` if it was closed before its end).
        """
        return self._calls.last

    @property
    def usage(self) -> UsageTotals:
        """Running totals of every call's usage; ``client.usage.reset()`` starts again."""
        return self._calls.usage

    @property
    def event_hook(self) -> EventHook | None:
        """The function called with a ``RequestEvent`` at each step of a call, or None."""
        return self._calls.event_hook

    @event_hook.setter
    def event_hook(self, hook: EventHook | None) -> None:
        self._calls.event_hook = hook

    def _key(self, owner: str, api_key: Any, key_given: bool, headers: dict[str, str],
             secrets: Secrets) -> tuple[Callable[[], str] | None, str | None]:
        """Put the key in ``headers`` (or return the function that makes one for each attempt),
        and say where it came from, for a 401's message."""
        key_name, key_prefix = self.key_header
        in_headers = next((k for k in headers if k.lower() in SECRET_HEADERS), None)
        if any(k.lower() == key_name.lower() for k in headers):
            if api_key is not None:
                raise ValueError(f"{owner}: pass the key as api_key= or as an {key_name} header, not both")
            return None, f"the {in_headers} header"
        source = "api_key=" if key_given else "the OPENAI_API_KEY variable"
        if api_key is None:
            api_key, source = self._key_from_env(), f"the {self.api_key_env} variable"
        if api_key is None:
            return None, f"the {in_headers} header" if in_headers else None
        if callable(api_key):
            return api_key, source  # called for each attempt: a short-lived token stays fresh
        headers[key_name] = Secret(key_prefix + checked_key(owner, api_key, secrets))
        return None, source

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
        self._connection.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _media(self, messages: list[Any], images: Any, audio: Any, detail: str | None,
               inline_urls: bool) -> list[Any]:
        """``messages`` with images and audio added to the last user message."""
        if not images and not audio:
            return messages
        from ._media import attach, downloader

        connection = self._connection
        fetch = downloader(connection.session, connection.settings_for) if inline_urls else None
        return attach(messages, images, audio, detail, fetch)

    # -- the front door --------------------------------------------------------------------

    @overload
    def chat(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], labelled: Literal[False] = False,
        reasoning: Literal[False] | dict[str, Any] = False, **params: Any
    ) -> Generator[str, None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], labelled: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: bool, labelled: bool = False, reasoning: bool | dict[str, Any] = False,
        **params: Any
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]: ...

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
        thinking: Thinking | None = None,
        labelled: bool = False,
        reasoning: bool | dict[str, Any] = False,
        keep_think: bool = False,
        images: Sequence[Media] | None = None,
        audio: Sequence[Media] | dict[str, Any] | None = None,
        detail: str | None = None,
        inline_urls: bool = False,
        tool_calls_from_content: bool = False,
        continue_on_length: int = 0,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]:
        """Send a chat and return the answer's text, or a generator of its pieces.

        ``prompt`` is a string (one user message) or a list of message dicts, sent as given;
        ``system`` puts a system message first. The OpenAI parameters keep their wire names and
        ``None`` leaves them out; any other keyword (``top_k``, ``min_p``, ...) goes into the
        JSON body unchanged. ``timeout``, ``max_retries`` and ``deadline`` override the client's
        for this call.

        With ``stream=True`` the request is sent (and a status error raised) before this
        returns; the generator then yields each non-empty piece as it arrives and closes the
        connection when it ends, is closed or is dropped.

        The answer never includes the model's thinking, whichever way the server sends it (see
        the Reasoning page); ``keep_think=True`` keeps an inline ``<think>`` block in the text.
        With ``stream=True, labelled=True`` the generator yields ``("reasoning", piece)`` and
        ``("answer", piece)`` as they arrive (``reasoning=True`` is the older spelling; a dict
        ``reasoning={"effort": ...}`` is sent as the wire field, as OpenRouter takes it).
        ``thinking`` (True, False, or an effort such as ``"low"``) turns thinking on or off with
        the preset's own knob. A model that spends all
        of ``max_tokens`` thinking raises ``EmptyAnswerError`` instead of returning ``""``.

        ``images`` and ``audio`` (paths, bytes, URLs, PIL images) are added to the last user
        message as content parts (a dict ``audio={"voice": ..., "format": ...}`` is the wire
        field that asks for spoken output instead); ``detail`` applies to images; ``inline_urls=True`` downloads
        http(s) URLs (through this client's session, never with its key) for servers that only
        take inline data.

        If the model answers with tool calls, ``UnhandledToolCallsError`` carries them:
        use ``chat_message()`` or ``run_tools()`` to handle tools. ``tool_calls_from_content=True``
        (blocking calls) takes calls a chat template wrote into the text (``<tool_call>`` blocks,
        a bare JSON call) for tool calls.

        An answer cut off at ``max_tokens`` comes back as it came, with
        ``client.last.finish_reason == "length"``; ``continue_on_length=N`` asks the server up to
        N more times to go on from where it stopped (by assistant prefill where the preset knows
        the server's way, ``prefill_style``), returned as one answer, blocking or streamed.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.chat("Write a haiku", max_tokens=30)
            >>> pieces = list(client.chat("Write a haiku", max_tokens=30, stream=True))
            >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
            True
        """
        labelled, extra = labelled_and_extra(labelled, reasoning, extra)
        if isinstance(audio, dict):
            extra["audio"], audio = audio, None
        options = self._options(timeout, max_retries, deadline)
        body = self._body(
            "chat", model, {"messages": self._media(messages_of(prompt, system), images, audio, detail, inline_urls)},
            dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=seed,
                 presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, logit_bias=logit_bias,
                 response_format=response_format, user=user, tools=tools, tool_choice=tool_choice),
            dict(extra, thinking=thinking) if thinking is not None else extra, options,
        )
        turns = check_turns(continue_on_length, body)
        if check_stream("chat", stream):
            if turns:
                def start(more: dict[str, Any]) -> Iterator[Any]:
                    return self._chat_stream("/chat/completions", more, options, keep_think=keep_think).text(
                        labelled=labelled)

                return continue_stream(start(body), start, self._cut_off, body, self.prefill_style, turns, labelled)
            if tool_calls_from_content:
                raise ValueError("chat(): tool_calls_from_content=True reads a whole answer: leave stream=True off")
            return self._chat_stream("/chat/completions", body, options, keep_think=keep_think).text(
                labelled=labelled)
        if labelled:
            raise ValueError("chat(): labelled=True labels the pieces of a stream: pass stream=True too"
                             " (a blocking call's reasoning is in client.last.reasoning)")
        answer = self._answer_call("/chat/completions", body, options)
        choice = first_choice(answer)
        if tool_calls_from_content and isinstance(choice.get("message"), dict):
            from ._tool_calls import calls_from_content

            choice = dict(choice, message=calls_from_content(choice["message"]))
        text = self._reply(choice, answer, keep_think=keep_think)
        if not turns:
            return text

        def ask(more: dict[str, Any]) -> str:
            answer = self._answer_call("/chat/completions", more, options)
            return self._reply(first_choice(answer), answer, keep_think=keep_think)

        return continue_blocking(text, ask, self._cut_off, body, self.prefill_style, turns)

    def _cut_off(self) -> bool:
        """Whether the last call's answer stopped at ``max_tokens``."""
        return self.last is not None and self.last.finish_reason == "length"

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[True], **params: Any) -> Generator[str, None, None]: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: bool, **params: Any) -> str | Generator[str, None, None]: ...

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
        keep_think: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Generator[str, None, None]:
        """Continue ``prompt`` over ``/completions``; the same shape and options as ``chat()``.

        ``template`` (``"chatml"``, ``"llama3"``, ``"mistral"`` or ``"plain"``) renders a message
        list (or a string, as one user message) into a chat prompt for a completion model, and
        adds the template's stop sequence to yours, once; since the API takes at most 4 stops,
        more than 3 of your own with a template is refused before sending.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.complete("Once upon a time", max_tokens=20)
            >>> reply = client.complete([{"role": "user", "content": "Hi"}], template="chatml", max_tokens=20)
        """
        if template is not None:
            from ._templates import render

            prompt, template_stop = render(messages_of(prompt, None), template)
            given = [stop] if isinstance(stop, str) else list(stop or [])
            stop = given + [s for s in template_stop if s not in given]
            if len(stop) > 4:
                raise ValueError(f"complete(): the API takes at most 4 stop sequences, and your {len(given)} with the"
                                 f" {template!r} template's {template_stop} make {len(stop)}: pass at most"
                                 f" {4 - (len(stop) - len(given))} of your own")
        elif not isinstance(prompt, str):
            raise TypeError(
                f"complete(): prompt must be a str, or a message list with template=, got {type(prompt).__name__}"
            )
        options = self._options(timeout, max_retries, deadline)
        body = self._body(
            "complete", model, {"prompt": prompt},
            dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=seed,
                 presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, logit_bias=logit_bias,
                 echo=echo, logprobs=logprobs, suffix=suffix, user=user),
            extra, options,
        )
        if check_stream("complete", stream):
            return self._chat_stream("/completions", body, options, chat=False, keep_think=keep_think).text()
        answer = self._answer_call("/completions", body, options)
        return self._reply(first_choice(answer), answer, chat=False, keep_think=keep_think)

    @overload
    def respond(self, input: str | list[Any], *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], labelled: Literal[False] = False,
        reasoning: Literal[False] | dict[str, Any] = False, **params: Any
    ) -> Generator[str, None, None]: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], labelled: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    def respond(
        self,
        input: str | list[Any],
        *,
        instructions: str | None = None,
        model: str | None = None,
        stream: bool = False,
        labelled: bool = False,
        reasoning: bool | dict[str, Any] = False,
        **params: Any,
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]:
        """Ask over the Responses API (``/responses``): the output text, or a generator of its
        pieces; ``labelled=True`` labels them like ``chat()``'s (``reasoning=True`` is the older
        spelling). ``reasoning={"effort": "low", "summary": "auto"}`` is the API's own field.
        Everything else works as for ``chat()``: retries, timeouts, the deadline, the event hook, ``client.last``.

        ``input`` is a string or a list of input items. Function calls raise
        ``UnhandledToolCallsError``; a failed or incomplete response raises ``APIResponseError``.

        With a server that has ``/responses`` (OpenAI, Ollama, vLLM, Groq, LM Studio, ...):

            client = Client("http://127.0.0.1:11434/v1", model="llama3.2")
            client.respond("Write a haiku", instructions="Be brief.")
        """
        from ._responses import response_text

        if not isinstance(input, (str, list)):
            raise TypeError(f"respond(): input must be a str or a list of input items, got {type(input).__name__}")
        if instructions is not None:
            params["instructions"] = instructions
        labelled, params = labelled_and_extra(labelled, reasoning, params)
        if check_stream("respond", stream):
            return self.create_response(input=input, model=model, stream=True, **params).text(labelled=labelled)
        answer = self.create_response(input=input, model=model, **params)
        return response_text(answer, self.last.request_id if self.last else None)
