"""Structured output against the real server: the schema reaches it and constrains the model.

llama-cpp-python refuses ``json_schema`` (HTTP 500, "Input should be 'text' or 'json_object'"),
so ``chat_json()`` steps down to ``json_object`` with the schema beside it, which the server
turns into a grammar: even the tiny random model then answers JSON that fits.
"""

from __future__ import annotations

import pytest

from openai_compat import Client, JSONOutputError
from openai_compat._json_output import parse_json_output
from openai_compat._schema import check

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "ok": {"type": "boolean"},
                   "size": {"enum": ["small", "large"]}},
    "required": ["name", "ok", "size"],
    "additionalProperties": False,
}


def test_chat_json_with_a_schema_gets_a_value_the_schema_accepts(client: Client) -> None:
    for seed in range(3):
        value = client.chat_json("Describe a cat as JSON.", schema=SCHEMA, max_tokens=120, seed=seed)
        assert check(value, SCHEMA) == []


def test_the_same_ask_without_a_format_is_not_json(client: Client) -> None:
    text = client.chat("Describe a cat as JSON.", max_tokens=60, seed=0)
    with pytest.raises(JSONOutputError):
        parse_json_output(text)
