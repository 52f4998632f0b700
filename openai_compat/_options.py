"""A call's limits: its timeout, retries and deadline, checked once and resolved per call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

if TYPE_CHECKING:
    from ._retry import RetryPolicy

#: ``(connect, read)`` seconds. The read timeout bounds each wait for bytes, so a long
#: generation that streams steadily never times out; a silent server does.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 600.0)

Timeout = Union[float, Tuple[Optional[float], Optional[float]], None]


class _NotGiven:
    """Marks an option the caller left out, where ``None`` has a meaning of its own."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


class CallOptions:
    """The timeout, the retry policy and the deadline of one call. ``deadline_at`` is the
    moment (``time.monotonic()``) the deadline of ``deadline`` seconds runs out: set once when
    the call starts, so that nothing the call does after (a retry, a resend, the stream) can
    move it. ``headers`` and ``query`` are the call's own (``extra_headers=``, ``extra_query=``)."""

    __slots__ = ("deadline", "deadline_at", "headers", "query", "retry", "timeout")

    def __init__(self, timeout: Timeout, retry: RetryPolicy, deadline: float | None = None) -> None:
        self.timeout = timeout
        self.retry = retry
        self.deadline = deadline
        self.deadline_at = None if deadline is None else time.monotonic() + deadline
        self.headers: dict[str, str] | None = None
        self.query: dict[str, str] | None = None


def check_timeout(timeout: Timeout) -> Timeout:
    parts = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(parts) not in (1, 2) or not all(
        p is None or (isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0) for p in parts
    ):
        raise ValueError(f"timeout must be seconds > 0, (connect, read), or None, got {timeout!r}")
    return timeout


def check_retries(max_retries: int) -> int:
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
    return max_retries


def check_deadline(deadline: float | None) -> float | None:
    if deadline is not None and (
        not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or not deadline > 0
    ):
        raise ValueError(f"deadline must be seconds > 0 or None, got {deadline!r}")
    return deadline


def within(timeout: Timeout, deadline_at: float | None) -> Timeout:
    """``timeout`` shortened so that no wait runs past ``deadline_at``."""
    if deadline_at is None:
        return timeout
    left = max(deadline_at - time.monotonic(), 0.001)
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (min(connect or left, left), min(read or left, left))
