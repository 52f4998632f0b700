"""JSON in a model's answer: parsing it out of the text, fenced or not."""

from __future__ import annotations

import json
from typing import Any

from ._errors import JSONOutputError


def parse_json_output(text: str) -> Any:
    """The JSON value in a model's answer, allowing a fenced code block around it."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[-1] if "\n" in candidate else candidate[3:]
        candidate = candidate.rsplit("```", 1)[0].strip()
    try:
        return json.loads(candidate)
    except ValueError as exc:
        raise JSONOutputError(f"the model's answer is not JSON ({exc}): {text[:200]!r}", text=text) from None
