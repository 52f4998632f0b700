"""Running many calls on a few threads, for notebooks: results in order, errors in place."""

from __future__ import annotations

import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from concurrent.futures import Future


def run_batch(
    call: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    max_workers: int,
    return_exceptions: bool,
    progress: bool,
    describe: Callable[[], str] | None = None,
) -> list[Any]:
    """``call(item)`` for each item on ``max_workers`` threads; the results in input order.

    With ``progress``, a bar counts finished calls, with ``describe()`` beside it."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # not needed at import

    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
    bar = _progress_bar(len(items)) if progress else None
    executor = ThreadPoolExecutor(max_workers=min(max_workers, max(len(items), 1)))
    futures: list[Future[Any]] = []
    try:
        futures = [executor.submit(call, item) for item in items]
        if bar is not None:
            def advance(future: Future[Any]) -> None:
                if describe is not None:
                    bar.set_postfix_str(describe(), refresh=False)
                bar.update(1)

            for future in futures:
                future.add_done_callback(advance)
        done, _ = wait(futures, return_when="ALL_COMPLETED" if return_exceptions else FIRST_EXCEPTION)
        results = []
        for future in futures:
            if not return_exceptions and future in done and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
            error = future.exception()
            results.append(error if error is not None else future.result())
        return results
    finally:
        # On an error or Ctrl-C, calls not yet started are dropped rather than run.
        for future in futures:
            future.cancel()
        executor.shutdown(wait=True)
        if bar is not None:
            bar.close()


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
