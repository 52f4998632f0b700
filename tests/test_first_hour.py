"""The mistakes of a first hour, each answered with an error that points at the fix."""

from __future__ import annotations

import subprocess

import pytest

from openai_compat import APIResponseError, Client, InternalServerError, LlamaCppClient, NotFoundError

from .command import run_command
from .server import LoopbackServer, Request, Wire, completion, points_at

# -- a base URL without its version --------------------------------------------------------------


def _not_found(req: Request, wire: Wire) -> None:
    wire.json({"detail": "Not Found"}, status=404)


def test_a_404_names_the_url_and_suggests_v1_when_the_base_url_has_no_version(server: LoopbackServer) -> None:
    server.handler = _not_found
    bare = server.url[: -len("/v1")]
    with pytest.raises(NotFoundError) as info:
        Client(bare, model="m").chat("hi")
    assert f"POST {bare}/chat/completions" in str(info.value)
    assert f"did you mean {bare}/v1?" in str(info.value)
    with pytest.raises(NotFoundError) as info:
        Client(server.url, model="m").chat("hi")
    assert f"POST {server.url}/chat/completions" in str(info.value)
    assert "did you mean" not in str(info.value)


# -- typos and bad values never reach the server ---------------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [("maxtokens", "max_tokens"), ("max_token", "max_tokens"),
                                             ("temprature", "temperature"), ("top_pp", "top_p"),
                                             ("sytem", "system"), ("strem", "stream")])
def test_a_keyword_one_edit_from_a_known_one_is_a_typo(client: Client, server: LoopbackServer, typo: str,
                                                       meant: str) -> None:
    with pytest.raises(TypeError, match=f"{typo!r}: did you mean {meant}\\?"):
        client.chat("Hi", **{typo: 3})  # type: ignore[call-overload]
    assert server.requests == []


def test_provider_extras_still_pass_unchanged(client: Client, server: LoopbackServer) -> None:
    client.chat("Hi", top_k=40, min_p=0.05, repetition_penalty=1.1, my_own_field={"a": 1})
    sent = server.requests[0].json
    assert (sent["top_k"], sent["min_p"], sent["repetition_penalty"], sent["my_own_field"]) == (40, 0.05, 1.1, {"a": 1})


@pytest.mark.parametrize(("params", "error", "words"), [
    ({"max_tokens": -5}, ValueError, "max_tokens must be >= 1"),
    ({"max_tokens": 2.5}, TypeError, "max_tokens must be int, got float 2.5"),
    ({"max_tokens": True}, TypeError, "max_tokens must be int"),
    ({"temperature": "hot"}, TypeError, "temperature must be int or float"),
    ({"top_p": 1.5}, ValueError, "top_p must be between 0 and 1"),
    ({"stream": "yes"}, TypeError, "stream must be True or False"),
    ({"stop": 7}, TypeError, "stop must be str or list"),
])
def test_named_parameters_are_checked_before_sending(client: Client, server: LoopbackServer, params: dict,
                                                     error: type, words: str) -> None:
    with pytest.raises(error, match=r"^chat\(\): " + words):
        client.chat("Hi", **params)
    assert server.requests == []


def test_a_value_at_a_bound_is_taken_and_every_extra_is_checked(client: Client, server: LoopbackServer) -> None:
    client.chat("Hi", top_p=1, temperature=0)
    assert (server.requests[0].json["top_p"], server.requests[0].json["temperature"]) == (1, 0)
    with pytest.raises(TypeError, match="'max_tokesn': did you mean max_tokens"):
        client.chat("Hi", top_k=5, max_tokesn=3)
    with pytest.warns(UserWarning), pytest.raises(TypeError, match="'max_tokesn': did you mean max_tokens"):
        client.chat("Hi", max_new_tokens=5, max_tokesn=3)
    assert len(server.requests) == 1
    with pytest.raises(ValueError) as info:
        LlamaCppClient(server.url).chat("Hi")
    assert str(info.value) == "no model: pass model=... to the call or to LlamaCppClient(...)"


