"""Beyond one process: paced and resumable batches, provider batch jobs, a distributed engine."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from openai_compat import (
    APIResponseError,
    BadRequestError,
    BatchItemError,
    Client,
    InternalServerError,
    RateLimitError,
    RetryPolicy,
)

from .server import LoopbackServer, Request, Wire, completion


def echo(req: Request, wire: Wire) -> None:
    wire.json(completion(req.json["messages"][-1]["content"], usage={"prompt_tokens": 60, "completion_tokens": 40,
                                                                     "total_tokens": 100}))


# -- pacing ----------------------------------------------------------------------------------------------


def test_requests_per_minute_spaces_the_calls(server: LoopbackServer) -> None:
    server.handler = echo
    started = time.monotonic()
    answers = Client(server.url, model="m").batch([f"p{i}" for i in range(9)], requests_per_minute=240, max_workers=8)
    assert answers == [f"p{i}" for i in range(9)]
    # A bucket of 4 (a second's worth of 240 a minute), then one every 0.25 s for the other five.
    assert time.monotonic() - started >= 1.1
    times = sorted(r.received_at for r in server.requests)
    assert times[-1] - times[4] >= 0.9


def test_tokens_per_minute_waits_for_the_tokens_spent(server: LoopbackServer) -> None:
    server.handler = echo
    started = time.monotonic()
    Client(server.url, model="m").batch([f"p{i}" for i in range(8)], tokens_per_minute=24000, max_workers=4)
    # 400 tokens a second, 400 at first, and each call spends 100. The first call goes alone to
    # learn that; each one after it reserves 100 before it starts. So the k-th call to start
    # (counting from 0) waits until 400 + 400 t - 100 k >= 100, however the threads interleave.
    starts = sorted(r.received_at - started for r in server.requests)
    for k, at in enumerate(starts):
        assert at >= (100 * k - 300) / 400 - 0.01, f"call {k} started at {at:.3f} s, over the budget"


def test_repeated_rate_limits_step_concurrency_down_then_up(server: LoopbackServer) -> None:
    lock = threading.Lock()
    state = {"in_flight": 0, "limited": 0}
    peaks: list[int] = []

    def handler(req: Request, wire: Wire) -> None:
        with lock:
            state["in_flight"] += 1
            peaks.append(state["in_flight"])
            crowded = state["in_flight"] > 3
            state["limited"] += crowded
        try:
            if crowded:
                wire.json({"error": {"message": "too many at once"}}, status=429, headers={"Retry-After": "120"})
            else:
                time.sleep(0.05)
                echo(req, wire)
        finally:
            with lock:
                state["in_flight"] -= 1

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0)
    # A wait of 120 s is over the cap: each 429 comes back at once, and the batch asks again
    # while the prompt has sent fewer than max_retries + 1 requests.
    answers = client.batch([f"p{i}" for i in range(40)], max_workers=8, requests_per_minute=6000, max_retries=4)
    assert answers == [f"p{i}" for i in range(40)], "every prompt answered in the end"
    assert state["limited"] < 20, "it slowed down instead of hammering"
    assert max(peaks[-20:]) <= 5, "the concurrency came down"
    assert max(peaks[-20:]) >= 3, "and climbed back up"


@pytest.mark.parametrize("retry_after", ["0", "120"])
def test_a_lasting_rate_limit_costs_one_prompt_at_most_max_retries_plus_one_requests(
    server: LoopbackServer, retry_after: str
) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "slow down"}}, status=429,
                                                 headers={"Retry-After": retry_after})
    answers = Client(server.url, model="m", max_retries=2).batch(["a"], requests_per_minute=6000)
    assert isinstance(answers[0], RateLimitError) and answers[0].attempts == len(server.requests)
    assert len(server.requests) == 3


def test_a_used_up_quota_is_raised_at_once_and_never_asked_again(server: LoopbackServer) -> None:
    quota = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                       "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
    server.handler = lambda req, wire: wire.json(quota, status=429, headers={"Retry-After": "0"})
    client = Client(server.url, model="m", max_retries=3)
    with pytest.raises(RateLimitError, match="You exceeded your current quota") as info:
        client.chat("hi")
    assert info.value.code == "insufficient_quota" and len(server.requests) == 1
    answers = client.batch(["a", "b"], requests_per_minute=6000)
    assert all(isinstance(a, RateLimitError) for a in answers) and len(server.requests) == 3


def test_a_rate_limit_without_pacing_is_left_in_place(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "no"}}, status=429,
                                                 headers={"Retry-After": "120"})
    answers = Client(server.url, model="m", max_retries=0).batch(["a"])
    assert isinstance(answers[0], RateLimitError)


def test_a_call_costing_more_than_the_token_budget_waits_for_a_full_bucket_not_forever(
    server: LoopbackServer,
) -> None:
    # 2400 tokens a minute is a bucket of 40 (a second's worth); every call spends 100. The bucket
    # never holds 100, so the second call waits until the debt is paid and the bucket is full
    # (2.5 s), as it would for a call that costs more than a whole minute's budget.
    server.handler = echo
    finished: list[Any] = []
    runner = threading.Thread(target=lambda: finished.append(Client(server.url, model="m").batch(
        ["p0", "p1"], tokens_per_minute=2400, max_workers=2)), daemon=True)
    runner.start()
    runner.join(60)
    assert finished == [["p0", "p1"]], "the second call ran once the budget allowed, it did not hang"


def test_return_exceptions_false_raises_without_waiting_for_the_calls_in_flight(server: LoopbackServer) -> None:
    release = threading.Event()
    held_out: list[str] = []

    def handler(req: Request, wire: Wire) -> None:
        prompt = req.json["messages"][-1]["content"]
        if prompt == "bad":
            wire.json({"error": {"message": "no"}}, status=400)
            return
        if not release.wait(20):
            held_out.append(prompt)  # batch() waited for this call
        echo(req, wire)

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0)
    try:
        with pytest.raises(BadRequestError):
            client.batch(["slow-1", "bad", "slow-2"], max_workers=3, return_exceptions=False)
        assert not release.is_set() and held_out == [], "it raised while the slow calls were still running"
    finally:
        release.set()


@pytest.mark.parametrize("options, message", [
    ({"max_workers": 0}, "max_workers must be a whole number >= 1, got 0"),
    ({"max_workers": "4"}, "max_workers must be a whole number >= 1, got '4'"),
    ({"requests_per_minute": 0}, "batch(): requests_per_minute must be a number > 0, got 0"),
    ({"requests_per_minute": 0.5, "tokens_per_minute": -1}, "batch(): tokens_per_minute must be a number > 0, got -1"),
    ({"tokens_per_minute": "60"}, "batch(): tokens_per_minute must be a number > 0, got '60'"),
    ({"requests_per_minute": True}, "batch(): requests_per_minute must be a number > 0, got True"),
])
def test_bad_workers_or_pacing_are_refused_in_words_before_any_request(server: LoopbackServer, options: dict[str, Any],
                                                                       message: str) -> None:
    with pytest.raises(ValueError) as info:
        Client(server.url, model="m").batch(["a", "b"], **options)
    assert str(info.value) == message and server.requests == []


def test_a_paced_prompt_asked_again_after_a_rate_limit_has_what_is_left_of_its_retries(server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if req.number == 1:
            wire.json({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "120"})
        else:
            wire.json({"error": {"message": "busy"}}, status=500, headers={"Retry-After": "0"})

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0)
    [failure] = client.batch(["p"], max_retries=3, requests_per_minute=6000, tokens_per_minute=10**7)
    # One request answered 429, then the three the prompt had left: four in all, max_retries + 1.
    assert isinstance(failure, InternalServerError) and failure.status_code == 500
    assert len(server.requests) == 4


class HeldCalls:
    """A handler that holds each call until the test lets it go, so a test can count how many
    calls the batch has let start at each step. ``refuse(prompt, wire)`` answers a prompt at once
    when it returns True."""

    def __init__(self, refuse: Callable[[str, Wire], bool] = lambda prompt, wire: False) -> None:
        self.refuse = refuse
        self.arrived: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.open = False  # once the test has seen enough, every call is answered at once

    def __call__(self, req: Request, wire: Wire) -> None:
        prompt = req.json["messages"][-1]["content"]
        if self.refuse(prompt, wire):
            return
        with self.lock:
            gate = self.gates.setdefault(prompt, threading.Event())
            self.arrived.append(prompt)
            if self.open:
                gate.set()
        gate.wait(20)
        echo(req, wire)

    def started(self, count: int) -> int:
        """How many calls have started once ``count`` have, and nothing more came in a while."""
        give_up = time.monotonic() + 10
        while len(self.arrived) < count and time.monotonic() < give_up:
            time.sleep(0.01)
        time.sleep(0.3)  # a call that should not have started has had time to
        return len(self.arrived)

    def release(self, *places: int) -> None:
        with self.lock:
            for place in places:
                self.gates[self.arrived[place]].set()

    def release_all(self) -> None:
        with self.lock:
            self.open = True
            for gate in self.gates.values():
                gate.set()


@contextmanager
def batch_held(held: HeldCalls, client: Client, prompts: list[str], **options: Any) -> Iterator[list[Any]]:
    """Runs ``client.batch(prompts)`` on a thread while the block counts the calls ``held`` lets
    start; on leaving, lets every call go and gives the answers in the list it yielded."""
    answers: list[Any] = []
    runner = threading.Thread(target=lambda: answers.extend(client.batch(prompts, **options)), daemon=True)
    runner.start()
    try:
        yield answers
    finally:
        held.release_all()
        runner.join(30)


def test_after_a_burst_of_rate_limits_one_call_goes_alone_and_each_full_round_of_successes_adds_one(
    server: LoopbackServer,
) -> None:
    burst = threading.Barrier(4, timeout=10)

    def limited(prompt: str, wire: Wire) -> bool:
        if prompt.startswith("limited"):
            burst.wait()  # all four are in flight before the first is answered
            wire.json({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "120"})
        return prompt.startswith("limited")

    server.handler = held = HeldCalls(limited)
    prompts = [f"limited{i}" for i in range(4)] + [f"s{i}" for i in range(6)]
    with batch_held(held, Client(server.url, model="m", max_retries=0), prompts, max_workers=4,
                    requests_per_minute=6000, max_retries=0) as answers:
        assert held.started(1) == 1, "four rate limits halve four workers down to one"
        held.release(0)
        assert held.started(3) == 3, "one success at a limit of one makes it two"
        held.release(1)
        assert held.started(4) == 4, "one success at a limit of two leaves it at two"
        held.release(2)
        assert held.started(6) == 6, "the second success at two makes it three"
    assert [type(r).__name__ for r in answers[:4]] == ["RateLimitError"] * 4 and answers[4:] == prompts[4:]


def limited_once_others_are_held(count: int) -> HeldCalls:
    """Held calls, where the prompt "limited" is answered with a rate limit once ``count`` other
    calls are held (the other workers are in flight)."""
    def limited(prompt: str, wire: Wire) -> bool:
        if prompt == "limited":
            give_up = time.monotonic() + 10
            while len(held.arrived) < count and time.monotonic() < give_up:
                time.sleep(0.01)
            wire.json({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "120"})
        return prompt == "limited"

    held = HeldCalls(limited)
    return held


def test_one_rate_limit_halves_the_concurrency_and_a_full_round_of_successes_raises_it(server: LoopbackServer) -> None:
    server.handler = held = limited_once_others_are_held(3)
    prompts = ["limited"] + [f"s{i}" for i in range(6)]
    with batch_held(held, Client(server.url, model="m", max_retries=0), prompts, max_workers=4,
                    requests_per_minute=6000, max_retries=0) as answers:
        assert held.started(3) == 3, "four halved is two, and three are in flight already"
        held.release(0)
        assert held.started(3) == 3, "one success at a limit of two leaves it at two, with two in flight"
        held.release(1)
        assert held.started(5) == 5, "the second makes it three, with one in flight"
    assert isinstance(answers[0], RateLimitError)


def test_three_workers_halved_are_one_whole_worker(server: LoopbackServer) -> None:
    server.handler = held = limited_once_others_are_held(2)
    prompts = ["limited"] + [f"s{i}" for i in range(5)]
    with batch_held(held, Client(server.url, model="m", max_retries=0), prompts, max_workers=3,
                    requests_per_minute=6000, max_retries=0) as answers:
        assert held.started(2) == 2
        held.release(0)
        assert held.started(3) == 3, "a success at a limit of one makes it two, with one in flight"
        held.release(1)
        assert held.started(4) == 4, "not two and a half: one more starts, not two"
    assert isinstance(answers[0], RateLimitError)


def test_a_failure_that_is_no_rate_limit_leaves_the_concurrency_as_it_was(server: LoopbackServer) -> None:
    def bad(prompt: str, wire: Wire) -> bool:
        if prompt.startswith("bad"):
            wire.json({"error": {"message": "no"}}, status=400)
        return prompt.startswith("bad")

    server.handler = held = HeldCalls(bad)
    prompts = [f"bad{i}" for i in range(4)] + [f"s{i}" for i in range(4)]
    with batch_held(held, Client(server.url, model="m", max_retries=0), prompts, max_workers=4,
                    requests_per_minute=6000, tokens_per_minute=10**7) as answers:
        assert held.started(4) == 4
    assert [type(r).__name__ for r in answers] == ["BadRequestError"] * 4 + ["str"] * 4


def test_with_a_token_budget_the_first_call_goes_alone_to_learn_what_a_call_costs(server: LoopbackServer) -> None:
    server.handler = held = HeldCalls()
    with batch_held(held, Client(server.url, model="m"), ["a", "b", "c"], max_workers=3,
                    tokens_per_minute=10**7) as answers:
        assert held.started(1) == 1
        held.release(0)
        assert held.started(3) == 3, "once one call has said what it cost, the others go together"
    assert answers == ["a", "b", "c"]


def test_a_budget_under_one_request_a_second_lets_one_call_start_at_a_time(server: LoopbackServer) -> None:
    server.handler = echo
    Client(server.url, model="m").batch(["a", "b"], requests_per_minute=60)
    first, second = sorted(r.received_at for r in server.requests)
    assert second - first >= 0.9, "a bucket never holds less than one request, and never more at 60 a minute"


# -- resumable runs --------------------------------------------------------------------------------------------


def test_a_checkpoint_resumes_where_the_last_run_stopped(server: LoopbackServer, tmp_path: Path) -> None:
    def flaky(req: Request, wire: Wire) -> None:
        if req.json["messages"][-1]["content"] == "p3":
            wire.json({"error": {"message": "boom"}}, status=500)
        else:
            echo(req, wire)

    server.handler = flaky
    saved = tmp_path / "answers.jsonl"
    client = Client(server.url, model="m", max_retries=0)
    first = client.batch([f"p{i}" for i in range(6)], checkpoint=saved)
    assert isinstance(first[3], InternalServerError) and first[:3] == ["p0", "p1", "p2"]
    assert len(saved.read_text().splitlines()) == 5, "each answer kept as it came; failures are not"
    server.handler = echo
    again = client.batch([f"p{i}" for i in range(6)], checkpoint=saved)
    assert again == [f"p{i}" for i in range(6)]
    assert [r.json["messages"][-1]["content"] for r in server.requests[6:]] == ["p3"], "only what was missing"
    changed = client.batch(["p0", "p1", "NEW", "p3", "p4", "p5"], checkpoint=saved)
    assert changed[2] == "NEW", "a changed prompt is asked again"


def test_a_checkpoint_knows_a_prompt_by_its_content_and_skips_lines_it_cannot_use(server: LoopbackServer,
                                                                                 tmp_path: Path) -> None:
    server.handler = echo
    saved = tmp_path / "answers.jsonl"
    client = Client(server.url, model="m", max_retries=0)
    first = [[{"role": "user", "content": "café"}], [{"role": "user", "content": "tea"}]]
    assert client.batch(first, checkpoint=saved) == ["café", "tea"]
    assert "café" in saved.read_text(encoding="utf-8"), "kept as readable UTF-8"
    with saved.open("a", encoding="utf-8") as file:
        file.write('{"index": 2, "key": "0", "answer": "one past the end"}\n{"index": 7, "key": "0", "answer":'
                   ' "out of range"}\n{"answer": "no index"}\n{"index": 1, "ke')
    reordered = [[{"content": "café", "role": "user"}], [{"content": "tea", "role": "user"}]]
    assert client.batch(reordered, checkpoint=saved) == ["café", "tea"]
    assert len(server.requests) == 2, "the same messages in another key order are the same prompts"


# -- provider batch jobs ----------------------------------------------------------------------------------------


class BatchProvider:
    """The /files + /batches state machine: each status read moves the batch one state on."""

    def __init__(self, final: str = "completed", fail: tuple[int, ...] = (), finish: int | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.batch: dict[str, Any] = {}
        self.created: dict[str, Any] = {}
        self.path: list[str] = []
        self.final, self.fail, self.finish = final, fail, finish

    def __call__(self, req: Request, wire: Wire) -> None:
        if req.path == "/v1/files" and req.method == "POST":
            assert b'name="purpose"\r\n\r\nbatch' in req.raw_body
            content = re.search(rb'name="file"; filename="batch.jsonl"\r\nContent-Type: application/jsonl'
                                rb'\r\n\r\n(.*?)\r\n--', req.raw_body, re.S)
            assert content is not None
            self.files["file-in"] = content.group(1)
            wire.json({"id": "file-in", "object": "file", "purpose": "batch", "bytes": len(content.group(1))})
        elif req.path == "/v1/batches" and req.method == "POST":
            body = self.created = req.json
            assert body["input_file_id"] == "file-in" and body["completion_window"] == "24h"
            self.batch = {"id": "batch_1", "object": "batch", "endpoint": body["endpoint"], "status": "validating",
                          "request_counts": {"total": 0, "completed": 0, "failed": 0}}
            self.path.append("validating")
            wire.json(self.batch)
        elif req.path == "/v1/batches/batch_1" and req.method == "GET":
            self.advance()
            wire.json(self.batch)
        elif req.path == "/v1/batches/batch_1/cancel":
            self.batch["status"] = "cancelling"
            self.final = "cancelled"
            self.path.append("cancelling")
            wire.json(self.batch)
        elif req.path.startswith("/v1/files/") and req.path.endswith("/content"):
            wire.body(self.files[req.path.split("/")[3]], headers={"Content-Type": "application/jsonl"})
        else:
            wire.json({"error": {"message": f"no route {req.method} {req.path}"}}, status=404)

    def advance(self) -> None:
        order = ["validating", "in_progress", "finalizing", self.final]
        state = self.batch["status"]
        if state == "cancelling":
            state = "finalizing"
        if state in order[:-1]:
            state = order[order.index(state) + 1]
            self.batch["status"] = state
            self.path.append(state)
        if state == self.final:
            self.finish_outputs()

    def finish_outputs(self) -> None:
        requests_ = [json.loads(line) for line in self.files["file-in"].splitlines()]
        done = requests_ if self.finish is None else requests_[: self.finish]
        out, errors = [], []
        for r in done:
            i = int(r["custom_id"].split("-")[1])
            if i in self.fail:
                errors.append({"id": f"r{i}", "custom_id": r["custom_id"], "response": {
                    "status_code": 400, "request_id": f"req-{i}",
                    "body": {"error": {"message": "bad request in batch", "type": "invalid_request_error"}}},
                    "error": None})
            else:
                out.append({"id": f"r{i}", "custom_id": r["custom_id"], "response": {
                    "status_code": 200, "request_id": f"req-{i}",
                    "body": completion(r["body"]["messages"][-1]["content"])}, "error": None})
        out.reverse()  # providers give no order: results() must put them back in input order
        self.files["file-out"] = "\n".join(json.dumps(o) for o in out).encode()
        self.files["file-err"] = "\n".join(json.dumps(e) for e in errors).encode()
        self.batch.update(output_file_id="file-out" if out else None, error_file_id="file-err" if errors else None,
                          request_counts={"total": len(requests_), "completed": len(out), "failed": len(errors)})


def test_a_batch_job_runs_through_its_states_and_gives_results_in_order(server: LoopbackServer) -> None:
    provider = BatchProvider(fail=(2,))
    server.handler = provider
    job = Client(server.url, model="m").submit_batch([f"p{i}" for i in range(5)], max_tokens=10)
    assert job.state == "validating"
    assert job.wait(poll=0.01, timeout=10) == "completed"
    assert provider.path == ["validating", "in_progress", "finalizing", "completed"]
    results = job.results()
    assert [r["choices"][0]["message"]["content"] if isinstance(r, dict) else type(r).__name__ for r in results] == [
        "p0", "p1", "BadRequestError", "p3", "p4"]
    assert results[2].request_id == "req-2" and results[2].message == "bad request in batch"
    sent = [json.loads(line) for line in provider.files["file-in"].splitlines()]
    assert sent[0] == {"custom_id": "request-0", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"max_tokens": 10, "messages": [{"role": "user", "content": "p0"}], "model": "m"}}


@pytest.mark.parametrize("final", ["expired", "failed"])
def test_a_batch_that_ends_early_gives_what_it_finished(server: LoopbackServer, final: str) -> None:
    server.handler = BatchProvider(final=final, finish=2)
    job = Client(server.url, model="m").submit_batch(["a", "b", "c"])
    assert job.wait(poll=0.01, timeout=10) == final
    results = job.results()
    assert [isinstance(r, dict) for r in results] == [True, True, False]
    assert isinstance(results[2], BatchItemError) and final in str(results[2])


def test_a_batch_can_be_cancelled(server: LoopbackServer) -> None:
    provider = BatchProvider()
    server.handler = provider
    job = Client(server.url, model="m").submit_batch([{"messages": [{"role": "user", "content": "x"}], "model": "big"}])
    assert job.cancel() == "cancelling"
    cancel = next(r for r in server.requests if r.path.endswith("/cancel"))
    assert cancel.method == "POST" and cancel.raw_body == b"", "the endpoint takes no body (a {} body gets HTTP 415)"
    assert "content-type" not in {name.lower() for name in cancel.headers}
    assert job.wait(poll=0.01, timeout=10) == "cancelled"
    assert "cancelled" in provider.path


def test_a_batch_takes_its_own_model_and_metadata(server: LoopbackServer) -> None:
    provider = BatchProvider()
    server.handler = provider
    Client(server.url, model="m").submit_batch_job(["a"], model="big", metadata={"run": "7"})
    assert provider.created["metadata"] == {"run": "7"}
    assert json.loads(provider.files["file-in"])["body"]["model"] == "big"
    Client(server.url, model="m").submit_batch_job(["a"])
    assert "metadata" not in provider.created and json.loads(provider.files["file-in"])["body"]["model"] == "m"


def test_a_batch_needs_requests_and_a_model(server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="no requests"):
        Client(server.url, model="m").submit_batch([])
    with pytest.raises(ValueError, match="no model"):
        Client(server.url).submit_batch(["x"])
    assert server.requests == []


class CountingProvider(BatchProvider):
    """Says how many requests are done only from finalizing on, as a provider may."""

    def advance(self) -> None:
        super().advance()
        if self.batch["status"] == "finalizing":
            self.batch["request_counts"] = {"total": 3, "completed": 2, "failed": 0}


def test_a_batch_shows_its_progress_on_stderr_and_its_state_in_its_repr(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = CountingProvider()
    server.handler = provider
    job = Client(server.url, model="m").submit_batch(["a", "b", "c"])
    assert repr(job) == "BatchJob(id='batch_1', status='validating', size=3)"
    provider.batch["request_counts"] = {"total": 3}
    assert job.wait(poll=0.01, progress=True) == "completed"
    assert capsys.readouterr().err == ("\rbatch batch_1: in_progress, 0/3 done\rbatch batch_1: finalizing, 2/3 done"
                                       "\rbatch batch_1: completed\n")
    assert repr(job) == "BatchJob(id='batch_1', status='completed', size=3)"


def test_a_batch_wait_gives_up_before_a_poll_that_would_pass_the_timeout(server: LoopbackServer) -> None:
    server.handler = BatchProvider()
    job = Client(server.url, model="m").submit_batch(["a"])
    with pytest.raises(TimeoutError) as info:
        job.wait(poll=1.0, timeout=0.5)
    assert str(info.value) == "batch batch_1 is still in_progress after 0.5 s"
    assert [r.method for r in server.requests if r.path == "/v1/batches/batch_1"] == ["GET"], "no sleep, one look"


class WrittenOutputs(BatchProvider):
    """A provider whose output file holds the lines given, as other providers write them."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        super().__init__()
        self.lines = lines

    def finish_outputs(self) -> None:
        self.files["file-out"] = "\n".join(json.dumps(line) for line in self.lines).encode()
        self.batch.update(output_file_id="file-out")


