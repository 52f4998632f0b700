"""Streaming: delivery on arrival, every dialect, endings, errors, abandoning, whole chunks."""

from __future__ import annotations

import gc
import json
import signal
import threading
import time
from typing import Any

import pytest

from openai_compat import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    Client,
    ContentFilterError,
    UnhandledToolCallsError,
    merge_chunks,
)
from openai_compat._body_reader import LINGER_SECONDS

from .server import LoopbackServer, Request, Wire, chunk, completion, event, stream_of

FRAMINGS = [
    pytest.param({"framing": "chunked"}, id="chunked"),
    pytest.param({"framing": "close"}, id="close-delimited"),
    pytest.param({"framing": "chunked", "gzip": True}, id="gzip-chunked"),
    pytest.param({"framing": "close", "gzip": True}, id="gzip-close-delimited"),
]


# -- 1. delivery on arrival ----------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_first_piece_arrives_while_the_server_pauses(
    client: Client, server: LoopbackServer, framing: dict
) -> None:
    released = threading.Event()
    held_back: list[bool] = []

    def handler(req: Request, wire: Wire) -> None:
        def pieces():
            yield event(chunk("first"))
            # The client must hand "first" over now; only then does the test release us.
            held_back.append(not released.wait(5))
            yield event(chunk("second", finish_reason="stop"))
            yield "data: [DONE]\n\n"
        wire.sse(pieces(), **framing)

    server.handler = handler
    stream = client.chat("hi", stream=True)
    assert next(stream) == "first"
    released.set()
    assert list(stream) == ["second"]
    assert held_back == [False], "the first piece was held back until more bytes came"


# -- 2. decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/event-stream", "text/event-stream; charset=iso-8859-1",
                                          "text/event-stream; charset=utf-8"])
def test_text_is_utf8_whatever_the_charset_and_however_the_bytes_are_split(
    client: Client, server: LoopbackServer, content_type: str
) -> None:
    words = ["héllo ", "wörld ", "日本語 ", "🤖", " \u2028 line sep"]
    server.handler = lambda req, wire: wire.sse(stream_of(words), write_size=1,
                                                headers={"Content-Type": content_type})
    assert "".join(client.chat("hi", stream=True)) == "".join(words)


# -- 3. dialects -------------------------------------------------------------------------------------

FINISH = event(chunk(None, finish_reason="stop"))
DONE = "data: [DONE]\n\n"
DIALECTS = {
    "crlf line endings": ["data: " + json.dumps(chunk("a")) + "\r\n\r\n", "data: [DONE]\r\n\r\n"],
    "cr line endings": ["data: " + json.dumps(chunk("a")) + "\r\r", "data: [DONE]\r\r"],
    "mixed endings \\n\\r\\n": ["data: " + json.dumps(chunk("a")) + "\n\r\n",
                                "data: " + json.dumps(chunk("b")) + "\r\n\n", DONE],
    "comment lines": [": OPENROUTER PROCESSING\n\n", ": ping\n", event(chunk("a")), ": ping\n\n", DONE],
    "control-only events": ["retry: 3000\n\n", "id: 7\n\n", event(chunk("a")), "event: ping\n\n", DONE],
    "no space after data:": ["data:" + json.dumps(chunk("a")) + "\n\n", "data:[DONE]\n\n"],
    "two spaces after data:": ["data:  " + json.dumps(chunk("a")) + "  \n\n", "data:  [DONE]\n\n"],
    "json split over data lines": ['data: {"choices": [{"index": 0,\ndata: "delta": {"content": "a"}}]}\n\n', DONE],
    "event and id fields": ["event: message\nid: 1\n" + event(chunk("a")), DONE],
    "together text beside delta": [event({"choices": [{"index": 0, "text": "a", "delta": {"content": "a"}}]}),
                                   event({"choices": [{"index": 0, "text": "", "delta": {},
                                                       "finish_reason": "eos"}]}), DONE],
    "reasoning content is not text": [event({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}),
                                      event(chunk("a")), DONE],
    "empty null and role-only deltas": [event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
                                        event({"choices": [{"index": 0, "delta": {"content": None}}]}),
                                        event({"choices": [{"index": 0, "delta": {}}]}),
                                        event({"choices": [{"index": 0, "delta": {"content": ""}}]}),
                                        event(chunk("a")), DONE],
    "choices [] usage chunk": [event(chunk("a")), FINISH, event({"choices": [], "usage": {"total_tokens": 3}}), DONE],
    "usage null on every chunk": [event(dict(chunk("a"), usage=None)), DONE],
    "unknown finish_reason": [event(chunk("a")), event(chunk(None, finish_reason="end_turn"))],
    "empty finish_reason": [event(chunk("a")), event(chunk(None, finish_reason=""))],
    "odd object names": [event(dict(chunk("a"), object="completion.chunk")), event({"choices": [
        {"index": 0, "delta": {"content": "b"}}]}), DONE],
    "utf-8 bom": ["\ufeff" + event(chunk("a")), DONE],
    "llama-server null content and timings": [
        event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}), event(chunk("a")),
        event(dict(chunk(None, finish_reason="stop"), timings={"predicted_ms": 1})), DONE],
    "close after finish without done": [event(chunk("a")), FINISH],
}
EXPECTED = {"mixed endings \\n\\r\\n": ["a", "b"], "odd object names": ["a", "b"]}


