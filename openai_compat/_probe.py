"""Knowing an endpoint: its models, and what it really does, probed with tiny requests.

``probe()`` asks one question per request, ``max_tokens`` of 8 at most and no retries, and
keeps the evidence (status, a short message) for each answer. The worst case is 12 requests
(14 HTTP requests, the two streams counted once each) and about 80 generated tokens.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ._delta import REASONING_FIELDS
from ._errors import APIStatusError, OpenAICompatError

#: Where servers put a model's context length, most specific first.
CONTEXT_FIELDS = ("context_length", "max_model_len", "context_window", "max_context_length", "n_ctx",
                  "context_size", "max_input_tokens")


def models_of(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """The models in a ``/models`` answer, each as the server sent it plus ``context_length``."""
    data = listing.get("data")
    models = []
    for item in data if isinstance(data, list) else ():
        if isinstance(item, dict):
            models.append(dict(item, context_length=context_length(item)))
    return models


def context_length(model: dict[str, Any]) -> int | None:
    """The context length a model entry names, in whichever field the server uses, or None."""
    places = [model, model.get("meta"), model.get("top_provider"), model.get("metadata")]
    for place in places:
        if isinstance(place, dict):
            for field in (*CONTEXT_FIELDS, "n_ctx_train"):
                value = place.get(field)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


class ProbeItem(NamedTuple):
    """One thing probed: ``result`` is ``"ok"``, ``"no"``, ``"unknown"`` or ``"skipped"``."""

    name: str
    result: str
    reason: str
    status: int | None = None


class ProbeReport(NamedTuple):
    """What a server really does, item by item, with the evidence for each.

        >>> report = ProbeReport("http://127.0.0.1:8080/v1", "tiny", [ProbeItem("blocking chat", "ok", "HTTP 200")])
        >>> print(report.table())
        blocking chat  ok  HTTP 200
    """

    base_url: str
    model: str
    items: list[ProbeItem]

    def result(self, name: str) -> str:
        return next((item.result for item in self.items if item.name == name), "unknown")

    @property
    def ok(self) -> bool:
        """Whether blocking and streamed chat both work: the least a chat client needs."""
        return self.result("blocking chat") == "ok" and self.result("streaming chat") == "ok"

    def table(self) -> str:
        width = max((len(item.name) for item in self.items), default=0)
        return "\n".join(f"{item.name:<{width}}  {item.result:<7} {item.reason}".rstrip() for item in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "ok": self.ok,
                "items": [item._asdict() for item in self.items]}


def _short(value: Any, size: int = 60) -> str:
    """``value`` (a JSON value) as text of at most ``size`` characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= size else text[: size - 1] + "…"


def _refusal(name: str, exc: OpenAICompatError) -> ProbeItem:
    status = exc.status_code if isinstance(exc, APIStatusError) else None
    return ProbeItem(name, "no", f"HTTP {status}: {_short(exc.message)}" if status else _short(str(exc)), status)


