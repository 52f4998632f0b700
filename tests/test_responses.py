"""The Responses API beside chat: streams of named events, every ending, and the same guarantees."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import (
    APIConnectionError,
    APIResponseError,
    Client,
    NotFoundError,
    RefusalError,
    RequestEvent,
    UnhandledToolCallsError,
    Usage,
)

from .server import LoopbackServer, Request, Wire, json_with_id


def named(obj: dict[str, Any], with_name: bool = True) -> str:
    data = f"data: {json.dumps(obj)}\n\n"
    return f"event: {obj['type']}\n{data}" if with_name else data


def response(status: str = "completed", output: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "model": "served", "status": status, "output": output or [],
            "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
                      "output_tokens_details": {"reasoning_tokens": 1}}, **extra}


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Hello there", "annotations": []}]}


def text_stream(*deltas: str, ending: dict[str, Any] | None = None, with_names: bool = True,
                extra: list[dict[str, Any]] | None = None) -> list[str]:
    """The event sequence OpenAI documents for a text answer (created, item, part, deltas, done)."""
    events = [{"type": "response.created", "sequence_number": 0, "response": response("in_progress")},
              {"type": "response.output_item.added", "output_index": 0,
               "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
              {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": "", "annotations": []}},
              *(extra or []),
              *({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
                 "delta": d} for d in deltas),
              {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
               "text": "".join(deltas)},
              {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE}]
    events.append(ending or {"type": "response.completed", "response": response(output=[MESSAGE])})
    return [named(e, with_names) for e in events]


SHAPES = {
    "openai": text_stream("Hel", "lo ", "there"),
    "data lines only": text_stream("Hel", "lo ", "there", with_names=False),
    "vllm with reasoning and [DONE]": [*text_stream("Hel", "lo ", "there", extra=[
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "output_index": 0, "content_index": 0,
         "delta": "Greet them."}]), "data: [DONE]\n\n"],
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("write_size", [None, 1], ids=["whole", "byte-by-byte"])
def test_respond_streams_the_output_text(client: Client, server: LoopbackServer, shape: str, write_size: Any) -> None:
    server.handler = lambda req, wire: wire.sse(SHAPES[shape], write_size=write_size)
    assert list(client.respond("Say hello", stream=True, model="big", max_output_tokens=9)) == ["Hel", "lo ", "there"]
    sent = server.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.json == {"model": "big", "input": "Say hello", "max_output_tokens": 9, "stream": True}, \
        "stateless (no store) unless the caller says otherwise"
    events = list(client.create_response(input="x", stream=True))
    assert events[-1]["type"] == "response.completed"
    assert all("type" in e for e in events)


def test_reasoning_deltas_are_labelled_and_recorded(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(SHAPES["vllm with reasoning and [DONE]"])
    labelled = list(client.respond("x", stream=True, reasoning=True))
    assert labelled[0] == ("reasoning", "Greet them.") and labelled[1:] == [("answer", p) for p in ["Hel", "lo ",
                                                                                                  "there"]]
    record = client.last
    assert record is not None and record.reasoning == "Greet them."
    assert (record.usage.prompt_tokens, record.usage.completion_tokens, record.usage.reasoning_tokens) == (5, 3, 1)
    assert record.finish_reason == "completed" and record.model == "served" and not record.partial
    assert server.connections == 1, "the stream was read to its end and its connection reused"
    assert list(client.respond("x", stream=True, labelled=True)) == labelled, "labelled= is the newer spelling"


CALL_ITEM = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": '{"city": "Paris"}', "status": "completed"}


def test_a_function_call_is_never_dropped(client: Client, server: LoopbackServer) -> None:
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response("in_progress")},
              {"type": "response.output_item.added", "output_index": 0, "item": dict(CALL_ITEM, arguments="")},
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0,
               "delta": '{"city": '},
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0,
               "delta": '"Paris"}'},
              {"type": "response.output_item.done", "output_index": 0, "item": CALL_ITEM},
              {"type": "response.completed", "response": response(output=[CALL_ITEM])}]
    server.handler = lambda req, wire: wire.sse([named(e) for e in events])
    expected = [{"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": '{"city": "Paris"}'}}]
    with pytest.raises(UnhandledToolCallsError) as info:
        list(client.respond("Weather?", stream=True))
    assert info.value.tool_calls == expected
    server.handler = lambda req, wire: wire.json(response(output=[CALL_ITEM]))
    with pytest.raises(UnhandledToolCallsError) as info:
        client.respond("Weather?")
    assert info.value.tool_calls == expected


ENDINGS: dict[str, tuple[dict[str, Any], str, str]] = {
    "response.failed": ({"type": "response.failed", "response": response(
        "failed", error={"code": "server_error", "message": "The model crashed"})},
        "The model crashed", "server_error"),
    "response.incomplete": ({"type": "response.incomplete", "response": response(
        "incomplete", incomplete_details={"reason": "max_output_tokens"})}, "incomplete \\(max_output_tokens\\)",
        "max_output_tokens"),
    "error event": ({"type": "error", "code": "rate_limit_exceeded", "message": "Too many tokens", "param": None},
                    "Too many tokens", "rate_limit_exceeded"),
}


@pytest.mark.parametrize("name", list(ENDINGS))
def test_a_bad_ending_raises_after_the_text_before_it(client: Client, server: LoopbackServer, name: str) -> None:
    ending, words, code = ENDINGS[name]
    server.handler = lambda req, wire: wire.sse(text_stream("Hel", "lo", ending=ending))
    pieces = []
    with pytest.raises(APIResponseError, match=words) as info:
        for piece in client.respond("x", stream=True):
            pieces.append(piece)
    assert pieces == ["Hel", "lo"] and info.value.code == code
    with pytest.raises(APIResponseError, match=words):
        list(client.create_response(input="x", stream=True))


def test_a_stream_cut_before_its_ending_raises(client: Client, server: LoopbackServer) -> None:
    def handler(req: Request, wire: Wire) -> None:
        wire.sse(text_stream("Hel", "lo")[:-2], framing="close")  # no output_item.done, no response.completed
    server.handler = handler
    pieces = []
    with pytest.raises(APIConnectionError, match=r"ended before response\.completed"):
        for piece in client.respond("x", stream=True):
            pieces.append(piece)
    assert pieces == ["Hel", "lo"]
    assert client.last is not None and client.last.partial


def test_blocking_respond_returns_the_output_text(client: Client, server: LoopbackServer) -> None:
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Be kind."}]}
    server.handler = lambda req, wire: wire.json(response(output=[reasoning, MESSAGE]))
    assert client.respond("Hi", model="big", instructions="Be brief.", store=False) == "Hello there"
    sent = server.requests[0].json
    assert sent == {"model": "big", "input": "Hi", "instructions": "Be brief.", "store": False}
    assert client.last is not None and client.last.reasoning == "Be kind." and client.last.usage.total_tokens == 8
    server.handler = lambda req, wire: wire.json(response("incomplete", output=[MESSAGE],
                                                          incomplete_details={"reason": "max_output_tokens"}))
    with pytest.raises(APIResponseError, match="max_output_tokens") as info:
        client.respond("Hi")
    assert info.value.body["output"] == [MESSAGE], "what came is kept"


def test_a_server_without_responses_says_so(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"detail": "Not Found"}, status=404)
    with pytest.raises(NotFoundError) as info:
        client.respond("Hi")
    assert str(info.value) == (f"HTTP 404: Not Found (POST {server.url}/responses; this server may have no"
                               " Responses API: chat() works on /chat/completions)")


def test_retries_the_record_and_the_event_hook_work_as_for_chat(server: LoopbackServer) -> None:
    answers = iter([None, response(output=[MESSAGE])])

    def handler(req: Request, wire: Wire) -> None:
        answer = next(answers)
        if answer is None:
            wire.json({"error": {"message": "busy"}}, status=503, headers={"Retry-After": "0"})
        else:
            wire.json(answer, headers={"x-request-id": "req-r"})
    server.handler = handler
    seen: list[RequestEvent] = []
    client = Client(server.url, model="m", max_retries=1, event_hook=seen.append, api_key="sk-resp-0123456789")
    assert client.respond("Hi") == "Hello there"
    assert [e.kind for e in seen] == ["request", "response", "request", "response"]
    assert client.last is not None and (client.last.attempts, client.last.request_id) == (2, "req-r")
    assert server.requests[1].headers["authorization"] == "Bearer sk-resp-0123456789"


def test_a_streamed_response_has_the_events_of_a_streamed_chat(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(text_stream("Hi"), headers={"x-request-id": "req-s"})
    seen: list[RequestEvent] = []
    assert list(Client(server.url, model="m", event_hook=seen.append).respond("Hi", stream=True)) == ["Hi"]
    assert [(e.kind, e.status_code, e.request_id) for e in seen] == [
        ("request", None, None), ("response", 200, "req-s"), ("stream_end", 200, "req-s")]


def test_bad_input_is_refused_before_sending(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError, match=r"^respond\(\): input must be a str or a list of input items, got int$"):
        client.respond(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^respond\(\): stream must be True or False, got 'yes'$"):
        client.respond("Hi", stream="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs input"):
        client.create_response(model="m")
    assert server.requests == []


def test_an_event_without_a_type_in_its_data_takes_its_event_name(client: Client, server: LoopbackServer) -> None:
    untyped = [f"event: {e['type']}\ndata: {json.dumps({k: v for k, v in e.items() if k != 'type'})}\n\n"
               for e in ({"type": "response.output_text.delta", "delta": "Hel"},
                         {"type": "response.output_text.delta", "delta": "lo"},
                         {"type": "response.completed", "response": response(output=[MESSAGE])})]
    server.handler = lambda req, wire: wire.sse(untyped)
    assert list(client.respond("x", stream=True)) == ["Hel", "lo"]
    assert [e["type"] for e in client.create_response(input="x", stream=True)] == [
        "response.output_text.delta", "response.output_text.delta", "response.completed"]


def test_a_blocking_responses_reasoning_content_is_kept(client: Client, server: LoopbackServer) -> None:
    # vLLM sends the reasoning text itself, in content parts of the reasoning item, with no summary.
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [],
                 "content": [{"type": "reasoning_text", "text": "They said hi; "},
                             {"type": "reasoning_text", "text": "greet back."}]}
    server.handler = lambda req, wire: wire.json(response(output=[reasoning, MESSAGE]))
    assert client.respond("Hi") == "Hello there"
    assert client.last is not None and client.last.reasoning == "They said hi; greet back."


def test_respond_reads_cached_input_tokens(client: Client, server: LoopbackServer) -> None:
    usage = {"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 30,
             "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 2030}
    server.handler = lambda req, wire: wire.json(response(output=[MESSAGE], usage=usage))
    client.respond("Hi")
    assert client.last is not None and client.last.usage == Usage(2000, 30, 2030, 1920, 12, None)
    assert client.usage.cached_tokens == 1920


def test_a_blocking_response_that_did_not_finish_says_why_with_its_body_and_request_id(server: LoopbackServer) -> None:
    client = Client(server.url, model="m", max_retries=0)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        (response("failed", error={"code": "server_error", "message": "The model crashed"}),
         "The model crashed", "server_error"),
        (response("failed"), "the response failed", None),
        (response("queued"), "the response is queued, not finished: it runs in the background; fetch it later with"
                             " client.get_json('/responses/resp_1')", "queued"),
        (response("incomplete", incomplete_details={"reason": "content_filter"}),
         "the response is incomplete (content_filter): what came is in .body", "content_filter"),
        (response("incomplete"), "the response is incomplete (no reason given): what came is in .body", None),
    ]
    for body, message, code in cases:
        server.handler = json_with_id(body, "req-r")
        with pytest.raises(APIResponseError) as info:
            client.respond("Hi")
        assert (info.value.message, info.value.code, info.value.request_id) == (message, code, "req-r")
        assert info.value.body == body


def test_a_blocking_response_joins_only_its_output_text_parts(client: Client, server: LoopbackServer) -> None:
    second = {"id": "msg_2", "type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": None}, {"type": "input_text", "text": "(echoed input)"},
        {"type": "output_text", "text": " again"}]}
    server.handler = lambda req, wire: wire.json(response(output=[MESSAGE, second]))
    assert client.respond("Hi") == "Hello there again"


def test_a_blocking_refusal_in_parts_is_joined_and_carries_the_text_and_request_id(
    client: Client, server: LoopbackServer
) -> None:
    refusing = {"id": "msg_1", "type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Well"}, {"type": "refusal", "refusal": "I can't"},
        {"type": "refusal", "refusal": None}, {"type": "output_text", "text": "x", "refusal": "not this"},
        {"type": "refusal", "refusal": " help."}]}
    server.handler = lambda req, wire: wire.json(response(output=[refusing]), headers={"x-request-id": "req-f"})
    with pytest.raises(RefusalError) as info:
        client.respond("Hi")
    assert (str(info.value), info.value.refusal, info.value.text) == (
        "the model refused: I can't help. (request id req-f)", "I can't help.", "Wellx")
    assert client.last is not None
    assert (client.last.refusal, client.last.finish_reasons) == ("I can't help.", {0: "completed"})


def test_a_function_call_without_a_call_id_or_arguments_is_handed_back_whole(
    client: Client, server: LoopbackServer
) -> None:
    bare = {"type": "function_call", "id": "fc_9", "name": "now", "status": "completed"}
    server.handler = lambda req, wire: wire.json(response(output=[bare]))
    with pytest.raises(UnhandledToolCallsError) as info:
        client.respond("Time?")
    assert info.value.assistant_message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "fc_9", "type": "function", "function": {"name": "now", "arguments": ""}}]}


def test_reasoning_parts_without_text_add_nothing(client: Client, server: LoopbackServer) -> None:
    thinking = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": None},
                                                               {"type": "summary_text", "text": "Be kind."}]}
    server.handler = lambda req, wire: wire.json(response(output=[thinking, MESSAGE]))
    client.respond("Hi")
    assert client.last is not None and client.last.reasoning == "Be kind."


def test_a_done_line_before_any_ending_is_a_cut_off_stream(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([*text_stream("Hel", "lo")[:-1], "data: [DONE]\n\n"])
    with pytest.raises(APIConnectionError, match=r"ended before response\.completed"):
        list(client.respond("x", stream=True))


def test_an_event_with_neither_a_type_nor_a_name_has_an_empty_type(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([
        "data: {\"note\": \"keep-alive\"}\n\n", named({"type": "response.completed", "response": response()})])
    assert [e["type"] for e in client.create_response(input="x", stream=True)] == ["", "response.completed"]


def test_a_streamed_call_announced_and_done_is_one_call(client: Client, server: LoopbackServer) -> None:
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "output_index": 0, "item": dict(CALL_ITEM, arguments="")},
        {"type": "response.output_item.done", "output_index": 0, "item": CALL_ITEM},
        {"type": "response.completed", "response": response(output=[CALL_ITEM])}]
    server.handler = lambda req, wire: wire.sse([named(e) for e in events], headers={"x-request-id": "req-s"})
    with pytest.raises(UnhandledToolCallsError) as info:
        list(client.respond("Weather?", stream=True))
    assert len(info.value.tool_calls) == 1
    server.handler = lambda req, wire: wire.sse(text_stream("Hi", ending={
        "type": "response.failed", "response": response("failed", error={"message": "boom"})}),
        headers={"x-request-id": "req-s"})
    with pytest.raises(APIResponseError) as failed:
        list(client.respond("x", stream=True))
    assert (failed.value.message, failed.value.request_id) == ("boom", "req-s")


def test_a_responses_stream_without_a_single_event_says_so(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse([])
    with pytest.raises(APIConnectionError) as info:
        list(client.respond("x", stream=True))
    assert str(info.value) == (
        "the server answered 200 and ended the stream without a single event: the prompt may be longer than the"
        " model's context (llama.cpp's server answers a stream that overflows its context this way); send it once"
        " without stream=True to see the server's own error, or count its tokens against the context size")
