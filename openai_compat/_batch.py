"""Running many calls on a few threads, for notebooks: results in order, errors in place."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ._errors import OpenAICompatError
    from ._retry import RetryPolicy


def run_batch(
    call: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    max_workers: int,
    return_exceptions: bool,
    progress: bool,
    describe: Callable[[], str] | None = None,
    pacer: Pacer | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[Any]:
    """``call(item)`` for each item on ``max_workers`` threads; the results in input order.

    With ``progress``, a bar counts finished calls, with ``describe()`` beside it. A ``pacer``
    spaces the calls out; a ``checkpoint`` supplies answers from an earlier run and keeps new ones."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # not needed at import

    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
    known = checkpoint.answers(items) if checkpoint is not None else {}
    todo = [i for i in range(len(items)) if i not in known]
    bar = _progress_bar(len(todo)) if progress else None
    executor = ThreadPoolExecutor(max_workers=min(max_workers, max(len(todo), 1)))
    futures: dict[int, Future[Any]] = {}

    def one(index: int) -> Any:
        result = pacer.run(call, items[index]) if pacer is not None else call(items[index])
        if checkpoint is not None:
            checkpoint.keep(index, items[index], result)
        return result

    try:
        futures = {i: executor.submit(one, i) for i in todo}
        if bar is not None:
            def advance(future: Future[Any]) -> None:
                if describe is not None:
                    bar.set_postfix_str(describe(), refresh=False)
                bar.update(1)

            for future in futures.values():
                future.add_done_callback(advance)
        done, _ = wait(futures.values(), return_when="ALL_COMPLETED" if return_exceptions else FIRST_EXCEPTION)
        if not return_exceptions:
            failed = [futures[i] for i in todo if futures[i] in done and futures[i].exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        results = []
        for index in range(len(items)):
            if index in known:
                results.append(known[index])
                continue
            error = futures[index].exception()
            results.append(error if error is not None else futures[index].result())
        return results
    finally:
        # On an error or Ctrl-C, calls not yet started are dropped rather than run, and calls
        # in flight are not waited for: their answers are no longer wanted.
        for future in futures.values():
            future.cancel()
        executor.shutdown(wait=False)
        if bar is not None:
            bar.close()


class Pacer:
    """Requests and tokens per minute as token buckets, and a concurrency that steps down on
    rate limits and climbs back.

    Each call takes one request from its bucket and, before it starts, as many tokens as an
    average call has spent so far; once it knows what it really spent (``spent()``, read after
    the call) it settles the difference. With a token budget, the first call goes alone, so
    that the ones after it know what a call costs. A call that still ends in a rate-limit error
    halves the concurrency and goes back in the queue while its prompt has sent fewer requests
    than ``retry`` allows one call (``max_retries + 1``) and the error is one that waiting can
    mend; a run of successes raises the concurrency by one again, up to ``max_workers``.
    """

    def __init__(self, max_workers: int, requests_per_minute: float | None, tokens_per_minute: float | None,
                 spent: Callable[[], int], rate_limited: type[OpenAICompatError], retry: RetryPolicy) -> None:
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"batch(): {name} must be a number > 0, got {value!r}")
        self.limit = self.most = max_workers
        self._spent = spent
        self._rate_limited = rate_limited
        self._retry = retry
        self._buckets = [_Bucket(rate / 60.0) if rate else None for rate in (requests_per_minute, tokens_per_minute)]
        self._active = self._finished = self._streak = self._tokens_spent = self._calls_paid = 0
        self._turn = threading.Condition()

    def run(self, call: Callable[..., Any], item: Any) -> Any:
        """``call(item, retries)``, paced, and asked again after a rate limit while the prompt's
        requests stay within one call's allowance (``retries`` is what is left of it)."""
        allowance = self._retry.max_retries + 1
        sent = 0
        while True:
            reserved = self._acquire()
            try:
                result = call(item, allowance - sent - 1)
            except self._rate_limited as exc:
                self._release(0, reserved, limited=True)
                sent += exc.attempts
                if sent >= allowance or not self._retry.retryable(exc):
                    exc.attempts = sent  # the prompt's requests, over every time it was asked
                    raise
                continue
            except BaseException:
                self._release(0, reserved, limited=False)
                raise
            self._release(self._spent(), reserved, limited=False)
            return result

    def _acquire(self) -> float:
        """Wait for a slot and the buckets; return the tokens reserved for the call."""
        requests_, tokens = self._buckets
        with self._turn:
            while True:
                # Until one call has finished, nothing is known about what a call costs in
                # tokens: the first goes alone.
                learning = tokens is not None and not self._finished and self._active > 0
                wait = 0.0 if self._active < self.limit and not learning else None
                # A call needs one request, and as many tokens as an average call spent so far.
                average = self._tokens_spent / self._calls_paid if self._calls_paid else 0.0
                for bucket, needs in ((requests_, 1.0), (tokens, average)):
                    if bucket is not None and wait is not None:
                        wait = max(wait, bucket.wait_for(needs))
                if wait == 0.0:
                    break
                self._turn.wait(wait)
            if requests_ is not None:
                requests_.take(1.0)
            if tokens is not None:
                tokens.take(average)
            self._active += 1
            return average

    def _release(self, tokens: int, reserved: float, *, limited: bool) -> None:
        with self._turn:
            self._active -= 1
            self._finished += 1
            if self._buckets[1] is not None:
                self._buckets[1].take(tokens - reserved)
            if tokens:
                self._tokens_spent += tokens
                self._calls_paid += 1
            if limited:
                self.limit, self._streak = max(1, self.limit // 2), 0
            else:
                self._streak += 1
                if self._streak >= self.limit and self.limit < self.most:
                    self.limit, self._streak = self.limit + 1, 0
            self._turn.notify_all()


class _Bucket:
    """A token bucket filling at ``rate`` per second, holding at most a second's worth (at least 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.size = max(rate, 1.0)
        self.level = self.size
        self.at = time.monotonic()

    def _fill(self) -> None:
        now = time.monotonic()
        self.level = min(self.size, self.level + (now - self.at) * self.rate)
        self.at = now

    def wait_for(self, needed: float) -> float:
        """Seconds until the bucket holds ``needed`` (a debt must be paid back first)."""
        self._fill()
        needed = min(needed, self.size)  # a call bigger than the bucket waits for a full bucket
        return 0.0 if self.level >= needed else (needed - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._fill()
        self.level -= amount


class Checkpoint:
    """A JSON-lines file of answers, one line per finished item: a rerun skips what is there."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    @staticmethod
    def _key(item: Any) -> str:
        return hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def answers(self, items: Sequence[Any]) -> dict[int, Any]:
        """The answers already in the file for these items (same index, same prompt)."""
        found: dict[int, Any] = {}
        if not os.path.exists(self.path):
            return found
        with open(self.path, encoding="utf-8") as file:
            for line in file:
                try:
                    kept = json.loads(line)
                    index = kept["index"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short when the last run was stopped
                if isinstance(index, int) and 0 <= index < len(items) and kept.get("key") == self._key(items[index]):
                    found[index] = kept["answer"]
        return found

    def keep(self, index: int, item: Any, answer: Any) -> None:
        line = json.dumps({"index": index, "key": self._key(item), "answer": answer}, ensure_ascii=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as file:
            file.write(line + "\n")


class _TextBar:
    """A one-line progress display on stderr, for when tqdm is not installed (tqdm's methods)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.postfix = ""
        self._lock = threading.Lock()  # calls finish on the workers' threads

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def update(self, n: int) -> None:
        with self._lock:
            self.count += n
            note = f" ({self.postfix})" if self.postfix else ""
            sys.stderr.write(f"\r{self.count}/{self.total} done{note}")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _progress_bar(total: int) -> Any:
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm  # optional, never a dependency
    except ImportError:
        return _TextBar(total)
    return tqdm(total=total)
