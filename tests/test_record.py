"""Every call's facts beside the str: client.last, client.usage, rate limits, request ids."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest

from openai_compat import Client, RateLimitError, RequestEvent, Usage

from .server import LoopbackServer, Request, Wire, chunk, completion, event

DONE = "data: [DONE]\n\n"

USAGES = {
    "openai cached and reasoning": (
        {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
         "prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 256}},
        Usage(1200, 300, 1500, 1024, 256, None)),
    "deepseek cache hit and miss": (
        {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100, "prompt_cache_hit_tokens": 64,
         "prompt_cache_miss_tokens": 16},
        Usage(80, 20, 100, 64, None, None)),
    "openrouter cost": (
        {"prompt_tokens": 13, "completion_tokens": 16, "total_tokens": 29, "cost": 0.000093, "is_byok": False,
         "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
        Usage(13, 16, 29, 0, 0, 0.000093)),
    "no total": ({"prompt_tokens": 3, "completion_tokens": 2}, Usage(3, 2, 5, None, None, None)),
    "none": (None, Usage()),
}


@pytest.mark.parametrize("name", list(USAGES))
def test_every_usage_form_is_normalised(client: Client, server: LoopbackServer, name: str) -> None:
    raw, expected = USAGES[name]
    server.handler = lambda req, wire: wire.json(completion("hi", usage=raw))
    client.chat("x")
    assert client.last is not None
    assert client.last.usage == expected
    assert client.last.raw_usage == raw


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
      "x-ratelimit-reset-requests": "6m0s", "x-ratelimit-limit-tokens": "200000",
      "x-ratelimit-remaining-tokens": "199000", "x-ratelimit-reset-tokens": "1.5s"},
     (10000, 9999, 360.0, 200000, 199000, 1.5)),
    ({"x-ratelimit-reset-requests": "120ms", "x-ratelimit-reset-tokens": "20"}, (None, None, 0.12, None, None, 20.0)),
    ({"x-ratelimit-reset-requests": "1h2m3.5s", "x-ratelimit-reset-tokens": "soon"},
     (None, None, 3723.5, None, None, None)),
    ({}, (None,) * 6),
])
def test_rate_limits_are_read_from_the_headers(client: Client, server: LoopbackServer, headers: dict[str, str],
                                               expected: tuple[Any, ...]) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi"), headers=headers)
    client.chat("x")
    assert client.last is not None and tuple(client.last.rate_limits) == expected


@pytest.mark.parametrize("header", ["x-request-id", "request-id", "openai-request-id", "x-litellm-call-id"])
def test_the_request_id_comes_from_whichever_header_the_server_uses(
    client: Client, server: LoopbackServer, header: str
) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi"), headers={header: "id-42"})
    client.chat("x")
    assert client.last is not None and client.last.request_id == "id-42"


def test_a_gateways_own_error_carries_its_request_id(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "litellm.RateLimitError: limit hit"}},
                                                 status=429, headers={"x-litellm-call-id": "c0ffee"})
    with pytest.raises(RateLimitError) as info:
        client.chat("x")
    assert info.value.request_id == "c0ffee"


def test_a_blocking_record_has_model_finish_attempts_time_and_reasoning(server: LoopbackServer) -> None:
    answers = iter([None, completion("", finish_reason="length", model="served-model")])

    def handler(req: Request, wire: Wire) -> None:
        answer = next(answers)
        if answer is None:
            wire.json({"error": {"message": "busy"}}, status=503, headers={"Retry-After": "0.2"})
            return
        answer["choices"][0]["message"] = {"role": "assistant", "content": "4", "reasoning_content": "2+2"}
        wire.json(answer)
    server.handler = handler
    client = Client(server.url, model="m", max_retries=2)
    client.chat("2+2?")
    record = client.last
    assert record is not None
    assert (record.model, record.finish_reason, record.attempts, record.reasoning) == ("served-model", "length", 2,
                                                                                        "2+2")
    assert record.elapsed is not None and record.elapsed >= 0.2, "the elapsed time covers the retry"
    assert record.partial is False and record.time_to_first_piece is None


def test_streams_ask_for_usage_only_when_told(server: LoopbackServer) -> None:
    body = [event(dict(chunk("a"), model="served")), event(chunk("b", finish_reason="stop")),
            event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}), DONE]
    server.handler = lambda req, wire: wire.sse(body)
    plain = Client(server.url, model="m")
    assert "".join(plain.chat("x", stream=True)) == "ab"
    assert "stream_options" not in server.requests[0].json
    asking = Client(server.url, model="m", stream_usage=True)
    stream = asking.chat("x", stream=True)
    assert asking.last is not None and asking.last.usage == Usage(), "filled in when the stream ends"
    assert "".join(stream) == "ab"
    record = asking.last
    assert server.requests[1].json["stream_options"] == {"include_usage": True}
    assert (record.model, record.finish_reason, record.usage.total_tokens, record.partial) == ("served", "stop", 7,
                                                                                               False)
    assert record.time_to_first_piece is not None and record.time_to_first_piece <= record.elapsed


def test_a_stream_closed_early_marks_its_record_partial(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), 0.5, event(chunk("b", finish_reason="stop")), DONE])
    stream = client.chat("x", stream=True)
    assert next(stream) == "a"
    stream.close()
    assert client.last is not None and client.last.partial is True and client.last.finish_reason is None


def test_a_streams_reasoning_lands_in_its_record(client: Client, server: LoopbackServer) -> None:
    thinking = event({"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]})
    server.handler = lambda req, wire: wire.sse([thinking, event(chunk("4", finish_reason="stop")), DONE])
    assert list(client.chat("x", stream=True)) == ["4"]
    assert client.last is not None and client.last.reasoning == "think"


def test_each_thread_sees_its_own_last_call(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion(req.json["messages"][0]["content"]),
                                                 headers={"x-request-id": req.json["messages"][0]["content"]})
    client = Client(server.url, model="m")
    wrong: list[tuple[str, Any]] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(25):
            mine = f"thread-{n}-{i}"
            client.chat(mine)
            seen = client.last.request_id if client.last else None
            if seen != mine:
                wrong.append((mine, seen))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert client.usage.calls == 200 and client.usage.total_tokens == 200 * 5


def test_running_totals_add_up_and_reset(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi", usage=USAGES["openrouter cost"][0]))
    for _ in range(3):
        client.chat("x")
    assert (client.usage.calls, client.usage.total_tokens, round(client.usage.cost, 6)) == (3, 87, 0.000279)
    assert str(client.usage) == "87 tokens in 3 calls, $0.0003"
    client.usage.reset()
    assert (client.usage.calls, client.usage.total_tokens, client.usage.cost) == (0, 0, 0.0)


def test_the_event_hook_gets_the_normalised_usage(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi", usage=USAGES["deepseek cache hit and miss"][0]))
    seen: list[RequestEvent] = []
    Client(server.url, model="m", event_hook=seen.append).chat("x")
    responses = [e for e in seen if e.kind == "response"]
    assert responses[-1].normalized_usage == USAGES["deepseek cache hit and miss"][1]


def test_the_cli_prints_a_usage_line(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("hi", finish_reason="stop")), event(
        {"choices": [], "usage": USAGES["openai cached and reasoning"][0]}), DONE])
    result = subprocess.run([sys.executable, "-m", "openai_compat", "chat", "--base-url", server.url, "--model", "m",
                             "--usage", "x"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout == "hi\n"
    assert result.stderr.startswith("usage: 1200 prompt (1024 cached) + 300 completion (256 reasoning) = 1500 tokens,")
    assert "tokens/s" in result.stderr
    assert server.requests[0].json["stream_options"] == {"include_usage": True}


def test_batch_progress_shows_the_running_totals(client: Client, server: LoopbackServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi"))
    client.batch(["a", "b", "c"], progress=True)
    assert "3/3 done (15 tokens in 3 calls)" in capsys.readouterr().err