def test_batch_results_read_each_way_a_line_says_how_its_request_went(server: LoopbackServer) -> None:
    lines: list[dict[str, Any]] = [
        {"custom_id": "request-0", "response": {"body": completion("no status code given")}},
        {"custom_id": "request-1", "response": None, "error": {"code": "batch_expired", "message": "row expired"}},
        {"custom_id": "request-2", "error": "a plain text error"},
        {"custom_id": "request-3", "response": {"status_code": 503, "request_id": "req-3"},
         "error": {"message": "server overloaded"}},
        {"custom_id": "request-4", "response": {"status_code": 300, "body": completion("a redirect's page")}},
    ]
    server.handler = WrittenOutputs(lines)
    job = Client(server.url, model="m").submit_batch(["a", "b", "c", "d", "e"])
    job.wait(poll=0.01, timeout=10)
    first, second, third, fourth, fifth = job.results()
    assert first["choices"][0]["message"]["content"] == "no status code given"
    assert isinstance(second, BatchItemError) and str(second) == "the request failed in the batch: row expired"
    assert isinstance(third, BatchItemError) and str(third) == "the request failed in the batch: a plain text error"
    assert isinstance(fourth, InternalServerError) and fourth.request_id == "req-3"
    assert fourth.message == "server overloaded"
    assert isinstance(fifth, BatchItemError), "only a 2xx line is an answer"
    assert str(fifth) == "the request failed in the batch with status 300 and no error"


