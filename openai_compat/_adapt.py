"""Adaptive retries: learn which optional fields a server refuses, and stop sending them.

Opt in with ``Client(adapt=True)``. On a 400 or 422 whose message names one field from a short
list, the request goes once more without it (or renamed), and the client remembers. Fields
whose loss would change what the answer means (``response_format``, ``tools``) are never
touched, and neither are authentication errors: those raise as they are.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from ._errors import APIStatusError

logger = logging.getLogger("openai_compat")

#: Optional fields a server may refuse, and what to do: drop it, or rename it.
DROPPABLE = ("stream_options", "n", "logprobs", "top_logprobs", "parallel_tool_calls", "seed")
RENAMES = {"max_completion_tokens": "max_tokens", "max_tokens": "max_completion_tokens"}
#: Fields that change the meaning of the answer: a refusal of one of these is raised.
NEVER = ("response_format", "tools", "tool_choice")


class Adaptations:
    """What one client learned about its server, shared by its threads.

        >>> adapt = Adaptations()
        >>> adapt.apply({"model": "m", "stream_options": {"include_usage": True}})
        {'model': 'm', 'stream_options': {'include_usage': True}}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[tuple[str, str], ...] = ()  # ("drop", field) or ("rename", field)

    def __getstate__(self) -> tuple[tuple[str, str], ...]:
        return self._rules

    def __setstate__(self, rules: tuple[tuple[str, str], ...]) -> None:
        self._lock = threading.Lock()
        self._rules = rules

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        """What was learned: ``("drop", "stream_options")``, ``("rename", "max_completion_tokens")``."""
        return self._rules

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with what was learned applied (the same dict when nothing applies)."""
        rules = self._rules
        if not rules or not any(field in body for _, field in rules):
            return body
        body = dict(body)
        for action, field in rules:
            if field not in body:
                continue
            value = body.pop(field)
            if action == "rename" and RENAMES[field] not in body:
                body[RENAMES[field]] = value
        return body

    def learn(self, error: APIStatusError, body: dict[str, Any]) -> dict[str, Any] | None:
        """The body to send once more, when ``error`` refuses one optional field of ``body``."""
        if error.status_code not in (400, 422):
            return None
        text = f"{error.message} {error.body!r}"
        named = [f for f in (*DROPPABLE, *RENAMES, *NEVER) if re.search(rf"\b{f}\b", text) and f in body]
        if "max_tokens" in named and "max_completion_tokens" in named:
            # "max_tokens is not supported: use max_completion_tokens": the refused one is the one sent
            sent: list[str] = [f for f in RENAMES if f in body]
            named = [f for f in named if f not in RENAMES] + sent[:1]
        if len(named) != 1 or named[0] in NEVER:
            return None
        field = named[0]
        rule = ("rename" if field in RENAMES else "drop", field)
        with self._lock:
            if rule in self._rules:
                return None  # already applied, and refused anyway: something else is wrong
            self._rules = (*self._rules, rule)
        done = f"renamed {field} to {RENAMES[field]}" if rule[0] == "rename" else f"dropped {field}"
        logger.info("the server refused %s (HTTP %s: %s): %s from now on", field, error.status_code,
                    error.message[:200], done)
        return self.apply(body)
