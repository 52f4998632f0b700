"""Structured output: the format ladder each server needs, and answers checked locally."""

from __future__ import annotations

import json
import logging
import pickle
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

import pytest

from openai_compat import (
    APITimeoutError,
    BadRequestError,
    Client,
    InternalServerError,
    JSONOutputError,
    NotFoundError,
)
from openai_compat._json_output import RUNGS
from openai_compat._schema import check, schema_of

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, stream_of

try:
    from typing import TypedDict
except ImportError:  # pragma: no cover
    from typing_extensions import TypedDict


@dataclass
class City:
    name: str
    population: int
    country: Optional[str] = None  # noqa: UP045 (evaluated at run time, on Python 3.8 too)


GOOD = {"name": "Oslo", "population": 709037}

# How servers refuse a format, each in its own words.
REFUSALS = {
    "lmstudio": (400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}),
    "deepseek": (400, {"error": {"message": "This response_format type is unavailable now",
                                 "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}),
    "deepseek-422": (422, "Failed to deserialize the JSON body into the target type: response_format: "
                          "response_format.type `json_schema` is unavailable now at line 1 column 230"),
    "param-only": (400, {"error": {"message": "This model does not support this option.",
                                   "type": "invalid_request_error", "param": "response_format",
                                   "code": "unsupported_parameter"}}),  # the field is named in param only
    "llama-cpp-python": (500, {"error": {"message": (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
        "\"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}\n"), "type": "internal_server_error",
        "param": None, "code": None}}),
}


def rung_of(body: dict[str, Any]) -> str:
    format_ = body.get("response_format")
    if format_ is None:
        return "prompt"
    if format_["type"] == "json_schema":
        return "json_schema"
    return "json_object_with_schema" if "schema" in format_ else "json_object"


def format_server(accepts: set[str], refusal: str, answer: Any = GOOD) -> Any:
    def handler(req: Request, wire: Wire) -> None:
        if rung_of(req.json) not in accepts:
            status, body = REFUSALS[refusal]
            if isinstance(body, str):
                wire.body(body.encode(), status=status, headers={"Content-Type": "text/plain; charset=utf-8"})
            else:
                wire.json(body, status=status)
        else:
            wire.json(completion(answer if isinstance(answer, str) else json.dumps(answer)))
    return handler


@pytest.fixture(autouse=True)
def local_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own schema checker, whose messages these tests read: jsonschema, when it is
    installed, is taken for absent (a None in sys.modules makes its import fail)."""
    monkeypatch.setitem(sys.modules, "jsonschema", None)


def test_with_jsonschema_installed_it_does_the_checking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}}
    assert check({"n": 4}, schema) == []
    errors = check({"n": 3}, schema)
    assert errors == [f"$.n: {next(jsonschema.Draft202012Validator(schema).iter_errors({'n': 3})).message}"]
    nested = {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "integer"}}}}
    assert check({"rows": [1, 2, "x"]}, nested) == ["$.rows[2]: 'x' is not of type 'integer'"]


@pytest.fixture
def retrying_client(server: LoopbackServer) -> Client:
    return Client(server.url, model="m", max_retries=2)


def test_json_schema_first_named_and_strict_when_allowed(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = format_server({"json_schema"}, "deepseek")
    strict = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False, "title": "Answer"}
    server.handler = format_server({"json_schema"}, "deepseek", {"a": 1})
    assert retrying_client.chat_json("x", schema=strict) == {"a": 1}
    sent = server.requests[0].json["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "Answer", "schema": strict, "strict": True}}
    loose = {"type": "object", "properties": {"a": {"type": "integer"}}}
    retrying_client.chat_json("x", schema=loose)
    assert "strict" not in server.requests[1].json["response_format"]["json_schema"]


def test_a_dataclass_comes_back_as_an_instance(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = format_server({"json_schema"}, "deepseek")
    assert retrying_client.chat_json("Largest city of Norway?", schema=City) == City("Oslo", 709037)
    assert server.requests[0].json["response_format"]["json_schema"]["name"] == "City"


@pytest.mark.parametrize(("refusal", "accepts", "rung", "requests"), [
    ("deepseek", {"json_object", "json_object_with_schema"}, "json_object_with_schema", 2),
    ("llama-cpp-python", {"json_object_with_schema", "json_object"}, "json_object_with_schema", 2),
    ("deepseek", {"json_object"}, "json_object", 3),
    ("deepseek-422", {"json_object", "json_object_with_schema"}, "json_object_with_schema", 2),
    ("param-only", {"json_object", "json_object_with_schema"}, "json_object_with_schema", 2),
    ("lmstudio", {"prompt"}, "prompt", 4),
])
def test_each_refused_format_steps_down_once_and_is_remembered(
    server: LoopbackServer, retrying_client: Client, refusal: str, accepts: set[str], rung: str, requests: int
) -> None:
    server.handler = format_server(accepts, refusal)
    assert retrying_client.chat_json("Largest city of Norway?", schema=City) == City("Oslo", 709037)
    assert [rung_of(r.json) for r in server.requests][-1] == rung
    assert len(server.requests) == requests, "each refusal is tried once, never retried"
    last = server.requests[-1].json
    if rung != "json_schema":
        assert "JSON Schema" in last["messages"][0]["content"] and '"population"' in last["messages"][0]["content"]
    retrying_client.chat_json("And of Sweden?", schema=City)
    assert len(server.requests) == requests + 1, "the next call starts where the last one worked"
    assert rung_of(server.requests[-1].json) == rung


def test_without_a_schema_json_object_falls_back_to_the_prompt(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = format_server({"json_schema", "prompt"}, "lmstudio", {"primes": [2, 3, 5]})
    assert retrying_client.chat_json("Three primes?") == {"primes": [2, 3, 5]}
    assert [rung_of(r.json) for r in server.requests] == ["json_object", "prompt"]
    assert "JSON" in server.requests[1].json["messages"][0]["content"]


def test_an_explicit_response_format_is_sent_exactly_with_no_fallback(
    server: LoopbackServer, retrying_client: Client
) -> None:
    server.handler = format_server({"prompt"}, "lmstudio")
    with pytest.raises(BadRequestError, match="must be 'json_schema' or 'text'"):
        retrying_client.chat_json("x", response_format={"type": "json_object"}, schema=City)
    assert len(server.requests) == 1
    assert server.requests[0].json["response_format"] == {"type": "json_object"}


def test_an_error_that_is_not_about_the_format_is_raised(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "model 'm' not found"}}, status=404)
    with pytest.raises(NotFoundError):
        retrying_client.chat_json("x", schema=City)
    assert len(server.requests) == 1


def test_a_violation_raises_with_the_text_and_readable_errors(server: LoopbackServer, client: Client) -> None:
    server.handler = format_server({"json_schema"}, "deepseek", {"name": "Oslo", "population": "many", "mayor": "x"})
    with pytest.raises(JSONOutputError) as info:
        client.chat_json("x", schema=City)
    assert json.loads(info.value.text)["population"] == "many"
    assert "$.population: expected integer, got string 'many'" in info.value.errors
    assert "$: 'mayor' is not allowed (additionalProperties is false)" in info.value.errors


def test_retries_ask_once_more_showing_the_errors(server: LoopbackServer, client: Client) -> None:
    answers = iter([json.dumps({"name": "Oslo"}), json.dumps(GOOD)])
    server.handler = lambda req, wire: wire.json(completion(next(answers)))
    assert client.chat_json("x", schema=City, retries=1) == City("Oslo", 709037)
    second = server.requests[1].json["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"name": "Oslo"}'}
    assert "'population' is required" in second[-1]["content"]


def test_one_deadline_bounds_the_asking_again(server: LoopbackServer, client: Client) -> None:
    slow = threading.Event()

    def answer(request: Request, wire: Wire) -> None:
        if len(server.requests) == 1:
            wire.json(completion(json.dumps({"name": "Oslo"})))  # breaks the schema: asked again
        else:
            slow.wait(3)  # the second request waits past what is left of the deadline
            wire.json(completion(json.dumps(GOOD)))

    server.handler = answer
    with pytest.raises(APITimeoutError):
        client.chat_json("x", schema=City, retries=1, deadline=1.0)
    slow.set()
    assert len(server.requests) == 2


def test_an_answer_that_is_not_json_is_retried_too(server: LoopbackServer, client: Client) -> None:
    answers = iter(["Sure! Oslo has 700k people.", json.dumps(GOOD)])
    server.handler = lambda req, wire: wire.json(completion(next(answers)))
    assert client.chat_json("x", schema=City, retries=1).population == 709037


def test_threads_share_what_the_client_learned(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = format_server({"json_object_with_schema"}, "deepseek")
    retrying_client.chat_json("warm up", schema=City)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(retrying_client.chat_json("x", schema=City)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [City("Oslo", 709037)] * 8
    assert len(server.requests) == 2 + 8, "after the first call, no thread asks for a refused format"


class Forecast(TypedDict):
    city: str
    days: List[int]  # noqa: UP006 (evaluated at run time, on Python 3.8 too)


class PydanticLike:
    """The two methods chat_json() looks for, as pydantic's BaseModel has them."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        return {"title": "PydanticLike", "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}

    @classmethod
    def model_validate(cls, value: Any) -> PydanticLike:
        return cls(**value)


def test_a_typeddict_and_a_pydantic_style_class(server: LoopbackServer, client: Client) -> None:
    server.handler = format_server({"json_schema"}, "deepseek", {"city": "Oslo", "days": [1, 2]})
    assert client.chat_json("x", schema=Forecast) == {"city": "Oslo", "days": [1, 2]}
    assert server.requests[0].json["response_format"]["json_schema"]["schema"]["required"] == ["city", "days"]
    server.handler = format_server({"json_schema"}, "deepseek", {"x": 3})
    assert client.chat_json("x", schema=PydanticLike).fields == {"x": 3}
    assert server.requests[1].json["response_format"]["json_schema"]["name"] == "PydanticLike"


def test_a_bad_schema_is_refused_before_sending(server: LoopbackServer, client: Client) -> None:
    class Scores(dict):  # annotated, but a plain dict: no TypedDict
        points: int

    for not_a_schema in (int, Scores):
        with pytest.raises(TypeError, match="JSON Schema dict, a dataclass"):
            client.chat_json("x", schema=not_a_schema)
    assert server.requests == []


# -- the checker, keyword by keyword -----------------------------------------------------------------

DEFS = {"$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
                            "additionalProperties": False}}}