def test_a_batch_takes_whole_bodies_of_each_endpoint_and_refuses_what_is_neither(server: LoopbackServer) -> None:
    provider = BatchProvider()
    server.handler = provider
    conversation = [{"role": "user", "content": "Hi"}]
    Client(server.url, model="m").submit_batch([{"input": "embed me"}, {"prompt": "Once"}, conversation],
                                               endpoint="/v1/embeddings")
    bodies = [json.loads(line)["body"] for line in provider.files["file-in"].splitlines()]
    assert bodies == [{"input": "embed me", "model": "m"}, {"prompt": "Once", "model": "m"},
                      {"messages": conversation, "model": "m"}]
    with pytest.raises(TypeError) as info:
        Client(server.url, model="m").submit_batch(["a", {"model": "m"}])
    assert str(info.value) == "submit_batch(): request 1 must be a prompt or a request body dict"
    with pytest.raises(ValueError) as empty:
        Client(server.url, model="m").submit_batch([])
    assert str(empty.value) == "submit_batch(): there are no requests"
    with pytest.raises(ValueError) as no_model:
        Client(server.url).submit_batch(["x"])
    assert str(no_model.value) == "submit_batch(): no model: pass model=... or Client(model=...)"


def test_a_batch_created_without_an_id_is_an_answer_error(server: LoopbackServer) -> None:
    provider = BatchProvider()

    def answer(request: Request, wire: Wire) -> None:
        if request.path == "/v1/batches":
            wire.json({"object": "batch", "status": "validating"})
        else:
            provider(request, wire)

    server.handler = answer
    with pytest.raises(APIResponseError) as info:
        Client(server.url, model="m").submit_batch(["a"])
    assert info.value.message == "the server answered /batches without a batch id"
    assert info.value.body == {"object": "batch", "status": "validating"}


