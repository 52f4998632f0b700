"""The core: request shape, the four quickstart calls, presets, bad input, the public surface."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import openai_compat
from openai_compat import Client, FireworksClient, TogetherClient

from .server import LoopbackServer, completion, stream_of


def test_quickstart_chat_returns_the_first_choice_text(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("Once, a robot..."))
    client = Client(server.url, headers={"Authorization": "Bearer key-123"})
    text = client.chat("Write a story about a robot learning to love", model="accounts/fireworks/models/mistral-7b")
    assert text == "Once, a robot..."
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer key-123"
    assert request.json == {
        "model": "accounts/fireworks/models/mistral-7b",
        "messages": [{"role": "user", "content": "Write a story about a robot learning to love"}],
    }


def test_quickstart_streamed_chat_yields_pieces_in_order(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["Once", ", a ", "robot"]))
    client = Client(server.url, api_key="key-123")
    pieces = list(client.chat("Write a story ...", model="m", stream=True))
    assert pieces == ["Once", ", a ", "robot"]
    assert server.requests[0].json["stream"] is True
    assert server.requests[0].headers["accept"] == "text/event-stream"


def test_quickstart_completion(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion(" there was a robot", chat=False))
    client = Client(server.url, api_key="key-123")
    assert client.complete("Write a story about a robot learning to love", model="m") == " there was a robot"
    assert server.requests[0].path == "/v1/completions"
    assert server.requests[0].json == {"model": "m", "prompt": "Write a story about a robot learning to love"}


def test_quickstart_streamed_completion(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["Once", " upon"], chat=False))
    client = Client(server.url, api_key="key-123")
    assert list(client.complete("...", model="m", stream=True)) == ["Once", " upon"]


@pytest.mark.parametrize("base", ["/v1", "/v1/", "/inference/v1", "/inference/v1//"])
def test_paths_are_appended_to_the_base_url_never_joined(server: LoopbackServer, base: str) -> None:
    client = Client(f"http://127.0.0.1:{server.port}{base}", model="m")
    assert client.base_url == f"http://127.0.0.1:{server.port}{base.rstrip('/')}"
    client.chat("hi")
    client.complete("hi")
    assert [r.path for r in server.requests] == [base.rstrip("/") + "/chat/completions",
                                                  base.rstrip("/") + "/completions"]


def test_a_base_url_is_cut_of_its_slashes_only_and_one_that_ends_in_an_endpoint_names_the_fix() -> None:
    assert Client("http://127.0.0.1:9/gateway/LLMX//").base_url == "http://127.0.0.1:9/gateway/LLMX"
    with pytest.raises(ValueError) as info:
        Client("http://127.0.0.1:9/v1/chat/completions/")
    assert str(info.value) == ("Client: base_url 'http://127.0.0.1:9/v1/chat/completions' ends in the endpoint"
                               " /chat/completions; pass the base URL before it, 'http://127.0.0.1:9/v1': each call"
                               " adds its own path")


def test_a_model_that_is_no_str_is_refused_before_sending(client: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError) as info:
        client.chat("hi", model=3)
    assert str(info.value) == "model must be a str, got int"
    assert server.requests == []


def test_an_answer_that_names_no_model_leaves_the_records_model_none(client: Client, server: LoopbackServer) -> None:
    answer = completion("hi")
    del answer["model"]
    server.handler = lambda req, wire: wire.json(answer)
    client.chat("hi")
    assert client.last is not None and client.last.model is None


def test_parameters_use_wire_names_none_is_left_out_and_extras_pass_through(
    client: Client, server: LoopbackServer
) -> None:
    client.chat(
        "hi", max_tokens=5, temperature=0.0, top_p=None, stop=["\n"], seed=7, logit_bias={"50256": -100},
        response_format={"type": "json_object"}, top_k=40, min_p=0.05, repetition_penalty=1.1,
        context_length_exceeded_behavior="truncate", safety_model=None,
    )
    assert server.requests[0].json == {
        "model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
        "temperature": 0.0, "stop": ["\n"], "seed": 7, "logit_bias": {"50256": -100},
        "response_format": {"type": "json_object"}, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
        "context_length_exceeded_behavior": "truncate", "safety_model": None,
    }


def test_a_message_list_is_sent_as_given_and_system_goes_first(client: Client, server: LoopbackServer) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    original = [dict(m) for m in messages]
    client.chat(messages, system="Be brief.")
    assert server.requests[0].json["messages"] == [{"role": "system", "content": "Be brief."}, *original]
    assert messages == original, "the caller's list must not be changed"


def test_headers_go_with_every_request_and_model_defaults_come_from_the_client(server: LoopbackServer) -> None:
    client = Client(server.url, api_key="sk-abc", headers={"X-Title": "tests"}, model="default-model")
    client.chat("a")
    client.chat("b", model="other")
    first, second = server.requests
    assert first.headers["x-title"] == second.headers["x-title"] == "tests"
    assert first.headers["authorization"] == "Bearer sk-abc"
    assert first.json["model"] == "default-model" and second.json["model"] == "other"
    assert first.headers["content-type"] == "application/json"


def test_lower_layer_returns_the_whole_json(client: Client, server: LoopbackServer) -> None:
    answer = completion("hi", system_fingerprint="fp", seed=1)
    server.handler = lambda req, wire: wire.json(answer)
    result = client.create_chat_completion(messages=[{"role": "user", "content": "x"}], max_tokens=3, top_k=1)
    assert result == answer
    assert server.requests[0].json == {"model": "test-model", "messages": [{"role": "user", "content": "x"}],
                                       "max_tokens": 3, "top_k": 1}
    result = client.create_completion(prompt="x", model="other")
    assert server.requests[1].json == {"model": "other", "prompt": "x"}


def test_content_parts_in_an_answer_are_joined(client: Client, server: LoopbackServer) -> None:
    answer = completion("")
    answer["choices"][0]["message"]["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    server.handler = lambda req, wire: wire.json(answer)
    assert client.chat("x") == "ab"


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda c: Client(c.base_url).chat("hi"), ValueError, "no model"),
        (lambda c: c.chat(42), TypeError, "prompt must be a str or a list"),
        (lambda c: c.chat([]), ValueError, "non-empty list"),
        (lambda c: c.chat([{"content": "hi"}]), ValueError, "message 0 has no role"),
        (lambda c: c.chat(["hi"]), TypeError, "message 0 must be a dict"),
        (lambda c: c.chat("hi", system=3), TypeError, "system must be a str"),
        (lambda c: c.complete(["hi"]), TypeError, "prompt must be a str"),
        (lambda c: c.chat("hi", temperature=float("nan")), TypeError, "cannot be sent as JSON"),
        (lambda c: c.chat("hi", tools=[object()]), TypeError, "not JSON serializable"),
        (lambda c: c.create_chat_completion(prompt="x"), TypeError, "needs messages"),
        (lambda c: c.create_completion(messages=[]), TypeError, "needs prompt"),
        (lambda c: c.chat("hi", max_retries=-1), ValueError, "max_retries must be"),
        (lambda c: c.chat("hi", max_retries="3"), ValueError, "max_retries must be a whole number >= 0, got '3'"),
        (lambda c: c.chat("hi", max_retries=True), ValueError, "max_retries must be a whole number >= 0, got True"),
        (lambda c: c.chat("hi", timeout=-2), ValueError, "timeout must be"),
        (lambda c: c.chat("hi", stream=True, deadline=0), ValueError, "deadline must be"),
        (lambda c: c.chat("hi", deadline=True), ValueError, "deadline must be seconds > 0 or None, got True"),
    ],
)
def test_bad_input_is_refused_before_any_request(client: Client, server: LoopbackServer, call, error, words) -> None:
    with pytest.raises(error, match=words):
        call(client)
    assert server.requests == []


@pytest.mark.parametrize("prompt, system, error, message", [
    ("  ", None, ValueError, "the prompt is empty: a model asked nothing answers nothing"),
    (42, None, TypeError, "chat(): prompt must be a str or a list of message dicts, got int"),
    ("hi", 3, TypeError, "chat(): system must be a str, got int"),
    ([], None, ValueError, "messages must be a non-empty list of message dicts"),
    (["hi"], None, TypeError, "message 0 must be a dict, got str"),
])
def test_a_bad_prompt_is_refused_in_words_that_name_it(client: Client, server: LoopbackServer, prompt: Any,
                                                        system: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        client.chat(prompt, system=system)
    assert str(info.value) == message
    assert server.requests == []


def test_a_message_may_be_any_mapping(client: Client, server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("ok"))
    assert client.chat([MappingProxyType({"role": "user", "content": "hi"})]) == "ok"
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"base_url": "api.example.com/v1"}, "base_url must be an http"),
        ({"base_url": "http://x/v1", "api_key": "sk-abc\n"}, "white space"),
        ({"base_url": "http://x/v1", "api_key": ""}, "empty"),
        ({"base_url": "http://x/v1", "max_retries": -1}, "max_retries"),
        ({"base_url": "http://x/v1", "deadline": -1}, "deadline"),
        ({"base_url": "http://x/v1", "timeout": 0}, "timeout"),
        ({"base_url": "http://x/v1", "timeout": (1, 2, 3)}, "timeout"),
        ({"base_url": "http://x/v1", "api_key": "a-key", "headers": {"authorization": "Bearer b"}}, "not both"),
    ],
)
def test_bad_client_options_are_refused(kwargs, words) -> None:
    with pytest.raises(ValueError, match=words) as info:
        Client(**kwargs)
    assert "sk-abc" not in str(info.value)


def test_repr_shows_the_class_and_url_never_the_key() -> None:
    client = Client("http://127.0.0.1:1/v1/", api_key="sk-secret-1", headers={"x-api-key": "sk-secret-2"})
    assert repr(client) == "Client(base_url='http://127.0.0.1:1/v1')"
    assert "sk-secret" not in repr(vars(client))


def test_presets_read_their_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key")
    monkeypatch.setenv("TOGETHER_API_KEY", "tg-key")
    fireworks, together = FireworksClient(), TogetherClient(model="m")
    assert fireworks.base_url == "https://api.fireworks.ai/inference/v1"
    assert together.base_url == "https://api.together.xyz/v1"
    assert together.model == "m"
    assert "fw-key" not in repr(fireworks)


def test_a_preset_sends_its_key(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    class Local(FireworksClient):
        default_base_url = server.url
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key")
    Local(model="m").chat("hi")
    Local(model="m", api_key="explicit").chat("hi")
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer fw-key", "Bearer explicit"]


@pytest.mark.parametrize("preset, variable", [(FireworksClient, "FIREWORKS_API_KEY"),
                                               (TogetherClient, "TOGETHER_API_KEY")])
def test_a_missing_preset_key_names_its_variable(preset, variable) -> None:
    with pytest.raises(ValueError, match=variable):
        preset()


def test_a_preset_never_sends_its_key_to_another_host(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key")
    with pytest.raises(ValueError, match=r"only sent to api\.fireworks\.ai"):
        FireworksClient(base_url=server.url)
    FireworksClient(base_url=server.url, api_key="other-key", model="m").chat("hi")
    assert server.requests[0].headers["authorization"] == "Bearer other-key"


def test_keyless_presets_send_no_authorization() -> None:
    for name, preset in openai_compat.PROVIDERS.items():
        if preset.api_key_env is None:
            assert "Authorization" not in preset()._connection.headers, name


def test_all_matches_the_public_names() -> None:
    assert len(set(openai_compat.__all__)) == len(openai_compat.__all__)  # its order: ruff RUF022
    # pytest's assertion rewriting (the package holds a pytest plugin) adds names like "@py_builtins".
    public = {name for name in dir(openai_compat) if name.isidentifier() and not name.startswith("_")} - {
        "annotations", "logging", "importlib", "TYPE_CHECKING", "Any"}
    assert set(openai_compat.__all__) == public
    reference = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    for name in openai_compat.__all__:
        value = getattr(openai_compat, name)
        if getattr(value, "__module__", None) == "typing":  # a type alias: described in the reference
            assert f"`{name}`" in reference, f"{name} is not described in docs/reference.md"
        else:
            assert value.__doc__ or name.isupper(), f"{name} has no docstring"
            assert name.isupper() or f"::: openai_compat.{name}\n" in reference, f"docs/reference.md leaves {name} out"


def test_importing_configures_nothing_but_a_null_handler() -> None:
    import logging
    handlers = logging.getLogger("openai_compat").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]


def test_close_leaves_a_callers_session_open(server: LoopbackServer) -> None:
    import requests
    session = requests.Session()
    with Client(server.url, model="m", session=session) as client:
        client.chat("hi")
    Client(server.url, model="m", session=session).chat("again")
    assert len(server.requests) == 2
    assert server.connections == 1, "the session's pooled connection was left open and reused"


def test_close_closes_the_clients_own_pool(server: LoopbackServer) -> None:
    client = Client(server.url, model="m")
    client.chat("hi")
    client.close()
    client.chat("again")  # requests opens a new connection for a closed session
    assert server.connections == 2, "the kept-alive connection was closed, not reused"


def test_every_preset_is_registered_exported_and_in_the_docs_table() -> None:
    import openai_compat._presets as presets_module

    classes = {name for name, value in vars(presets_module).items()
               if isinstance(value, type) and issubclass(value, Client) and value is not Client}
    assert {cls.__name__ for cls in openai_compat.PROVIDERS.values()} == classes, "each preset names its provider="
    assert classes <= set(openai_compat.__all__), "each preset is exported"
    table = (Path(__file__).parent.parent / "docs" / "providers.md").read_text()
    for name, cls in openai_compat.PROVIDERS.items():
        where = f"`{cls.default_base_url}`" if cls.default_base_url else "your resource's endpoint"
        row = f"| `{cls.__name__}` | `{name}` | {where} |"
        assert row in table, f"docs/providers.md has no row for {cls.__name__}"


PUBLIC_CLASSES = ("Client", "ChunkStream", "ResponseStream", "CallRecord", "UsageTotals", "BatchJob", "Cassette",
                  "ProbeReport", "RetryPolicy")
OUTSIDE_NAMES = {"str", "int", "float", "bool", "bytes", "dict", "list", "tuple", "type", "object", "None", "Any",
                 "Iterator", "Iterable", "Literal", "Sequence", "Mapping", "Callable", "NoReturn", "Generator",
                 "True", "False", "requests.Session", "os.PathLike", "frozenset", "_Self", "Item", "BaseException"}


def test_every_type_a_public_method_takes_or_returns_can_be_imported() -> None:
    if os.environ.get("MUTANT_UNDER_TEST"):
        pytest.skip("make mutate's trampolines stand in for the methods whose annotations this reads")
    import re

    missing = set()
    for class_name in PUBLIC_CLASSES:
        cls = getattr(openai_compat, class_name)
        for name in dir(cls):
            function = getattr(cls, name)
            if (name.startswith("_") and name != "__init__") or not callable(function):
                continue
            for annotation in getattr(function, "__annotations__", {}).values():
                for word in re.findall(r"[A-Za-z_][\w.]*", str(annotation)):
                    if word not in OUTSIDE_NAMES and word not in openai_compat.__all__:
                        missing.add(f"{class_name}.{name}: {word}")
    assert not missing, sorted(missing)


@pytest.mark.parametrize("page", ["README.md", "docs/errors.md"])
def test_the_error_trees_in_the_docs_show_every_error_under_its_parent(page: str) -> None:
    text = (Path(__file__).parent.parent / page).read_text()
    tree = text[text.index("```\nOpenAICompatError\n"):]
    lines = tree[4:tree.index("```", 4)].splitlines()
    errors = [getattr(openai_compat, name) for name in openai_compat.__all__
              if isinstance(getattr(openai_compat, name), type)
              and issubclass(getattr(openai_compat, name), openai_compat.OpenAICompatError)]
    parent_of: dict[str, str] = {}
    stack: list[str] = []
    for line in lines:
        name = line.lstrip("│├└─ ").split(" ")[0]
        depth = (len(line) - len(line.lstrip("│├└─ "))) // 4
        del stack[depth:]
        parent_of[name] = stack[-1] if stack else "Exception"
        stack.append(name)
    for cls in errors:
        assert cls.__name__ in parent_of, f"{page} leaves {cls.__name__} out of its error tree"
        assert parent_of[cls.__name__] == cls.__bases__[0].__name__, f"{page}: {cls.__name__} is not under its parent"


def test_every_named_option_is_sent_under_its_wire_name(client: Client, server: LoopbackServer) -> None:
    named: dict[str, Any] = {"max_tokens": 20, "temperature": 0.2, "top_p": 0.9, "stop": ["\n"], "n": 1, "seed": 7,
             "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"50256": -100}, "user": "u-1"}
    chat_only: dict[str, Any] = {"response_format": {"type": "json_object"}, "tool_choice": "none",
                 "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
    client.chat("Hi", **named, **chat_only)
    assert server.requests[-1].json == {"model": "test-model", "messages": [{"role": "user", "content": "Hi"}],
                                        **named, **chat_only}
    complete_only: dict[str, Any] = {"echo": True, "logprobs": 2, "suffix": " end"}
    client.complete("Once", **named, **complete_only)
    assert server.requests[-1].json == {"model": "test-model", "prompt": "Once", **named, **complete_only}
