"""Record and replay: what a recording replays is what the server said, byte for byte."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from openai_compat import (
    APIResponseError,
    APITimeoutError,
    Cassette,
    CassetteError,
    Client,
    InternalServerError,
    RateLimitError,
    UnhandledToolCallsError,
)

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event

KEY = "sk-cassette-0123456789abcdef"
DONE = "data: [DONE]\n\n"
CLOSED = "http://127.0.0.1:9/v1"  # nothing listens there: replay must not need it

TOOL_CALL = [event({"choices": [{"index": 0, "delta": {"tool_calls": [
    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]}}]}),
    event({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}), DONE]


def talkative(req: Request, wire: Wire) -> None:
    """A server with a different answer for each prompt."""
    prompt = req.json["messages"][-1]["content"]
    if prompt == "tools":
        wire.sse(TOOL_CALL)
    elif prompt == "broken":
        wire.sse([event(chunk("a")), event({"error": {"message": "upstream died", "code": 502}})])
    elif prompt == "chunked answer":  # a whole answer, sent in HTTP chunks
        wire.sse([json.dumps(completion("in chunks"))[:20], json.dumps(completion("in chunks"))[20:]],
                 headers={"Content-Type": "application/json"})
    elif prompt == "limited":
        wire.json({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "120"})
    elif req.json.get("stream"):
        framings: dict[str, dict[str, Any]] = {"gzip": {"gzip": True}, "close": {"framing": "close"}}
        framing = framings.get(prompt, {})
        wire.sse([event(chunk("Hel")), 0.3, event(chunk("lo", finish_reason="stop")),
                  event({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}),
                  DONE], **framing)
    elif prompt.startswith("echo"):
        wire.json(completion(f"you said {prompt}; your key {KEY} is fine"))
    else:
        wire.json(completion(f"you said {prompt}"))


def run_all(client: Client) -> list[Any]:
    """The same calls, live or replayed: their results, errors included."""
    results: list[Any] = []
    for call in (lambda: client.chat("plain"), lambda: list(client.chat("chunked", stream=True)),
                 lambda: list(client.chat("gzip", stream=True)), lambda: list(client.chat("close", stream=True)),
                 lambda: list(client.chat("tools", stream=True)), lambda: list(client.chat("broken", stream=True)),
                 lambda: client.chat("chunked answer"), lambda: client.chat("limited")):
        try:
            results.append(call())
        except (UnhandledToolCallsError, APIResponseError, RateLimitError) as exc:
            results.append((type(exc).__name__, str(exc), getattr(exc, "tool_calls", None)))
    results.append(client.last.usage if client.last else None)
    return results


def test_a_replay_gives_exactly_what_the_recording_got(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "calls.jsonl"
    live = run_all(Client(server.url, model="m", api_key=KEY, max_retries=0, cassette=Cassette(tape, "record")))
    entries = [json.loads(line) for line in tape.read_text().splitlines()]
    assert len(entries) == 8
    for entry in entries:  # a pause no replay could hide: waiting for it would take 3 s a call
        entry["response"]["pieces"][0]["after"] = 3.0
    tape.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    started = time.monotonic()
    replayed = run_all(Client(CLOSED, model="m", max_retries=0, cassette=Cassette(tape, "replay")))
    assert replayed == live
    assert time.monotonic() - started < 3, "replay does not wait for the recorded pauses"
    assert len(server.requests) == 8, "the server heard only the recording"


def test_replay_can_keep_the_recorded_pauses(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "slow.jsonl"
    list(Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("chunked", stream=True))
    pauses = [piece["after"] for piece in json.loads(tape.read_text())["response"]["pieces"]]
    assert len(pauses) >= 2 and max(pauses) >= 0.25, "the server's pause is recorded"
    assert pauses == [round(pause, 4) for pause in pauses], "to a tenth of a millisecond, not finer"
    client = Client(CLOSED, model="m", cassette=Cassette(tape, "replay", realtime=True))
    started = time.monotonic()
    assert list(client.chat("chunked", stream=True)) == ["Hel", "lo"]
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize(("status_line", "message"), [("HTTP/1.1 503 Service Unavailable",
                                                       "Service Unavailable (empty body)"),
                                                      ("HTTP/1.1 503 ", "(empty body)")])
def test_an_answer_with_an_empty_body_is_recorded_and_replayed(server: LoopbackServer, tmp_path: Path,
                                                               status_line: str, message: str) -> None:
    # The second has no reason phrase, as HTTP/2 has none and some proxies pass on none.
    server.handler = lambda req, wire: wire.write(f"{status_line}\r\nContent-Length: 0\r\n"
                                                  "x-request-id: req-empty\r\n\r\n")
    tape = tmp_path / "empty.jsonl"
    with pytest.raises(InternalServerError) as live:
        Client(server.url, model="m", max_retries=0, cassette=Cassette(tape, "record")).chat("hi")
    with pytest.raises(InternalServerError) as replayed:
        Client(CLOSED, model="m", max_retries=0, cassette=Cassette(tape, "replay")).chat("hi")
    assert (str(replayed.value), replayed.value.request_id) == (str(live.value), "req-empty")
    assert live.value.message == message


def test_a_cassette_records_and_replays_through_the_callers_session(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = lambda req, wire: wire.json(completion("from the server"))
    tape = tmp_path / "session.jsonl"
    recording = Client(server.url, model="m", session=requests.Session(), cassette=Cassette(tape, "record"))
    assert recording.chat("hi") == "from the server"
    assert len(tape.read_text().splitlines()) == 1
    replaying = Client(CLOSED, model="m", max_retries=0, session=requests.Session(), cassette=Cassette(tape, "replay"))
    assert replaying.chat("hi") == "from the server"


def test_nothing_secret_is_written(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "secret.jsonl"
    Client(server.url, model="m", api_key=KEY, cassette=Cassette(tape, "record")).chat("echo")
    other = "user-token-abcdef987654"
    Client(server.url, model="m", headers={"api-key": other}, cassette=Cassette(tmp_path / "b.jsonl", "record")).chat(
        f"my token is {other}")
    text = tape.read_text() + (tmp_path / "b.jsonl").read_text()
    assert KEY not in text and other not in text
    assert "authorization" not in text.lower() and "api-key" not in text.lower()
    assert "your key " + "*" * len(KEY) + " is fine" in text, "masked in place, same length"
    replayed = Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("echo")
    assert replayed == f"you said echo; your key {'*' * len(KEY)} is fine"


def test_matching_ignores_key_order_and_named_fields(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "match.jsonl"
    Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("plain", user="u1", seed=1, temperature=0.5)
    client = Client(CLOSED, model="m", cassette=Cassette(tape, "replay", ignore=("user", "seed")))
    assert client.create_chat_completion(temperature=0.5, seed=99, user="u2",
                                         messages=[{"content": "plain", "role": "user"}])["choices"]


def test_a_miss_shows_the_closest_recorded_call_and_what_differs(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "miss.jsonl"
    Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("plain", temperature=0.5)
    client = Client(CLOSED, model="m", cassette=Cassette(tape, "replay"))
    with pytest.raises(CassetteError) as info:
        client.chat("plain", temperature=0.7)
    assert "body.temperature: 0.5 recorded, 0.7 now" in str(info.value)
    with pytest.raises(CassetteError, match="record it first"):
        Cassette(tmp_path / "none.jsonl", "replay")


def test_a_miss_names_the_recorded_call_with_the_fewest_differences(server: LoopbackServer,
                                                                  tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "fewest.jsonl"
    recorder = Client(server.url, model="m", cassette=Cassette(tape, "record"))
    recorder.chat("plain", temperature=0.5)  # one difference from the call below
    recorder.chat("other", temperature=0.7, top_p=1)  # two, though "body.messages" sorts first
    with pytest.raises(CassetteError) as info:
        Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("plain", temperature=0.7)
    assert "differs in:\n  body.temperature: 0.5 recorded, 0.7 now\nRecord again" in str(info.value)


def test_once_records_then_replays(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "once.jsonl"
    recorder = Client(server.url, model="m", cassette=str(tape))
    assert recorder.cassette is not None and (recorder.cassette.path, recorder.cassette.mode) == (str(tape), "record")
    first = recorder.chat("plain")
    player = Client(server.url, model="m", cassette=str(tape))
    assert player.cassette is not None and player.cassette.mode == "replay" and player.chat("plain") == first
    assert len(server.requests) == 1


def test_the_pytest_fixture_gives_each_test_its_own_file(server: LoopbackServer, pytester: pytest.Pytester) -> None:
    server.handler = talkative
    pytester.makepyfile(test_user=f"""
        from openai_compat import Client

        def test_answer(openai_cassette):
            client = Client("{server.url}", model="m", cassette=openai_cassette)
            assert client.chat("plain").startswith("you said plain")
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    recorded = pytester.path / "tests" / "cassettes" / "test_user" / "test_answer.jsonl"
    assert recorded.exists() and len(server.requests) == 1
    server.handler = lambda req, wire: wire.json(completion("the server changed its mind"))
    pytester.runpytest_subprocess().assert_outcomes(passed=1)  # replayed from the file
    assert len(server.requests) == 1
    pytester.runpytest_subprocess("--cassette-mode=record").assert_outcomes(failed=1)  # asks the server again
    assert len(server.requests) == 2