@pytest.mark.parametrize("name", list(DIALECTS))
@pytest.mark.parametrize("write_size", [None, 1], ids=["whole", "byte-by-byte"])
def test_every_dialect_yields_its_text_once(
    client: Client, server: LoopbackServer, name: str, write_size: Any
) -> None:
    server.handler = lambda req, wire: wire.sse(DIALECTS[name], write_size=write_size)
    assert list(client.chat("hi", stream=True)) == EXPECTED.get(name, ["a"])


def test_a_server_that_ignores_stream_true_still_gives_its_text(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("whole answer"))
    assert list(client.chat("hi", stream=True)) == ["whole answer"]
    server.handler = lambda req, wire: wire.json(completion("whole text", chat=False))
    assert list(client.complete("hi", stream=True)) == ["whole text"]
    server.handler = lambda req, wire: wire.json(completion("whole answer"))
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], stream=True))
    assert merge_chunks(chunks)["choices"][0]["message"]["content"] == "whole answer"
    record = client.last
    assert record is not None and not record.partial and record.finish_reason == "stop"
    assert record.usage.total_tokens == 5 and record.time_to_first_piece is not None


@pytest.mark.parametrize("content_type", ["text/plain; charset=utf-8", None], ids=["text-plain", "none"])
def test_an_event_stream_under_another_content_type_or_none_is_read(
    client: Client, server: LoopbackServer, content_type: Any
) -> None:
    # Some servers label their SSE text/plain, or send no Content-Type at all.
    head = {"Content-Type": content_type} if content_type else {}
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b"]), headers=head)
    if content_type is None:
        server.handler = lambda req, wire: wire.slices(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", ["".join(stream_of(["a", "b"])).encode()], close=True)
    assert list(client.chat("hi", stream=True)) == ["a", "b"]


@pytest.mark.parametrize("first", [
    {"choices": ["junk", {"index": 0, "delta": {"reasoning_content": "hm"}}]},
    {"choices": [{"index": 0, "delta": {"reasoning": "hm"}}]},
    {"choices": [{"index": 0, "text": "hm"}]},
], ids=["reasoning_content-after-junk", "reasoning", "completion-text"])
def test_the_first_piece_of_any_kind_sets_the_time_to_it(
    client: Client, server: LoopbackServer, first: dict[str, Any]
) -> None:
    server.handler = lambda req, wire: wire.sse([event(first), event(chunk("ok", finish_reason="stop")),
                                                 "data: [DONE]\n\n"])
    list(client.chat("hi", stream=True))
    assert client.last is not None and client.last.time_to_first_piece is not None


def test_completion_streams_take_text(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("x", chat=False)), event(chunk("y", chat=False)),
                                                 event(chunk("", chat=False, finish_reason="length"))])
    assert list(client.complete("hi", stream=True)) == ["x", "y"]


def test_a_completion_stream_whose_last_chunk_has_no_text(client: Client, server: LoopbackServer) -> None:
    # LiteLLM's proxy leaves `text` out of the last chunk of a completions stream.
    server.handler = lambda req, wire: wire.sse([event(chunk("x", chat=False)),
                                                 event({"choices": [{"index": 0, "finish_reason": "stop"}]})])
    assert list(client.complete("hi", stream=True)) == ["x"]


