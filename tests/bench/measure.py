"""The client side of ``make bench``: one implementation against plain requests, in one process.

``python measure.py IMPL URL`` prints JSON; IMPL is ``openai_compat`` or ``openai`` (run with
the interpreter of the environment that has it). ``python measure.py IMPL URL --memory`` streams
a million events and reports how resident memory moved. CPU is ``time.process_time()`` of this
process only: the server runs in another.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any, Callable, Iterator

import requests

MESSAGES = [{"role": "user", "content": "Write a story about a robot learning to love"}]
STREAM_EVENTS = 20_000
BATCH_CALLS = 400
BATCH_WORKERS = (8, 32)
MEMORY_EVENTS = 1_000_000


def implementation(name: str, url: str) -> dict[str, Callable[..., Any]]:
    """``call()`` -> text, ``stream(**extra)`` -> iterator of text pieces, for ``name``."""
    if name == "openai_compat":
        from openai_compat import Client

        client = Client(url, model="bench-model", max_retries=0)
        return {
            "call": lambda: client.chat(MESSAGES),
            "stream": lambda **extra: client.chat(MESSAGES, stream=True, **extra),
            "batch": lambda count, workers: client.batch([MESSAGES] * count, max_workers=workers),
        }
    from openai import OpenAI

    official = OpenAI(base_url=url, api_key="bench", max_retries=0)

    def stream(**extra: Any) -> Iterator[str]:
        for chunk in official.chat.completions.create(model="bench-model", messages=MESSAGES, stream=True,
                                                      extra_body=extra):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    def call() -> Any:
        return official.chat.completions.create(model="bench-model", messages=MESSAGES).choices[0].message.content

    def batch(count: int, workers: int) -> list[Any]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda _: call(), range(count)))

    return {"call": call, "stream": stream, "batch": batch}


def baseline(url: str) -> dict[str, Callable[..., Any]]:
    """The same work with bare requests: ``post().json()``, and an ``iter_lines`` SSE parser.

    ``call_settled`` is ``call`` on a session that reads the environment (proxies, CA bundle,
    netrc) once instead of on every request, as openai-compat's own session does: against it,
    a ratio shows a client's own work alone.
    """
    session = requests.Session()
    settled = requests.Session()
    settled.proxies.update(settled.merge_environment_settings(url, {}, None, None, None)["proxies"])
    settled.trust_env = False

    def call() -> Any:
        return session.post(url + "/chat/completions", json={"model": "bench-model", "messages": MESSAGES}).json()

    def call_settled() -> Any:
        return settled.post(url + "/chat/completions", json={"model": "bench-model", "messages": MESSAGES}).json()

    def stream(**extra: Any) -> Iterator[str]:
        body = {"model": "bench-model", "messages": MESSAGES, "stream": True, **extra}
        with session.post(url + "/chat/completions", json=body, stream=True) as response:
            for line in response.iter_lines():
                if line.startswith(b"data: "):
                    data = line[6:]
                    if data == b"[DONE]":
                        break
                    text = json.loads(data)["choices"][0]["delta"].get("content")
                    if text:
                        yield text

    return {"call": call, "call_settled": call_settled, "stream": stream}


def cpu(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def alternate(ours: Callable[[], object], base: Callable[[], object], rounds: int) -> dict[str, float]:
    """CPU of ``ours`` against ``base``, measured in adjacent pairs, ``rounds`` times.

    The ratio is the median of the pairs' ratios: the two halves of a pair run moments apart,
    so a shared machine's slow and fast spells hit both. The seconds are each side's least,
    since noise only ever adds time.
    """
    ours(), base()  # warm up connections and caches
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        if i % 2:
            b.append(cpu(base))
            a.append(cpu(ours))
        else:
            a.append(cpu(ours))
            b.append(cpu(base))
    return {"ratio": statistics.median(x / y for x, y in zip(a, b)), "ours": min(a), "base": min(b)}


def consume(stream: Iterator[str], expected: int) -> None:
    count = sum(1 for _ in stream)
    assert count == expected, f"got {count} pieces, expected {expected}"


def latencies(stream: Callable[..., Iterator[str]], framing: str, events: int = 25) -> list[float]:
    """Milliseconds from each event's write on the server to its piece in our hands."""
    delays = [(time.monotonic() - float(piece)) * 1000
              for piece in stream(bench_latency=events, bench_framing=framing)]
    assert len(delays) == events, f"{framing}: got {len(delays)} pieces"
    return delays


def measure(name: str, url: str) -> dict[str, Any]:
    ours, base = implementation(name, url), baseline(url)
    calls = 200
    call = alternate(lambda: [ours["call"]() for _ in range(calls)],
                     lambda: [base["call"]() for _ in range(calls)], rounds=21)
    settled = alternate(lambda: [ours["call"]() for _ in range(calls)],
                        lambda: [base["call_settled"]() for _ in range(calls)], rounds=21)
    stream = alternate(lambda: consume(ours["stream"](bench_events=STREAM_EVENTS), STREAM_EVENTS),
                       lambda: consume(base["stream"](bench_events=STREAM_EVENTS), STREAM_EVENTS), rounds=15)
    first_piece = {}
    for framing in ("chunked", "close", "gzip"):
        delays = latencies(ours["stream"], framing)
        first_piece[framing] = {"median_ms": statistics.median(delays), "max_ms": max(delays)}
    throughput = {}
    for workers in BATCH_WORKERS:
        ours["batch"](workers, workers)  # warm up as many connections as workers
        rates = []
        for _ in range(3):
            start = time.monotonic()
            ours["batch"](BATCH_CALLS, workers)
            rates.append(BATCH_CALLS / (time.monotonic() - start))
        throughput[str(workers)] = max(rates)
    return {
        "batch_calls_per_s": throughput,
        "call_ratio": call["ratio"], "call_us": call["ours"] / calls * 1e6, "call_base_us": call["base"] / calls * 1e6,
        "own_ratio": settled["ratio"], "own_base_us": settled["base"] / calls * 1e6,
        "event_ratio": stream["ratio"], "event_us": stream["ours"] / STREAM_EVENTS * 1e6,
        "event_base_us": stream["base"] / STREAM_EVENTS * 1e6,
        "first_piece": first_piece,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def memory(name: str, url: str) -> dict[str, Any]:
    stream = implementation(name, url)["stream"](bench_events=MEMORY_EVENTS)
    next(stream)
    start = peak = rss_bytes()
    for count, _ in enumerate(stream, 2):
        if count % 10_000 == 0:
            peak = max(peak, rss_bytes())
    assert count == MEMORY_EVENTS, f"got {count} pieces"
    return {"rss_start_mb": start / 2**20, "rss_peak_mb": peak / 2**20, "events": count}


if __name__ == "__main__":
    impl, base_url = sys.argv[1], sys.argv[2]
    result = memory(impl, base_url) if "--memory" in sys.argv else measure(impl, base_url)
    print(json.dumps(result))
