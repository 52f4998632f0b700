"""Every request body the SDK builds, for every public call and option, fits OpenAI's published
OpenAPI document (``../shared/openapi/spec.yaml``); and the requests the spec allows can be sent.

The document is OpenAI's and stays where it is; the check skips where it is absent, or where
``jsonschema`` and ``pyyaml`` (development dependencies) are not installed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

from openai_compat import Client

from .server import LoopbackServer, Request, Wire, chunk, completion, event
from .test_media import SAMPLES
from .test_responses import MESSAGE, response

SPEC_FILE = Path(__file__).resolve().parents[2] / "shared" / "openapi" / "spec.yaml"

#: The request schema of each path the SDK posts JSON to.
REQUEST_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionRequest",
    "/v1/completions": "CreateCompletionRequest",
    "/v1/embeddings": "CreateEmbeddingRequest",
    "/v1/responses": "CreateResponse",
    "/v1/batches": "CreateBatchRequest",
}


@lru_cache(maxsize=None)
def _components() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    if not SPEC_FILE.exists():
        pytest.skip(f"OpenAI's OpenAPI document is not here: {SPEC_FILE} is absent")
    components: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())["components"]
    return components


def spec_problems(path: str, body: Any) -> list[str]:
    """Every way ``body``, sent to ``path``, breaks the spec's request schema for it."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"$ref": f"#/components/schemas/{REQUEST_SCHEMAS[path]}", "components": _components()}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}"
            for e in validator.iter_errors(body)]


def _answer(request: Request, wire: Wire) -> None:
    """What each endpoint answers, streamed or not, so that every call completes."""
    body = {} if request.path == "/v1/files" else request.json or {}  # a file upload is multipart
    if request.path == "/v1/embeddings":
        items = body["input"] if isinstance(body["input"], list) else [body["input"]]
        wire.json({"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.25]}
                                              for i in range(len(items))], "model": "m"})
    elif request.path == "/v1/responses":
        if body.get("stream"):
            done = {"type": "response.completed", "response": response(output=[MESSAGE])}
            wire.sse([f"data: {json.dumps(done)}\n\n"])
        else:
            wire.json(response(output=[MESSAGE]))
    elif request.path == "/v1/files":
        wire.json({"id": "file_1", "object": "file", "purpose": "batch", "bytes": 1, "filename": "b.jsonl"})
    elif request.path.startswith("/v1/batches"):
        wire.json({"id": "batch_1", "object": "batch", "status": "cancelling" if "cancel" in request.path
                   else "validating", "input_file_id": "file_1", "endpoint": "/v1/chat/completions"})
    else:
        chat = request.path == "/v1/chat/completions"
        n = body.get("n") or 1
        if body.get("stream"):
            wire.sse([event(chunk("{}", chat=chat, index=i)) for i in range(n)]
                     + [event(chunk(None, chat=chat, finish_reason="stop", index=i)) for i in range(n)]
                     + ["data: [DONE]\n\n"])
        else:
            answer = completion('{"name": "Oslo", "population": 709037}', chat=chat)
            answer["choices"] = [dict(answer["choices"][0], index=i) for i in range(n)]
            wire.json(answer)