CHECKS = [
    ({"type": "integer"}, 3, []),
    ({"type": "integer"}, 3.0, []),
    ({"type": "integer"}, 3.5, ["$: expected integer, got number 3.5"]),
    ({"type": "integer"}, True, ["$: expected integer, got boolean True"]),
    ({"type": "number"}, 2.5, []),
    ({"type": "string"}, 1, ["$: expected string, got integer 1"]),
    ({"type": ["string", "null"]}, None, []),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {}, ["$: 'a' is required"]),
    ({"type": "object", "properties": {}, "additionalProperties": False}, {"b": 1},
     ["$: 'b' is not allowed (additionalProperties is false)"]),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"a": 1, "b": "x"},
     ["$.b: expected integer, got string 'x'"]),
    ({"type": "array", "items": {"type": "integer"}}, [1, "2"], ["$[1]: expected integer, got string '2'"]),
    ({"enum": ["red", "green"]}, "blue", ["$: 'blue' is not one of ['red', 'green']"]),
    ({"const": 7}, 8, ["$: expected 7, got 8"]),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, 3, ["$: 3 matches none of the allowed shapes"]),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, []),
    (dict(DEFS, type="array", items={"$ref": "#/$defs/Point"}), [{"x": 1}, {"x": "a"}],
     ["$[1].x: expected number, got string 'a'"]),
    ({"type": "object", "properties": {"p": {"type": "object", "properties": {"q": {"type": "boolean"}}}}},
     {"p": {"q": "yes"}}, ["$.p.q: expected boolean, got string 'yes'"]),
    ({"type": ["integer", "null"]}, "x", ["$: expected integer or null, got string 'x'"]),
    ({"type": "decimal"}, "1.5", []),  # a type the checker does not know is let through
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, [], ["$: [] matches none of the allowed shapes"]),
    (dict(DEFS, anyOf=[{"$ref": "#/$defs/Point"}, {"type": "null"}]), {"x": 1}, []),
    (dict(DEFS, type="object", additionalProperties={"$ref": "#/$defs/Point"}), {"a": {"x": "no"}},
     ["$.a.x: expected number, got string 'no'"]),
    ({"$defs": {"a/b": {"type": "integer"}}, "$ref": "#/$defs/a~1b"}, "x", ["$: expected integer, got string 'x'"]),
    ({"$defs": {"c~d": {"type": "string"}}, "$ref": "#/$defs/c~0d"}, 1, ["$: expected string, got integer 1"]),
    ({"items": {"type": "integer"}}, {"a": 1}, []),  # items says nothing about an object
    ({"type": "string"}, [1], ["$: expected string, got array [1]"]),
    ({"type": "string"}, {"a": 1}, ["$: expected string, got object {'a': 1}"]),
    ({"type": "string"}, b"x", ["$: expected string, got bytes b'x'"]),
    ({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"type": "integer"}}, "$ref": "#/$defs/A"}, "x",
     ["$: expected integer, got string 'x'"]),
]


