"""run_tools(): the loop every user writes by hand around tool calls, over plain functions."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import sys
import threading
import typing
from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict

import pytest

from openai_compat import APIResponseError, Client, ToolLoopError
from openai_compat._function_schema import build_arguments, function_schema, parse_docstring

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


@dataclasses.dataclass
class Place:
    city: str
    country: str = "NO"


class Window(TypedDict):
    start: str
    days: int


class Draft(TypedDict, total=False):
    title: str
    words: int


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


def forecast(place: Place, unit: Unit = Unit.CELSIUS, days: Optional[int] = None,
             tags: List[str] = [], extra: Dict[str, float] = {}, kind: Literal["rain", "sun"] = "sun",
             window: Optional[Window] = None, pair: Tuple[int, str] = (1, "a")) -> str:
    """The forecast for a place.

    Args:
        place: Where, as a city and a country code.
        unit (Unit): C or F.
        days: How many days
            ahead, at most 10.
    """
    return f"{place.city}/{place.country} {unit.value} {days}"


def test_the_schema_comes_from_the_signature_hints_and_docstring() -> None:
    spec = function_schema(forecast)["function"]
    assert spec["name"] == "forecast" and spec["description"] == "The forecast for a place."
    parameters = spec["parameters"]
    assert parameters["required"] == ["place"]
    props = parameters["properties"]
    assert props["place"] == {"type": "object", "properties": {"city": {"type": "string"},
                                                               "country": {"type": "string"}},
                              "required": ["city"], "description": "Where, as a city and a country code."}
    assert props["unit"] == {"type": "string", "enum": ["C", "F"], "description": "C or F.", "default": "C"}
    assert props["days"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "description":
                             "How many days ahead, at most 10.", "default": None}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert props["extra"] == {"type": "object", "additionalProperties": {"type": "number"}, "default": {}}
    assert props["kind"] == {"type": "string", "enum": ["rain", "sun"], "default": "sun"}
    assert props["window"]["anyOf"][0] == {"type": "object", "properties": {
        "start": {"type": "string"}, "days": {"type": "integer"}}, "required": ["start", "days"]}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]


@pytest.mark.parametrize("doc", [
    "Look a city up.\n\nArgs:\n    city (str): The city.\n    limit: How many.\n\nReturns:\n    The rows.",
    "Look a city up.\n\nParameters\n----------\ncity : str\n    The city.\nlimit : int\n    How many.\n\n"
    "Returns\n-------\nlist",
    "Look a city up.\n\n:param city: The city.\n:param int limit: How many.\n:returns: The rows.",
], ids=["google", "numpy", "rest"])
def test_google_numpy_and_rest_docstrings_describe_the_parameters(doc: str) -> None:
    assert parse_docstring(doc) == ("Look a city up.", {"city": "The city.", "limit": "How many."})


def test_arguments_are_built_into_the_types_the_function_names() -> None:
    built = build_arguments(forecast, {"place": {"city": "Oslo"}, "unit": "F", "days": 2})
    assert built == {"place": Place("Oslo"), "unit": Unit.FAHRENHEIT, "days": 2}
    assert forecast(**built) == "Oslo/NO F 2"


NOT_JSON = object()


class Atlas:
    def lookup(self, city: str, *rest: str, limit: int = 5, near: Any = NOT_JSON, **options: Any) -> str:
        return city

    def unhinted(self, query) -> str:
        return str(query)


def test_the_whole_tool_description_of_a_method_without_a_docstring() -> None:
    assert function_schema(Atlas.lookup) == {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "limit": {"type": "integer", "default": 5},
                                         "near": {}},
        "required": ["city"]}}}
    assert function_schema(Atlas().unhinted)["function"]["parameters"] == {
        "type": "object", "properties": {"query": {}}, "required": ["query"]}


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | None is written so from Python 3.10")
def test_a_union_written_with_a_bar_is_optional() -> None:
    from openai_compat._function_schema import type_schema

    hint = eval("int | None")
    assert type_schema(hint) == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert build_arguments(forecast, {"days": 3}) == {"days": 3}
    pick = eval("lambda unit: None")
    pick.__annotations__ = {"unit": eval("Unit | None", globals())}
    assert build_arguments(pick, {"unit": "F"}) == {"unit": Unit.FAHRENHEIT}


def test_what_is_no_named_function_is_refused() -> None:
    import functools

    for thing in (functools.partial(add, 1), lambda a: a, 42):
        with pytest.raises(TypeError) as info:
            function_schema(thing)  # type: ignore[arg-type]
        assert str(info.value).startswith("a tool must be a named function, got ")


@pytest.mark.parametrize(("doc", "expected"), [
    ("Args:\n    city: The city.\n\n    unit: C or F.", ("", {"city": "The city.", "unit": "C or F."})),
    ("Parameters\n----------\ncity\n    The city.\nunit : str\n    C or F.",
     ("", {"city": "The city.", "unit": "C or F."})),
    (":param city: The city,\n    in English.\n:param unit: C or F.",
     ("", {"city": "The city, in English.", "unit": "C or F."})),
    ("Arguments:\n    city: The city.", ("", {"city": "The city."})),
    ("Args:\n    city: The city.\nThat is all.", ("", {"city": "The city."})),
    ("Args:\n    city: The city.\n    -- more to come", ("", {"city": "The city."})),
], ids=["blank-line-inside", "numpy-without-types", "rest-over-lines", "no-summary", "text-after", "not-a-parameter"])
def test_docstrings_without_a_summary_and_with_odd_layouts(doc: str, expected: Any) -> None:
    assert parse_docstring(doc) == expected


@dataclasses.dataclass
class Trip:
    start: Place
    unit: Optional[Unit] = None


def plan(trip: Trip, note: str, place: Optional[Place] = None) -> None: ...


def test_arguments_build_nested_and_optional_types_and_leave_the_rest() -> None:
    built = build_arguments(plan, {"trip": {"start": {"city": "Oslo"}, "unit": "C"}, "note": "hi",
                                   "place": {"city": "Bergen"}, "extra": 1})
    assert built == {"trip": Trip(Place("Oslo"), Unit.CELSIUS), "note": "hi", "place": Place("Bergen"), "extra": 1}
    assert build_arguments(plan, {"place": None, "note": {"city": "x"}}) == {"place": None, "note": {"city": "x"}}
    assert build_arguments(forecast, {"unit": None, "tags": ["a"]}) == {"unit": None, "tags": ["a"]}
    assert build_arguments(tally, {"units": ["C", "F"]}) == {"units": ["C", "F"]}, "a list is left as it came"


def tally(units: List[Unit]) -> int:
    """Counts units."""
    return len(units)


class Bag(dict):
    """A dict subclass that is no TypedDict."""


def test_hints_that_cannot_be_read_are_named() -> None:
    def lookup(city: Nowhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError) as info:
        function_schema(lookup)
    assert str(info.value) == "the type hints of lookup() cannot be read: name 'Nowhere' is not defined"


def test_a_dict_subclass_is_no_typed_dict_and_cls_is_left_out() -> None:
    def pack(bag: Bag) -> None: ...

    with pytest.raises(TypeError, match="no JSON schema for the type"):
        function_schema(pack)

    def build(cls, size: int) -> None: ...  # a classmethod's function, unbound

    assert list(function_schema(build)["function"]["parameters"]["properties"]) == ["size"]


def test_a_type_without_a_schema_is_refused_by_name() -> None:
    def odd(x: complex) -> None: ...
    with pytest.raises(TypeError) as info:
        function_schema(odd)
    assert str(info.value) == ("no JSON schema for the type <class 'complex'>: use str, int, float, bool, list, dict,"
                               " Optional, Literal, an Enum, a TypedDict, a dataclass or a pydantic model")


# -- the loop ----------------------------------------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


def fail(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"broken: {reason}")


def tool_call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def scripted(*turns: Any, stream: bool = False) -> Any:
    """A model that answers each request with the next turn: a list of tool calls, or text."""
    def answer(request: Request, wire: Wire) -> None:
        turn = turns[min(request.number, len(turns)) - 1]
        if isinstance(turn, str):
            if stream:
                wire.sse([event(chunk(turn)), event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
            else:
                wire.json(completion(turn))
            return
        if stream:
            deltas = [dict(call, index=i) for i, call in enumerate(turn)]
            first = chunk()
            first["choices"][0]["delta"] = {"role": "assistant", "content": None, "tool_calls": deltas}
            wire.sse([event(first), event(chunk(finish_reason="tool_calls")), "data: [DONE]\n\n"])
        else:
            body = completion("", finish_reason="tool_calls")
            body["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": turn}
            wire.json(body)
    return answer


def test_run_tools_runs_each_call_and_hands_the_results_back(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 2, "b": 3}, "c1"), tool_call("add", {"a": 1, "b": 1}, "c2")],
                              "The sums are 5 and 2.")
    seen: list[tuple[str, Any, str]] = []
    answer = client.run_tools("Add 2+3 and 1+1", tools=[add], on_tool=lambda *args: seen.append(args))
    assert answer == "The sums are 5 and 2."
    first, second = (r.json for r in server.requests)
    assert first["tools"] == [function_schema(add)]
    assert second["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        tool_call("add", {"a": 2, "b": 3}, "c1"), tool_call("add", {"a": 1, "b": 1}, "c2")]}
    assert second["messages"][2:] == [{"role": "tool", "tool_call_id": "c1", "content": "5"},
                                      {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    assert seen == [("add", {"a": 2, "b": 3}, "5"), ("add", {"a": 1, "b": 1}, "2")]
    assert client.usage.calls == 2, "every turn counts"


@pytest.mark.parametrize(("call", "words"), [
    (tool_call("fail", {"reason": "disk"}), "Error: RuntimeError: broken: disk"),
    (tool_call("nope", {}), "Error: there is no tool named 'nope'; the tools are add, fail."),
    (tool_call("add", '{"a": 1, "b": }'), "Error: the arguments of add are not a JSON object"),
    (tool_call("add", {"a": "one", "b": 2}), "Error: the arguments do not fit add(): $.a: expected integer"),
    (tool_call("add", {"a": 1}), "Error: the arguments do not fit add(): $: 'b' is required"),
])
def test_what_goes_wrong_goes_back_to_the_model(client: Client, server: LoopbackServer, call: Any,
                                               words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # the SDK's own checker's words
    server.handler = scripted([call], "Sorry.")
    assert client.run_tools("x", tools=[add, fail]) == "Sorry."
    result = server.requests[1].json["messages"][-1]
    assert result["role"] == "tool" and result["content"].startswith(words), result["content"]


def test_raise_tool_errors_raises_the_tools_own_exception(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("fail", {"reason": "disk"})], "Sorry.")
    with pytest.raises(RuntimeError, match="broken: disk"):
        client.run_tools("x", tools=[fail], raise_tool_errors=True)


def test_past_max_turns_the_error_carries_the_conversation(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 1, "b": 1})])
    with pytest.raises(ToolLoopError, match="after 3 turns") as info:
        client.run_tools("loop", tools=[add], max_turns=3, tool_choice="required")
    assert len(server.requests) == 3
    assert [m["role"] for m in info.value.messages] == ["user", *["assistant", "tool"] * 3]
    assert server.requests[0].json["tool_choice"] == "required"
    assert "tool_choice" not in server.requests[1].json, "a forced choice holds for the first turn only"


def test_a_message_list_goes_on_as_a_conversation(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 2, "b": 2})], "4.")
    messages: list[Any] = [{"role": "user", "content": "2+2?"}]
    assert client.run_tools(messages, tools=[add]) == "4."
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["content"] == "4."


def test_parallel_runs_the_calls_of_a_turn_at_once_in_order(client: Client, server: LoopbackServer) -> None:
    both_running = threading.Barrier(2, timeout=10)

    def wait(name: str) -> str:
        """Waits until the other call runs too."""
        both_running.wait()
        return name

    server.handler = scripted([tool_call("wait", {"name": "first"}, "c1"), tool_call("wait", {"name": "second"}, "c2")],
                              "done")
    assert client.run_tools("x", tools=[wait], parallel=True) == "done"
    results = server.requests[1].json["messages"][2:]
    assert [(r["tool_call_id"], r["content"]) for r in results] == [("c1", "first"), ("c2", "second")]


def test_streamed_the_text_comes_as_pieces_and_the_tools_still_run(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 2, "b": 3})], "It is 5.", stream=True)
    seen: list[Any] = []
    pieces = list(client.run_tools("2+3?", tools=[add], stream=True, on_tool=lambda *args: seen.append(args)))
    assert pieces == ["It is 5."] and seen == [("add", {"a": 2, "b": 3}, "5")]
    assert server.requests[1].json["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "5"}


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"tools": []}, TypeError, "tools must be a list of functions"),
    ({"tools": [add], "max_turns": 0}, ValueError, "max_turns must be a whole number >= 1"),
    ({"tools": [lambda x: x]}, TypeError, "a tool must be a named function"),
])
def test_bad_input_is_refused_before_sending(client: Client, server: LoopbackServer, kwargs: dict[str, Any],
                                             error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        client.run_tools("x", **kwargs)
    assert server.requests == []


def test_the_cli_runs_tools_and_shows_each_call_on_stderr(server: LoopbackServer, tmp_path: Any) -> None:
    (tmp_path / "mytools.py").write_text("def add(a: int, b: int) -> int:\n    '''Add.'''\n    return a + b\n")
    server.handler = scripted([tool_call("add", {"a": 2, "b": 3})], "It is 5.", stream=True)
    command = ["chat", "--base-url", server.url, "--model", "m", "--tool", "mytools:add", "2+3?"]
    result = run_command(*command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 5.\n"
    assert '[tool] add({"a": 2, "b": 3}) -> 5' in result.stderr
    bad = run_command(*command[:-3], "--tool", "mytools", "x", cwd=tmp_path)
    assert bad.returncode == 1 and "give it as MODULE:FUNCTION" in bad.stderr


@pytest.mark.parametrize(("length", "shown"), [(300, "x" * 300), (301, "x" * 299 + "\u2026")], ids=["300", "301"])
def test_the_cli_shows_a_tools_call_unescaped_and_its_result_cut_at_300(server: LoopbackServer, tmp_path: Any,
                                                                        length: int, shown: str) -> None:
    (tmp_path / "longtools.py").write_text(f"def echo(city: str) -> str:\n    'Echo.'\n    return 'x' * {length}\n")
    server.handler = scripted([tool_call("echo", {"city": "Zürich"})], "Done.")
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--max-tokens", "7",
                         "--tool", "longtools:echo", "go", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "Done.\n")
    assert result.stderr == f'[tool] echo({{"city": "Zürich"}}) -> {shown}\n'
    assert [r.json["max_tokens"] for r in server.requests] == [7, 7]


def test_the_cli_names_a_tool_it_cannot_use(server: LoopbackServer, tmp_path: Any) -> None:
    (tmp_path / "sometools.py").write_text("VALUE = 3\n")
    base = ["chat", "--base-url", server.url, "--model", "m", "x"]
    missing = run_command(*base, "--tool", "sometools:nope", cwd=tmp_path)
    assert missing.stderr == ("openai-compat: error: --tool 'sometools:nope': module 'sometools' has no attribute"
                              " 'nope'\n")
    value = run_command(*base, "--tool", "sometools:VALUE", cwd=tmp_path)
    assert value.stderr == "openai-compat: error: --tool 'sometools:VALUE' is not a function\n"
    nested = run_command(*base, "--tool", "sometools:VALUE:x", cwd=tmp_path)
    assert nested.stderr == ("openai-compat: error: --tool 'sometools:VALUE:x': module 'sometools' has no attribute"
                             " 'VALUE:x'\n")
    assert server.requests == []


@pytest.mark.parametrize(("hint", "schema"), [
    (str, {"type": "string"}), (int, {"type": "integer"}), (float, {"type": "number"}), (bool, {"type": "boolean"}),
    (type(None), {"type": "null"}), (Any, {}),
    (List[int], {"type": "array", "items": {"type": "integer"}}),
    (typing.Sequence[str], {"type": "array", "items": {"type": "string"}}),
    (typing.Set[str], {"type": "array", "items": {"type": "string"}}),
    (Tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (Dict[str, bool], {"type": "object", "additionalProperties": {"type": "boolean"}}),
    (Optional[str], {"anyOf": [{"type": "string"}, {"type": "null"}]}),
    (typing.Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
    (Literal["a", 1], {"enum": ["a", 1]}),
    (Unit, {"type": "string", "enum": ["C", "F"]}),
    (Mixed, {"enum": [1, "two"]}),
    (list, {"type": "array"}), (tuple, {"type": "array"}), (dict, {"type": "object"}),
    (Dict[str, Any], {"type": "object", "additionalProperties": {}}),
    (Tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2,
                       "maxItems": 2}),
    (Tuple[str], {"type": "array", "prefixItems": [{"type": "string"}], "minItems": 1, "maxItems": 1}),
    (Draft, {"type": "object", "properties": {"title": {"type": "string"}, "words": {"type": "integer"}},
             "required": []}),
])
def test_each_type_hint_has_its_json_schema(hint: Any, schema: dict[str, Any]) -> None:
    from openai_compat._function_schema import type_schema

    assert type_schema(hint) == schema


class Revision(Window, total=False):
    note: str


@pytest.mark.skipif(sys.version_info < (3, 9), reason="__required_keys__ came in Python 3.9")
def test_a_typeddict_argument_keeps_the_keys_its_base_requires() -> None:
    from openai_compat._function_schema import type_schema

    assert type_schema(Revision)["required"] == ["start", "days"]


try:
    import pydantic
except ImportError:  # an optional extra: the test below says so
    pydantic = None  # type: ignore[assignment]

if pydantic is not None:
    class Point(pydantic.BaseModel):
        x: int
        y: int = 0

    def plot(point: Point) -> str:
        """Where the point is."""
        return f"{point.x},{point.y}"


@pytest.mark.skipif(pydantic is None, reason="pydantic is not installed")
def test_a_pydantic_model_brings_its_own_schema_and_is_built() -> None:
    spec = function_schema(plot)["function"]["parameters"]["properties"]["point"]
    assert spec["properties"]["x"] == {"title": "X", "type": "integer"} and spec["required"] == ["x"]
    assert plot(**build_arguments(plot, {"point": {"x": 1}})) == "1,0"


def test_a_system_message_goes_first_and_a_list_keeps_its_own(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted("Hi.")
    client.run_tools("Hello", tools=[add], system="Be brief.")
    assert server.requests[0].json["messages"][0] == {"role": "system", "content": "Be brief."}
    with pytest.raises(ValueError, match="put the system message in the list"):
        client.run_tools([{"role": "user", "content": "Hello"}], tools=[add], system="Be brief.")


def test_past_the_default_eight_turns_the_error_says_so_in_full(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 1, "b": 1})])
    with pytest.raises(ToolLoopError) as info:
        client.run_tools("loop", tools=[add])
    assert len(server.requests) == 8
    assert str(info.value) == ("the model was still calling tools after 8 turns (max_turns); the conversation is in"
                               " .messages")


def test_calls_run_on_the_callers_thread_unless_parallel_and_more_than_one(client: Client,
                                                                           server: LoopbackServer) -> None:
    threads: list[str] = []

    def where(tag: str) -> str:
        """Notes the thread it runs on."""
        threads.append(threading.current_thread().name)
        return tag

    here = threading.current_thread().name
    server.handler = scripted([tool_call("where", {"tag": "a"}, "c1"), tool_call("where", {"tag": "b"}, "c2")], "ok")
    client.run_tools("x", tools=[where])
    assert threads == [here, here], "one after the other by default"


def test_a_single_call_runs_on_the_callers_thread_even_when_parallel(client: Client, server: LoopbackServer) -> None:
    threads: list[str] = []

    def where(tag: str) -> str:
        """Notes the thread it runs on."""
        threads.append(threading.current_thread().name)
        return tag

    server.handler = scripted([tool_call("where", {"tag": "a"}, "c1")], "ok")
    client.run_tools("x", tools=[where], parallel=True)
    assert threads == [threading.current_thread().name], "a single call needs no pool"


def test_run_tools_sends_the_callers_parameters_every_turn_and_words_results(client: Client,
                                                                            server: LoopbackServer) -> None:
    def report(city: str) -> Any:
        """A report as a dict, in the city's own letters."""
        return {"city": city, "at": datetime.date(2026, 1, 2)}

    server.handler = scripted([dict(tool_call("report", {"city": "Zürich"}), id="")], "Done.")
    assert client.run_tools("x", tools=[report], temperature=0.1, tool_choice="auto") == "Done."
    first, second = (r.json for r in server.requests)
    assert (first["temperature"], first["tool_choice"], second["temperature"]) == (0.1, "auto", 0.1)
    assert "tool_choice" not in second
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "",
                                      "content": '{"city": "Zürich", "at": "2026-01-02"}'}