# -- 4. endings --------------------------------------------------------------------------------------


def test_a_stream_cut_off_before_any_finish_raises(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), event(chunk("b"))], framing="close")
    pieces: list[str] = []
    with pytest.raises(APIConnectionError, match="ended before"):
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["a", "b"], "the text that came is handed over before the error"


@pytest.mark.parametrize("body", [[], [": keep-alive\n\n"]], ids=["empty body (llama.cpp over its context)", "comment"])
def test_a_stream_without_a_single_event_says_the_prompt_may_be_over_the_context(
    client: Client, server: LoopbackServer, body: list[str]
) -> None:
    server.handler = lambda req, wire: wire.sse(body)
    with pytest.raises(APIConnectionError, match="200 and ended the stream without a single event: the prompt may"
                                                 " be longer than the model's context"):
        list(client.chat("hi", stream=True))


def test_a_stream_cut_after_an_event_says_it_was_closed_early(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a"))])
    with pytest.raises(APIConnectionError, match=r"ended before .*closed early"):
        list(client.chat("hi", stream=True))


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_server_holding_the_connection_after_the_finish_does_not_hang(
    client: Client, server: LoopbackServer, framing: dict
) -> None:
    gone = threading.Event()

    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a")), FINISH], end=False, **framing)
        gone.wait(10)  # neither [DONE] nor the end of the body, until the client leaves
    server.handler = handler
    started = time.monotonic()
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert time.monotonic() - started < 4, "it waited the 1 s linger, not the 5 s read timeout"
    started = time.monotonic()
    assert list(client.chat("hi", stream=True, deadline=30)) == ["a"]
    assert time.monotonic() - started < 4, "with a deadline far off too, the linger is the wait"
    gone.set()


def test_a_server_holding_the_connection_after_done_is_left_after_the_linger(
    client: Client, server: LoopbackServer
) -> None:
    gone = threading.Event()

    def handler(req: Request, wire: Wire) -> None:
        if req.number == 1:
            wire.sse([event(chunk("a")), FINISH, "data: [DONE]\n\n"], end=False)
            gone.wait(10)  # no end of the body after [DONE], until the client leaves
        else:
            wire.sse(stream_of(["b"]))
    server.handler = handler
    started = time.monotonic()
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert time.monotonic() - started < 4, "it waited the 1 s linger, not the 5 s read timeout"
    assert list(client.chat("hi", stream=True)) == ["b"]
    first, second = server.requests
    assert first.connection != second.connection, "a body not at its end is never handed back to the pool"
    gone.set()


def test_the_first_choice_is_followed_whatever_order_the_choices_come_in(
    client: Client, server: LoopbackServer
) -> None:
    # With n=2, choice 1 may come first in a chunk, or in a chunk of its own.
    server.handler = lambda req, wire: wire.sse([
        event({"choices": [{"index": 1, "delta": {"content": "x"}}, {"index": 0, "delta": {"content": "a"}}]}),
        event({"choices": [{"index": 1, "delta": {"content": "y"}}]}),
        event({"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]}),
        event({"choices": [{"index": 1, "delta": {}, "finish_reason": "stop"}]}), "data: [DONE]\n\n"])
    assert list(client.chat("hi", n=2, stream=True)) == ["a", "b"]


def test_a_streamed_chunk_carrying_a_message_instead_of_a_delta_is_read(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([event({"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}]}),
        "data: [DONE]\n\n"])
    assert list(client.chat("hi", stream=True)) == ["whole"]


def test_a_completion_stream_takes_text_keeps_think_on_request_and_skips_empty_chunks(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([
        event({"choices": [{"index": 0, "text": "<think>x</think>"}]}),
        event({"choices": [{"index": 0, "text": "42", "delta": {"content": "not the text"}}]}),
        event({"choices": [{"index": 0, "finish_reason": "stop"}]}), "data: [DONE]\n\n"])
    assert list(client.complete("q", stream=True, keep_think=True)) == ["<think>x</think>", "42"]
    assert list(client.complete("q", stream=True)) == ["42"]


def test_with_n_choices_the_stream_waits_for_every_finish(client: Client, server: LoopbackServer) -> None:
    # The second choice comes after a pause longer than the linger that follows the last finish:
    # a stream that ended when the first choice finished would lose it.
    server.handler = lambda req, wire: wire.sse([
        event(chunk("a", index=0)), event(chunk(None, index=0, finish_reason="stop")), LINGER_SECONDS + 0.3,
        event(chunk("b", index=1)), event(chunk(None, index=1, finish_reason="stop")), DONE])
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], n=2, stream=True))
    merged = merge_chunks(chunks)
    assert [c["message"]["content"] for c in merged["choices"]] == ["a", "b"]


# -- 5. errors inside a stream -----------------------------------------------------------------------


@pytest.mark.parametrize("error_event", [
    event({"error": {"message": "upstream overloaded", "code": 502}}),
    "event: error\ndata: " + json.dumps({"error": {"message": "upstream overloaded"}}) + "\n\n",
    "event: error\ndata: upstream overloaded\n\n",
])
def test_an_error_inside_a_200_stream_raises_after_the_text_before_it(
    client: Client, server: LoopbackServer, error_event: str
) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), event(chunk("b")), error_event])
    pieces: list[str] = []
    with pytest.raises(APIResponseError, match="upstream overloaded"):
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["a", "b"]


def test_malformed_json_raises_with_an_excerpt(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), "data: {\"choices\": [oops\n\n"])
    with pytest.raises(APIResponseError, match=r"not JSON: '\{\"choices\": \[oops'"):
        list(client.chat("hi", stream=True))
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), "data: x\n\n"])  # one character
    with pytest.raises(APIResponseError, match=r"not JSON: 'x'"):
        list(client.chat("hi", stream=True))


