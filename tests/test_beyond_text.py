"""Tool calls, JSON output, embeddings, several choices, batches and chat templates."""

from __future__ import annotations

import base64
import json
import struct
import threading
from typing import Any

import pytest

from openai_compat import (
    APIResponseError,
    BadRequestError,
    Client,
    JSONOutputError,
    UnhandledToolCallsError,
)
from openai_compat._templates import TEMPLATES, render

from .server import LoopbackServer, Request, Wire, chunk, completion, event, json_with_id

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def _weather_server(req: Request, wire: Wire) -> None:
    messages = req.json["messages"]
    if messages[-1]["role"] == "tool":
        wire.json(completion(f"It is {messages[-1]['content']} in Paris."))
    else:
        answer = completion("")
        # llama-cpp-python's shape: the legacy function_call beside tool_calls, content null.
        answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [CALL],
                                           "function_call": CALL["function"]}
        answer["choices"][0]["finish_reason"] = "tool_calls"
        wire.json(answer)


def test_chat_does_not_drop_tool_calls(client: Client, server: LoopbackServer) -> None:
    server.handler = _weather_server
    with pytest.raises(UnhandledToolCallsError, match=r"tool calls \(get_weather\).*chat_message") as info:
        client.chat("Weather in Paris?", tools=TOOLS)
    assert info.value.tool_calls == [CALL]
    assert info.value.assistant_message["tool_calls"] == [CALL]


