"""What each call cost and why it ended: usage, rate limits, timings, in one record per call.

Providers report the same facts in different fields: cached prompt tokens in
``prompt_tokens_details.cached_tokens`` or DeepSeek's ``prompt_cache_hit_tokens``, reasoning
tokens in ``completion_tokens_details.reasoning_tokens``, OpenRouter's ``cost``, rate limits in
``x-ratelimit-*`` headers with resets as ``6m0s``, ``1.5s``, ``120ms`` or seconds. The record
holds them normalised.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Mapping, NamedTuple


class Usage(NamedTuple):
    """Token usage in one shape, whatever the server's; None where the server did not say.

        >>> from openai_compat import Usage
        >>> Usage.from_raw({"prompt_tokens": 9, "completion_tokens": 3, "prompt_cache_hit_tokens": 8})
        Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12, cached_tokens=8, reasoning_tokens=None, cost=None)
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> Usage:
        """Read every known form of a ``usage`` object (None or junk gives an empty ``Usage``)."""
        if not isinstance(raw, dict):
            return cls()
        if len(raw) == 3 and type(raw.get("total_tokens")) is int:  # the usual plain usage, read at once
            prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
            if type(prompt) is int and type(completion) is int:
                return cls(prompt, completion, raw["total_tokens"])
        # Chat names (prompt/completion), or the Responses API's (input/output).
        prompt = _int(raw.get("prompt_tokens", raw.get("input_tokens")))
        completion = _int(raw.get("completion_tokens", raw.get("output_tokens")))
        total = _int(raw.get("total_tokens"))
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        prompt_details = raw.get("prompt_tokens_details", raw.get("input_tokens_details"))
        cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
        if cached is None:
            cached = _int(raw.get("prompt_cache_hit_tokens"))  # DeepSeek
        completion_details = raw.get("completion_tokens_details", raw.get("output_tokens_details"))
        reasoning = _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None
        cost = raw.get("cost")
        return cls(prompt, completion, total, cached, reasoning,
                   float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RateLimits(NamedTuple):
    """The ``x-ratelimit-*`` headers of an answer; resets in seconds; None where not sent."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimits:
        def whole(name: str) -> int | None:
            value = headers.get(f"x-ratelimit-{name}")
            try:
                return int(float(value)) if value is not None else None
            except ValueError:
                return None

        def reset(name: str) -> float | None:
            value = headers.get(f"x-ratelimit-reset-{name}")
            return parse_duration(value) if value is not None else None

        return cls(whole("limit-requests"), whole("remaining-requests"), reset("requests"),
                   whole("limit-tokens"), whole("remaining-tokens"), reset("tokens"))


#: A part of a duration: a number and its unit (compiled on first use, by re's own cache).
_DURATION = r"(\d+(?:\.\d+)?)(ms|h|m|s)"


def parse_duration(text: str) -> float | None:
    """Seconds in ``6m0s``, ``1h2m3.5s``, ``1.5s``, ``120ms`` or a bare ``20``; None if unreadable.

        >>> parse_duration("6m0s"), parse_duration("120ms"), parse_duration("20")
        (360.0, 0.12, 20.0)
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(_DURATION, text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


_NO_USAGE, _NO_LIMITS = Usage(), RateLimits()


class CallSummary:
    """What a finished call said, blocking or streamed: the one summary that fills its record.

    ``finish_reasons`` holds every choice's by index (a Responses call's status is choice 0's),
    ``reasoning`` the thinking text or a function that reads it out of the answer when asked
    for, ``first_piece_at`` when a stream's first piece of text came (``time.monotonic()``),
    ``refusal`` the model's refusal, if it refused.
    """

    __slots__ = ("answer", "complete", "extras", "finish_reasons", "first_piece_at", "model", "reasoning", "refusal",
                 "usage")

    def __init__(self, model: str | None = None, usage: dict[str, Any] | None = None,
                 finish_reasons: Mapping[Any, str | None] | None = None, reasoning: str | Callable[[], str] = "",
                 first_piece_at: float | None = None, complete: bool = True, refusal: str | None = None) -> None:
        self.model = model
        self.usage = usage
        self.finish_reasons = finish_reasons or {}
        self.reasoning = reasoning
        self.first_piece_at = first_piece_at
        self.complete = complete
        self.refusal = refusal
        self.extras: dict[str, Any] = {}
        #: A stream's ``Answer`` (``_delta.py``): what its deltas meant beyond the text.
        self.answer: Any = None


def summary_of(answer: Mapping[str, Any], reasoning: str | Callable[[], str] = "") -> CallSummary:
    """The summary of a whole answer: a chat or completion, a Responses response, or any other
    JSON answer (its usage, if it has one)."""
    model = answer.get("model")
    usage = answer.get("usage")
    finishes: dict[Any, str | None] = {}
    refusals = []
    for choice in answer.get("choices") or ():
        if isinstance(choice, dict):
            index = choice.get("index", 0)
            finishes[index] = choice.get("finish_reason")
            message = choice.get("message")
            if index == 0 and isinstance(message, dict) and isinstance(message.get("refusal"), str):
                refusals.append(message["refusal"])
    if answer.get("object") == "response" and isinstance(answer.get("status"), str):
        finishes[0] = answer["status"]  # the Responses API: completed, incomplete, failed, queued
        refusals += [part.get("refusal") or "" for item in answer.get("output") or () if isinstance(item, dict)
                     for part in item.get("content") or () if isinstance(part, dict) and part.get("type") == "refusal"]
    return CallSummary(model if isinstance(model, str) else None, usage if isinstance(usage, dict) else None,
                       finishes, reasoning, refusal="".join(refusals) or None)


class CallRecord:
    """The facts of one call, beside the ``str`` it returned: ``client.last``.

    ``request_id``, ``model`` (as the server answered), ``finish_reason`` (of the first choice)
    and ``finish_reasons`` (every choice, by index), ``attempts``, ``elapsed`` seconds,
    ``time_to_first_piece`` (streams), ``rate_limits``, ``usage`` (normalised), ``raw_usage``
    (the server's dict), ``reasoning`` (the thinking text, if any), ``refusal`` (the model's
    words, if it refused), ``status_code``, ``partial`` (a stream closed before its end: the
    rest is unknown), ``error`` (why a call failed) and ``extras`` (the answer's fields its
    preset keeps: Perplexity's ``citations`` and ``search_results``).

        >>> from openai_compat import Client
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
        >>> text = client.chat("Hi", max_tokens=5)
        >>> client.last.usage.completion_tokens <= 5, client.last.attempts
        (True, 1)
    """

    def __init__(self, method: str, endpoint: str, status_code: int | None, request_id: str | None, attempts: int,
                 headers: Mapping[str, str] | None) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status_code = status_code
        self.request_id = request_id
        self.attempts = attempts
        self._headers = headers
        self._rate_limits = _NO_LIMITS
        self.model: str | None = None
        self.finish_reasons: dict[Any, str | None] = {}
        self.elapsed: float | None = None
        self.time_to_first_piece: float | None = None
        self.raw_usage: dict[str, Any] | None = None
        self.usage = _NO_USAGE
        self.partial = False
        self.error: str | None = None
        self.refusal: str | None = None
        self.extras: dict[str, Any] = {}
        self._request: Any = None  # the request as sent (requests' PreparedRequest), for as_curl()
        self._key_variable = "OPENAI_API_KEY"
        self._reasoning: str | Callable[[], str] = ""

    @property
    def rate_limits(self) -> RateLimits:
        if self._headers is not None:  # read from the headers when first asked for, not per call
            self._rate_limits, self._headers = RateLimits.from_headers(self._headers), None
        return self._rate_limits

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons.get(0, next(iter(self.finish_reasons.values()), None))

    @property
    def reasoning(self) -> str:
        if callable(self._reasoning):  # a blocking answer's thinking is read only when asked for
            self._reasoning = self._reasoning()
        return self._reasoning

    def _finish(self, summary: CallSummary, started: float) -> None:
        """Fill in what the finished call, which ``started`` then (``time.monotonic()``), said."""
        self.elapsed = time.monotonic() - started
        self.model = summary.model
        self.raw_usage = summary.usage
        self.usage = Usage.from_raw(summary.usage)
        self.finish_reasons.update(summary.finish_reasons)
        self._reasoning = summary.reasoning
        self.refusal = summary.refusal or (summary.answer.refusal if summary.answer is not None else None)
        self.extras = summary.extras
        if summary.first_piece_at is not None:
            self.time_to_first_piece = summary.first_piece_at - started
        self.partial = not summary.complete

    def as_curl(self) -> str:
        """The request as a ``curl`` command to run again, every secret header replaced by a
        variable reference (``"Authorization: Bearer $OPENAI_API_KEY"``).

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.chat("Hi", max_tokens=5)
            >>> client.last.as_curl().startswith("curl -X POST http://127.0.0.1:8080/v1/chat/completions ")
            True
        """
        import shlex

        from ._secrets import SECRET_HEADERS

        request = self._request
        if request is None:
            raise ValueError("this record has no request to show (it was made before the call was sent, or pickled)")
        parts = ["curl", "-X", request.method, shlex.quote(request.url)]
        for name, value in request.headers.items():
            if name.lower() in SECRET_HEADERS:
                variable = self._key_variable if name.lower() in ("authorization", "api-key") else \
                    name.upper().replace("-", "_")
                scheme = value.split(" ", 1)[0] + " " if " " in value else ""
                parts += ["-H", f'"{name}: {scheme}${variable}"']
            elif name.lower() not in ("content-length", "connection"):
                parts += ["-H", shlex.quote(f"{name}: {value}")]
        body = request.body
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                body = None
                parts.append(f"# a body of {len(request.body)} bytes (a file upload), not shown")
        if body:
            parts += ["--data-raw", shlex.quote(body)]
        return " ".join(parts)

    def __getstate__(self) -> dict[str, Any]:
        # The request as sent holds the key; the thinking is read now (a function does not pickle).
        return dict(self.__dict__, _request=None, _reasoning=self.reasoning)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in (
            "endpoint", "request_id", "model", "finish_reason", "attempts", "elapsed", "usage", "partial"))
        return f"CallRecord({shown})"


class UsageTotals:
    """Running totals of ``Usage`` over a client's calls, safe to share between threads.

        >>> from openai_compat import Client
        >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
        >>> client.usage.reset()
        >>> client.usage.calls
        0
    """

    FIELDS = Usage._fields

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.calls = 0
            self.prompt_tokens = self.completion_tokens = self.total_tokens = 0
            self.cached_tokens = self.reasoning_tokens = 0
            self.cost = 0.0

    def add(self, usage: Usage) -> None:
        prompt, completion, total, cached, reasoning, cost = usage
        with self._lock:  # spelled out: it runs once per call
            self.calls += 1
            self.prompt_tokens += prompt or 0
            self.completion_tokens += completion or 0
            self.total_tokens += total or 0
            self.cached_tokens += cached or 0
            self.reasoning_tokens += reasoning or 0
            self.cost += cost or 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __str__(self) -> str:
        text = f"{_count(self.total_tokens, 'token')} in {_count(self.calls, 'call')}"
        return text + (f", ${self.cost:.4f}" if self.cost else "")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in ("calls", *self.FIELDS))
        return f"UsageTotals({shown})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
