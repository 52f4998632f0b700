"""The ``Client``: the front door, and the parts it is made of.

A client owns three parts: the ``Connection`` (``_connection.py``: the session, the headers
and key, one attempt at a time), the call pipeline ``Calls`` (``_pipeline.py``: retries,
records, totals, events) and its settings (the model, timeout, ``RetryPolicy``, deadline),
all set up here. Its methods come from the mixins: ``chat()``, ``complete()`` and
``respond()`` from ``_text_calls.py``; ``chat_message()`` and ``run_tools()`` from
``_tool_use.py``; the calls built on chat (``chat_json()``, ``chat_choices()``, ``batch()``)
from ``_beyond_text.py``; the endpoint methods (``create_*``, ``embed()``, ``models()``, ...)
from ``_endpoints.py``.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, TypeVar
from urllib.parse import urlsplit

import requests

from ._beyond_text import BeyondText
from ._call_record import CallRecord, UsageTotals
from ._connection import Connection
from ._endpoints import Endpoints
from ._options import DEFAULT_TIMEOUT, Timeout, check_deadline, check_timeout
from ._params import unknown_option
from ._pipeline import Calls, EventHook
from ._retry import RetryPolicy, check_policy
from ._secrets import SECRET_HEADERS, Secret, Secrets, checked_key, masked_headers
from ._settings import checked_base_url, from_environment, string_pairs
from ._text_calls import TextCalls
from ._tool_use import ToolUse

if TYPE_CHECKING:
    from ._cassette import Cassette

_Self = TypeVar("_Self", bound="Client")
#: Every preset, by its ``provider=`` name (``PROVIDERS`` shows it, read-only).
PRESETS: dict[str, type[Client]] = {}


class Client(TextCalls, BeyondText, ToolUse, Endpoints):
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
        #: Ask streams for their usage (``stream_options.include_usage``); some servers refuse it.
        self.stream_usage = self._stream_usage(name, stream_usage)

    def _stream_usage(self, owner: str, stream_usage: Any) -> bool:
        if stream_usage not in (True, False, "auto"):
            raise ValueError(f"{owner}: stream_usage must be True, False or 'auto', got {stream_usage!r}")
        return self.streams_usage if stream_usage == "auto" else bool(stream_usage)

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
            derived.stream_usage = self._stream_usage(f"{type(self).__name__}.with_options()", settings["stream_usage"])
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