def test_an_error_event_that_is_not_json_is_shown_cut_to_size(client: Client, server: LoopbackServer) -> None:
    text = "upstream failure " * 200  # 3 400 characters, no JSON
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), f"event: error\ndata: {text}\n\n"])
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    folded = text.strip()
    assert str(info.value) == f"the server sent an error event: {folded[:199] + '…'!r}"
    assert info.value.body == folded[:1999] + "…"


def test_json_with_trailing_space_is_read_and_two_objects_in_one_event_are_not(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([f"data: {json.dumps(chunk('a'))}   \n\n", *stream_of([])])
    assert list(client.chat("hi", stream=True)) == ["a"]
    two = json.dumps(chunk("a")) + json.dumps(chunk("b"))
    server.handler = lambda req, wire: wire.sse([f"data: {two}\n\n", *stream_of([])])
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    assert str(info.value) == f"the stream sent data that is not JSON: {two[:199] + '…'!r}"
    assert info.value.body == two


def test_stream_data_that_is_not_json_is_cut_to_size_in_the_error(client: Client, server: LoopbackServer) -> None:
    data = "<html>" + "x" * 3000
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), f"data: {data}\n\n"],
                                                headers={"x-request-id": "req-bad"})
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    assert str(info.value) == f"the stream sent data that is not JSON: {data[:199] + '…'!r} (request id req-bad)"
    assert info.value.body == data[:1999] + "…"


def test_stream_json_that_is_not_an_object_is_named(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), "data: [1, 2]\n\n"],
                                                headers={"x-request-id": "req-list"})
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    assert str(info.value) == "the stream sent JSON that is not an object: '[1, 2]' (request id req-list)"
    assert info.value.request_id == "req-list"


def test_a_blocking_answer_without_choices_is_named_and_kept(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"id": "x", "choices": []})
    with pytest.raises(APIResponseError) as info:
        client.chat("hi")
    assert (str(info.value), info.value.body) == ("the response has no choices", {"id": "x", "choices": []})


def test_invalid_utf8_in_a_stream_raises(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), b'data: {"x": "\xff"}\n\n'])
    with pytest.raises(APIResponseError, match="UTF-8"):
        list(client.chat("hi", stream=True))


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_reset_mid_stream_raises_api_connection_error(
    client: Client, server: LoopbackServer, framing: str
) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a"))], framing=framing, end=False)
        time.sleep(0.1)
        wire.reset()
    server.handler = handler
    pieces: list[str] = []
    with pytest.raises(APIConnectionError, match=r"^the connection broke during the stream: \S"):
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["a"]


