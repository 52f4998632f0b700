"""JSON Schemas for structured output: made from Python types, and checked locally.

``schema_of()`` accepts a JSON Schema dict, a dataclass type, a ``TypedDict``, or any class
with pydantic's ``model_json_schema()`` / ``model_validate()`` (duck-typed: pydantic is never
imported). ``check()`` validates a value against the subset of JSON Schema that structured
outputs use, or with ``jsonschema`` when it is installed.
"""

from __future__ import annotations

import importlib
import typing
from typing import Any, Callable, NamedTuple

NoneType = type(None)


class Schema(NamedTuple):
    """A schema to send, its name, and how to turn a checked value into the caller's type."""

    schema: dict[str, Any]
    name: str
    build: Callable[[Any], Any]


def schema_of(spec: Any) -> Schema:
    """The ``Schema`` for a JSON Schema dict, a dataclass, a ``TypedDict`` or a pydantic-style class.

        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class City:
        ...     name: str
        ...     population: int
        >>> schema_of(City).schema["required"], schema_of(City).build({"name": "Oslo", "population": 709000})
        (['name', 'population'], City(name='Oslo', population=709000))
    """
    import dataclasses  # on use: it imports inspect and ast, which importing this package need not

    if isinstance(spec, dict):
        return Schema(spec, _name(spec.get("title")) or "response", lambda value: value)
    if isinstance(spec, type) and callable(getattr(spec, "model_json_schema", None)):
        return Schema(spec.model_json_schema(), _name(spec.__name__), spec.model_validate)  # type: ignore[attr-defined]
    if isinstance(spec, type) and (dataclasses.is_dataclass(spec) or _is_typeddict(spec)):
        defs: dict[str, Any] = {}
        schema = _object_schema(spec, defs)
        if defs:
            schema["$defs"] = defs
        return Schema(schema, _name(spec.__name__), lambda value: _build(spec, value))
    raise TypeError(
        "schema must be a JSON Schema dict, a dataclass, a TypedDict, or a class with model_json_schema(),"
        f" got {spec!r:.80}"
    )


def _name(text: Any) -> str:
    """A schema name as OpenAI accepts it: letters, digits, _ and -, at most 64."""
    if not isinstance(text, str):
        return ""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)[:64]


def _is_typeddict(cls: type) -> bool:
    return issubclass(cls, dict) and hasattr(cls, "__total__")


def _required_keys(cls: type, names: list[str]) -> list[str]:
    keys = getattr(cls, "__required_keys__", None)  # Python 3.9 and later
    if keys is None:
        keys = names if getattr(cls, "__total__", True) else ()
    return [n for n in names if n in keys]


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    hints = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    else:
        names = list(hints)
        required = _required_keys(cls, names)
    return {
        "type": "object",
        "properties": {name: _type_schema(hints[name], defs) for name in names},
        "required": required,
        "additionalProperties": False,
    }


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", NoneType: "null"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is Any:
        return {}
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        options = [_type_schema(a, defs) for a in args]
        return {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set):
        return {"type": "array", "items": _type_schema(args[0], defs) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs) if len(args) == 2 else {}}
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typeddict(hint)):
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # a placeholder first: a type may refer to itself
            defs[hint.__name__] = _object_schema(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    raise TypeError(f"no JSON Schema for the type {hint!r}: use a dict schema for it")


def _build(hint: Any, value: Any) -> Any:
    """``value`` (already checked) as ``hint``: nested dataclasses become instances."""
    import dataclasses

    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = typing.get_type_hints(hint)
        return hint(**{k: _build(hints.get(k, Any), v) for k, v in value.items()})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args and isinstance(value, list):
        return [_build(args[0], v) for v in value]
    if origin is typing.Union and value is not None:
        for option in args:
            if isinstance(option, type) and dataclasses.is_dataclass(option) and isinstance(value, dict):
                return _build(option, value)
    return value


def strict_allowed(schema: Any) -> bool:
    """Whether OpenAI's ``strict`` mode accepts ``schema``: every object closed and fully required."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            properties = schema.get("properties") or {}
            if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(properties):
                return False
        return all(strict_allowed(v) for k, v in schema.items() if k != "enum" and k != "const")
    if isinstance(schema, list):
        return all(strict_allowed(v) for v in schema)
    return True


# -- the checker ------------------------------------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def check(value: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"$.path: what is wrong"``; [] when it fits.

        >>> schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n", "m"]}
        >>> check({"n": 3, "m": None}, schema), len(check({"n": "3"}, schema))
        ([], 2)
    """
    try:
        jsonschema = importlib.import_module("jsonschema")  # optional, never a dependency
    except ImportError:
        errors: list[str] = []
        _check(value, schema, schema, "$", errors)
        return errors
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _check(value: Any, schema: Any, root: dict[str, Any], path: str, errors: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, errors)
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_TYPES.get(k, lambda v: True)(value) for k in names):
            errors.append(f"{path}: expected {' or '.join(names)}, got {_kind(value)} {value!r:.40}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r:.40} is not one of {schema['enum']!r:.80}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r:.40}, got {value!r:.40}")
    for key in ("anyOf", "oneOf"):
        if key in schema and not any(_fits(value, option, root, path) for option in schema[key]):
            errors.append(f"{path}: {value!r:.40} matches none of the allowed shapes")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                errors.append(f"{path}: {name!r} is required")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in properties:
                _check(item, properties[name], root, where, errors)
            elif extra is False:
                errors.append(f"{path}: {name!r} is not allowed (additionalProperties is false)")
            elif isinstance(extra, dict):
                _check(item, extra, root, where, errors)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _check(item, schema["items"], root, f"{path}[{i}]", errors)


def _fits(value: Any, schema: Any, root: dict[str, Any], path: str) -> bool:
    errors: list[str] = []
    _check(value, schema, root, path, errors)
    return not errors


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only references within the schema are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    if node is None:
        raise ValueError(f"the schema refers to {ref!r}, which it does not define")
    return node


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
