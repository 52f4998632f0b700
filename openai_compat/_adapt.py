"""Adaptive retries: learn which optional fields a server refuses for a model, and stop sending them.

On by default (``Client(adapt=False)`` switches it off). On a 400 or 422 that names one field
of the request (by the error's ``param`` first, then by its words), the request goes once more
without it, or renamed (``max_tokens`` and ``max_completion_tokens``), and the client remembers
it for that model, and in a file when given ``capabilities_cache=``. Fields whose loss would
change what the answer means (``response_format``, ``tools``) are never touched, and neither
are authentication errors: those raise as they are.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, Dict, Tuple

from ._errors import APIStatusError
from ._warnings import warn

logger = logging.getLogger("openai_compat")

#: Optional fields a server may refuse, and what to do: drop it, or rename it.
DROPPABLE = ("stream_options", "n", "logprobs", "top_logprobs", "parallel_tool_calls", "seed")
#: Sampling fields a strict server (a reasoning model) refuses: dropped with a warning, since
#: the answer is then sampled the server's way.
SAMPLING = ("temperature", "top_p", "stop", "presence_penalty", "frequency_penalty")
RENAMES = {"max_completion_tokens": "max_tokens", "max_tokens": "max_completion_tokens"}
#: Fields that change the meaning of the answer: a refusal of one of these is raised.
NEVER = ("response_format", "tools", "tool_choice")
_FIELDS = (*DROPPABLE, *SAMPLING, *RENAMES, *NEVER)
#: Error codes that say a field or its value is refused.
REFUSAL_CODES = ("unsupported_parameter", "unsupported_value", "invalid_request_error")

Rule = Tuple[str, str]  # ("drop", field) or ("rename", field)
Rules = Dict[str, Tuple[Rule, ...]]  # by model


class Adaptations:
    """What one client learned about its server, model by model, shared by its threads;
    kept in ``cache`` (a JSON file) when given, for the next run.

        >>> adapt = Adaptations()
        >>> adapt.apply({"model": "m", "stream_options": {"include_usage": True}})
        {'model': 'm', 'stream_options': {'include_usage': True}}
    """

    def __init__(self, cache: str | os.PathLike[str] | None = None, host: str = "") -> None:
        self._lock = threading.Lock()
        self._cache = os.fspath(cache) if cache is not None else None
        self._host = host
        self._rules: Rules = self._load()

    def __getstate__(self) -> tuple[Rules, str | None, str]:
        return self._rules, self._cache, self._host

    def __setstate__(self, state: tuple[Rules, str | None, str]) -> None:
        self._lock = threading.Lock()
        self._rules, self._cache, self._host = state

    @property
    def rules(self) -> dict[str, tuple[Rule, ...]]:
        """What was learned, by model: ``{"o3": (("rename", "max_tokens"),)}``."""
        return dict(self._rules)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with what was learned for its model applied (the same dict when nothing applies)."""
        rules = self._rules.get(str(body.get("model")))
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
        field = refused_field(error, body)
        if field is None or field in NEVER:
            return None
        rule = ("rename" if field in RENAMES else "drop", field)
        model = str(body.get("model"))
        with self._lock:
            learned = self._rules.get(model, ())
            if rule in learned or ("rename", RENAMES.get(field)) in learned:
                return None  # already applied (or its reverse), and refused anyway: something else is wrong
            self._rules = {**self._rules, model: (*learned, rule)}
            self._save()
        done = f"renamed {field} to {RENAMES[field]}" if rule[0] == "rename" else f"dropped {field}"
        if field in SAMPLING:
            warn(f"{self._host or 'the server'} refused {field} for {model}: {done}, so the answer is sampled the"
                 f" server's way ({error.message[:200]})")
        logger.info("the server refused %s for %s (HTTP %s: %s): %s from now on", field, model, error.status_code,
                    error.message[:200], done)
        return self.apply(body)

    def _load(self) -> Rules:
        if self._cache is None or not os.path.exists(self._cache):
            return {}
        try:
            with open(self._cache, encoding="utf-8") as file:
                stored = json.load(file).get(self._host, {})
            return {model: tuple((str(a), str(f)) for a, f in rules if f in _FIELDS) for model, rules in stored.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            logger.warning("ignoring the capabilities cache %s: it is not what this client writes", self._cache)
            return {}

    def _save(self) -> None:
        if self._cache is None:
            return
        try:
            with open(self._cache, encoding="utf-8") as file:
                stored = json.load(file)
        except (OSError, ValueError):
            stored = {}
        if not isinstance(stored, dict):  # what _load() warned about: written over, as a broken file is
            stored = {}
        stored[self._host] = {model: [list(rule) for rule in rules] for model, rules in self._rules.items()}
        temporary = f"{self._cache}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(stored, file, indent=1)
        os.replace(temporary, self._cache)


def refused_field(error: APIStatusError, body: dict[str, Any]) -> str | None:
    """The one field of ``body`` that ``error`` refuses: the error's ``param`` when it names
    one (OpenAI's ``unsupported_parameter``), else the only field its words name, else the one
    they name first ("max_tokens is not supported with this model, use max_completion_tokens")."""
    inner = error.body.get("error") if isinstance(error.body, dict) else None
    param = inner.get("param") if isinstance(inner, dict) else None
    if isinstance(param, str) and param in body and param in _FIELDS:
        return param
    text = f"{error.message} {error.body!r}"
    found = {f: m.start() for f in _FIELDS if f in body for m in [re.search(rf"\b{f}\b", text)] if m}
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    if set(found) == set(RENAMES) or (error.code in REFUSAL_CODES and len(found) == 2 and set(found) & set(RENAMES)):
        return min(found, key=lambda f: found[f])
    return None