def test_a_streamed_loop_keeps_each_turns_text_in_the_conversation(client: Client, server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.number == 1:
            first = chunk("Let me add. ")
            call = dict(tool_call("add", {"a": 2, "b": 3}), index=0)
            second = chunk()
            second["choices"][0]["delta"] = {"tool_calls": [call]}
            wire.sse([event(first), event(second), event(chunk(finish_reason="tool_calls")), "data: [DONE]\n\n"])
        else:
            wire.sse([event(chunk("It is ")), event(chunk("5.")), event(chunk(finish_reason="stop")),
                      "data: [DONE]\n\n"])

    server.handler = answer
    messages: list[Any] = [{"role": "user", "content": "2+3?"}]
    assert list(client.run_tools(messages, tools=[add], stream=True)) == ["Let me add. ", "It is ", "5."]
    assert messages[1]["content"] == "Let me add. " and messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[-1] == {"role": "assistant", "content": "It is 5."}


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"tools": {"add": add}}, TypeError, "run_tools(): tools must be a list of functions"),
    ({"tools": [add, 3]}, TypeError, "run_tools(): tools must be a list of functions"),
    ({"tools": [add], "max_turns": True}, ValueError, "run_tools(): max_turns must be a whole number >= 1, got True"),
    ({"tools": [add], "max_turns": -1}, ValueError, "run_tools(): max_turns must be a whole number >= 1, got -1"),
    ({"tools": [add], "system": "Be brief.", "prompt": [{"role": "user", "content": "x"}]}, ValueError,
     "run_tools(): with a message list, put the system message in the list"),
])
def test_bad_input_to_run_tools_is_refused_in_full(client: Client, server: LoopbackServer, kwargs: dict[str, Any],
                                                   error: type, message: str) -> None:
    given = dict(kwargs)  # the parameters are shared by every run of the test
    prompt = given.pop("prompt", "x")
    with pytest.raises(error) as info:
        client.run_tools(prompt, **given)
    assert str(info.value) == message and server.requests == []


