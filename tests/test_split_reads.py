"""Read boundaries placed on purpose: every body is cut at every byte, and each part reaches the
client in a read of its own (the server waits until the client has read what it sent).

Where a read ends must never change what a stream yields: a BOM, a CRLF, a UTF-8 character, a
chunk-size line, chunk data and its CRLF, and ``[DONE]`` are each cut at every point.
"""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from openai_compat import APIConnectionError, Client

from .server import LoopbackServer, Request, Wire, chunk, event

HEAD = {
    "chunked": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    "close": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
}
DONE = "data: [DONE]\n\n"
BODIES = {
    "bom": ("\ufeff" + event(chunk("a")) + event(chunk(None, finish_reason="stop")) + DONE, ["a"]),
    # The second event's JSON spans two data lines: a CRLF cut in two must not end it early.
    "crlf": ("data: " + json.dumps(chunk("a")) + '\r\n\r\ndata: {"choices": [{"index": 0,\r\n'
             + 'data: "delta": {"content": "b"}}]}\r\n\r\ndata: [DONE]\r\n\r\n', ["a", "b"]),
    "utf-8": (event(chunk("日本")) + event(chunk("🤖é")) + DONE, ["日本", "🤖é"]),
    "done": (event(chunk("a")) + DONE, ["a"]),
}


def framed(body: bytes, framing: str) -> bytes:
    """``body`` as it goes on the wire: as two HTTP chunks and the last chunk, or as it is."""
    if framing == "close":
        return body
    half = len(body) // 2
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:])) + b"0\r\n\r\n"


def wrong_cuts(
    server: LoopbackServer, head: bytes, wire_bytes: bytes, framing: str, expected: list[str]
) -> dict[int, object]:
    """Every cut of ``wire_bytes`` (each part in a read of its own) whose stream did not yield
    ``expected``, with what it gave or raised instead."""
    cut = {"at": 0}

    def handler(req: Request, wire: Wire) -> None:
        wire.slices(head, [wire_bytes[: cut["at"]], wire_bytes[cut["at"] :]], close=framing == "close")
        if framing == "close":
            wire.keep_alive = False

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0, timeout=(2, 5))
    wrong: dict[int, object] = {}
    for at in range(1, len(wire_bytes)):
        cut["at"] = at
        try:
            got: object = list(client.chat("hi", stream=True))
        except Exception as exc:  # every cut is tried; the failures are reported together
            got = exc
        if got != expected:
            wrong[at] = got
    return wrong


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_cut_at_every_byte_yields_the_same_pieces(server: LoopbackServer, name: str, framing: str) -> None:
    body, expected = BODIES[name]
    wire_bytes = framed(body.encode(), framing)
    wrong = wrong_cuts(server, HEAD[framing], wire_bytes, framing, expected)
    assert wrong == {}, f"cut at these bytes of {wire_bytes!r}"
    if framing == "chunked":
        assert server.connections == 1, "each body was read to its end and the connection reused"


def _deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


ANSWER = (event(chunk("Hel")) + event(chunk("lo", finish_reason="stop")) + DONE).encode()
ENCODED = {
    # What the RFC calls deflate (a zlib stream), what some servers send as deflate (a raw
    # stream, no zlib wrapper), and gzip in two members, as concatenating proxies send it.
    "deflate": ("deflate", _deflate(ANSWER, zlib.MAX_WBITS)),
    "raw-deflate": ("deflate", _deflate(ANSWER, -zlib.MAX_WBITS)),
    "gzip-two-members": ("gzip", gzip.compress(ANSWER[:40]) + gzip.compress(ANSWER[40:])),
}


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("name", list(ENCODED))
def test_a_compressed_body_cut_at_every_byte_yields_the_same_pieces(
    server: LoopbackServer, name: str, framing: str
) -> None:
    encoding, compressed = ENCODED[name]
    wire_bytes = framed(compressed, framing)
    head = HEAD[framing].replace(b"\r\n\r\n", b"\r\nContent-Encoding: %s\r\n\r\n" % encoding.encode())
    assert wrong_cuts(server, head, wire_bytes, framing, ["Hel", "lo"]) == {}, f"cut at these bytes of {wire_bytes!r}"


def test_chunk_data_and_its_crlf_in_separate_reads(server: LoopbackServer) -> None:
    data = event(chunk("a")).encode()
    size = b"%x\r\n" % len(data)
    server.handler = lambda req, wire: wire.slices(
        HEAD["chunked"], [size, data, b"\r\n", b"%x\r\n" % len(DONE), DONE.encode(), b"\r\n", b"0\r\n", b"\r\n"])
    client = Client(server.url, model="m", max_retries=0, timeout=(2, 5))
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert server.connections == 1


def test_an_empty_chunk_size_line_at_the_start_of_a_read_is_malformed(server: LoopbackServer) -> None:
    data = event(chunk("a")).encode()
    server.handler = lambda req, wire: wire.slices(HEAD["chunked"], [b"%x\r\n%s\r\n" % (len(data), data),
                                                                      b"\n" + b"%x\r\n" % len(DONE)])
    client = Client(server.url, model="m", max_retries=0, timeout=(2, 5))
    pieces = []
    with pytest.raises(APIConnectionError) as info:
        for piece in client.chat("hi", stream=True):
            pieces.append(piece)
    assert (pieces, str(info.value)) == (["a"], "the chunked body is malformed: b''")


@pytest.mark.parametrize("line_bytes, fits", [(4096, True), (4097, False)])
def test_a_chunk_size_line_may_be_4096_bytes_long_before_its_end_arrives(
    server: LoopbackServer, line_bytes: int, fits: bool
) -> None:
    data = (event(chunk("a", finish_reason="stop")) + DONE).encode()
    size_line = b"%x;ext=" % len(data)
    size_line += b"x" * (line_bytes - len(size_line))  # a chunk extension, its line not yet ended
    server.handler = lambda req, wire: wire.slices(HEAD["chunked"], [size_line, b"\r\n%s\r\n0\r\n\r\n" % data])
    client = Client(server.url, model="m", max_retries=0, timeout=(2, 5))
    if fits:
        assert list(client.chat("hi", stream=True)) == ["a"]
    else:
        with pytest.raises(APIConnectionError, match=r"^the chunked body is malformed: no chunk size line$"):
            list(client.chat("hi", stream=True))


def test_a_last_chunk_ended_by_a_bare_lf_in_a_read_of_its_own_ends_the_body(server: LoopbackServer) -> None:
    body = (event(chunk("a", finish_reason="stop")) + DONE).encode()
    server.handler = lambda req, wire: wire.slices(HEAD["chunked"], [b"%x\r\n%s\r\n0\r\n" % (len(body), body), b"\n"])
    client = Client(server.url, model="m", max_retries=0, timeout=(2, 5))
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert list(client.chat("hi", stream=True)) == ["a"]
    assert server.connections == 1, "the body was seen to its end, so its connection was reused"
