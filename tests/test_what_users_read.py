"""The exact words and values a user reads: error messages that name the fix, reprs that hide
a key, the defaults an error built by hand carries, and the signature ``help()`` shows.

A check with ``match=`` on a fragment lets a message lose the rest of its words; the checks
here compare whole messages, so a changed or lost word fails.
"""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

from openai_compat import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    AzureClient,
    Client,
    ContentFilterError,
    DeepSeekClient,
    EmptyAnswerError,
    InternalServerError,
    JSONOutputError,
    OpenAIClient,
    RefusalError,
    RetryPolicy,
    ToolArgumentsError,
    UnhandledToolCallsError,
)
from openai_compat._options import NOT_GIVEN
from openai_compat._reasoning import thinking_params
from openai_compat._secrets import MaskedHeaders, Secret, Secrets, masked_headers
from openai_compat._templates import render

from .server import LoopbackServer, Request, Wire, chunk, completion, event, json_with_id

# -- errors -----------------------------------------------------------------------------------------


def test_an_error_built_by_hand_carries_empty_details_and_its_message_in_args() -> None:
    assert (APIStatusError("x").status_code, APIStatusError("x").request_id) == (0, None)
    assert EmptyAnswerError("m").reasoning == ""
    assert (RefusalError("m").refusal, RefusalError("m").text) == ("", "")
    assert ContentFilterError("m").text == ""
    assert (ToolArgumentsError("m").text, ToolArgumentsError("m").name) == ("", None)
    assert (JSONOutputError("m").text, JSONOutputError("m").errors) == ("", [])
    error = APIConnectionError("the server is down")
    assert error.args == ("the server is down",) and repr(error) == "APIConnectionError('the server is down')"


def test_the_attempts_note_appears_from_the_second_attempt(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "busy"}}, status=500)
    for retries, note in ((0, ""), (1, " (2 attempts)")):
        client = Client(server.url, model="m", max_retries=retries, retry=RetryPolicy(backoff_start=0.01))
        with pytest.raises(InternalServerError) as info:
            client.chat("hi")
        assert str(info.value).endswith("busy" + note), str(info.value)


def test_typed_answer_errors_carry_the_request_id(client: Client, server: LoopbackServer) -> None:
    thinking_only = completion("", finish_reason="length")
    thinking_only["choices"][0]["message"]["reasoning_content"] = "Let me think..."
    refused = completion("")
    refused["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    answers: dict[type[APIResponseError], dict[str, Any]] = {EmptyAnswerError: thinking_only, RefusalError: refused,
               ContentFilterError: completion("", finish_reason="content_filter")}
    for kind, body in answers.items():
        server.handler = json_with_id(body, "req-42")
        with pytest.raises(kind) as info:
            client.chat("hi", max_tokens=5)
        assert info.value.request_id == "req-42", kind.__name__
        assert pickle.loads(pickle.dumps(info.value)).request_id == "req-42"
    refusing = [event(chunk("Sure")), event({"choices": [{"index": 0, "delta": {"refusal": "No."}}]}),
                event(chunk(finish_reason="stop")), "data: [DONE]\n\n"]
    server.handler = lambda req, wire: wire.sse(refusing, headers={"x-request-id": "req-43"})
    with pytest.raises(RefusalError) as streamed:
        list(client.chat("hi", stream=True))
    assert streamed.value.request_id == "req-43"


def test_tool_calls_a_str_cannot_hold_are_named_in_the_error(client: Client, server: LoopbackServer) -> None:
    calls = [
        {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        {"id": "2", "function": {"name": "get_time", "arguments": "{}"}},  # no type: a function
        {"id": "3", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}},
        {"id": "4", "type": "function", "function": {"arguments": "{}"}},
        {"id": "5", "type": "custom", "function": {"name": "odd_one", "arguments": "{}"}},
        {"id": "6", "type": "function"},
    ]
    answer = completion("", finish_reason="tool_calls")
    answer["choices"][0]["message"].update(content=None, tool_calls=calls)
    server.handler = lambda req, wire: wire.json(answer)
    with pytest.raises(UnhandledToolCallsError) as info:
        client.chat("hi")
    assert "get_weather, get_time, run_sql (custom), unnamed, odd_one (custom), unnamed" in str(info.value)