def test_truncated_chunked_encoding_raises(client: Client, server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a"))], end=False)
        wire.write(b"100\r\ndata: {\"choi")  # a chunk promising 256 bytes, then the close
        wire.close()
    server.handler = handler
    with pytest.raises(APIConnectionError):
        list(client.chat("hi", stream=True))


# -- 6. abandoning ---------------------------------------------------------------------------------


def _slow_stream(closed: threading.Event):
    def handler(req: Request, wire: Wire) -> None:
        try:
            wire.sse([event(chunk("a")), event(chunk("b"))], end=False)
            for i in range(200):  # would take 20 s if the client kept reading
                wire.write(b"%x\r\n%s\r\n" % (len(event(chunk(str(i)))), event(chunk(str(i))).encode()))
                time.sleep(0.1)
        except OSError:
            closed.set()
    return handler


@pytest.mark.parametrize("how", ["break", "close", "garbage-collected"])
def test_abandoning_a_stream_closes_it_at_once_and_the_client_stays_usable(
    client: Client, server: LoopbackServer, how: str
) -> None:
    closed = threading.Event()
    server.handler = _slow_stream(closed)
    if how == "break":
        for _ in client.chat("hi", stream=True):
            break
    elif how == "close":
        stream = client.chat("hi", stream=True)
        next(stream)
        stream.close()
    else:
        stream = client.chat("hi", stream=True)
        next(stream)
        del stream
        gc.collect()
    assert closed.wait(5), "the server kept writing to a stream nobody reads"
    server.handler = lambda req, wire: wire.json(completion("still works"))
    assert client.chat("again") == "still works"


def test_ctrl_c_mid_stream_leaves_the_client_usable(client: Client, server: LoopbackServer) -> None:
    closed = threading.Event()
    server.handler = _slow_stream(closed)
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("the test runner handles SIGINT itself, so Ctrl-C is not a KeyboardInterrupt here")
    stream = client.chat("hi", stream=True)
    next(stream)
    timer = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in stream:
            pass
    timer.join()
    assert closed.wait(5)
    server.handler = lambda req, wire: wire.json(completion("still works"))
    assert client.chat("again") == "still works"


def test_sequential_streams_reuse_one_connection(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b"]))
    for _ in range(5):
        assert list(client.chat("hi", stream=True)) == ["a", "b"]
    server.handler = lambda req, wire: wire.json(completion("c"))
    client.chat("hi")
    assert server.connections == 1


# -- 7. eager request, lazy body ---------------------------------------------------------------------


def test_the_request_is_sent_before_the_generator_is_iterated(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a"]))
    stream = client.chat("hi", stream=True)
    assert len(server.requests) == 1
    assert list(stream) == ["a"]


# -- 8. whole chunks -----------------------------------------------------------------------------------


def test_chunks_merge_into_the_final_completion_with_usage_and_tool_calls(
    client: Client, server: LoopbackServer
) -> None:
    tool_stream = [
        event({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}}]}),
        event({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"name": None, "arguments": '{"city": '}}]}}]}),
        event({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": '"Paris"}'}}]}}]}),
        event({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}]}}]}),
        event({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        event({"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}),
        DONE,
    ]
    server.handler = lambda req, wire: wire.sse(tool_stream)
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], tools=[], stream=True,
                                                stream_options={"include_usage": True}))
    assert server.requests[0].json["stream_options"] == {"include_usage": True}
    assert len(chunks) == 6
    merged = merge_chunks(chunks)
    assert merged["object"] == "chat.completion" and merged["id"] == "c1" and merged["model"] == "m"
    assert merged["usage"]["total_tokens"] == 14
    choice = merged["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]


def test_tool_call_fragments_without_index_and_with_repeated_names() -> None:
    def frag(**call: Any) -> dict:
        return {"choices": [{"delta": {"tool_calls": [call]}}]}
    merged = merge_chunks([
        frag(id="a", function={"name": "add", "arguments": '{"x":'}),
        frag(id="a", function={"name": "add", "arguments": " 1}"}),   # llama-cpp-python repeats id and name
        frag(function={"arguments": ""}),
        frag(id="b", function={"name": "mul", "arguments": "{}"}),
    ])
    calls = merged["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "add", '{"x": 1}'), ("b", "mul", "{}")]


def test_merge_of_completion_chunks_gives_a_text_completion() -> None:
    merged = merge_chunks([chunk("a", chat=False), chunk("b", chat=False, finish_reason="length")])
    assert merged["object"] == "text_completion"
    assert merged["choices"] == [{"index": 0, "text": "ab", "finish_reason": "length"}]


def test_stream_options_are_never_sent_by_default(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a"]))
    list(client.chat("hi", stream=True))
    list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], stream=True))
    assert all("stream_options" not in r.json for r in server.requests)


