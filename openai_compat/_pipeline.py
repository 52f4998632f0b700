"""The one path every call takes: send, check the status, parse, record, add up, tell the hook.

``Calls.send()`` is the only loop that sends a request again: it asks the ``RetryPolicy``
whether and when, resends once at once a request whose kept-alive connection the server closed
before answering, and lets ``adapt`` resend without a field the server refused, all within the
one deadline the call started with. ``call()`` finishes a blocking call and ``stream()`` opens
a streamed one; both fill ``client.last`` and the usage totals from the call's ``CallSummary``
and tell the event hook, the same way for every endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar
from urllib.parse import urlsplit

import requests

from ._call_record import CallRecord, CallSummary, Usage, UsageTotals, summary_of
from ._error_bodies import request_id_of, status_error
from ._errors import APIConnectionError, APIStatusError, APITimeoutError, OpenAICompatError
from ._options import within
from ._retry import retry_after

if TYPE_CHECKING:
    from ._adapt import Adaptations
    from ._connection import Connection
    from ._options import CallOptions
    from ._sse import EventStream

logger = logging.getLogger("openai_compat")
#: Request and response bodies, at DEBUG: off unless asked for (they hold what users write).
body_logger = logging.getLogger("openai_compat.bodies")
body_logger.setLevel(logging.INFO)
#: What a 401 adds when no key went with the request.
NO_KEY_SENT = "no API key was sent: pass api_key=, or use the provider's preset, which reads its variable"
#: How many characters of a body a debug log line shows.
LOGGED_BODY_CHARS = 4000


def log_from_environment() -> None:
    """``OPENAI_COMPAT_LOG=debug`` (or ``info``): log to stderr at that level, bodies included
    at ``debug`` (the ``openai_compat.bodies`` logger), secrets masked; for when the
    application configures no logging itself."""
    level = os.environ.get("OPENAI_COMPAT_LOG", "").upper()
    if level in ("DEBUG", "INFO", "WARNING") and not any(
            not isinstance(h, logging.NullHandler) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s openai_compat %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        body_logger.setLevel(level)


log_from_environment()

#: A path segment naming an API version: /v1, /v1beta, /api/v3, /openai/v1 ...
_VERSION_SEGMENT = r"/v\d+[a-z0-9]*(/|$)"
Stream = TypeVar("Stream", bound="EventStream[Any]")


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


#: What ``event_hook`` is: a function of a ``RequestEvent``.
EventHook = Callable[[RequestEvent], None]


class Sent:
    """A 2xx answer, its body (for a non-streamed call), and how it was got."""

    __slots__ = ("attempt", "elapsed", "method", "path", "raw", "request_id", "response", "started")

    def __init__(self, response: requests.Response, raw: bytes, attempt: int, elapsed: float,
                 request_id: str | None, method: str, path: str, started: float) -> None:
        self.response, self.raw, self.attempt, self.elapsed = response, raw, attempt, elapsed
        self.request_id, self.method, self.path, self.started = request_id, method, path, started


class Calls:
    """Every call of one client: sending with retries, and each call's record and totals."""

    def __init__(self, connection: Connection, event_hook: EventHook | None, adapt: Adaptations | None) -> None:
        self.connection = connection
        self.event_hook = event_hook
        self.adapt = adapt
        #: Top-level fields of an answer kept on its record (a preset's ``kept_fields``).
        self.kept_fields: tuple[str, ...] = ()
        #: The variable a record's ``as_curl()`` names for the key.
        self.key_variable = "OPENAI_API_KEY"
        #: Running totals of every call's usage.
        self.usage = UsageTotals()
        self._local = threading.local()  # each thread's last call

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}  # a thread's record stays here

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @property
    def last(self) -> CallRecord | None:
        return getattr(self._local, "last", None)

    # -- sending -----------------------------------------------------------------------------

    def send(self, method: str, path: str, body: dict[str, Any] | None, options: CallOptions, *, stream: bool,
             files: dict[str, Any] | None = None) -> Sent:
        """Send until a 2xx answer comes, or raise the typed error of the last attempt."""
        started = time.monotonic()
        deadline_at = options.deadline_at
        if self.adapt is not None and body is not None:
            body = self.adapt.apply(body)
        attempt = free = 0  # free: sends that do not count as retries (a stale connection, a refused field)
        resent = refreshed = False
        while True:
            attempt += 1
            began = time.monotonic()
            self.emit("request", method, path, attempt)
            if body is not None and body_logger.isEnabledFor(logging.DEBUG):
                shown = json.dumps(body, default=str)[:LOGGED_BODY_CHARS]
                body_logger.debug("%s %s request body: %s", method, path, self.connection.secrets.redact(shown))
            status = request_id = None
            try:
                response, raw = self.connection.send(method, path, body, stream=stream, files=files,
                                                     timeout=within(options.timeout, deadline_at),
                                                     headers=options.headers, query=options.query)
            except APIConnectionError as exc:
                error: OpenAICompatError = self._named_deadline(exc, options)
            else:
                status = response.status_code
                request_id = request_id_of(response.headers)
                if 200 <= status < 300:
                    self._log(method, path, attempt, options.retry.max_retries + 1 + free, status, began, request_id)
                    if raw and body_logger.isEnabledFor(logging.DEBUG):
                        shown = raw[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
                        body_logger.debug("%s %s response body: %s", method, path,
                                          self.connection.secrets.redact(shown))
                    return Sent(response, raw, attempt, time.monotonic() - began, request_id, method, path,
                                started)
                response.close()
                error = self._status_error(method, response, raw, request_id)
            self._log(method, path, attempt, options.retry.max_retries + 1 + free, status, began, request_id, error)
            self.emit("response", method, path, attempt, status, time.monotonic() - began, request_id,
                      error=str(error))
            past_deadline = deadline_at is not None and time.monotonic() >= deadline_at
            if isinstance(error, APIConnectionError) and error.unanswered and not resent and not past_deadline:
                resent, free = True, free + 1  # a kept-alive connection closed as it was reused: again at once
                continue
            if status == 401 and self.connection.key_provider is not None and not refreshed and not past_deadline:
                refreshed, free = True, free + 1  # a short-lived key ran out: once more, with a fresh one
                continue
            if isinstance(error, APIStatusError) and self.adapt is not None and body is not None and not past_deadline:
                changed = self.adapt.learn(error, body)
                if changed is not None:
                    body, free = changed, free + 1
                    continue
            delay = options.retry.wait(attempt - free, error, deadline_at)
            if delay is None:
                error.attempts = attempt
                self._failed(method, path, attempt, status, request_id, started, error,
                             response.request if status is not None else None)
                raise error
            time.sleep(delay)

    def _named_deadline(self, error: APIConnectionError, options: CallOptions) -> APIConnectionError:
        """A timeout cut short by the call's deadline says so, rather than naming the cut timeout."""
        if (isinstance(error, APITimeoutError) and options.deadline_at is not None
                and time.monotonic() >= options.deadline_at - 0.01):
            url = error.message.split(": ", 1)[0].replace("timed out waiting for ", "")
            return APITimeoutError(f"the call's deadline of {options.deadline:g} s passed waiting for {url}")
        return error

    def _status_error(self, method: str, response: requests.Response, raw: bytes,
                      request_id: str | None) -> APIStatusError:
        secrets = self.connection.secrets
        status = response.status_code
        wait = retry_after(response.headers)
        if 300 <= status < 400:
            location = secrets.redact(response.headers.get("location", "(no Location)"))
            return APIStatusError(
                f"the server redirected to {location}; the SDK does not follow redirects, so the"
                " request and its key never go to another URL: set base_url to the new address"
                " if you trust it",
                status_code=status,
                request_id=request_id,
            )
        context = ""
        if status == 404:
            base_url = self.connection.base_url
            context = f"{method} {secrets.redact(response.url or '')}"
            if not re.search(_VERSION_SEGMENT, urlsplit(base_url).path):
                context += f"; did you mean {base_url}/v1? The base URL usually ends in the API version"
            elif (response.url or "").endswith("/responses"):
                context += "; this server may have no Responses API: chat() works on /chat/completions"
        elif status == 401:
            source = self.connection.key_source
            context = f"the key sent came from {source}" if source else \
                NO_KEY_SENT
        return status_error(status, secrets.redact_bytes(raw), request_id=request_id, retry_after=wait,
                            reason=response.reason or "", context=context)

    # -- finishing a call --------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None, options: CallOptions,
             parse: Callable[[bytes, str | None], dict[str, Any]],
             reasoning: Callable[[dict[str, Any]], str] | None = None,
             files: dict[str, Any] | None = None) -> dict[str, Any]:
        """A blocking call: its answer parsed by ``parse``, recorded, added up and told."""
        sent = self.send(method, path, body, options, stream=False, files=files)
        try:
            answer = parse(sent.raw, sent.request_id)
        except OpenAICompatError as exc:
            self._failed(method, path, sent.attempt, sent.response.status_code, sent.request_id, sent.started, exc)
            raise
        summary = summary_of(answer, (lambda: reasoning(answer)) if reasoning is not None else "")
        if self.kept_fields:
            summary.extras = {name: answer[name] for name in self.kept_fields if name in answer}
        record = self._record(sent)
        record._finish(summary, sent.started)
        self.usage.add(record.usage)
        self.emit("response", method, path, sent.attempt, sent.response.status_code, sent.elapsed, sent.request_id,
                  summary.usage)
        return answer

    def stream(self, path: str, body: dict[str, Any], options: CallOptions,
               open_stream: Callable[..., Stream]) -> Stream:
        """A streamed call: sent (status errors raise here), then read by ``open_stream``'s
        stream, whose summary fills the record when it ends."""
        sent = self.send("POST", path, body, options, stream=True)
        status = sent.response.status_code
        self.emit("response", "POST", path, sent.attempt, status, sent.elapsed, sent.request_id)
        record = self._record(sent)

        def on_end(summary: CallSummary) -> None:
            record._finish(summary, sent.started)
            self.usage.add(record.usage)
            if summary.complete:
                self.emit("stream_end", "POST", path, sent.attempt, status, record.elapsed, sent.request_id,
                          summary.usage)

        return open_stream(sent.response, deadline_at=options.deadline_at, request_id=sent.request_id,
                           on_end=on_end, kept_fields=self.kept_fields)

    def _record(self, sent: Sent) -> CallRecord:
        record = CallRecord(sent.method, sent.path, sent.response.status_code, sent.request_id, sent.attempt,
                            sent.response.headers)
        record._request, record._key_variable = sent.response.request, self.key_variable
        self._local.last = record
        return record

    def _failed(self, method: str, path: str, attempts: int, status: int | None, request_id: str | None,
                started: float, error: Exception, request: Any = None) -> None:
        record = CallRecord(method, path, status, request_id, attempts, None)
        record._request, record._key_variable = request, self.key_variable
        record.elapsed = time.monotonic() - started
        record.error = str(error)
        self._local.last = record

    # -- telling -----------------------------------------------------------------------------

    def emit(self, kind: str, method: str, path: str, attempt: int, status_code: int | None = None,
             elapsed: float | None = None, request_id: str | None = None, usage: dict[str, Any] | None = None,
             error: str | None = None) -> None:
        """Call the event hook, if there is one."""
        if self.event_hook is not None:
            normalized = Usage.from_raw(usage) if usage is not None else None
            self.event_hook(RequestEvent(kind, method, self.connection.base_url + path, attempt, status_code, elapsed,
                                         request_id, usage, error, normalized))

    def _log(self, method: str, path: str, attempt: int, attempts: int, status: int | None, began: float,
             request_id: str | None, error: Exception | None = None) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            redact = self.connection.secrets.redact
            logger.debug(
                "%s %s -> %s in %.3fs (attempt %d of %d, request id %s)%s",
                method,
                redact(self.connection.base_url + path),
                status if status is not None else "no response",
                time.monotonic() - began,
                attempt,
                attempts,
                request_id or "-",
                f": {redact(str(error))}" if error is not None else "",
            )