# -- embeddings and reasoning switches -------------------------------------------------------------


def test_a_thinking_value_that_is_no_switch_is_refused_in_full() -> None:
    for value in ("", None, 3):
        with pytest.raises(TypeError) as info:
            thinking_params("reasoning_effort", value, "Client")  # type: ignore[arg-type]
        assert str(info.value) == f"thinking must be True, False or an effort such as 'low', got {value!r}"
    nowhere = "http://127.0.0.1:9/v1"  # the switch is refused before anything is sent
    with pytest.raises(ValueError) as effort:
        DeepSeekClient(nowhere, api_key="sk-x").chat("hi", thinking="high")
    assert str(effort.value) == "DeepSeekClient: thinking takes True or False here, not an effort ('high')"
    with pytest.raises(ValueError) as unknown:
        Client(nowhere, model="m").chat("hi", thinking=False)
    assert str(unknown.value) == (
        "Client does not know this server's thinking switch: pass its own field instead, such as"
        " reasoning_effort='none', chat_template_kwargs={'enable_thinking': False},"
        " reasoning={'enabled': False} or thinking={'type': 'disabled'}")


# -- options ------------------------------------------------------------------------------------------


def test_help_shows_an_option_left_out_as_not_given() -> None:
    assert inspect.signature(Client.chat).parameters["deadline"].default is NOT_GIVEN
    assert repr(NOT_GIVEN) == "NOT_GIVEN" and "= NOT_GIVEN" in str(inspect.signature(Client.chat))


def test_a_deadline_works_with_a_single_timeout_and_with_no_connect_timeout(server: LoopbackServer) -> None:
    for timeout in (5, (None, 5.0), (5.0, None)):
        client = Client(server.url, model="m", timeout=timeout, deadline=30, max_retries=0)
        assert client.chat("hi") == "ok", timeout


# -- secrets -------------------------------------------------------------------------------------------


def test_reprs_show_stars_for_every_secret_and_the_rest_as_it_is() -> None:
    assert repr(Secret("sk-live-1234")) == "'***'"
    headers = MaskedHeaders({"X-Api-Key": "k-1234", "Authorization": "Bearer sk-1", "X-Team": "blue"})
    assert repr(headers) == "{'X-Api-Key': '***', 'Authorization': '***', 'X-Team': 'blue'}"
    assert repr(Secrets()) == "Secrets(0 hidden)"


def test_a_key_of_four_characters_is_hidden_and_shorter_values_are_not_taken_for_keys() -> None:
    secrets = Secrets()
    for value in ("", "abc", "abcd", "abcd"):
        secrets.add(value)
    assert repr(secrets) == "Secrets(1 hidden)"
    assert secrets.redact("abc abcd") == "abc ***"
    assert secrets.mask_bytes("abcd é abc".encode()) == "**** é abc".encode()
    assert secrets.found_in(b"..abcd..") and not secrets.found_in(b"abc")
    assert secrets.redact_bytes(b"key=abcd") == b"key=***"


def test_a_non_ascii_key_is_masked_in_bytes_as_it_is_sent() -> None:
    secrets = Secrets()
    masked_headers("Client", {"X-Api-Key": "clé-secrète"}, secrets)
    raw = "x-api-key: clé-secrète".encode()
    assert secrets.found_in(raw)
    assert secrets.mask_bytes(raw) == b"x-api-key: " + b"*" * len("clé-secrète".encode())
    assert secrets.redact_bytes(raw) == b"x-api-key: ***"