# -- a distributed engine ---------------------------------------------------------------------------------------


def ask(client: Client, prompt: str) -> str:
    return client.chat(prompt)


def test_a_dask_cluster_of_worker_processes_maps_a_client_over_prompts(server: LoopbackServer) -> None:
    distributed = pytest.importorskip("distributed")
    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        pytest.skip("a Dask cluster hangs in a worker forked from make mutate's many-threaded runner")
    server.handler = echo
    client = Client(server.url, model="m", api_key="sk-dask-0123456789")
    client.chat("warm up on the driver")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as dask:
        shipped = dask.scatter(client, broadcast=True)
        futures = dask.map(ask, [shipped] * 12, [f"p{i}" for i in range(12)])
        assert dask.gather(futures) == [f"p{i}" for i in range(12)]
    assert all(r.headers["authorization"] == "Bearer sk-dask-0123456789" for r in server.requests)


def test_batch_progress_counts_calls_and_tokens_on_one_line(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.handler = echo
    client = Client(server.url, model="m", max_retries=0)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as where tqdm is not installed
    assert client.batch(["a", "b", "c"], progress=True, max_workers=1) == ["a", "b", "c"]
    assert capsys.readouterr().err == ("\r1/3 done (100 tokens in 1 call)\r2/3 done (200 tokens in 2 calls)"
                                       "\r3/3 done (300 tokens in 3 calls)\n")
    monkeypatch.delitem(sys.modules, "tqdm.auto")
    pytest.importorskip("tqdm", reason="tqdm draws the bar where it is installed")
    client.batch(["a", "b"], progress=True, max_workers=1)
    assert "100%|" in capsys.readouterr().err, "tqdm's own bar"


def test_batch_refuses_stream_before_any_request(server: LoopbackServer) -> None:
    with pytest.raises(ValueError) as info:
        Client(server.url, model="m").batch(["a", "b"], stream=True)
    assert str(info.value) == "batch() returns whole answers: stream=True is not supported"
    assert server.requests == []


def test_batch_runs_eight_calls_at_once_unless_told(server: LoopbackServer) -> None:
    lock, in_flight, peak = threading.Lock(), [0], [0]
    together = threading.Barrier(8, timeout=10)  # a ninth call at once, or only seven, fails

    def handler(req: Request, wire: Wire) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        together.wait()
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        echo(req, wire)
    server.handler = handler
    prompts = [f"p{i}" for i in range(16)]
    assert Client(server.url, model="m", max_retries=0).batch(prompts, return_exceptions=False) == prompts
    assert peak[0] == 8


def test_batch_takes_its_own_max_retries(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "busy"}}, status=500)
    client = Client(server.url, model="m", max_retries=2, retry=RetryPolicy(backoff_start=0.01))
    [failure] = client.batch(["p"], max_retries=0)
    assert isinstance(failure, InternalServerError) and len(server.requests) == 1
    [failure] = client.batch(["p"])
    assert isinstance(failure, InternalServerError) and len(server.requests) == 1 + 3


def test_the_tokens_a_thread_spent_last_are_what_its_last_answer_said(server: LoopbackServer) -> None:
    client = Client(server.url, model="m")
    assert client._tokens_of_last() == 0
    server.handler = lambda req, wire: wire.json({k: v for k, v in completion("a").items() if k != "usage"})
    client.chat("no usage")
    assert client._tokens_of_last() == 0
    server.handler = lambda req, wire: wire.json(completion("b"))
    client.chat("usage")
    assert client._tokens_of_last() == 5