TOOL = {"type": "function", "function": {"name": "weather", "description": "The weather in a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
ROUND_TRIP: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
]
WAV = SAMPLES["audio/wav"]
PNG = SAMPLES["image/png"]
CITY = {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"], "additionalProperties": False}


def _drain(value: Any) -> Any:
    return list(value) if hasattr(value, "__next__") else value


CALLS: dict[str, Callable[[Client], Any]] = {
    "chat": lambda c: c.chat("Hi"),
    "chat with every named option": lambda c: c.chat(
        "Hi", system="Be brief.", max_tokens=20, temperature=0.2, top_p=0.9, stop=["\n", "END"], n=1, seed=7,
        presence_penalty=0.5, frequency_penalty=-0.5, logit_bias={"50256": -100}, user="u-1"),
    "chat streamed": lambda c: _drain(c.chat("Hi", stream=True)),
    "chat streamed with usage": lambda c: _drain(c.chat("Hi", stream=True, stream_options={"include_usage": True})),
    "chat with a json_schema format": lambda c: c.chat("Oslo?", response_format={
        "type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}),
    "chat with images and detail": lambda c: c.chat("What is this?", images=[PNG, "https://example.com/a.png"],
                                                    detail="low"),
    "chat with input audio": lambda c: c.chat("Transcribe", audio=[WAV]),
    "chat asking for audio output": lambda c: c.chat("Say hi", audio={"voice": "alloy", "format": "wav"},
                                                     modalities=["text", "audio"]),
    "chat with reasoning effort": lambda c: c.chat("Hi", reasoning_effort="low", max_completion_tokens=50),
    "chat_message with tools": lambda c: c.chat_message("Weather?", tools=[TOOL], tool_choice="auto"),
    "chat_message with a named tool choice": lambda c: c.chat_message(
        "Weather?", tools=[TOOL], tool_choice={"type": "function", "function": {"name": "weather"}}),
    "a tool round trip": lambda c: c.chat_message(ROUND_TRIP, tools=[TOOL]),
    "chat_choices": lambda c: c.chat_choices("Hi", n=3),
    "chat_choices streamed": lambda c: _drain(c.chat_choices("Hi", n=2, stream=True)),
    "chat_json with a schema": lambda c: c.chat_json("Oslo?", schema=CITY),
    "chat_json without a schema": lambda c: c.chat_json("Oslo?"),
    "complete": lambda c: c.complete("Once upon a time", max_tokens=5),
    "complete with every named option": lambda c: c.complete(
        "Once", max_tokens=5, temperature=0.0, top_p=1, stop=["\n"], n=1, seed=1, presence_penalty=0,
        frequency_penalty=0, logit_bias={"1": 1}, echo=True, logprobs=2, suffix=" end", user="u"),
    "complete scoring a prompt": lambda c: c.complete("The sky is blue", max_tokens=0, echo=True, logprobs=1),
    "complete with a template and stops": lambda c: c.complete(
        [{"role": "user", "content": "Hi"}], template="chatml", stop=["a", "b", "c"]),
    "complete streamed": lambda c: _drain(c.complete("Once", stream=True)),
    "embed one": lambda c: c.embed("hello"),
    "embed many with options": lambda c: c.embed(["a", "b"], dimensions=256, encoding_format="float"),
    "respond": lambda c: c.respond("Hi", instructions="Be brief."),
    "respond with the reasoning object": lambda c: c.respond("Hi", reasoning={"effort": "low", "summary": "auto"}),
    "respond streamed": lambda c: _drain(c.respond("Hi", stream=True)),
    "respond with input items": lambda c: c.respond([{"role": "user", "content": "Hi"}], max_output_tokens=50),
    "a provider batch job": lambda c: c.submit_batch_job(["Hi", "Bye"], max_tokens=5).cancel(),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_request_body_fits_the_published_spec(server: LoopbackServer, name: str) -> None:
    _components()
    server.handler = _answer
    with Client(server.url, model="gpt-4o-mini", max_retries=0, timeout=5) as client:
        CALLS[name](client)
    checked = [r for r in server.requests if r.path in REQUEST_SCHEMAS]
    assert checked, "the call sent a JSON body"
    for request in checked:
        assert spec_problems(request.path, request.json) == [], f"{request.method} {request.path}"


def test_the_check_itself_finds_a_body_outside_the_spec() -> None:
    _components()
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}}]}],
            "stop": ["1", "2", "3", "4", "5"]}
    problems = spec_problems("/v1/chat/completions", body)
    assert any("flac" in p for p in problems) and any(p.startswith("stop") for p in problems)


# -- what the spec allows, the SDK sends ------------------------------------------------------------

def test_complete_with_max_tokens_zero_scores_a_prompt(client: Client, server: LoopbackServer) -> None:
    client.complete("The sky is blue", max_tokens=0, echo=True, logprobs=1)
    assert server.requests[0].json["max_tokens"] == 0
    with pytest.raises(ValueError, match="max_tokens must be >= 0"):
        client.complete("x", max_tokens=-1)
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        client.chat("x", max_tokens=0)


def test_template_stops_join_the_callers_once_and_never_make_more_than_four(
    client: Client, server: LoopbackServer
) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    client.complete(messages, template="chatml", stop=["<|im_end|>", "END"])
    assert server.requests[-1].json["stop"] == ["<|im_end|>", "END"]
    client.complete(messages, template="chatml", stop=["a", "b", "c"])
    assert server.requests[-1].json["stop"] == ["a", "b", "c", "<|im_end|>"]
    with pytest.raises(ValueError, match=r"at most 4 stop sequences, and your 4 with the 'chatml' template's"
                                         r" \['<\|im_end\|>'\] make 5: pass at most 3 of your own"):
        client.complete(messages, template="chatml", stop=["a", "b", "c", "d"])
    assert len(server.requests) == 2


def test_reasoning_as_a_dict_is_the_wire_field_and_labelled_labels_the_pieces(
    client: Client, server: LoopbackServer
) -> None:
    server.handler = lambda req, wire: (wire.json(response(output=[MESSAGE])) if req.path == "/v1/responses"
                                        else wire.sse([event(chunk("Hi")), event(chunk(finish_reason="stop"))]))
    assert client.respond("Hi", reasoning={"effort": "low", "summary": "auto"}) == "Hello there"
    assert server.requests[-1].json["reasoning"] == {"effort": "low", "summary": "auto"}
    assert list(client.chat("Hi", stream=True, reasoning={"effort": "high"})) == ["Hi"]
    assert server.requests[-1].json["reasoning"] == {"effort": "high"}
    for spelling in ({"labelled": True}, {"reasoning": True}):
        assert list(client.chat("Hi", stream=True, **spelling)) == [("answer", "Hi")]
        assert "reasoning" not in server.requests[-1].json
    with pytest.raises(TypeError, match="reasoning must be a dict"):
        client.chat("Hi", stream=True, reasoning="high")  # type: ignore[call-overload]


def test_audio_as_a_dict_asks_for_spoken_output_and_a_list_sends_clips(client: Client, server: LoopbackServer) -> None:
    client.chat("Say hi", audio={"voice": "alloy", "format": "wav"}, modalities=["text", "audio"])
    sent = server.requests[-1].json
    assert sent["audio"] == {"voice": "alloy", "format": "wav"} and sent["messages"][-1]["content"] == "Say hi"
    client.chat("Transcribe", audio=[WAV])
    sent = server.requests[-1].json
    assert "audio" not in sent and sent["messages"][-1]["content"][1]["input_audio"]["format"] == "wav"