@pytest.mark.parametrize(("schema", "value", "errors"), CHECKS)
def test_the_checker_keyword_by_keyword(schema: dict[str, Any], value: Any, errors: list[str]) -> None:
    assert check(value, schema) == errors


@pytest.mark.parametrize(("ref", "message"), [
    ("http://example.com/city.json", "only references within the schema are supported, got"
                                     " 'http://example.com/city.json'"),
    ("#/$defs/Missing", "the schema refers to '#/$defs/Missing', which it does not define"),
    ("#/$defs/Point/properties/x/nothing", "the schema refers to '#/$defs/Point/properties/x/nothing', which it"
                                           " does not define"),
    ("#/$defs/Point/required/0", "the schema refers to '#/$defs/Point/required/0', which it does not define"),
])
def test_a_reference_the_checker_cannot_follow_is_named(ref: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check({"x": 1}, dict(DEFS, **{"$ref": ref}))
    assert str(info.value) == message


class Base(TypedDict):
    city: str


class Partial(Base, total=False):
    note: str


class Note(TypedDict, total=False):
    text: str
    tags: List[str]  # noqa: UP006


@pytest.mark.skipif(sys.version_info < (3, 9), reason="__required_keys__ came in Python 3.9")
def test_a_typeddict_keeps_the_keys_its_bases_require() -> None:
    assert schema_of(Partial).schema["required"] == ["city"]


@dataclass
class Reading:
    label: str
    count: int
    level: float
    ok: bool
    nothing: None
    mood: Literal["calm", "busy"]
    anything: Any


def test_each_simple_type_has_its_json_type() -> None:
    assert schema_of(Reading).schema["properties"] == {
        "label": {"type": "string"}, "count": {"type": "integer"}, "level": {"type": "number"},
        "ok": {"type": "boolean"}, "nothing": {"type": "null"}, "mood": {"enum": ["calm", "busy"]}, "anything": {}}


@dataclass
class Tree:
    name: str
    children: List[Tree]  # noqa: UP006
    place: Base
    counts: Dict[str, int]  # noqa: UP006
    anything: dict
    items: list


def test_containers_and_nested_types_have_their_json_schemas() -> None:
    tree = {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
        "place": {"$ref": "#/$defs/Base"}, "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "anything": {"type": "object", "additionalProperties": {}}, "items": {"type": "array", "items": {}}},
        "required": ["name", "children", "place", "counts", "anything", "items"], "additionalProperties": False}
    base = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            "additionalProperties": False}
    assert schema_of(Tree).schema == {**tree, "$defs": {"Tree": tree, "Base": base}}


def test_a_type_with_no_json_schema_is_refused_naming_it() -> None:
    @dataclass
    class Odd:
        value: complex

    with pytest.raises(TypeError) as info:
        schema_of(Odd)
    assert str(info.value) == "no JSON Schema for the type <class 'complex'>: use a dict schema for it"


