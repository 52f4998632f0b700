"""Sending: the session, the one retry loop, timeouts and the deadline, logging and events.

Everything that goes to the server passes through ``Transport.send()``: it POSTs a JSON body
and returns a 2xx response, retrying what may be retried, or raises a typed error.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.utils import get_netrc_auth

from ._body_reader import is_timeout, whole_body
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    OpenAICompatError,
    request_id_of,
    status_error,
    validation_problems,
)
from ._options import CallOptions, within
from ._record import Usage
from ._secrets import KeepAuthorization, MaskedHeaders, Secrets

if TYPE_CHECKING:
    from ._adapt import Adaptations

logger = logging.getLogger("openai_compat")

#: Backoff between retries: 0.5 s doubling up to 8 s, each shortened by up to a quarter.
BACKOFF_START = 0.5
BACKOFF_CAP = 8.0
#: A server asking to wait longer than this is not waited for: the error is raised with it.
MAX_RETRY_WAIT = 60.0
RETRY_STATUSES = frozenset({408, 409, 429})
#: A path segment naming an API version: /v1, /v1beta, /api/v3, /openai/v1 ...
_VERSION_SEGMENT = re.compile(r"/v\d+[a-z0-9]*(/|$)")
#: Connections requests keeps per host unless told otherwise.
DEFAULT_POOL_SIZE = 10


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
    #: ``usage`` read into one shape, whatever the server's fields (see ``Usage``).
    normalized_usage: Usage | None = None


EventHook = Callable[[RequestEvent], None]


class Sent(NamedTuple):
    """A 2xx answer, its body (for a non-streamed call) and the attempt that got it."""

    response: requests.Response
    raw: bytes
    attempt: int
    elapsed: float
    request_id: str | None


class Transport:
    """POSTs JSON bodies under ``base_url`` with the given headers, on one session."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        secrets: Secrets,
        session: requests.Session | None,
        event_hook: EventHook | None,
        adapt: Adaptations | None = None,
        recorder: BaseAdapter | None = None,
    ) -> None:
        self.base_url = base_url
        self.adapt = adapt
        self._recorder = recorder  # a cassette's adapter: every call goes through it
        self.secrets = secrets
        self.event_hook = event_hook
        self._headers = MaskedHeaders((k, str(v)) for k, v in headers.items())
        self._stream_headers = MaskedHeaders(self._headers, Accept="text/event-stream")
        has_authorization = any(k.lower() == "authorization" for k in headers)
        self._auth = KeepAuthorization() if has_authorization else None
        self.owns_session = session is None
        self._pool_size = DEFAULT_POOL_SIZE
        if session is None:
            session = self._new_session()
        elif recorder is not None:
            session.mount(base_url, recorder)
        self.session = session
        self._forks_seen = _forks

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A session of our own is not shipped (its sockets belong to this process); it is
        # made anew on the other side. A caller's session goes as requests pickles it.
        state = dict(self.__dict__)
        if self.owns_session:
            del state["session"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forks_seen = _forks  # another process: its own fork count
        if self.owns_session:
            self.session = self._new_session()

    def _new_session(self) -> requests.Session:
        # requests reads the proxy variables, the CA bundle and ~/.netrc on every request, which
        # costs more than the rest of a call on loopback. A client talks to one server, so our
        # own session reads them once, here, and then stops looking (as httpx's client does).
        session = requests.Session()
        environment = environment_settings(self.base_url)
        session.proxies.update(environment["proxies"])
        session.verify = environment["verify"]
        if self._auth is None:  # no key of ours: requests' own rules for ~/.netrc apply
            session.auth = get_netrc_auth(self.base_url)
        session.trust_env = False
        if self._recorder is not None:
            session.mount(self.base_url, self._recorder)
        elif self._pool_size != DEFAULT_POOL_SIZE:
            session.mount(self.base_url, HTTPAdapter(pool_maxsize=self._pool_size))
        return session

    def _check_fork(self) -> None:
        """In a forked child, never touch the parent's pooled connections: two processes
        reading one socket interleave their answers, or hang."""
        if _forks == self._forks_seen:
            return  # the usual case: no fork since the last send
        self._forks_seen = _forks
        if self.owns_session:
            self.session = self._new_session()  # the parent's sockets are left to the parent
        else:
            for adapter in self.session.adapters.values():
                adapter.close()  # empties the pools; the adapter and its settings stay

    def settings_for(self, url: str) -> dict[str, Any]:
        """The proxies and CA bundle for a request to another host (a media download): for our
        own session, the environment's for ``url``, read now; nothing for a caller's session."""
        if not self.owns_session:
            return {}
        environment = environment_settings(url)
        proxies: dict[str, Any] = dict.fromkeys(self.session.proxies)  # None drops the server's own
        proxies.update(environment["proxies"])
        return {"proxies": proxies, "verify": environment["verify"]}

    def ensure_pool(self, size: int) -> None:
        """Keep at least ``size`` connections to the server (our own session only; a caller's
        session keeps the adapters the caller gave it)."""
        if self.owns_session and size > self._pool_size and self._recorder is None:
            self._pool_size = size
            self.session.mount(self.base_url, HTTPAdapter(pool_maxsize=size))

    def close(self) -> None:
        """Close the connections, unless the session was the caller's (then it stays open)."""
        if self.owns_session:
            self.session.close()

    def send(
        self, path: str, body: dict[str, Any] | None, options: CallOptions, *, stream: bool, method: str = "POST",
        files: dict[str, Any] | None = None,
    ) -> Sent:
        """Send ``body`` (a GET when None), retrying what may be retried, until a 2xx response.

        The only retry loop: connection failures and timeouts before an answer, and 408, 409,
        429 and 5xx answers, wait ``Retry-After`` (or ``retry-after-ms``) when the server names a
        wait, else 0.5 s doubling to 8 s with jitter. A stream is never retried once returned.
        With ``adapt``, a 400/422 refusing a known optional field is retried once without it.
        With ``files``, the body goes as multipart form fields beside them (an upload).
        """
        self._check_fork()
        if self.adapt is not None and body is not None:
            body = self.adapt.apply(body)
        try:
            return self._attempts(path, body, options, stream, method, files)
        except APIStatusError as error:
            changed = self.adapt.learn(error, body) if self.adapt is not None and body is not None else None
            if changed is None:
                raise
            return self._attempts(path, changed, options, stream, method, files)

    def _attempts(
        self, path: str, body: dict[str, Any] | None, options: CallOptions, stream: bool, method: str,
        files: dict[str, Any] | None = None,
    ) -> Sent:
        url = self.base_url + path
        retries = options.max_retries
        deadline_at = None if options.deadline is None else time.monotonic() + options.deadline
        attempt = 0
        while True:
            attempt += 1
            start = time.monotonic()
            self.emit("request", path, attempt, method=method)
            status: int | None = None
            request_id: str | None = None
            wait: float | None = None
            cause: Exception | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    json=body if files is None else None,
                    data=body if files is not None else None,
                    files=files,
                    headers=self._stream_headers if stream else self._headers,
                    auth=self._auth,
                    timeout=within(options.timeout, deadline_at),
                    stream=True,
                    allow_redirects=False,
                )
                # A non-streamed body is read inside the attempt: a connection that breaks
                # half-way through it is retried like one that broke before the headers.
                raw = b"" if stream and response.ok else whole_body(response)
            except requests.exceptions.InvalidJSONError as exc:
                raise TypeError(f"the request body cannot be sent as JSON: {exc}") from None
            except requests.RequestException as exc:
                error: OpenAICompatError = self._transport_error(exc, url)
                # requests' message about a bad header shows the value, which may be a key.
                cause = None if isinstance(exc, requests.exceptions.InvalidHeader) else exc
                retryable = True
            else:
                status = response.status_code
                request_id = request_id_of(response.headers)
                if 200 <= status < 300:
                    self._log(method, url, attempt, retries, status, start, request_id)
                    return Sent(response, raw, attempt, time.monotonic() - start, request_id)
                response.close()
                wait = retry_after(response.headers)
                answer_error = self._status_error(response, raw, request_id, wait)
                # A 5xx whose body says the request itself is invalid (llama-cpp-python answers a
                # bad field with 500) fails the same way every time: it is not retried.
                retryable = (status in RETRY_STATUSES or status >= 500) and not validation_problems(answer_error.body)
                error = answer_error
            self._log(method, url, attempt, retries, status, start, request_id, error)
            self.emit("response", path, attempt, status, time.monotonic() - start, request_id, error=str(error),
                      method=method)
            delay = wait if wait is not None else backoff(attempt)
            if (
                not retryable
                or attempt > retries
                or delay > MAX_RETRY_WAIT
                or (deadline_at is not None and time.monotonic() + delay >= deadline_at)
            ):
                raise error from cause
            time.sleep(delay)

    def emit(
        self,
        kind: str,
        path: str,
        attempt: int,
        status_code: int | None = None,
        elapsed: float | None = None,
        request_id: str | None = None,
        usage: dict[str, Any] | None = None,
        error: str | None = None,
        method: str = "POST",
    ) -> None:
        """Call the event hook, if there is one."""
        if self.event_hook is not None:
            url = self.base_url + path
            normalized = Usage.from_raw(usage) if usage is not None else None
            self.event_hook(RequestEvent(kind, method, url, attempt, status_code, elapsed, request_id, usage, error,
                                         normalized))

    def emit_answer(self, path: str, sent: Sent, usage: dict[str, Any] | None = None, method: str = "POST") -> None:
        """Call the event hook for the 2xx answer ``sent`` (a blocking call's once its usage is read)."""
        self.emit("response", path, sent.attempt, sent.response.status_code, sent.elapsed, sent.request_id, usage,
                  method=method)

    def _transport_error(self, exc: requests.RequestException, url: str) -> OpenAICompatError:
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the real one
        text = self.secrets.redact(str(reason).split("): ", 1)[-1])
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
            location = self.secrets.redact(response.headers.get("location", "(no Location)"))
            return APIStatusError(
                f"the server redirected to {location}; the SDK does not follow redirects, so the"
                " request and its key never go to another URL: set base_url to the new address"
                " if you trust it",
                status_code=status,
                request_id=request_id,
            )
        raw = self.secrets.redact_bytes(raw)
        context = ""
        if status == 404:
            context = f"POST {self.secrets.redact(response.url or '')}"
            if not _VERSION_SEGMENT.search(urlsplit(self.base_url).path):
                context += f"; did you mean {self.base_url}/v1? The base URL usually ends in the API version"
            elif (response.url or "").endswith("/responses"):
                context += "; this server may have no Responses API: chat() works on /chat/completions"
        return status_error(status, raw, request_id=request_id, retry_after=wait, reason=response.reason or "",
                            context=context)

    def _log(
        self,
        method: str,
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
                "%s %s -> %s in %.3fs (attempt %d of %d, request id %s)%s",
                method,
                self.secrets.redact(url),
                status if status is not None else "no response",
                time.monotonic() - start,
                attempt,
                retries + 1,
                request_id or "-",
                f": {self.secrets.redact(str(error))}" if error is not None else "",
            )


def environment_settings(url: str) -> dict[str, Any]:
    """What requests takes from the environment for a request to ``url``: ``proxies`` (minding
    ``NO_PROXY``) and ``verify`` (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else True)."""
    settings = requests.Session().merge_environment_settings(url, {}, None, None, None)
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


#: How many times this process became a fork's child. Windows, the one platform without
#: ``os.register_at_fork``, cannot fork.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` when the server named no wait."""
    import random  # imported on the first retry, not at start-up

    return min(BACKOFF_CAP, BACKOFF_START * 2.0 ** (attempt - 1)) * (1 - random.random() / 4)


def retry_after(headers: Mapping[str, str]) -> float | None:
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
