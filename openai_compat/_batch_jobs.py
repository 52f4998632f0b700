"""Provider batch jobs: the OpenAI-style ``/files`` + ``/batches`` protocol, for work that can
wait hours at a discount (OpenAI, Groq, Together and others speak it).

``submit_batch()`` uploads the requests as JSON lines, creates the batch and returns a
``BatchJob``; ``results()`` gives one answer per request, in input order, errors in place.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Sequence

from ._error_bodies import status_error
from ._errors import APIResponseError, OpenAICompatError

#: The states a batch passes through; the last four are final.
STATES = ("validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled")
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchItemError(OpenAICompatError):
    """A request of a batch that has no answer: it failed, or the batch ended before it ran."""


class BatchJob:
    """A batch running on the provider. ``status()`` asks for its state, ``wait()`` waits for
    a final one, ``results()`` reads the answers, ``cancel()`` stops it.

        >>> from openai_compat import BatchJob
        >>> BatchJob.FINAL_STATES
        ('completed', 'failed', 'expired', 'cancelled')
    """

    FINAL_STATES = STATES[4:]

    def __init__(self, client: Any, batch: dict[str, Any], size: int) -> None:
        self.client = client
        self.id: str = batch["id"]
        self.size = size
        self.batch = batch

    def __repr__(self) -> str:
        return f"BatchJob(id={self.id!r}, status={self.batch.get('status')!r}, size={self.size})"

    @property
    def state(self) -> str:
        """The state last seen: one of ``STATES``."""
        return str(self.batch.get("status"))

    def status(self) -> str:
        """Ask the provider for the batch's state now (``request_counts`` are in ``batch``)."""
        self.batch = self.client.get_json(f"/batches/{self.id}")
        return self.state

    def wait(self, *, poll: float = 30.0, timeout: float | None = None, progress: bool = False) -> str:
        """Wait until the batch reaches a final state (or ``timeout`` seconds pass) and return it."""
        give_up = None if timeout is None else time.monotonic() + timeout
        while self.status() not in FINAL:
            if progress:
                counts = self.batch.get("request_counts") or {}
                sys.stderr.write(f"\rbatch {self.id}: {self.state}, {counts.get('completed', 0)}/{self.size} done")
                sys.stderr.flush()
            if give_up is not None and time.monotonic() + poll > give_up:
                raise TimeoutError(f"batch {self.id} is still {self.state} after {timeout} s")
            time.sleep(poll)
        if progress:
            sys.stderr.write(f"\rbatch {self.id}: {self.state}\n")
        return self.state

    def cancel(self) -> str:
        """Ask the provider to stop the batch; returns the state it answers with."""
        self.batch = self.client.post_json(f"/batches/{self.id}/cancel")
        return self.state

    def results(self) -> list[Any]:
        """One result per request, in input order: the response body (a dict) of each request
        that ran, a ``BatchItemError`` or typed status error in place of each that did not.
        A batch that expired or was cancelled gives what it finished (partial results)."""
        answers: dict[str, Any] = {}
        for field in ("error_file_id", "output_file_id"):
            file_id = self.batch.get(field)
            if file_id:
                for line in self.client.get_bytes(f"/files/{file_id}/content").splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        answers[entry.get("custom_id")] = _answer(entry)
        reason = f"the batch ended {self.state} before this request ran"
        return [answers.get(f"request-{i}", BatchItemError(reason)) for i in range(self.size)]


def _answer(entry: dict[str, Any]) -> Any:
    response, error = entry.get("response") or {}, entry.get("error")
    status = response.get("status_code", 200 if error is None else 0)
    if error is None and 200 <= status < 300:
        return response.get("body")
    if status >= 400:
        return status_error(status, json.dumps(response.get("body") or {"error": error}).encode(),
                            request_id=response.get("request_id"))
    if error is None:
        return BatchItemError(f"the request failed in the batch with status {status} and no error")
    message = error.get("message") if isinstance(error, dict) else str(error)
    return BatchItemError(f"the request failed in the batch: {message}")


def batch_lines(requests: Sequence[Any], endpoint: str, model: str | None, params: dict[str, Any]) -> bytes:
    """The JSON lines to upload: one request per line, ``custom_id`` ``request-<n>``. A request
    is a prompt (made into a chat body with ``params``) or a whole body dict."""
    if not requests:
        raise ValueError("submit_batch(): there are no requests")
    lines = []
    for i, request in enumerate(requests):
        if isinstance(request, dict) and ("messages" in request or "input" in request or "prompt" in request):
            body = dict(request)
        elif isinstance(request, (str, list)):
            body = {"messages": [{"role": "user", "content": request}] if isinstance(request, str) else request}
        else:
            raise TypeError(f"submit_batch(): request {i} must be a prompt or a request body dict")
        body = {**params, **body}
        body.setdefault("model", model)
        if not body.get("model"):
            raise ValueError("submit_batch(): no model: pass model=... or Client(model=...)")
        lines.append(json.dumps({"custom_id": f"request-{i}", "method": "POST", "url": endpoint, "body": body}))
    return ("\n".join(lines) + "\n").encode()


def check_created(batch: Any) -> dict[str, Any]:
    if not isinstance(batch, dict) or not isinstance(batch.get("id"), str):
        raise APIResponseError("the server answered /batches without a batch id", body=batch)
    return batch
