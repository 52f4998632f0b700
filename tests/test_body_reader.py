"""The body reader's fallbacks: when urllib3's internals are missing, reading still works.

``BodyReader`` reads through http.client under urllib3's response. These tests hand it a real
response whose ``raw`` shows only urllib3's public methods, as a future urllib3 might.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from typing import Any

import pytest
import requests
import urllib3

from openai_compat import APIConnectionError, APIResponseError, ChunkStream, Client
from openai_compat._body_reader import BodyReader

from .server import LoopbackServer, Request, Wire, chunk, event, stream_of


class PublicOnly:
    """urllib3's response without its private attributes, and optionally without ``read1``."""

    def __init__(self, raw: Any, *, read1: bool) -> None:
        self._raw_response = raw
        self._has_read1 = read1 and hasattr(raw, "read1")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or (name == "read1" and not self._has_read1):
            raise AttributeError(name)
        return getattr(self._raw_response, name)


def open_stream(server: LoopbackServer, read1: bool) -> requests.Response:
    response = requests.post(server.url + "/chat/completions", json={}, stream=True, timeout=(2, 5))
    response.raw = PublicOnly(response.raw, read1=read1)
    return response


@pytest.mark.parametrize("read1", [True, False], ids=["urllib3-read1", "iter-content"])
@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_without_urllib3_internals_every_event_still_arrives(
    server: LoopbackServer, read1: bool, framing: str
) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b", "c"]), framing=framing, gzip=True)
    reader_texts = [c["choices"][0]["delta"].get("content") for c in ChunkStream(open_stream(server, read1))]
    assert reader_texts == ["a", "b", "c", None]


@pytest.mark.parametrize("read1, framing", [(True, "chunked"), (False, "chunked"), (True, "close")],
                         ids=["urllib3-read1", "iter-content", "urllib3-read1-close-delimited"])
def test_without_urllib3_internals_a_piece_arrives_while_the_server_pauses(
    server: LoopbackServer, read1: bool, framing: str
) -> None:
    # iter_content holds back a body that is not chunked until it ends; read1 does not.
    if read1 and not hasattr(urllib3.response.HTTPResponse, "read1"):
        pytest.skip("this urllib3 has no read1")
    released = threading.Event()
    held_back: list[bool] = []

    def handler(req: Request, wire: Wire) -> None:
        def pieces() -> Any:
            yield event(chunk("first"))
            held_back.append(not released.wait(5))  # the client must have "first" before this
            yield event(chunk("x", finish_reason="stop"))
        wire.sse(pieces(), framing=framing)

    server.handler = handler
    stream = ChunkStream(open_stream(server, read1))
    assert next(stream)["choices"][0]["delta"]["content"] == "first"
    released.set()
    assert [c["choices"][0]["delta"]["content"] for c in stream] == ["x"]
    assert held_back == [False]


def test_a_reader_without_a_socket_reads_to_the_end(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["a"]), framing="close")
    reader = BodyReader(open_stream(server, read1=False))
    body = b""
    while True:
        data = reader.read()
        if not data:
            break
        body += data
    reader.close()
    assert body.count(b"data: ") == 3 and body.endswith(b"data: [DONE]\n\n")


# -- a broken body is named for what broke ---------------------------------------------------------

CHUNKED_HEAD = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}


def _broken(head: dict[str, str], body: bytes) -> Any:
    def handler(req: Request, wire: Wire) -> None:
        wire.head(200, head)
        wire.write(body)
        wire.close()
    return handler


@pytest.mark.parametrize("body, message", [
    (b"40\r\ndata: {}", "the connection closed in the middle of the chunked body"),
    (b"5;" + b"x" * 5000, "the chunked body is malformed: no chunk size line"),
    (b"5\r\ndata:XX0\r\n\r\n", "the chunked body is malformed: no CRLF after a chunk"),
], ids=["closed-mid-chunk", "endless-size-line", "no-crlf-after-data"])
def test_a_broken_chunked_body_raises_naming_what_broke(server: LoopbackServer, body: bytes, message: str) -> None:
    server.handler = _broken(CHUNKED_HEAD, body)
    with pytest.raises(APIConnectionError) as info:
        list(Client(server.url, model="m", max_retries=0).chat("hi", stream=True))
    assert str(info.value) == message


def test_a_body_that_is_not_the_gzip_it_claims_raises(server: LoopbackServer) -> None:
    head = {**CHUNKED_HEAD, "Content-Encoding": "gzip", "x-request-id": "req-gz"}
    server.handler = _broken(head, b"10\r\nthis is not gzip\r\n0\r\n\r\n")
    with pytest.raises(APIResponseError, match=r"^the stream could not be decoded: ") as info:
        list(Client(server.url, model="m", max_retries=0).chat("hi", stream=True))
    assert info.value.request_id == "req-gz"


def test_raw_deflate_sent_as_gzip_is_refused(server: LoopbackServer) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # deflate without the gzip wrapper
    raw = compressor.compress("".join(stream_of(["a"])).encode()) + compressor.flush()
    server.handler = _broken({**CHUNKED_HEAD, "Content-Encoding": "gzip"}, b"%x\r\n%s\r\n0\r\n\r\n" % (len(raw), raw))
    with pytest.raises(APIResponseError, match=r"^the stream could not be decoded: "):
        list(Client(server.url, model="m", max_retries=0).chat("hi", stream=True))


def test_a_short_gzip_answer_longer_compressed_than_plain_is_read_whole(server: LoopbackServer) -> None:
    packed = gzip.compress(b'{"ok": true}')
    assert len(packed) > len(b'{"ok": true}')  # its Content-Length is more than the bytes it decodes to
    server.handler = lambda req, wire: wire.body(packed, headers={"Content-Encoding": "gzip",
                                                                  "Content-Type": "application/json"})
    assert Client(server.url, max_retries=0).get_json("/status") == {"ok": True}


def test_a_chunk_stream_made_by_hand_expects_one_choice(server: LoopbackServer) -> None:
    gone = threading.Event()

    def handler(req: Request, wire: Wire) -> None:
        wire.sse([event(chunk("a", finish_reason="stop"))], end=False)
        gone.wait(10)  # no [DONE], no end of the body
    server.handler = handler
    started = time.monotonic()
    response = requests.post(server.url + "/chat/completions", json={}, stream=True, timeout=(2, 5))
    assert [c["choices"][0]["delta"]["content"] for c in ChunkStream(response)] == ["a"]
    assert time.monotonic() - started < 4, "it lingered 1 s after the one finish, not the 5 s read timeout"
    gone.set()


def test_a_json_answer_to_a_stream_cut_short_raises(server: LoopbackServer) -> None:
    # The server ignored stream=true and answered with JSON, then the connection broke.
    server.handler = _broken({"Content-Type": "application/json", "Content-Length": "500"}, b'{"choices": [')
    with pytest.raises(APIConnectionError, match=r"^the connection broke while reading the answer: "):
        list(Client(server.url, model="m", max_retries=0).chat("hi", stream=True))
