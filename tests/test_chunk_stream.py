"""What a stream keeps track of (finishes, the first piece, usage) and how its lines are cut.

``event_lines`` is given its reads one by one here, so each case decides exactly where every
read boundary falls; the loopback tests in test_split_reads.py do the same over a socket.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests

from openai_compat import APIConnectionError, APIResponseError, ChunkStream, Client
from openai_compat._sse import event_lines

from .server import LoopbackServer, Request, Wire, chunk, event


def answer_with(server: LoopbackServer, pieces: list[Any], **sse: Any) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse(pieces, **sse)
    server.handler = handler


def open_stream(client: Client, **body: Any) -> ChunkStream:
    return client.create_chat_completion(messages=[{"role": "user", "content": "hi"}], stream=True, **body)


# -- what the stream notes -----------------------------------------------------------------------


def test_a_stream_made_by_hand_starts_knowing_nothing(server: LoopbackServer) -> None:
    thinking = chunk(None)
    thinking["choices"][0]["delta"] = {"reasoning_content": "hm"}
    answer_with(server, [event(thinking), event(chunk("a", finish_reason="stop")), "data: [DONE]\n\n"])
    response = requests.post(server.url + "/chat/completions", json={}, stream=True, timeout=(2, 5))
    stream = ChunkStream(response)
    noted = (stream.usage, stream.model, stream.finish_reasons, stream.first_piece_at, stream.complete,
             stream.ended_with_done, stream.answer.reasoning)
    assert noted == (None, None, {}, None, False, False, "")
    list(stream)
    assert (stream.usage, stream.finish_reasons, stream.complete, stream.ended_with_done) == (
        None, {0: "stop"}, True, True)
    assert stream.answer.reasoning == "hm"  # read as chat deltas unless told otherwise
    answer_with(server, [event(chunk("<think>hm</think>a", finish_reason="stop")), "data: [DONE]\n\n"])
    response = requests.post(server.url + "/chat/completions", json={}, stream=True, timeout=(2, 5))
    assert list(ChunkStream(response).text()) == ["a"]  # and an inline block is left out unless kept


def test_finish_reasons_are_kept_by_choice_index(client: Client, server: LoopbackServer) -> None:
    without_index = chunk(None, finish_reason="stop")
    del without_index["choices"][0]["index"]
    answer_with(server, [
        event(chunk("a", index=1)),
        event(chunk(None, index=1, finish_reason="length")),
        event(without_index),  # a choice without an index is choice 0
        "data: [DONE]\n\n",
    ])
    stream = open_stream(client, n=2)
    list(stream)
    assert stream.finish_reasons == {1: "length", 0: "stop"}


def test_a_json_answer_to_a_stream_keeps_finish_reasons_by_index(client: Client, server: LoopbackServer) -> None:
    choices = [
        {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "length"},
        {"message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
        {"index": 2, "message": {"role": "assistant", "content": "c"}, "finish_reason": None},
    ]
    server.handler = lambda req, wire: wire.json({"id": "x", "model": "m", "choices": choices})
    stream = open_stream(client, n=3)
    assert [c["choices"][1]["delta"]["content"] for c in stream] == ["a"]
    assert stream.finish_reasons == {1: "length", 0: "stop"}
    assert (stream.usage, stream.model, stream.complete) == (None, "m", True)


@pytest.mark.parametrize("first", [
    pytest.param({"choices": [{"index": 0, "delta": {"content": "a"}}]}, id="content"),
    pytest.param({"choices": [{"index": 0, "text": "a"}]}, id="completion-text"),
    pytest.param({"choices": [{"index": 0, "delta": {"reasoning_content": "a"}}]}, id="reasoning_content"),
    pytest.param({"choices": [{"index": 0, "delta": {"reasoning": "a"}}]}, id="reasoning"),
])
def test_the_first_piece_is_noted_when_its_chunk_is_read(
    client: Client, server: LoopbackServer, first: dict[str, Any]
) -> None:
    role_only = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    answer_with(server, [event(role_only), event(first), event(chunk(None, finish_reason="stop")),
                         "data: [DONE]\n\n"])
    stream = open_stream(client)
    next(stream)
    assert stream.first_piece_at is None, "a chunk with no text is not the first piece"
    next(stream)
    assert stream.first_piece_at is not None
    list(stream)


def test_a_stream_that_gave_fewer_choices_than_asked_ends_at_its_finish(
    client: Client, server: LoopbackServer
) -> None:
    # llama.cpp ignores n: asked for 2, it sends one choice, finishes it and closes.
    answer_with(server, [event(chunk("a")), event(chunk(None, finish_reason="stop"))], framing="close")
    stream = open_stream(client, n=2)
    assert [c["choices"][0]["delta"].get("content") for c in stream] == ["a", None]
    assert (stream.complete, stream.ended_with_done) == (True, False)


def test_a_stream_of_two_choices_a_chunk_ends_at_their_finishes(client: Client, server: LoopbackServer) -> None:
    def both(first: Any, second: Any, finish: Any = None) -> str:
        return event({"choices": [{"index": 0, "delta": {"content": first}, "finish_reason": finish},
                                  {"index": 1, "delta": {"content": second}, "finish_reason": finish}]})

    answer_with(server, [both("a", "b"), both(None, None, "stop")], framing="close")  # and no [DONE]
    stream = open_stream(client, n=2)
    assert [c["choices"][1]["delta"]["content"] for c in stream] == ["b", None]
    assert (stream.finish_reasons, stream.complete, stream.ended_with_done) == ({0: "stop", 1: "stop"}, True, False)


def test_a_stream_cut_before_any_finish_names_what_happened(client: Client, server: LoopbackServer) -> None:
    answer_with(server, [event(chunk("a"))], framing="close")
    stream = open_stream(client)
    with pytest.raises(APIConnectionError) as caught:
        list(stream)
    assert str(caught.value) == (
        "the stream ended before [DONE] or a finish_reason: the connection was closed early and the"
        " answer is incomplete")
    assert stream.complete is False


def test_an_event_stream_whose_content_type_mentions_json_is_read_as_events(
    client: Client, server: LoopbackServer
) -> None:
    answer_with(server, [event(chunk("a")), event(chunk("b", finish_reason="stop")), "data: [DONE]\n\n"],
                headers={"Content-Type": "text/event-stream; profile=json"})
    assert [c["choices"][0]["delta"]["content"] for c in open_stream(client)] == ["a", "b"]


# -- errors inside the stream --------------------------------------------------------------------


def test_an_error_of_unknown_shape_in_a_chunk_shows_the_data(client: Client, server: LoopbackServer) -> None:
    data = json.dumps({"choices": [], "error": ["upstream timed out"]})
    answer_with(server, [event(chunk("a")), f"data: {data}\n\n"], headers={"x-request-id": "req-9"})
    with pytest.raises(APIResponseError) as caught:
        list(open_stream(client))
    assert str(caught.value) == f"the server sent an error in the stream: {data!r} (request id req-9)"
    assert caught.value.body == json.loads(data)
    assert caught.value.request_id == "req-9"


def test_json_that_is_not_an_object_is_shown_cut_to_200_characters(client: Client, server: LoopbackServer) -> None:
    data = json.dumps(list(range(100)))
    answer_with(server, [f"data: {data}\n\n"])
    with pytest.raises(APIResponseError) as caught:
        list(open_stream(client))
    shown = data[:199] + "…"
    assert str(caught.value) == f"the stream sent JSON that is not an object: {shown!r}"


# -- event_lines, read by read -------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


def lines_of(reads: list[bytes]) -> list[bytes]:
    pending: Iterator[bytes] = iter(reads)
    return list(event_lines(lambda: next(pending, b"")))


@pytest.mark.parametrize("reads, lines", [
    pytest.param([], [], id="empty"),
    pytest.param([b"a\n", b"b\n"], [b"a\n", b"b\n"], id="a-line-per-read"),
    pytest.param([b"a\nb", b"c\n"], [b"a\n", b"bc\n"], id="a-line-across-reads"),
    pytest.param([b"a", b"b", b"c\n"], [b"abc\n"], id="a-line-in-three-reads"),
    pytest.param([b"a\n", b"tail"], [b"a\n", b"tail"], id="a-last-line-without-ending"),
    pytest.param([b"a\n", b"ta", b"il"], [b"a\n", b"tail"], id="a-last-line-in-two-reads"),
    pytest.param([b"\n", b"a\n"], [b"\n", b"a\n"], id="a-blank-first-line"),
    pytest.param([b"\nx\n"], [b"\nx\n"], id="a-first-read-starting-with-lf"),
    pytest.param([b"a\r", b"\nb\n"], [b"a\n", b"b\n"], id="crlf-across-reads"),
    pytest.param([b"a\r\r\nb\n"], [b"a\n\nb\n"], id="cr-then-crlf"),
    pytest.param([b"a\r", b"b\n"], [b"a\n", b"b\n"], id="a-lone-cr-ending-a-read"),
    pytest.param([b"a\n", b"\r\nb\n"], [b"a\n", b"\nb\n"], id="crlf-after-a-read-ending-in-lf"),
    pytest.param([BOM + b"a\n"], [b"a\n"], id="bom"),
    pytest.param([BOM[:1], BOM[1:], b"a\n"], [b"a\n"], id="bom-in-two-reads"),
    pytest.param([BOM[:1], BOM[1:2], BOM[2:] + b"a\n"], [b"a\n"], id="bom-in-three-reads"),
    pytest.param([BOM[:2]], [BOM[:2]], id="half-a-bom-then-the-end"),
    pytest.param([b"a\n", BOM + b"b\n"], [b"a\n", BOM + b"b\n"], id="a-bom-later-is-data"),
])
def test_event_lines_hands_over_whole_lines(reads: list[bytes], lines: list[bytes]) -> None:
    assert lines_of(reads) == lines