def test_a_full_tool_round_trip(client: Client, server: LoopbackServer) -> None:
    server.handler = _weather_server
    messages: list = [{"role": "user", "content": "Weather in Paris?"}]
    reply = client.chat_message(messages, tools=TOOLS, tool_choice="auto")
    assert reply["tool_calls"] == [CALL]
    messages.append(reply)
    for call in reply["tool_calls"]:
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "18 C"})
    assert client.chat(messages, tools=TOOLS) == "It is 18 C in Paris."
    first, second = (r.json for r in server.requests)
    assert first["tools"] == TOOLS and first["tool_choice"] == "auto"
    # What llama-cpp-python takes back: content "" (null beside tool calls fails its validation),
    # and no function_call.
    assert second["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [CALL]}
    assert second["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}


@pytest.mark.parametrize("answer, value", [
    ('{"primes": [2, 3, 5]}', {"primes": [2, 3, 5]}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ("  [1, 2]\n", [1, 2]),
])
def test_chat_json_returns_the_parsed_value(client: Client, server: LoopbackServer, answer: str, value) -> None:
    server.handler = lambda req, wire: wire.json(completion(answer))
    assert client.chat_json("primes?", max_tokens=20) == value
    assert server.requests[0].json["response_format"] == {"type": "json_object"}
    assert server.requests[0].json["max_tokens"] == 20


def test_chat_json_passes_a_schema_through_or_sends_none(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("{}"))
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    client.chat_json("x", response_format=schema)
    client.chat_json("x", response_format=None)
    assert server.requests[0].json["response_format"] == schema
    assert "response_format" not in server.requests[1].json


def test_chat_json_raises_with_the_raw_text_when_the_answer_is_not_json(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("Sure! Here are some primes: 2, 3, 5"))
    with pytest.raises(JSONOutputError, match="not JSON") as info:
        client.chat_json("primes?")
    assert info.value.text == "Sure! Here are some primes: 2, 3, 5"


def _embedding_server(req: Request, wire: Wire) -> None:
    inputs = req.json["input"]
    data = [{"object": "embedding", "index": i, "embedding": [float(len(text)), float(i)]}
            for i, text in enumerate(inputs)]
    wire.json({"object": "list", "data": list(reversed(data)), "model": req.json["model"]})


def test_embed_one_text_gives_one_vector(client: Client, server: LoopbackServer) -> None:
    server.handler = _embedding_server
    assert client.embed("hello", model="emb") == [5.0, 0.0]
    assert (server.requests[0].method, server.requests[0].path) == ("POST", "/v1/embeddings")
    assert server.requests[0].json == {"model": "emb", "input": ["hello"]}


def test_embed_a_list_keeps_input_order_and_splits_large_inputs(client: Client, server: LoopbackServer) -> None:
    server.handler = _embedding_server
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    vectors = client.embed(texts, batch_size=2, dimensions=2)
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r.json["input"] for r in server.requests] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert all(r.json["dimensions"] == 2 for r in server.requests)
    assert client.embed([]) == []
    assert len(server.requests) == 3


def test_embed_decodes_base64_vectors(client: Client, server: LoopbackServer) -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    server.handler = lambda req, wire: wire.json({"data": [{"index": 0, "embedding": packed}]})
    assert client.embed("x", encoding_format="base64") == [0.5, -1.0, 2.0]


def test_embed_refuses_bad_input_and_short_answers(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError, match=r"^embed\(\): input 1 must be a str, got int$"):
        client.embed(["a", 2])  # type: ignore[list-item]
    for size in (0, "2"):
        with pytest.raises(ValueError, match=f"^batch_size must be a whole number >= 1, got {size!r}$"):
            client.embed(["a", "b"], batch_size=size)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^embed\(\) got an unexpected keyword 'dimensionz': did you mean dimension"):
        client.embed("a", dimensionz=2)
    assert server.requests == []
    server.handler = _embedding_server
    assert len(client.embed(["a", "b"], batch_size=1, extra_body={"dimensionz": 2})) == 2
    assert [(r.json["input"], r.json["dimensionz"]) for r in server.requests] == [(["a"], 2), (["b"], 2)]
    server.handler = lambda req, wire: wire.json({"data": [{"index": 0, "embedding": [1.0]}]})
    with pytest.raises(APIResponseError, match="asked for 2 embeddings, got 1"):
        client.embed(["a", "b"])


def test_an_embeddings_answer_that_cannot_be_used_says_what_was_wrong_and_keeps_the_evidence(
    client: Client, server: LoopbackServer
) -> None:
    answers: dict[str, dict[str, Any]] = {
        "no data": {"object": "list"},
        "no vector": {"data": [{"index": 0, "object": "embedding"}]},
        "not an object": {"data": ["oops"]},
        "not numbers": {"data": [{"index": 0, "embedding": [0.5] * 150 + ["x"]}]},
        "per token": {"data": [{"index": 0, "embedding": [[0.1] * 3] * 40}]},
    }
    expected = {
        "no data": "asked for 1 embeddings, got no",
        "no vector": "an embedding is missing from the response",
        "not an object": "an embedding is missing from the response",
        "not numbers": "an embedding is not a list of numbers",
        "per token": "the server returned one vector per token (40 tokens) instead of one per input: it runs without"
                     " pooling. Use an embedding model whose GGUF declares its pooling (such as nomic-embed-text), or"
                     " start llama.cpp's llama-server with --pooling mean",
    }
    for case, body in answers.items():
        server.handler = json_with_id(body, "req-emb")
        with pytest.raises(APIResponseError) as info:
            client.embed("hello")
        assert (info.value.message, info.value.request_id) == (expected[case], "req-emb"), case
        if case in ("no data", "no vector", "not an object"):
            assert info.value.body == body, case
        else:  # a vector per token can be megabytes: an excerpt of the JSON is kept
            text = json.dumps(body)
            assert info.value.body == (text if len(text) <= 500 else text[:499] + "…"), case
    assert len(json.dumps(answers["per token"])) > 500 and len(json.dumps(answers["not numbers"])) > 500


def test_an_embeddings_answer_that_is_not_json_keeps_its_request_id(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.body(b"<html>upstream busy</html>", headers={
        "Content-Type": "text/html", "x-request-id": "req-html"})
    with pytest.raises(APIResponseError) as info:
        client.embed("hello")
    assert info.value.request_id == "req-html"


def test_embeddings_without_an_index_count_as_index_0(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"data": [{"index": 1, "embedding": [2.0]}, {"embedding": [1.0]}]})
    assert client.embed(["a", "b"]) == [[1.0], [2.0]]


def test_several_choices_blocking_and_streamed(client: Client, server: LoopbackServer) -> None:
    answer = completion("zero")
    answer["choices"] = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                         for i, t in [(1, "one"), (0, "zero"), (2, "two")]]
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat_choices("name a cat", n=3, temperature=1.0) == ["zero", "one", "two"]
    assert server.requests[0].json["n"] == 3 and server.requests[0].json["temperature"] == 1.0
    server.handler = lambda req, wire: wire.sse([
        event(chunk("a", index=0)), event(chunk("b", index=1)), event(chunk("c", index=0)),
        event(chunk(None, index=0, finish_reason="stop")), event(chunk(None, index=1, finish_reason="stop")),
        "data: [DONE]\n\n"])
    assert list(client.chat_choices("name a cat", n=2, stream=True)) == [(0, "a"), (1, "b"), (0, "c")]
    with pytest.raises(ValueError, match="n must be"):
        client.chat_choices("x", n=0)


def test_several_choices_take_the_settings_of_chat(server: LoopbackServer) -> None:
    answer = completion("zero")
    answer["choices"] = [{"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "stop"},
                         {"message": {"role": "assistant", "content": "first"}, "finish_reason": "stop"}]
    calls = []

    def handler(request: Request, wire: Wire) -> None:
        calls.append(request)
        if len(calls) == 1:
            wire.json({"error": {"message": "busy"}}, status=503)
        else:
            wire.json(answer)

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0, timeout=0.001)
    choices = client.chat_choices("name a cat", n=2, system="Be brief.", model="big", max_retries=1, timeout=5,
                                  deadline=30, unknown_field="kept")
    assert choices == ["first", "second"], "a choice without an index is the first"
    sent = calls[-1]
    assert sent.path == "/v1/chat/completions" and len(calls) == 2
    assert sent.json["model"] == "big" and sent.json["unknown_field"] == "kept"
    assert sent.json["messages"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "name a cat"}]
    streamed = list(client.chat_choices("x", n=2, stream=True, timeout=5))
    assert streamed == [(1, "second"), (0, "first")], "in the order they came"
    assert calls[-1].path == "/v1/chat/completions" and calls[-1].json["stream"] is True
    with pytest.raises(TypeError, match="chat_choices\\(\\)"):
        client.chat_choices("x", n=2, stream="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^chat_choices\(\) got an unexpected keyword 'max_tokesn': did you mean"):
        client.chat_choices("x", n=2, max_tokesn=3)
    client.chat_choices("x", n=2, extra_headers={"X-Trace": "t-1"})
    assert calls[-1].headers["x-trace"] == "t-1"