@pytest.mark.skipif(sys.version_info < (3, 10), reason="int | None came in Python 3.10")
def test_a_union_written_with_a_bar_is_any_of() -> None:
    @dataclass
    class Maybe:
        count: int | None

    assert schema_of(Maybe).schema["properties"]["count"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


@pytest.mark.parametrize(("title", "name"), [
    ("City list (v2)!", "City_list__v2__"), ("a-b_c9", "a-b_c9"), ("x" * 80, "x" * 64),
    (None, "response"), (7, "response"), ("", "response"),
])
def test_a_dict_schema_is_named_from_its_title_as_openai_accepts(title: Any, name: str) -> None:
    assert schema_of({"type": "object", "title": title}).name == name


class Validated:
    """A class shaped like a pydantic model, without pydantic."""

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        return {"type": "object", "properties": {"q": {"type": "string"}}}

    @classmethod
    def model_validate(cls, value: Any) -> tuple[str, Any]:
        return ("validated", value)


def test_a_class_with_model_json_schema_gives_its_schema_and_builds_with_model_validate() -> None:
    made = schema_of(Validated)
    assert (made.schema, made.name, made.build({"q": "x"})) == (
        {"type": "object", "properties": {"q": {"type": "string"}}}, "Validated", ("validated", {"q": "x"}))


def test_what_is_not_a_schema_is_refused_naming_what_is() -> None:
    with pytest.raises(TypeError) as info:
        schema_of(42)
    assert str(info.value) == ("schema must be a JSON Schema dict, a dataclass, a TypedDict, or a class with"
                               " model_json_schema(), got 42")


def test_a_typeddict_that_is_not_total_requires_no_key_on_every_python() -> None:
    assert schema_of(Note).schema["required"] == []
    assert schema_of(Base).schema["required"] == ["city"]


def test_a_dataclass_builds_nested_lists_and_optional_members_and_keeps_other_values() -> None:
    @dataclass
    class Leg:
        to: City
        via: Optional[City] = None  # noqa: UP045
        stops: Optional[List[str]] = None  # noqa: UP006, UP045

    @dataclass
    class Atlas:
        by_name: Dict[str, City]  # noqa: UP006

    kept = schema_of(Atlas).build({"by_name": {"oslo": GOOD}})
    assert kept.by_name == {"oslo": GOOD}, "a dict is left as it came"
    spec = schema_of(Leg)
    built = spec.build({"to": GOOD, "via": {"name": "Bergen", "population": 1}, "stops": ["Voss"]})
    assert built == Leg(City("Oslo", 709037), City("Bergen", 1), ["Voss"])
    assert spec.build({"to": GOOD, "via": None}) == Leg(City("Oslo", 709037), None)


def test_a_dataclass_schema_nests_and_allows_none() -> None:
    @dataclass
    class Trip:
        cities: List[City]  # noqa: UP006 (evaluated at run time, on Python 3.8 too)
        note: Optional[str]  # noqa: UP045

    schema = schema_of(Trip).schema
    assert check({"cities": [GOOD], "note": None}, schema) == []
    assert check({"cities": [{"name": 1, "population": 2}], "note": None}, schema) == [
        "$.cities[0].name: expected string, got integer 1"]
    assert schema_of(Trip).build({"cities": [GOOD], "note": None}) == Trip([City("Oslo", 709037)], None)


# -- the command line ------------------------------------------------------------------------------------


def test_the_cli_prints_checked_json(server: LoopbackServer, tmp_path: Path) -> None:
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps(schema_of(City).schema))
    server.handler = format_server({"json_schema"}, "deepseek")
    base = ["chat", "--base-url", server.url, "--model", "m", "--json-schema", str(schema), "Largest city of Norway?"]
    result = run_command(*base)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == GOOD
    server.handler = format_server({"json_schema"}, "deepseek", {"name": "Oslo"})
    result = run_command(*base)
    assert result.returncode == 1
    assert "population" in result.stderr and "required" in result.stderr  # either checker's words


def test_the_cli_lists_each_problem_the_message_had_no_room_for(server: LoopbackServer, tmp_path: Path) -> None:
    fields = [f"field_number_{i}" for i in range(12)]
    schema = tmp_path / "many.json"
    schema.write_text(json.dumps({"type": "object", "properties": {f: {"type": "integer"} for f in fields},
                                  "required": fields}))
    server.handler = format_server({"json_schema"}, "deepseek", {f: "text" for f in fields})
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--json-schema", str(schema), "x")
    first, *details = result.stderr.rstrip("\n").split("\n")
    assert first.startswith("openai-compat: error: the model's answer does not fit the schema: $.field_number_0: ")
    assert len(first) < 400 and details, "the message is cut short; the rest follow"
    problem = r"  \$\.field_number_\d+: ('text' is not of type 'integer'|expected integer, got string 'text')"
    assert all(re.fullmatch(problem, line) and line[2:] not in first for line in details), details
    assert len(details) + first.count("$.field_number_") >= len(fields)


def test_the_schema_instructions_join_the_callers_system_message(server: LoopbackServer,
                                                                 retrying_client: Client) -> None:
    server.handler = format_server({"json_object_with_schema"}, "deepseek")
    assert retrying_client.chat_json("Oslo?", schema=City, system="You are terse.") == City("Oslo", 709037)
    system = server.requests[-1].json["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are terse.\n\nAnswer with JSON only")
    assert '"population":{"type":"integer"}' in system["content"]


def test_strict_mode_is_not_asked_for_a_schema_with_optional_properties(server: LoopbackServer,
                                                                        client: Client) -> None:
    server.handler = lambda req, wire: wire.json(completion(json.dumps(GOOD)))
    assert client.chat_json("Oslo?", schema=City) == City("Oslo", 709037)  # country may be left out
    sent = server.requests[0].json["response_format"]["json_schema"]
    assert "strict" not in sent and sent["schema"]["required"] == ["name", "population"]


