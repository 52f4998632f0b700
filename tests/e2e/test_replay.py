"""Record against the real server once, replay offline: identical results, streams included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openai_compat import Cassette, Client

from .llama_server import LlamaServer

PROMPTS = ["Write a story about a robot", "Once upon a time", "List three colours"]


def calls(client: Client) -> list[Any]:
    results: list[Any] = []
    for prompt in PROMPTS:
        results.append(client.chat(prompt, max_tokens=24, temperature=0, seed=1))
        results.append(list(client.chat(prompt, max_tokens=24, temperature=0, seed=1, stream=True)))
        results.append(list(client.complete(prompt, max_tokens=12, temperature=0, seed=1, stream=True)))
    results.append(client.last.usage if client.last else None)
    return results


def test_a_recording_of_the_real_server_replays_offline(llama_server: LlamaServer, tmp_path: Path) -> None:
    tape = tmp_path / "llama.jsonl"
    live = calls(Client(llama_server.base_url, model="tiny", cassette=Cassette(tape, "record")))
    replayed = calls(Client("http://127.0.0.1:9/v1", model="tiny", cassette=Cassette(tape, "replay")))
    assert replayed == live
    assert len(tape.read_text().splitlines()) == 3 * len(PROMPTS)
