"""Every call's facts beside the str: client.last, client.usage, rate limits, request ids."""

from __future__ import annotations

import shlex
import threading
from typing import Any

import pytest
import requests

from openai_compat import Client, GroqClient, RateLimitError, RequestEvent, Usage

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, json_with_id

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
    ({"x-ratelimit-reset-requests": "1m30sago", "x-ratelimit-reset-tokens": "2x5s",
      "x-ratelimit-limit-requests": "many", "x-ratelimit-remaining-tokens": "3.5"}, (None, None, None, None, 3, None)),
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
    assert record.time_to_first_piece is not None and record.elapsed is not None
    assert record.time_to_first_piece <= record.elapsed


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
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--usage", "x")
    assert result.returncode == 0 and result.stdout == "hi\n"
    assert result.stderr.startswith("usage: 1200 prompt (1024 cached) + 300 completion (256 reasoning) = 1500 tokens,")
    assert "tokens/s" in result.stderr
    assert server.requests[0].json["stream_options"] == {"include_usage": True}


def test_batch_progress_shows_the_running_totals(client: Client, server: LoopbackServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi"))
    client.batch(["a", "b", "c"], progress=True)
    assert "15 tokens in 3 calls" in capsys.readouterr().err, "beside the bar, with tqdm or without"


def test_a_stream_keeps_the_last_of_a_running_usage(client: Client, server: LoopbackServer) -> None:
    # Some servers send the usage so far on every chunk: the last one is the call's.
    def running(n: int) -> dict[str, int]:
        return {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}

    server.handler = lambda req, wire: wire.sse([event(dict(chunk("a"), usage=running(1))),
                                                 event(dict(chunk("b"), usage=running(2))),
                                                 event(dict(chunk(None, finish_reason="stop"), usage=running(3))),
                                                 DONE])
    assert "".join(client.chat("x", stream=True)) == "ab"
    assert client.last is not None and client.last.usage == Usage(5, 3, 8)
    assert (client.usage.completion_tokens, client.usage.total_tokens) == (3, 8)


def test_a_record_takes_the_finish_reason_of_choice_0_whichever_finishes_first(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([
        event(chunk("b", index=1)), event(chunk(None, index=1, finish_reason="length")),
        event(chunk("a", index=0)), event(chunk(None, index=0, finish_reason="stop")), DONE])
    assert sorted(client.chat_choices("x", n=2, stream=True)) == [(0, "a"), (1, "b")]
    assert client.last is not None and client.last.finish_reason == "stop"
    assert client.last.finish_reasons == {0: "stop", 1: "length"}


def test_stream_usage_leaves_the_callers_own_stream_options_alone(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a", finish_reason="stop")), DONE])
    client = Client(server.url, model="m", stream_usage=True)
    mine = {"include_usage": True, "continuous_usage_stats": True}
    assert list(client.chat("x", stream=True, stream_options=mine)) == ["a"]
    assert server.requests[0].json["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}


@pytest.mark.parametrize("ending", ["closed early", "cut off", "error event"])
def test_stream_end_is_heard_only_for_a_stream_read_to_its_end(server: LoopbackServer, ending: str) -> None:
    body: list[Any]
    if ending == "error event":
        body = [event(chunk("a")), event({"error": {"message": "upstream died"}})]
    else:
        body = [event(chunk("a")), event(chunk("b"))] + ([0.3, event(chunk("c", finish_reason="stop")), DONE]
                                                          if ending == "closed early" else [])
    server.handler = lambda req, wire: wire.sse(body)
    seen: list[RequestEvent] = []
    client = Client(server.url, model="m", max_retries=0, event_hook=seen.append)
    stream = client.chat("x", stream=True)
    if ending == "closed early":
        assert next(stream) == "a"
        stream.close()
    else:
        with pytest.raises(Exception, match=r"upstream died|ended before"):
            list(stream)
    assert [e.kind for e in seen] == ["request", "response"]
    assert client.last is not None and client.last.partial is True


def test_the_most_specific_request_id_wins_whatever_order_the_headers_come_in(
    client: Client, server: LoopbackServer
) -> None:
    headers = {"cf-ray": "8f2a-CDG", "x-generation-id": "gen-5", "openai-request-id": "oai-3", "x-request-id": "req-1"}
    server.handler = lambda req, wire: wire.json(completion("hi"), headers=headers)
    client.chat("x")
    assert client.last is not None and client.last.request_id == "req-1"
    server.handler = lambda req, wire: wire.json({"error": {"message": "busy"}}, status=429,
                                                 headers={"cf-ray": "8f2a-CDG", "openai-request-id": "oai-3"})
    with pytest.raises(RateLimitError) as info:
        client.chat("x")
    assert info.value.request_id == "oai-3"
    server.handler = lambda req, wire: wire.json(completion("hi"), headers={"x-request-id": "", "cf-ray": "8f2a-CDG"})
    client.chat("x")
    assert client.last.request_id == "8f2a-CDG", "an empty id header is passed over"


def test_a_record_and_the_totals_show_what_they_hold(server: LoopbackServer) -> None:
    server.handler = json_with_id(completion("ok", usage={"prompt_tokens": 3, "completion_tokens": 2,
                                                          "total_tokens": 5, "cost": 0.25}), "req-7")
    client = Client(server.url, model="m")
    client.chat("hi")
    record = client.last
    assert record is not None
    assert repr(record) == (f"CallRecord(endpoint='/chat/completions', request_id='req-7', model='test-model',"
                            f" finish_reason='stop', attempts=1, elapsed={record.elapsed!r}, usage={record.usage!r},"
                            f" partial=False)")
    assert repr(client.usage) == ("UsageTotals(calls=1, prompt_tokens=3, completion_tokens=2, total_tokens=5,"
                                  " cached_tokens=0, reasoning_tokens=0, cost=0.25)")


def _curl_defaults() -> str:
    """requests' own headers, as as_curl() shows them (it leaves Connection out)."""
    return " ".join(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in requests.utils.default_headers().items()
                    if name != "Connection")


def test_as_curl_writes_the_exact_command(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", api_key="sk-curl-secret-1", default_query={"api-version": "1"})
    client.chat("It's 5 o'clock", max_tokens=3, extra_headers={"X-Trace": "t"})
    assert client.last is not None and client.last.as_curl() == (
        f"curl -X POST '{server.url}/chat/completions?api-version=1' {_curl_defaults()}"
        " -H \"Authorization: Bearer $OPENAI_API_KEY\" -H 'X-Trace: t' -H 'Content-Type: application/json'"
        " --data-raw '{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"It'\"'\"'s 5"
        " o'\"'\"'clock\"}], \"max_tokens\": 3}'")


def test_as_curl_names_a_variable_for_each_secret_header_and_leaves_out_what_it_cannot_show(
        server: LoopbackServer) -> None:
    client = Client(server.url, model="m", headers={"x-api-key": "k-123456789012345", "api-key": "sk-az-0123456789"})
    keys = " -H \"x-api-key: $X_API_KEY\" -H \"api-key: $OPENAI_API_KEY\""
    server.handler = lambda req, wire: wire.json({"object": "list", "data": []})
    client.models()
    assert client.last is not None
    assert client.last.as_curl() == f"curl -X GET {server.url}/models {_curl_defaults()}{keys}", "no body, no data"
    server.handler = lambda req, wire: wire.json({"id": "file-1", "object": "file"})
    client.upload_file(b"\xff\xfe\x00 not text", "a.jsonl", "batch")
    sent = server.requests[-1]
    assert client.last.as_curl() == (
        f"curl -X POST {server.url}/files {_curl_defaults()}{keys}"
        f" -H 'Content-Type: {sent.headers['content-type']}'"
        f" # a body of {len(sent.raw_body)} bytes (a file upload), not shown")
    groq = GroqClient(server.url, api_key="gsk-0123456789abcdef", model="m")
    server.handler = lambda req, wire: wire.json(completion("ok"))
    groq.chat("hi")
    assert groq.last is not None and '"Authorization: Bearer $GROQ_API_KEY"' in groq.last.as_curl()


def test_counts_that_are_not_whole_numbers_are_not_taken(client: Client, server: LoopbackServer) -> None:
    raw = {"prompt_tokens": True, "completion_tokens": "5", "total_tokens": 7.0, "cost": 0.5}
    server.handler = lambda req, wire: wire.json(completion("hi", usage=raw))
    client.chat("x")
    assert client.last is not None
    assert client.last.usage == Usage(None, None, None, None, None, 0.5)


def test_a_pickled_record_keeps_its_thinking_and_drops_the_request_with_its_key(server: LoopbackServer) -> None:
    import pickle

    answer = completion("4")
    answer["choices"][0]["message"]["reasoning_content"] = "Two and two."
    server.handler = lambda req, wire: wire.json(answer)
    client = Client(server.url, model="m", api_key="sk-pickled-0123456789")
    client.chat("2+2?")
    assert client.last is not None
    data = pickle.dumps(client.last)
    assert b"sk-pickled-0123456789" not in data, "the request as sent holds the key"
    again = pickle.loads(data)
    assert (again.reasoning, again.usage, again.request_id) == ("Two and two.", client.last.usage, None)
    with pytest.raises(ValueError) as raised:
        again.as_curl()
    assert str(raised.value) == ("this record has no request to show (it was made before the call was sent, or"
                                 " pickled)")


def test_each_choice_finish_is_kept_by_its_index_and_the_first_is_choice_0(client: Client,
                                                                         server: LoopbackServer) -> None:
    two = completion("a", finish_reason="stop")
    two["choices"] = [two["choices"][0], dict(two["choices"][0], index=1, finish_reason="length")]
    server.handler = lambda req, wire: wire.json(two)
    client.chat_choices("x", n=2)
    assert client.last is not None
    assert (client.last.finish_reasons, client.last.finish_reason) == ({0: "stop", 1: "length"}, "stop")
    unnumbered = completion("a")
    del unnumbered["choices"][0]["index"]
    server.handler = lambda req, wire: wire.json(dict(unnumbered, model=7, usage="n/a"))
    client.chat("x")
    assert (client.last.finish_reasons, client.last.model, client.last.raw_usage) == ({0: "stop"}, None, None)


def test_the_totals_add_every_count_of_every_call(client: Client, server: LoopbackServer) -> None:
    def usage(prompt: Any, completion: int, total: int, **extra: Any) -> dict[str, Any]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total, **extra}

    usages = iter([usage(40, 9, 49, cost=0.25, prompt_tokens_details={"cached_tokens": 32},
                         completion_tokens_details={"reasoning_tokens": 7}),
                   usage(10, 6, 16, cost=0.5, prompt_tokens_details={"cached_tokens": 8},
                         completion_tokens_details={"reasoning_tokens": 5}),
                   usage("3", 2, 5), None])

    def answer(req: Request, wire: Wire) -> None:
        reply = completion("hi", usage=next(usages))
        if reply["usage"] is None:
            del reply["usage"]
        wire.json(reply)

    server.handler = answer
    for _ in range(4):
        client.chat("x")
    totals = client.usage
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens, totals.total_tokens, totals.cached_tokens,
            totals.reasoning_tokens, totals.cost) == (4, 50, 17, 70, 40, 12, 0.75), "a count not sent adds nothing"