CLOSED = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}


@pytest.mark.parametrize(("schema", "strict"), [
    (CLOSED, True),
    ({"properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False}, False),
    ({"type": "object", "additionalProperties": True}, False),
    ({"type": "object", "properties": {"inner": {"properties": {"b": {"type": "integer"}}}}, "required": ["inner"],
      "additionalProperties": False}, False),
    ({"type": "object", "properties": {"pick": {"anyOf": [CLOSED, {"type": "object", "properties": {}}]}},
      "required": ["pick"], "additionalProperties": False}, False),
    ({"type": "object", "properties": {"kind": {"enum": [{"properties": {}}]}, "fixed": {"const": {"type": "object"}}},
      "required": ["kind", "fixed"], "additionalProperties": False}, True),
], ids=["closed", "untyped with an optional property", "open", "an open object inside", "an open object in anyOf",
        "objects as enum and const values"])
def test_strict_mode_only_for_schemas_every_object_of_which_is_closed_and_required(
    server: LoopbackServer, client: Client, schema: dict[str, Any], strict: bool
) -> None:
    server.handler = lambda req, wire: wire.json(completion(json.dumps({"a": "x"})))
    try:
        client.chat_json("x", schema=schema)
    except JSONOutputError:
        pass  # only the request counts here
    sent = server.requests[0].json["response_format"]["json_schema"]
    assert sent.get("strict", False) is strict


TOOLS_REFUSED = (400, {"error": {"message": "tool_choice is not supported"}})


def _ignoring_formats(refusal: tuple[int, Any] | None = None, arguments: str = json.dumps(GOOD)) -> Any:
    """A server that takes response_format and ignores it; with tools, it calls the one forced
    with ``arguments``, or answers with ``refusal`` (a status and a body)."""
    def handler(req: Request, wire: Wire) -> None:
        if "tools" not in req.json:
            wire.json(completion("Oslo is the largest, with about 709,037 people."))
        elif refusal is not None:
            wire.json(refusal[1], status=refusal[0])
        else:
            forced = req.json["tool_choice"]["function"]["name"]
            answer = completion("", finish_reason="tool_calls")
            answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": forced, "arguments": arguments}}]}
            wire.json(answer)
    return handler


def test_a_server_that_ignores_formats_is_asked_by_a_forced_function_call(
    server: LoopbackServer, retrying_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.handler = _ignoring_formats()
    with caplog.at_level(logging.INFO, logger="openai_compat"):
        assert retrying_client.chat_json("The largest city of Norway?", schema=City) == City("Oslo", 709037)
    assert [r.getMessage() for r in caplog.records] == [
        "the answer is not JSON despite the json_schema format; asking by a function call"]
    first, second = (r.json for r in server.requests)
    assert first["response_format"]["type"] == "json_schema" and "tools" not in first
    assert second["tools"][0]["function"]["parameters"] == first["response_format"]["json_schema"]["schema"]
    assert second["tool_choice"] == {"type": "function", "function": {"name": second["tools"][0]["function"]["name"]}}
    assert retrying_client.chat_json("And of Sweden?", schema=City) == City("Oslo", 709037)
    assert len(server.requests) == 3 and "tools" in server.requests[2].json, "remembered: straight to the call"


def test_a_server_that_refuses_tools_too_gets_the_json_error(server: LoopbackServer, retrying_client: Client) -> None:
    server.handler = _ignoring_formats(TOOLS_REFUSED)
    with pytest.raises(JSONOutputError, match="not JSON"):
        retrying_client.chat_json("The largest city of Norway?", schema=City)
    assert ["tools" in r.json for r in server.requests] == [False, True], "the format's answer, not a third ask"


def test_chat_json_streamed_yields_growing_partial_values_then_the_checked_one(
    server: LoopbackServer, retrying_client: Client
) -> None:
    from .server import chunk, event

    text = '```json\n{"name": "Oslo", "population": 709037}\n```'
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    server.handler = lambda req, wire: wire.sse([*(event(chunk(p)) for p in pieces),
                                                 event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
    values = list(retrying_client.chat_json("The largest city of Norway?", schema=City, stream=True))
    assert values[-1] == City("Oslo", 709037)
    partial = values[:-1]
    assert partial == [{"name": "Osl"}, {"name": "Oslo", "population": 709}, GOOD]
    assert server.requests[0].json["stream"] is True and server.requests[0].json["response_format"]["type"] == \
        "json_schema"


def test_chat_json_streamed_steps_down_on_a_refusal_before_returning(server: LoopbackServer,
                                                                     retrying_client: Client) -> None:
    from .server import chunk, event

    def handler(req: Request, wire: Wire) -> None:
        if rung_of(req.json) == "json_schema":
            wire.json(REFUSALS["deepseek"][1], status=400)
        else:
            wire.sse([event(chunk('{"name": "Oslo", "population": 1}')), event(chunk(finish_reason="stop"))])

    server.handler = handler
    values = retrying_client.chat_json("x", schema=City, stream=True)
    assert len(server.requests) == 2, "sent, and stepped down, before the first value is read"
    assert list(values)[-1] == City("Oslo", 1)


# -- the ladder, request by request ------------------------------------------------------------------------

CITY_TEXT = "Answer with JSON only, no other text, matching this JSON Schema:\n" + json.dumps(
    schema_of(City).schema, separators=(",", ":"))


def _refusing_every_format(answer: str = json.dumps(GOOD)) -> Any:
    def handler(req: Request, wire: Wire) -> None:
        if "response_format" in req.json:
            wire.json({"error": {"message": "response_format is not supported"}}, status=400)
        elif req.json.get("stream"):
            from .server import chunk, event

            wire.sse([event(chunk(answer)), event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
        else:
            wire.json(completion(answer))
    return handler


def test_each_rung_sends_its_own_format_and_instructions_and_says_so(
    server: LoopbackServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.handler = _refusing_every_format()
    with caplog.at_level(logging.INFO, logger="openai_compat"):
        assert client.chat_json([{"role": "system", "content": "Be exact."}, {"role": "user", "content": "x"}],
                                schema=City) == City("Oslo", 709037)
    schema = schema_of(City).schema
    formats = [r.json.get("response_format") for r in server.requests]
    assert formats == [{"type": "json_schema", "json_schema": {"name": "City", "schema": schema}},
                       {"type": "json_object", "schema": schema}, {"type": "json_object"}, None]
    assert all(r.json["messages"][1:] == [{"role": "user", "content": "x"}] for r in server.requests)
    systems = [r.json["messages"][0]["content"] for r in server.requests]
    assert systems == ["Be exact.", *[f"Be exact.\n\n{CITY_TEXT}"] * 3]
    assert [r.getMessage() for r in caplog.records] == [
        f"the server refused the {low} format (response_format is not supported); trying {high}"
        for low, high in (("json_schema", "json_object_with_schema"), ("json_object_with_schema", "json_object"),
                          ("json_object", "prompt"))]
    again = pickle.loads(pickle.dumps(client))
    again.chat_json("y", schema=City)
    assert "response_format" not in server.requests[-1].json, "the rung that worked is where the next call starts"


def test_without_a_schema_the_ladder_is_json_object_then_the_prompt(server: LoopbackServer, client: Client) -> None:
    server.handler = _refusing_every_format('{"ok": true}')
    assert client.chat_json("x") == {"ok": True}
    first, second = (r.json for r in server.requests)
    assert first["response_format"] == {"type": "json_object"} and first["messages"][0]["role"] == "user"
    assert second["messages"][0] == {"role": "system", "content": "Answer with a JSON value only, no other text."}
    assert list(client.chat_json("y", stream=True))[-1] == {"ok": True}
    assert "response_format" not in server.requests[-1].json


def test_a_response_format_of_ones_own_is_sent_as_given_and_the_answer_still_built(server: LoopbackServer,
                                                                                   client: Client) -> None:
    own = {"type": "json_object"}
    server.handler = lambda req, wire: wire.json(completion(json.dumps(GOOD)))
    assert client.chat_json("x", schema=City, response_format=own, temperature=0.2) == City("Oslo", 709037)
    server.handler = lambda req, wire: wire.sse(stream_of([json.dumps(GOOD)]))
    streamed = client.chat_json("x", schema=City, response_format=own, stream=True, temperature=0.2)
    assert list(streamed)[-1] == City("Oslo", 709037)
    assert [(r.json["response_format"], r.json["temperature"]) for r in server.requests] == [(own, 0.2)] * 2
    server.handler = lambda req, wire: wire.sse(stream_of([json.dumps({"name": "Oslo"})]))
    with pytest.raises(JSONOutputError, match="'population' is required"):
        list(client.chat_json("x", schema=City, response_format=own, stream=True))


def test_a_streamed_ladder_steps_down_every_rung_and_remembers(server: LoopbackServer, client: Client) -> None:
    server.handler = _refusing_every_format()
    assert list(client.chat_json("x", schema=City, stream=True))[-1] == City("Oslo", 709037)
    assert [rung_of(r.json) for r in server.requests] == ["json_schema", "json_object_with_schema", "json_object",
                                                         "prompt"]
    assert [r.json["messages"][0]["content"] for r in server.requests] == ["x", *[CITY_TEXT] * 3]
    assert list(client.chat_json("x", schema=City, stream=True))[-1] == City("Oslo", 709037)
    assert rung_of(server.requests[-1].json) == "prompt" and len(server.requests) == 5


def test_asking_again_says_what_was_wrong_and_stops_after_the_retries(
    server: LoopbackServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter([json.dumps({"name": 7})] * 3 + [json.dumps(GOOD)])
    server.handler = lambda req, wire: wire.json(completion(next(answers)))
    with caplog.at_level(logging.INFO, logger="openai_compat"):
        assert client.chat_json("x", schema=City, retries=3) == City("Oslo", 709037)
    assert len(server.requests) == 4
    problems = "$: 'population' is required; $.name: expected string, got integer 7"
    assert server.requests[1].json["messages"][-1] == {"role": "user", "content": (
        f"That answer does not fit the JSON Schema: {problems}. Answer again with JSON only.")}
    assert [r.getMessage() for r in caplog.records] == [
        f"the answer broke the schema ({problems}); asking once more"] * 3
    answers = iter([json.dumps({"name": 7})] * 2)
    with pytest.raises(JSONOutputError) as info:
        client.chat_json("x", schema=City, retries=1)
    assert len(server.requests) == 6
    assert str(info.value) == f"the model's answer does not fit the schema: {problems}"
    eight = {"type": "object", "properties": {f"count_{i}": {"type": "integer"} for i in range(8)}}
    answers = iter([json.dumps({f"count_{i}": "many" for i in range(8)})] * 2)
    with caplog.at_level(logging.INFO, logger="openai_compat"), pytest.raises(JSONOutputError) as info:
        client.chat_json("x", schema=eight, retries=1)
    many = "; ".join(info.value.errors)
    assert len(many) > 300 and caplog.records[-1].getMessage() == (
        f"the answer broke the schema ({many[:200]}); asking once more"), "the log line keeps 200 characters"
    assert str(info.value) == f"the model's answer does not fit the schema: {many[:300]}"


@pytest.mark.parametrize(("answer", "value"), [
    ('```json\n{"code": "```py```"}\n```\nHope this helps.', {"code": "```py```"}),
    ('```{"a": 1}```', {"a": 1}),
    ('  ```\n[1, 2]\n```  ', [1, 2]),
    ('```json\n{\n  "a": 1,\n  "b": [2]\n}\n```', {"a": 1, "b": [2]}),
    ('``` json title="answer"\n{"a": 1}\n```', {"a": 1}),
], ids=["a fence inside a string", "a fence on one line", "a bare fence", "over several lines",
        "words on the opening line"])
def test_json_in_a_code_fence_is_read(server: LoopbackServer, client: Client, answer: str, value: Any) -> None:
    server.handler = lambda req, wire: wire.json(completion(answer))
    assert client.chat_json("x", response_format={"type": "json_object"}) == value


def test_an_answer_that_is_not_json_or_is_cut_off_says_so_in_full(server: LoopbackServer, client: Client) -> None:
    server.handler = lambda req, wire: wire.json(completion("Sure! Here"))
    with pytest.raises(JSONOutputError) as info:
        client.chat_json("x", response_format={"type": "json_object"})
    problem = "the model's answer is not JSON (Expecting value: line 1 column 1 (char 0))"
    assert (str(info.value), info.value.errors) == (f"{problem}: 'Sure! Here'", [problem])
    long_answer = "Sure! " + "Here it is. " * 30
    server.handler = lambda req, wire: wire.json(completion(long_answer))
    with pytest.raises(JSONOutputError) as info:
        client.chat_json("x", response_format={"type": "json_object"})
    assert (str(info.value), info.value.text) == (f"{problem}: {long_answer[:200]!r}", long_answer)
    server.handler = lambda req, wire: wire.json(completion('{"name": "Os', finish_reason="length"))
    for max_tokens, limit in ((20, "(20)"), (None, "(the server's default)")):
        with pytest.raises(JSONOutputError) as cut:
            client.chat_json("x", schema=City, max_tokens=max_tokens)
        problem = (f"the model's answer was cut off at max_tokens {limit} before its JSON ended"
                   ' (finish_reason "length")')
        assert (str(cut.value), cut.value.errors) == (
            f"{problem}: raise max_tokens, or ask for a smaller object; the text that came is in .text", [problem])


def test_a_forced_function_call_is_described_and_its_refusal_sends_the_ladder_back_to_formats(
    server: LoopbackServer, retrying_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.handler = _ignoring_formats()
    assert retrying_client.chat_json("x", schema=City) == City("Oslo", 709037)
    forced = server.requests[-1].json
    assert forced["tools"] == [{"type": "function", "function": {
        "name": "City", "parameters": schema_of(City).schema,
        "description": "Give the answer as this function's arguments."}}]
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    server.handler = _ignoring_formats(TOOLS_REFUSED)
    with caplog.at_level(logging.INFO, logger="openai_compat"), pytest.raises(JSONOutputError):
        retrying_client.chat_json("x", schema=City)
    assert "the server refused a forced function call (tool_choice is not supported); back to formats" in [
        r.getMessage() for r in caplog.records]
    requests = len(server.requests)
    with pytest.raises(JSONOutputError):
        retrying_client.chat_json("x", schema=City)
    assert "tools" not in server.requests[requests].json, "a refused forced call is not tried again"


def test_a_forced_function_call_with_empty_arguments_or_none_is_no_json(server: LoopbackServer, client: Client) -> None:
    server.handler = _ignoring_formats(arguments="")
    with pytest.raises(JSONOutputError) as info:
        client.chat_json("x", schema=City)
    assert (str(info.value), info.value.text) == (
        "the model's answer is not JSON (Expecting value: line 1 column 1 (char 0)): ''", "")
    assert "tools" in server.requests[-1].json
    ignored = _ignoring_formats()
    server.handler = lambda req, wire: (wire.json(completion("")) if "tools" in req.json else ignored(req, wire))
    with pytest.raises(JSONOutputError) as neither:  # the forced call ignored too: no call, no text
        Client(server.url, model="m").chat_json("x", schema=City)
    assert (str(neither.value), neither.value.text) == (str(info.value), "")


def test_chat_json_streams_with_a_format_of_your_own_sent_as_given(server: LoopbackServer, client: Client) -> None:
    from .server import chunk, event

    server.handler = lambda req, wire: wire.sse([event(chunk('{"name": "Os')), event(chunk('lo", "population": 1}')),
                                                 event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
    own = {"type": "json_schema", "json_schema": {"name": "mine", "schema": {"type": "object"}}}
    values = list(client.chat_json("x", response_format=own, stream=True))
    assert values[0] == {"name": "Os"} and values[-1] == {"name": "Oslo", "population": 1}
    assert server.requests[0].json["response_format"] == own and server.requests[0].json["stream"] is True
    with pytest.raises(TypeError, match=r"chat_json\(\)"):
        client.chat_json("x", stream="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("retries", [-1, True, 1.5])
def test_chat_json_refuses_retries_that_are_no_count(client: Client, server: LoopbackServer, retries: Any) -> None:
    with pytest.raises(ValueError) as info:
        client.chat_json("x", retries=retries)
    assert str(info.value) == f"chat_json(): retries must be a whole number >= 0, got {retries!r}"
    assert server.requests == []


def test_by_default_a_bad_answer_is_not_asked_again(server: LoopbackServer, client: Client) -> None:
    server.handler = lambda req, wire: wire.json(completion(json.dumps({"name": "Oslo"})))
    with pytest.raises(JSONOutputError):
        client.chat_json("x", schema=City)
    assert len(server.requests) == 1


@pytest.mark.parametrize("refusal", [
    (400, {"error": {"message": "registry.ollama.ai/library/gemma:2b does not support tools"}}),  # Ollama
    (422, {"error": "Input validation error: Tools are not supported by this model", "error_type": "validation"}),
], ids=["ollama-400", "tgi-422"])
def test_a_forced_call_refused_in_other_words_sends_the_ladder_back_to_formats(
    server: LoopbackServer, retrying_client: Client, refusal: tuple[int, Any]
) -> None:
    server.handler = _ignoring_formats(refusal)
    with pytest.raises(JSONOutputError, match="not JSON"):
        retrying_client.chat_json("x", schema=City)
    assert ["tools" in r.json for r in server.requests] == [False, True]


def test_a_server_failing_during_a_forced_call_is_raised_not_taken_for_a_refusal(server: LoopbackServer,
                                                                                 client: Client) -> None:
    server.handler = _ignoring_formats((500, {"error": {"message": "the tool call parser crashed"}}))
    with pytest.raises(InternalServerError, match="the tool call parser crashed"):
        client.chat_json("x", schema=City)
    assert len(server.requests) == 2


def test_a_forced_call_goes_without_the_format_instructions(server: LoopbackServer, client: Client) -> None:
    def handler(req: Request, wire: Wire) -> None:
        if rung_of(req.json) in ("json_schema", "json_object_with_schema") and "tools" not in req.json:
            wire.json(REFUSALS["deepseek"][1], status=400)
        else:
            _ignoring_formats()(req, wire)

    server.handler = handler
    assert client.chat_json("Largest city of Norway?", schema=City) == City("Oslo", 709037)
    assert [("tools" in r.json, rung_of(r.json)) for r in server.requests][-2:] == [(False, "json_object"),
                                                                                   (True, "prompt")]
    assert CITY_TEXT in server.requests[-2].json["messages"][0]["content"]
    assert server.requests[-1].json["messages"] == [{"role": "user", "content": "Largest city of Norway?"}], \
        "the function's own parameters say what to send"


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_at_the_last_rung_is_raised(server: LoopbackServer, client: Client, stream: bool) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "response_format is not supported"}}, status=400)
    with pytest.raises(BadRequestError, match="response_format is not supported"):
        values = client.chat_json("x", schema=City, stream=stream)
        list(values) if stream else None
    assert [rung_of(r.json) for r in server.requests] == list(RUNGS)


def test_a_streamed_ladder_asks_strict_mode_where_allowed(server: LoopbackServer, client: Client) -> None:
    strict = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False, "title": "Answer"}
    server.handler = lambda req, wire: wire.sse([event(chunk('{"a": 1}')), event(chunk(finish_reason="stop"))])
    assert list(client.chat_json("x", schema=strict, stream=True)) == [{"a": 1}, {"a": 1}]
    assert server.requests[0].json["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Answer", "schema": strict, "strict": True}}
    loose = {"type": "object", "properties": {"a": {"type": "integer"}}, "title": "Answer"}
    list(client.chat_json("x", schema=loose, stream=True))
    assert "strict" not in server.requests[1].json["response_format"]["json_schema"]


def test_partial_values_grow_only_when_the_value_does(server: LoopbackServer, client: Client) -> None:
    pieces = ['\n```json\n{"city": "New ', 'York", "code": "```py\\nx = 1\\n```", "n": 1,', " ", '"ok', '": true}',
              "\n```\nUse it with ```care```."]
    events = [*(event(chunk(piece)) for piece in pieces), event(chunk(finish_reason="stop"))]
    server.handler = lambda req, wire: wire.sse(events)
    whole = {"city": "New York", "code": "```py\nx = 1\n```", "n": 1, "ok": True}
    assert list(client.chat_json("x", stream=True)) == [
        {"city": "New"}, {"city": "New York", "code": "```py\nx = 1\n```", "n": 1}, whole, whole]
    unfenced = [event(chunk('{"city": "New ')), event(chunk('York"}')), event(chunk(finish_reason="stop"))]
    server.handler = lambda req, wire: wire.sse(unfenced)
    assert list(client.chat_json("x", stream=True)) == [{"city": "New"}, {"city": "New York"}, {"city": "New York"}], \
        "a partial string does not end in the white space still being written"


def test_a_forced_call_keeps_to_the_one_deadline(server: LoopbackServer) -> None:
    release = threading.Event()

    def handler(req: Request, wire: Wire) -> None:
        if "tools" in req.json:
            release.wait(10)
        _ignoring_formats()(req, wire)

    server.handler = handler
    client = Client(server.url, model="m", max_retries=0, timeout=(1, 5))
    try:
        with pytest.raises(APITimeoutError) as info:
            client.chat_json("x", schema=City, deadline=0.5, max_tokens=50)
    finally:
        release.set()
    assert str(info.value) == "the call's deadline of 0.5 s passed"
    assert str(info.value.__cause__).startswith("the call's deadline of 0."), "the forced call had what was left"
    assert [("tools" in r.json, r.json["max_tokens"]) for r in server.requests] == [(False, 50), (True, 50)]