def test_streamed_choices_take_the_delta_and_default_to_index_0(client: Client, server: LoopbackServer) -> None:
    # Together repeats a chat delta's content in "text"; a minimal server leaves out "index".
    server.handler = lambda req, wire: wire.sse([
        event({"choices": [{"delta": {"content": "a"}, "text": "not the answer"}]}),
        event({"choices": [{"delta": {}, "finish_reason": "stop"}]}), "data: [DONE]\n\n"])
    assert list(client.chat_choices("name a cat", n=1, stream=True)) == [(0, "a")]


def test_each_streamed_choice_leaves_out_its_own_think_block(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([
        event(chunk("<think>A tabby", index=0)), event(chunk("<thi", index=1)), event(chunk("?</th", index=0)),
        event(chunk("nk>Short.</think>\n\nMax", index=1)), event(chunk("ink>Tom", index=0)),
        event(chunk("<th", index=2)),  # what might open a block, until the stream ends
        *(event(chunk(None, index=i, finish_reason="stop")) for i in range(3)), "data: [DONE]\n\n"])
    assert list(client.chat_choices("name a cat", n=3, stream=True)) == [(1, "Max"), (0, "Tom"), (2, "<th")]
    server.handler = lambda req, wire: wire.json({"choices": [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        for i, text in enumerate(["<think>A tabby?</think>Tom", "Max"])]})
    assert client.chat_choices("name a cat", n=2) == ["Tom", "Max"], "as a blocking call does"


def test_batch_keeps_input_order_and_returns_errors_in_place(server: LoopbackServer) -> None:
    lock = threading.Lock()
    active = {"now": 0, "most": 0}

    def handler(req: Request, wire: Wire) -> None:
        prompt = req.json["messages"][0]["content"]
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
        try:
            if "bad" in prompt:
                wire.json({"error": {"message": f"rejected {prompt}"}}, status=400)
            else:
                wire.json(completion(prompt.upper()))
        finally:
            with lock:
                active["now"] -= 1
    server.handler = handler
    client = Client(server.url, model="m")
    prompts = [f"prompt {i}" if i % 7 else f"bad {i}" for i in range(30)]
    results = client.batch(prompts, max_workers=4, max_tokens=5)
    for prompt, result in zip(prompts, results):
        if "bad" in prompt:
            assert isinstance(result, BadRequestError) and prompt in result.message
        else:
            assert result == prompt.upper()
    assert active["most"] <= 4
    assert all(r.json["max_tokens"] == 5 for r in server.requests)
    with pytest.raises(BadRequestError):
        client.batch(prompts, max_workers=2, return_exceptions=False)


def test_batch_honours_rate_limits_and_can_show_progress(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: set = set()

    def handler(req: Request, wire: Wire) -> None:
        prompt = req.json["prompt"]
        if prompt not in seen:
            seen.add(prompt)
            wire.json({"error": "slow down"}, status=429, headers={"retry-after-ms": "10"})
        else:
            wire.json(completion(f"done {prompt}", chat=False))
    server.handler = handler
    results = Client(server.url, model="m").batch([str(i) for i in range(10)], complete=True, progress=True)
    assert results == [f"done {i}" for i in range(10)]
    assert len(server.requests) == 20
    assert "10/10" in capsys.readouterr().err


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
RENDERED = {
    "chatml": ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
               "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"),
    "llama3": ("<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": "[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] Bye [/INST]",
    "plain": "system: Be brief.\nuser: Hi\nassistant: Hello!\nuser: Bye\nassistant:",
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_template_renders_the_conversation(name: str) -> None:
    prompt, stop = render(MESSAGES, name)
    assert prompt == RENDERED[name]
    assert stop == TEMPLATES[name][1]


def test_complete_renders_a_message_list_and_adds_the_template_stop(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("Goodbye!", chat=False))
    assert client.complete(MESSAGES, template="chatml", stop="\n\n") == "Goodbye!"
    assert server.requests[0].json["prompt"] == RENDERED["chatml"]
    assert server.requests[0].json["stop"] == ["\n\n", "<|im_end|>"]
    client.complete("Hi", template="plain")
    assert server.requests[1].json == {"model": "test-model", "prompt": "user: Hi\nassistant:", "stop": ["\nuser:"]}


def test_a_message_list_needs_a_template_and_a_known_one(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError, match="with template="):
        client.complete(MESSAGES)
    with pytest.raises(TypeError, match=r"^complete\(\): prompt must be a str, or a message list with template=, got"
                                        r" int$"):
        client.complete(7)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^complete\(\): stream must be True or False, got 'yes'$"):
        client.complete("Hi", stream="yes")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="unknown template 'vicuna'"):
        client.complete(MESSAGES, template="vicuna")
    assert server.requests == []


def test_a_blocking_answer_with_text_and_tool_calls_raises_with_both(client: Client, server: LoopbackServer) -> None:
    message = {"role": "assistant", "content": "Let me look that up.", "tool_calls": [
        {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "tides"}'}}]}
    server.handler = lambda req, wire: wire.json({"choices": [{"index": 0, "message": message,
                                                               "finish_reason": "tool_calls"}]})
    with pytest.raises(UnhandledToolCallsError) as info:
        client.chat("tides?")
    assert [c["function"]["name"] for c in info.value.tool_calls] == ["lookup"]
    assert info.value.assistant_message["content"] == "Let me look that up."


def test_complete_takes_its_own_headers_and_streams_from_completions(server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.json.get("stream"):
            wire.sse([event(chunk("Once", chat=False)), event(chunk(" more", chat=False, finish_reason="stop"))])
        else:
            wire.json(completion("Done.", chat=False))

    server.handler = answer
    client = Client(server.url, model="m", max_retries=0)
    assert client.complete("go", extra_headers={"X-Trace": "t-1"}) == "Done."
    assert server.requests[-1].headers["x-trace"] == "t-1"
    assert list(client.complete("go", stream=True)) == ["Once", " more"]
    assert server.requests[-1].path == "/v1/completions" and server.requests[-1].json["stream"] is True