SAY_HI = [{"role": "user", "content": "Say hi."}]
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "probe", "schema": {
    "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}}
NOOP_TOOL = [{"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}]
AFTER_CHAT = ("usage in blocking answers", "streaming chat", "[DONE]", "stream_options.include_usage", "n > 1",
              "json_object", "json_schema", "tools", "max_completion_tokens", "reasoning field", "/completions",
              "/embeddings", "/responses")


def run_probe(client: Any, model: str) -> ProbeReport:
    """Probe ``client``'s server with ``model``: see ``Client.probe()``."""
    return _Prober(client, model).run()


class _Prober:
    """Asks one question per request, and notes each answer as a ``ProbeItem``."""

    def __init__(self, client: Any, model: str) -> None:
        self.client = client
        self.model = model
        self.quick: dict[str, Any] = {"model": model, "max_retries": 0}
        self.items: list[ProbeItem] = []
        self.reasoning: str | None = None
        self.failure = ""  # the last refusal, in full

    def ask(self, name: str, call: Any, judge: Any = lambda answer: ("ok", "accepted", 200)) -> Any:
        try:
            answer = call()
        except OpenAICompatError as exc:
            self.items.append(_refusal(name, exc))
            self.failure = str(exc)
            return None
        self.items.append(ProbeItem(name, *judge(answer)))
        return answer

    def chat(self, **body: Any) -> Any:
        return self.client.create_chat_completion(**self.quick, **body)

    def run(self) -> ProbeReport:
        blocking = self.ask("blocking chat", lambda: self.chat(messages=SAY_HI, max_tokens=8),
                            lambda a: ("ok", f"HTTP 200: {_short(_content(a))!r}", 200))
        if blocking is None:
            self.items[0] = self.items[0]._replace(reason=self.failure)  # the reason in full, once
            self.items += [ProbeItem(name, "skipped", "see blocking chat") for name in AFTER_CHAT]
        else:
            usage = blocking.get("usage") or {}
            self.items.append(ProbeItem("usage in blocking answers", "ok" if isinstance(
                usage.get("completion_tokens"), int) else "no", _short(usage) if usage else "no usage object", 200))
            self.reasoning = _reasoning_field(blocking)
            self.streams()
            self.features()
            self.endpoints()
        self.errors()
        return ProbeReport(self.client.base_url, self.model, self.items)

    def streams(self) -> None:
        stream = self.ask("streaming chat", lambda: _stream(self.chat, messages=SAY_HI, max_tokens=8),
                          lambda s: ("ok", f"{len(s.chunks)} chunks", 200))
        if stream is not None:
            self.items.append(ProbeItem("[DONE]", "ok" if stream.done else "no", "sent" if stream.done else
                                        "the stream ended without it (by finish_reason or by closing)", 200))
            self.reasoning = self.reasoning or stream.reasoning
        self.ask("stream_options.include_usage",
                 lambda: _stream(self.chat, messages=SAY_HI, max_tokens=8, stream_options={"include_usage": True}),
                 lambda s: ("ok", "accepted and honoured: a usage chunk came", 200) if s.usage
                 else ("no", "accepted but ignored: no usage chunk", 200))

    def features(self) -> None:
        self.ask("n > 1", lambda: self.chat(messages=SAY_HI, max_tokens=4, n=2),
                 lambda a: ("ok", "2 choices", 200) if len(a.get("choices") or ()) >= 2
                 else ("no", f"ignored: {len(a.get('choices') or ())} choice came", 200))
        self.ask("json_object", lambda: self.chat(messages=[{"role": "user", "content": "Answer in JSON."}],
                                                  max_tokens=8, response_format={"type": "json_object"}))
        self.ask("json_schema", lambda: self.chat(messages=SAY_HI, max_tokens=8, response_format=JSON_SCHEMA))
        self.ask("tools", lambda: self.chat(messages=SAY_HI, max_tokens=8, tools=NOOP_TOOL))
        # max_tokens bounds the answer of a server that ignores max_completion_tokens.
        self.ask("max_completion_tokens", lambda: self.chat(messages=SAY_HI, max_completion_tokens=4, max_tokens=8),
                 lambda a: _honoured(a, 4))
        self.items.append(ProbeItem("reasoning field", "ok" if self.reasoning else "no", f"{self.reasoning} seen"
                                    if self.reasoning else "none seen in these short answers", 200))

    def endpoints(self) -> None:
        model = self.model
        self.ask("/completions", lambda: self.client.create_completion(prompt="Hi", max_tokens=4, **self.quick))
        self.ask("/embeddings", lambda: self.client.post_json("/embeddings", {"model": model, "input": "hi"},
                                                              max_retries=0))
        self.ask("/responses", lambda: self.client.post_json(
            "/responses", {"model": model, "input": "Say hi.", "max_output_tokens": 16}, max_retries=0))

    def errors(self) -> None:
        """One deliberately bad request, to see how this server shapes its errors."""
        bad = {"model": self.model, "messages": "this should be a list", "max_tokens": 1}
        try:
            self.client.post_json("/chat/completions", bad, max_retries=0)
        except APIStatusError as exc:
            self.items.append(ProbeItem("error body", "ok", f"HTTP {exc.status_code}, {_shape(exc.body)}:"
                                        f" {_short(exc.message)}", exc.status_code))
        except OpenAICompatError as exc:  # no answer at all
            if str(exc) == self.failure:
                self.items.append(ProbeItem("error body", "skipped", "see blocking chat"))
            else:
                self.items.append(ProbeItem("error body", "no", _short(str(exc))))
        else:
            self.items.append(ProbeItem("error body", "no", "a bad request was accepted (HTTP 2xx)", 200))


class _StreamSeen(NamedTuple):
    chunks: list[dict[str, Any]]
    done: bool
    usage: bool
    reasoning: str | None


def _stream(chat: Any, **body: Any) -> _StreamSeen:
    stream = chat(stream=True, **body)
    chunks = list(stream)
    reasoning = next((f for c in chunks for choice in c.get("choices") or () if isinstance(choice, dict)
                      for f in REASONING_FIELDS if (choice.get("delta") or {}).get(f)), None)
    return _StreamSeen(chunks, stream.ended_with_done, any(c.get("usage") for c in chunks), reasoning)


def _content(answer: dict[str, Any]) -> Any:
    """The first choice's content (a blocking answer's choices are objects: parse_completion() checks)."""
    message = answer["choices"][0].get("message")
    return message.get("content") if isinstance(message, dict) else None


def _reasoning_field(answer: dict[str, Any]) -> str | None:
    for choice in answer["choices"]:
        message = choice.get("message")
        for field in REASONING_FIELDS:
            if isinstance(message, dict) and message.get(field):
                return field
    return None


def _honoured(answer: dict[str, Any], limit: int) -> tuple[str, str, int]:
    tokens = (answer.get("usage") or {}).get("completion_tokens")
    if not isinstance(tokens, int):
        return "unknown", "accepted; no usage to tell whether it was honoured", 200
    if tokens <= limit:
        return "ok", f"accepted and honoured ({tokens} tokens)", 200
    return "no", f"accepted but ignored ({tokens} tokens for a limit of {limit})", 200


def _shape(body: Any) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return "{error: {message}} (OpenAI style)"
        if isinstance(body.get("error"), str):
            return "{error: text}"
        if body.get("object") == "error":
            return "{object: error, message} (vLLM style)"
        if "detail" in body:
            return "{detail} (FastAPI style)"
        return "a JSON object of its own"
    if not isinstance(body, str):
        return "a JSON value of its own"
    return "an HTML page" if "<html" in body.lower() else ("plain text" if body else "an empty body")
