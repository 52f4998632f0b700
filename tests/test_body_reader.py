"""The body reader's fallbacks: when urllib3's internals are missing, reading still works.

``BodyReader`` reads through http.client under urllib3's response. These tests hand it a real
response whose ``raw`` shows only urllib3's public methods, as a future urllib3 might.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from openai_compat import ChunkStream
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


@pytest.mark.parametrize("read1", [True, False], ids=["urllib3-read1", "iter-content"])
def test_without_urllib3_internals_a_chunked_piece_arrives_while_the_server_pauses(
    server: LoopbackServer, read1: bool
) -> None:
    if read1 and not hasattr(requests.packages.urllib3.response.HTTPResponse, "read1"):
        pytest.skip("this urllib3 has no read1")
    released = threading.Event()
    held_back: list[bool] = []

    def handler(req: Request, wire: Wire) -> None:
        def pieces() -> Any:
            yield event(chunk("first"))
            held_back.append(not released.wait(5))  # the client must have "first" before this
            yield event(chunk("x", finish_reason="stop"))
        wire.sse(pieces())

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