def test_streamed_tool_calls_are_raised_by_the_text_stream_after_the_text(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([
        event(chunk("Let me check. ")),
        event({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c", "function": {"name": "lookup", "arguments": "{}"}}]}}]}),
        event(chunk(None, finish_reason="tool_calls")), DONE])
    pieces: list[str] = []
    with pytest.raises(UnhandledToolCallsError) as info:
        for piece in client.chat("hi", stream=True, tools=[{"type": "function"}]):
            pieces.append(piece)
    assert pieces == ["Let me check. "]
    assert info.value.tool_calls[0]["function"]["name"] == "lookup"


# -- 9. cost -------------------------------------------------------------------------------------------


def test_a_2mb_event_arrives_whole(client: Client, server: LoopbackServer) -> None:
    big = "x" * (2 * 1024 * 1024)
    server.handler = lambda req, wire: wire.sse(stream_of([big]), write_size=1500)
    assert list(client.chat("hi", stream=True)) == [big]


def test_a_deadline_bounds_a_slow_stream(server: LoopbackServer) -> None:
    closed = threading.Event()
    server.handler = _slow_stream(closed)
    client = Client(server.url, model="m", max_retries=0)
    pieces: list[str] = []
    with pytest.raises(APITimeoutError, match="deadline"):
        for piece in client.chat("hi", stream=True, deadline=0.5):
            pieces.append(piece)
    assert pieces[:2] == ["a", "b"]


# -- the chunked reader ----------------------------------------------------------------------------


def _raw_chunked(body_chunks: list, tail: bytes = b"0\r\n\r\n"):
    def handler(req: Request, wire: Wire) -> None:
        wire.head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        wire.write(b"".join(b"%x%s\r\n%s\r\n" % (len(data), ext, data) for data, ext in body_chunks) + tail)
    return handler


def test_chunk_extensions_and_trailers_are_read_and_the_connection_reused(
    client: Client, server: LoopbackServer
) -> None:
    events = [e.encode() for e in stream_of(["a", "b"])]
    server.handler = _raw_chunked([(events[0], b";name=value"), (events[1] + events[2], b";a=1;b=2"), (events[3], b"")],
                                  tail=b"0\r\nX-Checksum: abc\r\n\r\n")
    assert list(client.chat("hi", stream=True)) == ["a", "b"]
    assert list(client.chat("hi", stream=True)) == ["a", "b"]
    assert server.connections == 1


def test_many_events_in_one_read_all_arrive(client: Client, server: LoopbackServer) -> None:
    words = [f"w{i} " for i in range(2000)]
    server.handler = _raw_chunked([(e.encode(), b"") for e in stream_of(words)])
    assert list(client.chat("hi", stream=True)) == words


def test_bytes_after_the_end_of_a_body_are_not_left_for_the_next_call(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = _raw_chunked([(e.encode(), b"") for e in stream_of(["a"])],
                                  tail=b"0\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert list(client.chat("hi", stream=True)) == ["a"]
    server.handler = lambda req, wire: wire.json(completion("clean"))
    assert client.chat("again") == "clean"
    assert server.connections == 2, "a connection with stray bytes is not reused"


@pytest.mark.parametrize("size_line", [b"zz", b"-5", b"not a size, and far too long to show in full: " * 2])
def test_a_malformed_chunk_size_raises(client: Client, server: LoopbackServer, size_line: bytes) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        wire.write(size_line + b"\r\ndata: x\r\n")
        wire.close()
    server.handler = handler
    with pytest.raises(APIConnectionError) as info:
        list(client.chat("hi", stream=True))
    line = (size_line + b"\r")[:40]  # the size line as read, up to its LF, and no more than 40 bytes of it
    assert str(info.value) == f"the chunked body is malformed: {line!r}"


@pytest.mark.parametrize("bad_event", [
    event({"error": {"message": "upstream overloaded"}}),
    "event: error\ndata: upstream overloaded\n\n",
    "data: {not json\n\n",
    b"data: \xc3\x28\n\n",
])
def test_errors_raised_inside_a_stream_carry_the_request_id(
    client: Client, server: LoopbackServer, bad_event: Any
) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), bad_event],
                                                headers={"x-request-id": "req-in-stream"})
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    assert info.value.request_id == "req-in-stream"


def test_merge_keeps_the_last_usage_when_every_chunk_carries_one() -> None:
    merged = merge_chunks([
        dict(chunk("a"), usage={"completion_tokens": 1}),
        dict(chunk("b", finish_reason="stop"), usage={"completion_tokens": 2}),
        dict(chunk(None), choices=[], usage={"completion_tokens": 2, "total_tokens": 9}),
    ])
    assert merged["usage"] == {"completion_tokens": 2, "total_tokens": 9}


@pytest.mark.parametrize(("error_event", "body", "words"), [
    ("event: error\ndata: " + json.dumps({"error": {"message": "overloaded", "code": "busy"}}) + "\n\n",
     {"error": {"message": "overloaded", "code": "busy"}}, "overloaded"),
    ("event: error\ndata: upstream went away\n\n", "upstream went away",
     "the server sent an error event: 'upstream went away'"),
])
def test_an_error_event_keeps_what_the_server_sent(
    client: Client, server: LoopbackServer, error_event: str, body: Any, words: str
) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("a")), error_event])
    with pytest.raises(APIResponseError) as info:
        list(client.chat("hi", stream=True))
    assert info.value.body == body
    assert str(info.value) == words
    assert info.value.code == ("busy" if isinstance(body, dict) else None)