def test_a_key_with_a_space_or_a_newline_is_refused_without_showing_it() -> None:
    for key in ("sk abc", "sk-abc\n", "sk-\x01abc", ""):
        with pytest.raises(ValueError) as info:
            Client("http://127.0.0.1:9/v1", api_key=key)
        assert str(info.value) == ("Client: api_key is empty, not a str, or holds white space or control characters"
                                   " (a trailing newline?)")


# -- environment ----------------------------------------------------------------------------------------


def test_an_authorization_header_keeps_the_environment_key_unread(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    Client(headers={"AUTHORIZATION": "Bearer own-token"}).chat("hi")
    Client(headers={"X-Team": "blue"}).chat("hi")
    Client(api_key="own-key-1").chat("hi")
    first, second, third = server.requests
    assert first.headers["authorization"] == "Bearer own-token" and first.json["model"] == "env-model"
    assert second.headers["authorization"] == "Bearer env-key-1"
    assert third.headers["authorization"] == "Bearer own-key-1"


def test_a_reasoning_dict_is_sent_beside_the_other_fields(server: LoopbackServer) -> None:
    client = Client(server.url, model="m")
    client.chat("hi", reasoning={"effort": "low"}, top_k=5, extra_body={"min_p": 0.1})
    sent = server.requests[0].json
    assert (sent["reasoning"], sent["top_k"], sent["min_p"]) == ({"effort": "low"}, 5, 0.1)


def test_a_preset_with_its_own_url_takes_only_the_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from openai_compat import GroqClient

    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-1234")
    monkeypatch.setenv("GROQ_MODEL", "llama-3.3-70b-versatile")
    client = GroqClient.from_env("GROQ")
    assert (client.base_url, client.model) == (GroqClient.default_base_url, "llama-3.3-70b-versatile")
    assert GroqClient.from_env("GROQ", model="mine").model == "mine"
    monkeypatch.delenv("GROQ_MODEL")
    assert GroqClient.from_env("GROQ").model is None


# -- Azure -----------------------------------------------------------------------------------------------


def _azure(request: Request, wire: Wire) -> None:
    wire.json(completion("hello from azure"))


def test_azure_refuses_what_it_cannot_build_a_url_from(monkeypatch: pytest.MonkeyPatch) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"deployment": "gpt-4o"}, "AzureClient: pass the resource's endpoint, or set AZURE_OPENAI_ENDPOINT"),
        ({"endpoint": "https://r.openai.azure.com", "deployment": "gpt/4o"},
         "AzureClient: deployment must be the deployment's name, got 'gpt/4o'"),
        ({"endpoint": "https://r.openai.azure.com", "deployment": ""},
         "AzureClient: deployment must be the deployment's name, got ''"),
        ({"endpoint": "https://r.openai.azure.com", "deployment": "d", "api_key": "k-1234",
          "token_provider": lambda: "t"}, "AzureClient: pass api_key= or token_provider=, not both"),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError) as info:
            AzureClient(**arguments)
        assert str(info.value) == message
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com/")
    with pytest.raises(ValueError) as missing:
        AzureClient("https://r.openai.azure.com", deployment="d")
    assert str(missing.value) == ("AzureClient: no API key: set AZURE_OPENAI_API_KEY, or pass api_key= or"
                                  " token_provider=")