def test_chat_message_takes_every_setting_of_chat(server: LoopbackServer, tmp_path: Any) -> None:
    from .test_media import SAMPLES

    picture = SAMPLES["image/png"]

    def answer(request: Request, wire: Wire) -> None:
        if request.path == "/cat.png":
            wire.body(picture, headers={"Content-Type": "image/png"})
        elif len([r for r in server.requests if r.path.endswith("/completions")]) == 1:
            wire.json({"error": {"message": "busy"}}, status=503)
        else:
            wire.json(completion("a cat"))

    server.handler = answer
    client = Client(server.url, model="m", max_retries=0)
    image_url = server.url.replace("/v1", "/cat.png")
    reply = client.chat_message("What is this?", system="Be brief.", model="vision", images=[image_url],
                                audio=[SAMPLES["audio/wav"]], detail="low", inline_urls=True, max_retries=1,
                                timeout=5, deadline=30, extra_headers={"X-Trace": "t-1"})
    assert reply == {"role": "assistant", "content": "a cat"}
    sent = server.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.json["model"] == "vision"
    assert "audio" not in sent.json and sent.headers["x-trace"] == "t-1"
    system, user = sent.json["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    _, image, audio = user["content"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,") and image["image_url"]["detail"] == "low"
    assert audio["input_audio"]["format"] == "wav"
    assert len([r for r in server.requests if r.path.endswith("/completions")]) == 2, "max_retries=1 held"
    client.chat_message("And this?", images=[image_url])
    assert server.requests[-1].json["messages"][0]["content"][1]["image_url"] == {"url": image_url}, \
        "a URL is sent as it is unless inline_urls=True"