def test_the_cli_refuses_a_negative_max_tokens(server: LoopbackServer) -> None:
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--max-tokens", "-5", "hi")
    assert result.returncode == 1
    assert "max_tokens must be >= 1" in result.stderr
    assert server.requests == []


# -- a validation error sent as a 5xx -----------------------------------------------------------------

LLAMA_CPP_PYTHON_500 = (
    b'{"error":{"message":"1 validation error:\\n  {\'type\': \'float_parsing\', \'loc\': (\'body\', \'temperature\'),'
    b' \'msg\': \'Input should be a valid number, unable to parse string as a number\', \'input\': \'hot\'}\\n\\n'
    b'  File \\"/srv/llama_cpp/server/app.py\\", line 376, in create_chat_completion\\n    POST /v1/chat/completions",'
    b'"type":"internal_server_error","param":null,"code":null}}'
)
VALIDATION_5XX = {
    "llama-cpp-python pydantic dump": (LLAMA_CPP_PYTHON_500, "temperature: Input should be a valid number, unable"
                                       " to parse string as a number (got 'hot')"),
    "fastapi detail list": (b'{"detail": [{"loc": ["body", "messages", 0, "role"], "msg": "Field required",'
                            b' "type": "missing"}]}', "messages.0.role: Field required"),
    "openai invalid_request_error": (b'{"error": {"message": "temperature is out of range", "type":'
                                     b' "invalid_request_error", "param": "temperature"}}',
                                     "temperature is out of range"),
}


@pytest.mark.parametrize("name", list(VALIDATION_5XX))
def test_a_5xx_that_is_plainly_a_validation_error_is_not_retried_and_reads_cleanly(
    server: LoopbackServer, name: str
) -> None:
    body, readable = VALIDATION_5XX[name]
    server.handler = lambda req, wire: wire.body(body, 500, {"Content-Type": "application/json"})
    with pytest.raises(InternalServerError) as info:
        Client(server.url, model="m", max_retries=2).chat("hi")
    assert len(server.requests) == 1, "the same request would fail the same way"
    assert readable in str(info.value)
    assert "File " not in str(info.value) and "{'type'" not in str(info.value)


def test_an_ordinary_500_is_still_retried(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "CUDA out of memory"}}, status=500,
                                                 headers={"Retry-After": "0"})
    with pytest.raises(InternalServerError):
        Client(server.url, model="m", max_retries=2).chat("hi")
    assert len(server.requests) == 3


# -- embeddings without pooling -------------------------------------------------------------------------


def test_per_token_embeddings_are_refused_with_the_fix(client: Client, server: LoopbackServer) -> None:
    per_token = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    server.handler = lambda req, wire: wire.json({"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": per_token}], "model": "m"})
    with pytest.raises(APIResponseError, match=r"one vector per token \(3 tokens\).*pooling"):
        client.embed("hello")


def test_a_model_answering_normally_still_works(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("fine"))
    assert client.chat("Hi", max_tokens=5, temperature=0.7, top_p=0.9, n=1, stop=["\n"]) == "fine"


def test_two_letters_swapped_in_a_known_name_is_a_typo(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError, match="'max_tokesn': did you mean max_tokens\\?"):
        client.chat("Hi", max_tokesn=30)
    with pytest.raises(TypeError, match="'tempreature': did you mean temperature\\?"):
        client.complete("Hi", tempreature=0.3)
    assert server.requests == []


# -- errors that say what was sent ---------------------------------------------------------------