def test_azure_takes_an_endpoint_with_a_trailing_slash_and_more_query(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.handler = _azure
    endpoint = server.url[: -len("/v1")] + "/"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-1")
    client = AzureClient(endpoint, deployment="gpt-4o", default_query={"team": "blue"}, max_retries=0)
    assert client.chat("hi") == "hello from azure"
    sent = server.requests[0]
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&team=blue"
    assert sent.headers["api-key"] == "azure-key-1"


# -- OpenAI's own token field -------------------------------------------------------------------------------


def test_openai_keeps_both_token_fields_when_the_caller_sends_both(server: LoopbackServer) -> None:
    client = OpenAIClient(server.url, api_key="sk-test-1234", max_retries=0)
    client.chat("hi", model="o3", max_tokens=5)
    client.chat("hi", model="o3", max_tokens=5, extra_body={"max_completion_tokens": 9})
    renamed, both = (r.json for r in server.requests)
    assert renamed.get("max_completion_tokens") == 5 and "max_tokens" not in renamed
    assert (both.get("max_tokens"), both.get("max_completion_tokens")) == (5, 9)


# -- prompt templates ---------------------------------------------------------------------------------------


def test_a_template_takes_the_text_parts_of_a_message_and_refuses_other_content() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "image_url", "image_url": {}},
                                     {"type": "text"}, "stray", {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": None},
    ]
    prompt, _ = render(messages, "chatml")
    assert prompt == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>system\nBe kind.<|im_end|>\n"
                      "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
                      "<|im_start|>assistant\n")
    mistral, _ = render(messages[:3], "mistral")
    assert "Be brief.\n\nBe kind.\n\nHi there" in mistral
    with pytest.raises(TypeError) as info:
        render([{"role": "user", "content": 42}], "chatml")
    assert str(info.value) == "a user message's content must be text to fit a prompt template"
    with pytest.raises(ValueError) as unknown:
        render(messages, "vicuna")
    assert str(unknown.value).startswith("unknown template 'vicuna': choose one of chatml, ")


# -- the base URL and the retry policy --------------------------------------------------------------


def test_a_base_url_that_is_no_url_is_refused_with_a_hint_only_for_a_model_name() -> None:
    cases = {
        123: "Client: base_url must be an http:// or https:// URL, got 123",
        "api.example.com/v1": "Client: base_url must be an http:// or https:// URL, got 'api.example.com/v1'",
        "localhost:8080": "Client: base_url must be an http:// or https:// URL, got 'localhost:8080'",
        "gpt-4o": "Client: base_url must be an http:// or https:// URL, got 'gpt-4o': did you mean"
                  " Client(model='gpt-4o')? The first argument is the server's base URL",
    }
    for base_url, message in cases.items():
        with pytest.raises(ValueError) as info:
            Client(base_url)  # type: ignore[arg-type]
        assert str(info.value) == message


def test_a_retry_policy_of_the_wrong_type_is_named() -> None:
    with pytest.raises(TypeError) as info:
        Client("http://127.0.0.1:9/v1", retry=3)  # type: ignore[arg-type]
    assert str(info.value) == "retry must be a RetryPolicy, got int"


def test_a_header_value_may_hold_a_tab_but_no_other_control_character(server: LoopbackServer) -> None:
    Client(server.url, model="m", headers={"X-Note": "a\tb"}).chat("hi")
    assert server.requests[0].headers["x-note"] == "a\tb"
    with pytest.raises(ValueError) as info:
        Client("http://127.0.0.1:9/v1", headers={"X-Note": "a\x0bb"})
    assert str(info.value) == "Client: header 'X-Note' must be a str without line breaks or control characters"


def test_a_client_option_that_does_not_exist_names_the_one_meant_or_lists_them_all() -> None:
    import inspect as signature_reader

    parameters = signature_reader.signature(Client.__init__).parameters
    options = [p for p in parameters if p not in ("self", "unknown_options")]
    cases = {
        "max_retry": ": did you mean max_retries?",  # one letter short
        "Timeout": ": did you mean timeout?",  # another case
        "MAX_RETRIES": ": did you mean max_retries?",  # in capitals, which difflib finds nothing close to
        "retrys": ": did you mean retry?",  # closest by difflib
        "banana": f"; it takes {', '.join(options)}",
    }
    for name, hint in cases.items():
        with pytest.raises(TypeError) as info:
            Client("http://127.0.0.1:9/v1", **{name: 1})  # type: ignore[arg-type]
        assert str(info.value) == f"Client() got an unexpected keyword argument {name!r}{hint}"
    assert options[:3] == ["base_url", "api_key", "headers"] and "trust" in options