def test_chat_message_with_no_message_in_the_answer_says_so(client: Client, server: LoopbackServer) -> None:
    body = {"choices": [{"index": 0, "finish_reason": "stop", "text": "hi"}]}
    server.handler = lambda req, wire: wire.json(body)
    with pytest.raises(APIResponseError) as info:
        client.chat_message("hi")
    assert (info.value.message, info.value.body) == ("the response's first choice has no message", body)


def test_chat_message_names_itself_in_a_refused_argument(client: Client) -> None:
    with pytest.raises(TypeError) as info:
        client.chat_message("x", max_tokesn=3)
    assert str(info.value).startswith("chat_message() got an unexpected keyword 'max_tokesn': did you mean max_tokens?")


def test_a_streamed_loop_sends_the_callers_parameters_every_turn(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 1, "b": 2})], "3.", stream=True)
    assert list(client.run_tools("1+2?", tools=[add], stream=True, temperature=0.2, tool_choice="required")) == ["3."]
    first, second = (r.json for r in server.requests)
    assert (first["temperature"], second["temperature"], first["tool_choice"]) == (0.2, 0.2, "required")
    assert "tool_choice" not in second and second["tools"] == first["tools"] == [function_schema(add)]


def test_one_turn_is_enough_for_an_answer_without_tools(client: Client, server: LoopbackServer) -> None:
    server.handler = scripted([tool_call("add", {"a": 1, "b": 2})], "3.")
    with pytest.raises(ToolLoopError, match="after 1 turns"):
        client.run_tools("x", tools=[add], max_turns=1)
    server.handler = scripted("Hi.")
    assert client.run_tools("x", tools=[add], max_turns=1) == "Hi."