def test_a_server_ignoring_stream_true_keeps_its_answers_fields(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("whole", model="served", system_fingerprint="fp"),
                                                 headers={"x-request-id": "req-whole"})
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": "x"}], stream=True))
    merged = merge_chunks(chunks)
    assert (merged["model"], merged["system_fingerprint"], merged["usage"]["total_tokens"]) == ("served", "fp", 5)
    assert merged["choices"][0]["message"]["content"] == "whole"
    server.handler = lambda req, wire: wire.json({"id": "x", "choices": []}, headers={"x-request-id": "req-empty"})
    with pytest.raises(APIResponseError) as info:
        list(client.chat("x", stream=True))
    assert info.value.request_id == "req-empty"


def test_with_n_choices_a_stream_cut_off_while_one_is_unfinished_raises(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: wire.sse([
        event(chunk("a", index=0)), event(chunk(None, index=0, finish_reason="stop")), event(chunk("b", index=1))])
    with pytest.raises(APIConnectionError, match="the stream ended before"):
        list(client.chat_choices("x", n=2, stream=True))
    assert client.last is not None and client.last.partial is True


# -- what a stream says in its own words --------------------------------------------------------------


@pytest.mark.parametrize(("data", "message", "code"), [
    ('{"message": "overloaded", "code": "busy"}', "overloaded", "busy"),
    ('{"error": {"message": "quota gone", "type": "insufficient_quota"}}', "quota gone", "insufficient_quota"),
    ("upstream died", "the server sent an error event: 'upstream died'", None),
], ids=["message and code", "an error object", "plain text"])
def test_an_error_event_raises_with_the_servers_words(client: Client, server: LoopbackServer, data: str,
                                                      message: str, code: str | None) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("Hel")), f"event: error\ndata: {data}\n\n"],
                                                headers={"x-request-id": "req-e"})
    pieces = []
    with pytest.raises(APIResponseError) as info:
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert pieces == ["Hel"]
    assert (info.value.message, info.value.code, info.value.request_id) == (message, code, "req-e")


