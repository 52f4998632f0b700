"""The retry policy: which failures are tried again, after how long, and when to stop.

One ``RetryPolicy`` answers "again, and after how long?" for every loop that resends: the
call pipeline's own attempts, the adaptive resend of a refused field, ``batch()``'s re-queue
of a rate-limited prompt and ``chat_json()``'s format ladder. The deadline is a point in time,
set once when a call starts, so no resend arms it again.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, NamedTuple

#: Statuses worth sending again as they are: a timeout, a conflict, a rate limit (and every 5xx).
RETRY_STATUSES = frozenset({408, 409, 429})


class RetryPolicy(NamedTuple):
    """How a client retries: ``max_retries`` after the first try; connection failures before an
    answer, and the ``statuses`` (plus every 5xx) are tried again, after the wait the server names
    (``Retry-After``, ``retry-after-ms``) or a backoff from ``backoff_start`` doubling to
    ``backoff_cap``, each shortened by up to a quarter. A named wait over ``max_wait`` is not
    slept: the error is raised with its ``retry_after``. An answer that says waiting will not help
    (a used-up quota, a prompt over the context, a request the server finds invalid) is raised at
    once, and no wait ever runs past a call's deadline.

        >>> from openai_compat import Client, RetryPolicy
        >>> client = Client("http://127.0.0.1:8080/v1", retry=RetryPolicy(max_retries=5, backoff_cap=30.0))
        >>> client.retry.max_retries, RetryPolicy().backoff(3) <= 2.0
        (5, True)
    """

    max_retries: int = 2
    statuses: frozenset[int] = RETRY_STATUSES
    backoff_start: float = 0.5
    backoff_cap: float = 8.0
    max_wait: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` when the server named no wait."""
        import random  # imported on the first retry, not at start-up

        wait = min(self.backoff_cap, self.backoff_start * 2.0 ** (attempt - 1))
        return wait * (1 - random.random() / 4)

    def retryable(self, error: BaseException) -> bool:
        """Whether sending the same request again could give another answer than ``error``."""
        from ._error_bodies import is_final  # the error tree is imported by then

        status = getattr(error, "status_code", None)
        if status is None:
            return getattr(error, "retryable", True)  # a connection failure before the answer
        return (status in self.statuses or status >= 500) and not is_final(error)

    def wait(self, attempt: int, error: BaseException, deadline_at: float | None) -> float | None:
        """Seconds to wait before sending again after ``attempt`` failed with ``error``, or None
        to give up: not retryable, no retries left, a named wait over ``max_wait``, or a wait
        that would end past ``deadline_at``."""
        if attempt > self.max_retries or not self.retryable(error):
            return None
        named = getattr(error, "retry_after", None)
        delay = named if named is not None else self.backoff(attempt)
        if delay > self.max_wait or (deadline_at is not None and time.monotonic() + delay >= deadline_at):
            return None
        return delay


def remaining(deadline_at: float | None) -> float | None:
    """Seconds left before ``deadline_at`` (None: no deadline); at least a millisecond."""
    return None if deadline_at is None else max(deadline_at - time.monotonic(), 0.001)


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


def check_policy(retry: Any, max_retries: Any) -> RetryPolicy:
    """The client's policy: ``retry`` as given, with ``max_retries`` (when given) in it."""
    from ._options import check_retries

    if retry is None:
        retry = RetryPolicy()
    elif not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    policy: RetryPolicy = retry
    if max_retries is not None:
        return policy._replace(max_retries=check_retries(max_retries))
    check_retries(policy.max_retries)
    return policy