def test_a_401_says_whether_a_key_was_sent_and_where_it_came_from(server: LoopbackServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from openai_compat import AuthenticationError, GroqClient

    server.handler = lambda req, wire: wire.json({"error": {"message": "Invalid API key"}}, status=401)
    cases = [
        (Client(server.url, model="m", max_retries=0), "no API key was sent: pass api_key="),
        (Client(server.url, model="m", api_key="sk-wrong-1", max_retries=0), "the key sent came from api_key="),
        (Client(server.url, model="m", headers={"Authorization": "Bearer x-12345"}, max_retries=0),
         "the key sent came from the Authorization header"),
    ]
    monkeypatch.setenv("GROQ_API_KEY", "gsk-wrong-2")
    groq = GroqClient(model="m", max_retries=0)
    groq.base_url = groq._connection.base_url = server.url  # the preset's own host, here on loopback
    cases.append((groq, "the key sent came from the GROQ_API_KEY variable"))
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-3")
    cases.append((Client(model="m", max_retries=0), "the key sent came from the OPENAI_API_KEY variable"))
    for client, words in cases:
        with pytest.raises(AuthenticationError) as info:
            client.chat("hi")
        assert words in str(info.value) and "Invalid API key" in str(info.value)
        assert "wrong" not in str(info.value)


def test_a_connection_error_shows_no_object_repr(client: Client) -> None:
    from openai_compat import APIConnectionError

    refused = Client("http://127.0.0.1:9/v1", model="m", max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        refused.chat("hi")
    assert " object at 0x" not in str(info.value) and "Connection refused" in str(info.value)


def test_a_stream_timeout_names_its_value_and_url(server: LoopbackServer) -> None:
    from openai_compat import APITimeoutError

    from .server import chunk, event

    def stall(request: Request, wire: Wire) -> None:
        wire.head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        piece = event(chunk("a")).encode()
        wire.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        wire.stall(3)

    server.handler = stall
    client = Client(server.url, model="m", timeout=(2, 0.5), max_retries=0)
    with pytest.raises(APITimeoutError, match=r"within the read timeout of 0\.5 s while reading the stream from "
                                              r"http://127\.0\.0\.1:\d+/v1/chat/completions"):
        list(client.chat("hi", stream=True))


# -- the command line ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command(*args)


def test_the_cli_has_a_version() -> None:
    from openai_compat import __version__

    result = _cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"openai-compat {__version__}"


def test_doctor_gives_its_reason_once_and_in_full() -> None:
    result = _cli("doctor", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert result.returncode == 1
    assert result.stdout.count("Connection refused") == 1 and "…" not in result.stdout
    assert result.stdout.count("see blocking chat") == 14


def test_thinking_advice_is_in_cli_terms(server: LoopbackServer) -> None:
    result = _cli("chat", "--base-url", server.url, "--model", "m", "--thinking", "off", "hi")
    assert result.returncode == 1 and "use --provider" in result.stderr and "=" not in result.stderr.split(":", 2)[2]
    assert server.requests == []


def test_a_schema_error_is_printed_once(server: LoopbackServer, tmp_path: object) -> None:
    from pathlib import Path

    schema = Path(str(tmp_path)) / "s.json"
    schema.write_text('{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}')
    server.handler = lambda req, wire: wire.json(completion('{"b": 1}'))
    result = _cli("chat", "--base-url", server.url, "--model", "m", "--json-schema", str(schema), "hi")
    assert result.returncode == 1
    assert result.stderr.count("required") == 1, result.stderr


def test_two_letters_changed_is_no_typo_but_a_providers_own_field(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError, match="'usre': did you mean user\\?"):  # two neighbours swapped
        client.chat("Hi", usre="u1")
    client.chat("Hi", usax="u1", logprabz=1)  # two neighbours changed; two letters apart changed
    assert (server.requests[0].json["usax"], server.requests[0].json["logprabz"]) == ("u1", 1)


@pytest.mark.parametrize("name", ["max_new_tokens", "num_predict", "max_output_tokens"])
def test_another_apis_limit_name_warns_at_the_callers_line_and_is_sent(
    client: Client, server: LoopbackServer, name: str
) -> None:
    with pytest.warns(UserWarning) as caught:
        client.chat("Hi", **{name: 20})  # type: ignore[call-overload]
    assert str(caught[0].message) == (
        f"chat(): {name} is another API's name for the output limit, sent as given; most OpenAI-compatible"
        " servers ignore it: the limit is max_tokens")
    assert points_at(caught[0].filename, __file__), "the warning points at the call, not into the SDK"
    assert server.requests[0].json[name] == 20