def test_labelled_pieces_of_a_raw_stream_come_unchecked(client: Client, server: LoopbackServer) -> None:
    thinking = chunk()
    thinking["choices"][0]["delta"] = {"reasoning_content": "Hmm."}
    server.handler = lambda req, wire: wire.sse([event(thinking), event(chunk(finish_reason="length")),
                                                 "data: [DONE]\n\n"])
    stream = client.create_chat_completion(messages=[{"role": "user", "content": "hi"}], stream=True)
    assert list(stream.pieces()) == [("reasoning", "Hmm.")], "no EmptyAnswerError: the caller asked for pieces"


def test_content_parts_in_a_stream_give_their_text(client: Client, server: LoopbackServer) -> None:
    parts = chunk()
    parts["choices"][0]["delta"] = {"content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": None},
                                                "stray", {"type": "text", "text": "lo"}]}
    server.handler = lambda req, wire: wire.sse([event(parts), event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
    assert "".join(client.chat("hi", stream=True)) == "Hello"
    assert list(client.chat_choices("hi", n=1, stream=True)) == [(0, "Hello")]


def test_a_think_block_split_at_every_character_is_told_apart_piece_by_piece(
    client: Client, server: LoopbackServer
) -> None:
    pieces = ["<think>ab<", "/think>Hel", "lo"]
    server.handler = lambda req, wire: wire.sse(stream_of(pieces))
    assert list(client.chat("hi", stream=True, labelled=True)) == [
        ("reasoning", "ab"), ("answer", "Hel"), ("answer", "lo")]
    server.handler = lambda req, wire: wire.sse(stream_of(["<think>abc", "d</think>", "Hi"]))
    assert list(client.chat("hi", stream=True, labelled=True)) == [
        ("reasoning", "abc"), ("reasoning", "d"), ("answer", "Hi")], "nothing held back that cannot start a tag"


def test_a_content_filter_says_where_it_cut_in(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([event(chunk("Once")), event(chunk(finish_reason="content_filter")),
                                                 "data: [DONE]\n\n"])
    with pytest.raises(ContentFilterError) as streamed:
        list(client.chat("hi", stream=True))
    assert streamed.value.message == ('the server\'s content filter stopped the answer (finish_reason'
                                      ' "content_filter"), after the text already handed on')
    server.handler = lambda req, wire: wire.json(completion("Once", finish_reason="content_filter"))
    with pytest.raises(ContentFilterError) as blocking:
        client.chat("hi")
    assert blocking.value.message == ('the server\'s content filter stopped the answer (finish_reason'
                                      ' "content_filter"), what came before it is in .text')
    server.handler = lambda req, wire: wire.json(completion("", finish_reason="content_filter"))
    with pytest.raises(ContentFilterError) as nothing:
        client.chat("hi")
    assert nothing.value.message.endswith('"content_filter"), before any text came')


def test_streamed_tool_calls_come_back_as_an_assistant_message(client: Client, server: LoopbackServer) -> None:
    first = chunk()
    first["choices"][0]["delta"] = {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}
    server.handler = lambda req, wire: wire.sse([event(first), event(chunk(finish_reason="tool_calls")),
                                                 "data: [DONE]\n\n"])
    with pytest.raises(UnhandledToolCallsError) as info:
        list(client.chat("hi", stream=True))
    assert info.value.assistant_message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}


def test_a_legacy_null_function_call_is_left_out_of_the_message(client: Client, server: LoopbackServer) -> None:
    answer = completion("hi")
    answer["choices"][0]["message"]["function_call"] = None
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat_message("hi") == {"role": "assistant", "content": "hi"}


def test_a_stream_that_finishes_and_closes_without_done_is_whole(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b"], done=False), framing="close")
    assert list(client.chat("hi", stream=True)) == ["a", "b"]
    assert client.last is not None and not client.last.partial


def test_choices_streamed_as_messages_or_as_text_are_read(client: Client, server: LoopbackServer) -> None:
    chunks = [{"choices": [{"index": 0, "message": {"content": "Hi"}}, {"index": 1, "text": "Yo"}]},
              {"choices": [{"index": 0, "finish_reason": "stop"}, {"index": 1, "finish_reason": "stop"}]}]
    server.handler = lambda req, wire: wire.sse([event(c) for c in chunks] + ["data: [DONE]\n\n"])
    assert list(client.chat_choices("hi", n=2, stream=True)) == [(0, "Hi"), (1, "Yo")]