def test_every_problem_with_the_arguments_goes_back_and_a_wrong_name_has_no_arguments(
        client: Client, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # the SDK's own checker's words
    bad_name = tool_call("add", {"a": 1, "b": 2}, "c3")
    bad_name["function"]["name"] = ["add"]  # a model's JSON, parsed as it came
    server.handler = scripted([tool_call("add", {"a": "one"}, "c1"), tool_call("nope", {"a": 1}, "c2"), bad_name],
                              "Sorry.")
    seen: list[Any] = []
    assert client.run_tools("x", tools=[add], on_tool=lambda *args: seen.append(args)) == "Sorry."
    results = [m["content"] for m in server.requests[1].json["messages"][2:]]
    assert results == ["Error: the arguments do not fit add(): $: 'b' is required; $.a: expected integer, got"
                       " string 'one'. Call it again.",
                       "Error: there is no tool named 'nope'; the tools are add.",
                       "Error: there is no tool named \"['add']\"; the tools are add."]
    assert [(name, arguments) for name, arguments, _ in seen] == [("add", {"a": "one"}), ("nope", None),
                                                                  ("['add']", None)]


def test_a_result_json_cannot_hold_goes_back_as_its_text(client: Client, server: LoopbackServer) -> None:
    def loop() -> Dict[str, Any]:  # read at run time, on Python 3.8 too
        """Returns a dict that holds itself."""
        value: dict[str, Any] = {"name": "loop"}
        value["self"] = value
        return value

    server.handler = scripted([tool_call("loop", {})], "Done.")
    assert client.run_tools("x", tools=[loop]) == "Done."
    assert server.requests[1].json["messages"][2]["content"] == "{'name': 'loop', 'self': {...}}"


def test_parallel_runs_every_call_of_a_turn_at_once(client: Client, server: LoopbackServer) -> None:
    calls = 40  # more than a thread pool's default size on any machine (32 at most)
    everyone = threading.Barrier(calls, timeout=10)

    def meet(name: str) -> str:
        """Waits until every call has started."""
        everyone.wait()
        return name

    server.handler = scripted([tool_call("meet", {"name": f"n{i}"}, f"c{i}") for i in range(calls)], "met")
    assert client.run_tools("x", tools=[meet], parallel=True) == "met"
    assert [m["content"] for m in server.requests[1].json["messages"][2:]] == [f"n{i}" for i in range(calls)]


def test_the_text_streamed_beside_tool_calls_is_kept_whole_in_the_conversation(client: Client,
                                                                              server: LoopbackServer) -> None:
    def answer(request: Request, wire: Wire) -> None:
        if request.number > 1:
            wire.sse([event(chunk("3.")), event(chunk(finish_reason="stop")), "data: [DONE]\n\n"])
            return
        calls = chunk()
        calls["choices"][0]["delta"] = {"tool_calls": [dict(tool_call("add", {"a": 1, "b": 2}), index=0)]}
        wire.sse([event(chunk("Let me ")), event(chunk("add.")), event(calls),
                  event(chunk(finish_reason="tool_calls")), "data: [DONE]\n\n"])

    server.handler = answer
    assert list(client.run_tools("1+2?", tools=[add], stream=True)) == ["Let me ", "add.", "3."]
    assert server.requests[1].json["messages"][1]["content"] == "Let me add."
