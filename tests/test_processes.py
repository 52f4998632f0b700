"""Beyond one process and one thread: forked workers, pickled clients, big batches."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import warnings
from typing import Any

import pytest
import requests

from openai_compat import Client

from .server import LoopbackServer, Request, Wire, completion

KEY = "sk-fork-0123456789abcdef"

# The client a forked worker inherits, as a module global (how gunicorn --preload, Celery
# prefork and multiprocessing pools hand state to their children).
_inherited: Client | None = None


def _ask(i: int) -> str:
    assert _inherited is not None
    return _inherited.chat(f"prompt {i}")


def _echo(req: Request, wire: Wire) -> None:
    wire.json(completion(req.json["messages"][-1]["content"]))


def fork_pool(workers: int) -> Any:
    """A pool of forked workers, made now: they inherit the module's state as it is."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork() may deadlock"
        return multiprocessing.get_context("fork").Pool(workers)


@pytest.mark.parametrize("own_session", [True, False], ids=["own-session", "callers-session"])
def test_a_client_used_before_a_fork_works_in_every_child(server: LoopbackServer, own_session: bool) -> None:
    global _inherited
    server.handler = _echo
    session = None if own_session else requests.Session()
    _inherited = Client(server.url, model="m", api_key=KEY, session=session, max_retries=0, timeout=5)
    assert _inherited.chat("before the fork") == "before the fork"  # a pooled keep-alive socket now
    pool = fork_pool(4)
    try:
        answers = pool.map_async(_ask, range(16)).get(timeout=30)  # hung forever before
        assert answers == [f"prompt {i}" for i in range(16)]
        assert _inherited.chat("after, in the parent") == "after, in the parent"
    finally:
        pool.terminate()
        pool.join()
        _inherited = None
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_each_fork_even_a_fork_of_a_fork_makes_the_next_call_leave_the_old_connections(
    server: LoopbackServer,
) -> None:
    from openai_compat._connection import _count_fork  # what os.register_at_fork runs in a child

    server.handler = _echo
    client = Client(server.url, model="m")
    for prompt in ("parent", "child", "grandchild", "grandchild again"):
        if prompt in ("child", "grandchild"):
            _count_fork()  # as in a forked child, without leaving this process
        assert client.chat(prompt) == prompt
    connections = [r.connection for r in server.requests]
    assert len(set(connections[:3])) == 3, "never a connection the parent might still use"
    assert connections[3] == connections[2], "with no fork since, the connection is kept"


def test_a_pickled_client_works_and_never_shows_its_key(server: LoopbackServer) -> None:
    server.handler = _echo
    client = Client(server.url, model="m", api_key=KEY)
    client.chat("warm up")
    copy = pickle.loads(pickle.dumps(client))
    assert copy.chat("from the copy") == "from the copy"
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(copy) and KEY not in repr(vars(copy)) and KEY not in repr(vars(copy._connection))


def test_a_batch_of_32_workers_keeps_its_connections_and_prints_nothing(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    server.handler = _echo
    client = Client(server.url, model="m")
    with caplog.at_level(logging.WARNING):
        answers = client.batch([f"p{i}" for i in range(320)], max_workers=32)
    assert answers == [f"p{i}" for i in range(320)]
    assert [r.getMessage() for r in caplog.records] == [], "no 'Connection pool is full' warnings"
    assert capsys.readouterr().err == ""
    assert server.connections <= 32, "each worker's connection went back to the pool and was reused"


def test_a_batch_no_wider_than_the_pool_keeps_the_pooled_connection(server: LoopbackServer) -> None:
    server.handler = _echo
    client = Client(server.url, model="m")
    assert client.chat("first") == "first"
    assert client.batch(["second"], max_workers=10) == ["second"]  # 10: the pool's own size
    first, second = server.requests
    assert first.connection == second.connection, "the pool was not replaced, so its connection was reused"


def test_a_big_batch_leaves_a_callers_adapters_and_a_recording_in_place(server: LoopbackServer, tmp_path: Any) -> None:
    from requests.adapters import HTTPAdapter

    from openai_compat import Cassette

    server.handler = _echo
    session = requests.Session()
    mine = HTTPAdapter(pool_maxsize=2)
    session.mount(server.url, mine)
    Client(server.url, model="m", session=session).batch([f"p{i}" for i in range(20)], max_workers=16)
    assert session.get_adapter(server.url + "/chat/completions") is mine, "the caller's adapter is kept"
    tape = tmp_path / "tape.jsonl"
    prompts = [f"r{i}" for i in range(20)]
    assert Client(server.url, model="m", cassette=Cassette(tape, "record")).batch(prompts, max_workers=16) == prompts
    assert len(tape.read_text().splitlines()) == 20, "every call of the batch was recorded"


def test_a_client_with_a_cassette_pickles_and_replays_in_a_child(server: LoopbackServer, tmp_path: Any) -> None:
    from openai_compat import Cassette

    server.handler = _echo
    tape = tmp_path / "tape.jsonl"
    Client(server.url, model="m", cassette=Cassette(tape, "record")).chat("recorded")
    replaying = Client("http://127.0.0.1:9/v1", model="m", cassette=Cassette(tape, "replay"))
    copy = pickle.loads(pickle.dumps(replaying))
    assert copy.chat("recorded") == "recorded", "the copy's new session still answers from the cassette"
    global _inherited
    _inherited = Client("http://127.0.0.1:9/v1", model="m", cassette=Cassette(tape, "replay"))
    pool = fork_pool(1)
    try:
        assert pool.apply_async(_ask_recorded).get(timeout=30) == "recorded"
    finally:
        pool.terminate()
        pool.join()
        _inherited = None
    assert len(server.requests) == 1, "only the recording reached the server"


def _ask_recorded() -> str:
    assert _inherited is not None
    return _inherited.chat("recorded")


def test_a_grown_pool_survives_pickling(server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    server.handler = _echo
    client = Client(server.url, model="m")
    client.batch(["warm"] * 2, max_workers=32)
    copy = pickle.loads(pickle.dumps(client))
    with caplog.at_level(logging.WARNING):
        assert copy.batch([f"p{i}" for i in range(64)], max_workers=32) == [f"p{i}" for i in range(64)]
    assert [r.getMessage() for r in caplog.records] == []