def test_the_cli_records_and_replays(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = str(tmp_path / "cli.jsonl")
    base = ["chat", "--model", "m"]
    live = run_command(*base, "--base-url", server.url, "--record", tape, "chunked")
    replayed = run_command(*base, "--base-url", CLOSED, "--replay", tape, "chunked")
    assert live.stdout == replayed.stdout == "Hello\n"
    assert json.loads(Path(tape).read_text())["request"]["body"]["stream"] is True


def test_a_cookie_the_server_sets_is_never_written(server: LoopbackServer, tmp_path: Path) -> None:
    cookie = "session=c00kie-0123456789abcdef; Path=/; HttpOnly"
    server.handler = lambda req, wire: wire.json(completion("with a cookie"), headers={"Set-Cookie": cookie,
                                                                                          "x-request-id": "req-c"})
    tape = tmp_path / "cookie.jsonl"
    Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("hi")
    assert "c00kie-0123456789abcdef" not in tape.read_text()
    assert json.loads(tape.read_text())["response"]["headers"]["x-request-id"] == "req-c", "other headers stay"
    replaying = Client(CLOSED, model="m", cassette=Cassette(tape, "replay"))
    assert replaying.chat("hi") == "with a cookie"


def test_a_key_inside_a_gzip_answer_is_masked_in_what_replays(server: LoopbackServer, tmp_path: Path) -> None:
    def gzipped(req: Request, wire: Wire) -> None:
        raw = json.dumps(completion(f"your key is {KEY}")).encode()
        wire.body(gzip.compress(raw), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    server.handler = gzipped
    tape = tmp_path / "gzip.jsonl"
    assert Client(server.url, model="m", api_key=KEY, cassette=Cassette(tape, "record")).chat("hi") == (
        f"your key is {KEY}")
    replayed = Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("hi")
    assert replayed == "your key is " + "*" * len(KEY)
    assert KEY not in tape.read_text()


def test_a_compressed_answer_without_a_secret_is_recorded_as_it_came(server: LoopbackServer, tmp_path: Path) -> None:
    raw = json.dumps(completion("nothing secret here")).encode()
    server.handler = lambda req, wire: wire.body(gzip.compress(raw), headers={"Content-Type": "application/json",
                                                                              "Content-Encoding": "gzip"})
    tape = tmp_path / "plain-gzip.jsonl"
    Client(server.url, model="m", api_key=KEY, cassette=Cassette(tape, "record")).chat("hi")
    recorded = json.loads(tape.read_text())["response"]
    assert {name.lower(): value for name, value in recorded["headers"].items()}["content-encoding"] == "gzip"
    assert Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("hi") == "nothing secret here"


def test_an_answer_longer_than_one_read_replays_whole(server: LoopbackServer, tmp_path: Path) -> None:
    long_answer = "a long answer " * 20000
    server.handler = lambda req, wire: wire.json(completion(long_answer))
    tape = tmp_path / "long.jsonl"
    Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("hi")
    assert Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("hi") == long_answer


def test_a_recording_client_keeps_its_timeout(server: LoopbackServer, tmp_path: Path) -> None:
    def late(req: Request, wire: Wire) -> None:
        time.sleep(1.0)
        wire.json(completion("too late"))

    server.handler = late
    recorder = Client(server.url, model="m", max_retries=0, timeout=(5, 0.2), cassette=Cassette(tmp_path / "t.jsonl"))
    with pytest.raises(APITimeoutError):
        recorder.chat("hi")


def test_a_retried_call_replays_each_recorded_answer_in_turn(server: LoopbackServer, tmp_path: Path) -> None:
    answers = iter([lambda w: w.json({"error": {"message": "busy"}}, status=503, headers={"Retry-After": "0"}),
                    lambda w: w.json(completion("second answer"))])
    server.handler = lambda req, wire: next(answers)(wire)
    tape = tmp_path / "retried.jsonl"
    assert Client(server.url, model="m", max_retries=1, cassette=Cassette(tape, "record")).chat("hi") == "second answer"
    assert len(tape.read_text().splitlines()) == 2
    replaying = Client(CLOSED, model="m", max_retries=1, cassette=Cassette(tape, "replay"))
    assert replaying.chat("hi") == "second answer"
    assert replaying.last is not None and replaying.last.attempts == 2


def test_a_miss_says_every_difference_in_full(server: LoopbackServer, tmp_path: Path) -> None:
    server.handler = talkative
    tape = tmp_path / "miss.jsonl"
    recorder = Client(server.url, model="m", cassette=Cassette(tape, "record"))
    recorder.chat("plain", temperature=0.5, stop=["x" * 100])
    replay = Client(CLOSED, model="m", cassette=Cassette(tape, "replay", ignore=("seed",)))
    with pytest.raises(CassetteError) as info:
        replay.chat("plain", top_p=0.9, stop=["y" * 100], seed=7)
    long_was, long_now = json.dumps(["x" * 100])[:80], json.dumps(["y" * 100])[:80]
    assert str(info.value) == (
        f"POST /v1/chat/completions is not in the cassette {tape}; the closest recorded call differs in:\n"
        f"  body.stop: {long_was} recorded, {long_now} now\n  body.temperature: 0.5 recorded, null now\n"
        "  body.top_p: null recorded, 0.9 now\n"
        "Record again (mode='record'), or pass ignore=(...) for fields that change from run to run")
    with pytest.raises(CassetteError) as other_path:
        replay.embed("plain")
    assert "  path: '/v1/chat/completions' recorded, '/v1/embeddings' now\n" in str(other_path.value)
    assert replay.chat("plain", temperature=0.5, stop=["x" * 100]) == "you said plain"
    with pytest.raises(CassetteError) as used:
        replay.chat("plain", temperature=0.5, stop=["x" * 100])
    assert "differs in:\n  (the same request, but every recorded answer to it was used already)\n" in str(used.value)
    with pytest.raises(CassetteError) as bodiless:
        replay.get_json("/models")
    assert "  method: 'POST' recorded, 'GET' now\n  path: '/v1/chat/completions' recorded, '/v1/models' now\n" in str(
        bodiless.value)


def test_a_cassette_says_what_it_is_and_refuses_an_unknown_mode(server: LoopbackServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        Cassette(tmp_path / "t.jsonl", "rewind")
    assert str(info.value) == "cassette mode must be one of record, replay, once, got 'rewind'"
    tape = tmp_path / "deep" / "dir" / "t.jsonl"
    cassette = Cassette(tape)
    assert repr(cassette) == f"Cassette({str(tape)!r}, mode='record', 0 calls)"
    server.handler = talkative
    Client(server.url, model="m", cassette=cassette).chat("plain café")
    assert "café" in tape.read_text(encoding="utf-8"), "written as UTF-8 text, not escaped"
    assert repr(Cassette(tape)) == f"Cassette({str(tape)!r}, mode='replay', 1 calls)"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CassetteError) as nothing:
        Client(CLOSED, model="m", cassette=Cassette(empty, "replay")).chat("x")
    assert str(nothing.value) == f"the cassette {empty} holds no calls, and replay never calls the server"
    with pytest.raises(CassetteError) as missing:
        Cassette(tmp_path / "none.jsonl", "replay")
    assert str(missing.value) == (f"cannot replay {tmp_path / 'none.jsonl'}: No such file or directory"
                                  " (record it first)")


@pytest.mark.parametrize("kind", ["deflate", "gzip-chunked", "gzip-lower-case-headers", "gzip-chunked-lower-case"])
def test_a_key_inside_every_compressed_answer_is_masked_and_the_entry_framed_anew(
    server: LoopbackServer, tmp_path: Path, kind: str
) -> None:
    import zlib

    text = json.dumps(completion(f"your key is {KEY}")).encode()

    def compressed(req: Request, wire: Wire) -> None:
        if kind == "deflate":
            wire.body(zlib.compress(text), headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})
        elif kind == "gzip-chunked":
            wire.sse([gzip.compress(text)], headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        elif kind == "gzip-chunked-lower-case":
            body = gzip.compress(text)
            wire.head(200, {"content-type": "application/json", "content-encoding": "gzip",
                            "transfer-encoding": "chunked"})
            wire.write(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        else:
            wire.head(200, {"content-type": "application/json", "content-encoding": "gzip",
                            "content-length": str(len(gzip.compress(text, mtime=0)))})
            wire.write(gzip.compress(text, mtime=0))

    server.handler = compressed
    tape = tmp_path / f"{kind}.jsonl"
    Client(server.url, model="m", api_key=KEY, cassette=Cassette(tape, "record")).chat("hi")
    assert KEY not in tape.read_text()
    recorded = json.loads(tape.read_text().splitlines()[0])["response"]
    framing = {k.lower(): v for k, v in recorded["headers"].items()}
    assert "content-encoding" not in framing and "transfer-encoding" not in framing
    assert framing["content-length"] == str(len(text))
    assert [piece["after"] for piece in recorded["pieces"]] == [0.0], "one piece, the whole masked body at once"
    assert Client(CLOSED, model="m", cassette=Cassette(tape, "replay")).chat("hi") == "your key is " + "*" * len(KEY)


def test_a_call_without_a_body_is_recorded_and_replayed(server: LoopbackServer, tmp_path: Path) -> None:
    listing = {"object": "list", "data": [{"id": "tiny", "object": "model", "owned_by": "me"}]}
    server.handler = lambda req, wire: wire.json(listing)
    tape = tmp_path / "models.jsonl"
    live = Client(server.url, model="m", cassette=Cassette(tape, "record")).models()
    assert [model["id"] for model in live] == ["tiny"]
    assert json.loads(tape.read_text())["request"] == {"method": "GET", "path": "/v1/models", "body": None}
    player = Client(CLOSED, model="m", cassette=Cassette(tape, "replay"))
    assert player.models() == live
    with pytest.raises(CassetteError) as info:
        player.chat("hi")  # the recorded call has no body to compare this one's with
    assert "  method: 'GET' recorded, 'POST' now\n  path: '/v1/models' recorded, '/v1/chat/completions' now\n" in str(
        info.value)
