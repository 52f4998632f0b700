"""The SDK against a real llama.cpp server (llama-cpp-python) serving a tiny random model.

The text is noise; what is checked is the wire: the same answer blocking and streamed, stop
sequences, usage, finish reasons, errors, abandoning, threads.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from openai_compat import APIStatusError, Client, RequestEvent, merge_chunks

GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 7, "max_tokens": 40}
PROMPT = "Write a story about a robot learning to love"


def test_blocking_chat_equals_the_joined_stream(client: Client) -> None:
    whole = client.chat(PROMPT, **GREEDY)
    pieces = list(client.chat(PROMPT, stream=True, **GREEDY))
    assert whole and len(pieces) > 1
    assert "".join(pieces) == whole


def test_blocking_completion_equals_the_joined_stream(client: Client) -> None:
    whole = client.complete("Once upon a time", **GREEDY)
    pieces = list(client.complete("Once upon a time", stream=True, **GREEDY))
    assert whole and len(pieces) > 1
    assert "".join(pieces) == whole


def test_system_equals_an_explicit_system_message(client: Client) -> None:
    by_keyword = client.chat(PROMPT, system="You are terse.", **GREEDY)
    explicit = client.chat([{"role": "system", "content": "You are terse."}, {"role": "user", "content": PROMPT}],
                           **GREEDY)
    without = client.chat(PROMPT, **GREEDY)
    assert by_keyword == explicit
    assert by_keyword != without, "the system message reached the model"


def test_a_stop_sequence_cuts_where_it_should(client: Client) -> None:
    whole = client.complete("Once upon a time", **GREEDY)
    words = [w for w in whole.split() if len(w) >= 3]
    assert words, f"need a word to stop at in {whole!r}"
    stop = words[len(words) // 2]
    cut = client.complete("Once upon a time", stop=[stop], **GREEDY)
    assert cut == whole[: whole.index(stop)]
    streamed = "".join(client.complete("Once upon a time", stop=[stop], stream=True, **GREEDY))
    assert streamed == cut


def test_max_tokens_and_usage_agree(client: Client) -> None:
    for max_tokens in (1, 5, 17):
        done = client.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
                                             temperature=0.0, seed=1)
        usage = done["usage"]
        assert usage["completion_tokens"] <= max_tokens
        if done["choices"][0]["finish_reason"] == "length":
            assert usage["completion_tokens"] == max_tokens
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_streamed_chunks_carry_a_finish_reason_and_merge_to_the_blocking_answer(client: Client) -> None:
    chunks = list(client.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], stream=True,
                                                **GREEDY))
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    merged = merge_chunks(chunks)
    assert merged["choices"][0]["message"]["content"] == client.chat(PROMPT, **GREEDY)


def test_a_bad_request_is_a_typed_error_with_a_readable_bounded_message(client: Client) -> None:
    with pytest.raises(TypeError, match="max_tokens must be int"):
        client.chat(PROMPT, max_tokens="many")  # refused before sending
    seen: list[RequestEvent] = []
    client.event_hook = seen.append
    with pytest.raises(APIStatusError) as info:
        client.chat(PROMPT, top_k="many")  # a field the SDK passes through: the server judges it
    exc = info.value
    assert exc.status_code in (400, 422, 500)
    assert "top_k" in exc.message and "integer" in exc.message
    assert len(str(exc)) < 600
    assert 'File "' not in exc.message, "the server's traceback is left out of the message"
    assert [e.kind for e in seen] == ["request", "response"], "a validation error is not retried"


def test_abandoning_a_stream_leaves_the_client_usable(client: Client) -> None:
    for piece in client.chat(PROMPT, stream=True, temperature=0.0, max_tokens=200):
        assert piece
        break
    assert client.chat(PROMPT, **GREEDY) == client.chat(PROMPT, **GREEDY)


def test_several_threads_at_once(client: Client) -> None:
    expected = {n: client.complete(f"Story number {n}:", **GREEDY) for n in range(4)}
    results: dict = {}

    def work(n: int) -> None:
        results[n] = "".join(client.complete(f"Story number {n}:", stream=True, **GREEDY))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected
