"""A tool's JSON schema from a plain Python function: its signature, its type hints, and the
parameter descriptions of its docstring (Google, NumPy and reST styles).

Types: ``str``, ``int``, ``float``, ``bool``, ``None``, ``list[...]``, ``tuple[...]``,
``dict[str, ...]``, ``Optional`` and other unions, ``Literal``, ``Enum``, ``TypedDict``,
dataclasses, and pydantic models when pydantic is installed; a parameter with no hint takes
any JSON value. ``build_arguments()`` turns the model's arguments back into those types.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import typing
from collections import abc
from typing import Any, Callable

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
_ARRAYS = (list, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set, abc.MutableSet, abc.Iterable)
# A docstring's parameter lines: Google ("name (type): text"), NumPy ("name : type" then
# indented text), reST (":param name: text").
_GOOGLE_SECTION = r"^\s*(?:Args|Arguments|Parameters|Params):\s*$"
_NUMPY_SECTION = r"^\s*Parameters\s*\n\s*-{3,}\s*$"
_REST_PARAM = r":param\s+(?:[^:]*\s)?(\w+):\s*(.*?)(?=\n\s*:|\Z)"
_SECTION_END = r"^\s*(?:Returns?|Raises|Yields|Examples?|Notes?|See Also|Attributes)\s*:?\s*$"


def function_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The tool description of ``function``, in the chat API's shape.

        >>> def weather(city: str, unit: str = "C") -> str:
        ...     '''The weather now in a city.
        ...
        ...     Args:
        ...         city: The city's name, in English.
        ...     '''
        >>> spec = function_schema(weather)["function"]
        >>> spec["description"], spec["parameters"]["required"]
        ('The weather now in a city.', ['city'])
        >>> spec["parameters"]["properties"]["city"]
        {'type': 'string', 'description': "The city's name, in English."}
    """
    if not callable(function) or not getattr(function, "__name__", "").isidentifier():
        raise TypeError(f"a tool must be a named function, got {function!r:.60}")
    signature = inspect.signature(function)
    hints = _hints(function)
    summary, described = parse_docstring(inspect.getdoc(function) or "")
    properties: dict[str, Any] = {}
    required = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in ("self", "cls") and parameter.annotation is parameter.empty:
            continue
        schema = type_schema(hints[name]) if name in hints else {}
        if name in described:
            schema = dict(schema, description=described[name])
        if parameter.default is parameter.empty:
            required.append(name)
        elif _json_value(parameter.default):
            schema = dict(schema, default=_plain(parameter.default))
        properties[name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    spec: dict[str, Any] = {"name": function.__name__, "parameters": parameters}
    if summary:
        spec["description"] = summary
    return {"type": "function", "function": spec}


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError) as exc:
        raise TypeError(f"the type hints of {function.__name__}() cannot be read: {exc}") from None


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of the Python type ``hint``."""
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        options = [a for a in args if a is not type(None)]
        schema = type_schema(options[0]) if len(options) == 1 else {"anyOf": [type_schema(a) for a in options]}
        return {"anyOf": [schema, {"type": "null"}]} if len(options) < len(args) else schema
    if origin is typing.Literal:
        values = list(args)
        kinds = {_SIMPLE.get(type(v)) for v in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if origin in _ARRAYS or hint in (list, set, frozenset):
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin is tuple or hint is tuple:
        if args and args[-1] is not Ellipsis:
            return {"type": "array", "prefixItems": [type_schema(a) for a in args], "minItems": len(args),
                    "maxItems": len(args)}
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin in (dict, abc.Mapping, abc.MutableMapping) or hint is dict:
        if len(args) == 2:
            return {"type": "object", "additionalProperties": type_schema(args[1])}
        return {"type": "object"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        kinds = {_SIMPLE.get(type(v)) for v in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        fields = typing.get_type_hints(hint)
        return {"type": "object", "properties": {f.name: type_schema(fields[f.name]) for f in dataclasses.fields(hint)},
                "required": [f.name for f in dataclasses.fields(hint)
                             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]}
    if _is_typed_dict(hint):
        fields = typing.get_type_hints(hint)
        required = getattr(hint, "__required_keys__", frozenset(fields) if hint.__total__ else frozenset())
        return {"type": "object", "properties": {k: type_schema(v) for k, v in fields.items()},
                "required": [k for k in fields if k in required]}
    if hasattr(hint, "model_json_schema"):  # a pydantic v2 model
        model_schema: dict[str, Any] = hint.model_json_schema()
        return model_schema
    raise TypeError(f"no JSON schema for the type {hint!r}: use str, int, float, bool, list, dict, Optional,"
                    " Literal, an Enum, a TypedDict, a dataclass or a pydantic model")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType"  # X | None


def _is_typed_dict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def _json_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict, enum.Enum))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary of a docstring (its first paragraph) and each parameter's description.

        >>> parse_docstring(":param city: The city.\\n:param unit: C or F.")
        ('', {'city': 'The city.', 'unit': 'C or F.'})
    """
    parts = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    summary = "" if re.match(r"\s*(:param|Args:|Arguments:|Parameters)", parts[0]) else " ".join(parts[0].split())
    described = {name: " ".join(text.split()) for name, text in re.findall(_REST_PARAM, doc, re.S)}
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        numpy = index + 1 < len(lines) and re.match(_NUMPY_SECTION, f"{line}\n{lines[index + 1]}", re.M)
        if re.match(_GOOGLE_SECTION, line) or numpy:
            described.update(_section(lines[index + (2 if numpy else 1):], bool(numpy)))
    return summary, described


def _section(lines: list[str], numpy: bool) -> dict[str, str]:
    described: dict[str, list[str]] = {}
    indent = None
    current = None
    for line in lines:
        if not line.strip():
            continue
        if re.match(_SECTION_END, line) or (numpy and re.match(r"^\s*-{3,}\s*$", line)):
            break
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        if depth == indent:
            head = re.match(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line) if not numpy else \
                re.match(r"^\s*(\w+)\s*(?::.*)?$", line)
            if head is None:
                break
            current = head.group(1)
            described[current] = [head.group(2)] if not numpy else []
        elif current is not None:
            described[current].append(line.strip())
    return {name: " ".join(" ".join(words).split()) for name, words in described.items()}


def build_arguments(function: Callable[..., Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` (parsed JSON) with each value made the type its parameter names: an Enum
    member, a dataclass, a pydantic model; the rest as they came."""
    hints = _hints(function)
    return {name: _build(hints.get(name), value) for name, value in arguments.items()}


def _build(hint: Any, value: Any) -> Any:
    if hint is None or value is None:
        return value
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if _is_union(hint) and len(args) == 1:
        return _build(args[0], value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        fields = typing.get_type_hints(hint)
        return hint(**{k: _build(fields.get(k), v) for k, v in value.items()})
    if hasattr(hint, "model_validate") and isinstance(value, dict):
        return hint.model_validate(value)
    return value
