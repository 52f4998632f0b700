"""A fast loopback server for ``make bench``, run in its own process so its CPU is not counted.

``python tests/bench/server.py PORT_FILE`` binds a free port on 127.0.0.1, writes it to
PORT_FILE and serves until killed. The request body says what to send back:

- no ``stream``: one small chat completion (Content-Length, keep-alive);
- ``stream`` with ``bench_events: N``: N chat chunks and ``[DONE]``, one HTTP chunk each,
  written as fast as the socket takes them (``bench_framing``: ``chunked``, ``close``, ``gzip``);
- ``bench_latency: N``: N events 20 ms apart, each carrying the monotonic clock at its write,
  so the client can tell how long a piece took to reach its caller.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import zlib

COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The robot learned to love."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}).encode()


def chunk_event(text: str, finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "bench-model", "system_fingerprint": "fp_bench",
             "choices": [{"index": 0, "delta": {"content": text} if finish is None else {},
                          "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


EVENT = chunk_event(" word")
LAST = chunk_event("", "stop") + b"data: [DONE]\n\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def serve(sock: socket.socket) -> None:
    reader = sock.makefile("rb")
    try:
        while True:
            line = reader.readline()
            if not line:
                return
            length = 0
            while True:
                header = reader.readline()
                if header in (b"\r\n", b""):
                    break
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(reader.read(length) or b"{}")
            if not answer(sock, body):
                return
    except OSError:
        return
    finally:
        sock.close()


def answer(sock: socket.socket, body: dict) -> bool:
    """Write the answer ``body`` asks for; False when the connection must close after it."""
    if not body.get("stream"):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req-bench\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(COMPLETION), COMPLETION))
        return True
    framing = body.get("bench_framing", "chunked")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    head += b"Transfer-Encoding: chunked\r\n" if framing != "close" else b"Connection: close\r\n"
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if framing == "gzip" else None
    head += b"Content-Encoding: gzip\r\n\r\n" if compressor else b"\r\n"
    sock.sendall(head)

    def send(data: bytes) -> None:
        if compressor is not None:
            data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        sock.sendall(data if framing == "close" else http_chunk(data))

    if "bench_latency" in body:
        for _ in range(int(body["bench_latency"])):
            send(chunk_event(repr(time.monotonic())))
            time.sleep(0.02)
    elif compressor is not None:
        for _ in range(int(body.get("bench_events", 100))):
            send(EVENT)
    else:
        remaining = int(body.get("bench_events", 100))
        batch = EVENT * 1000 if framing == "close" else b"".join(http_chunk(EVENT) for _ in range(1000))
        while remaining > 0:
            count = min(remaining, 1000)
            sock.sendall(batch if count == 1000 else batch[: len(batch) // 1000 * count])
            remaining -= count
    send(LAST)
    if compressor is not None:
        tail = compressor.flush()
        sock.sendall(tail if framing == "close" else http_chunk(tail))
    if framing == "close":
        return False
    sock.sendall(b"0\r\n\r\n")
    return True


def main(port_file: str) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    with open(port_file, "w") as f:
        f.write(str(listener.getsockname()[1]))
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1])
