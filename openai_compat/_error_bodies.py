"""How an error body becomes an exception: the server's message, code and request id, read from
every shape in the wild, and the class of the exception.

What counts as a request the server finds invalid (``validation_problems()``) and as an
answer that waiting will not change (``is_final()``) is decided here too.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

#: How much of a body an exception keeps, and how much of a message it shows.
BODY_EXCERPT_CHARS = 2000
MESSAGE_CHARS = 500

#: Response headers that carry a request id, most specific first.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "openai-request-id", "x-litellm-call-id", "x-generation-id",
                      "x-amzn-requestid", "cf-ray")
_REQUEST_ID_NAMES = frozenset(REQUEST_ID_HEADERS)
#: Error codes (or types) that say waiting will not help: a quota used up, a prompt too long.
FINAL_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "context_length_exceeded",
                         "exceed_context_size_error"})


#: How servers say a prompt is over the context, lower-cased: OpenAI, DeepSeek, Mistral, vLLM
#: and llama-cpp-python ("maximum context length"), llama.cpp's server, llama-cpp-python's
#: engine, vLLM's engine, text-generation-inference, Ollama, LiteLLM, Groq, Anthropic and
#: Gemini behind gateways.
CONTEXT_WORDINGS = (
    r"maximum context length|context length exceeded|context_length_exceeded"
    r"|exceeds the available context size"
    r"|exceed context window"
    r"|maximum model length"
    r"|max_new_tokens`? must be <="
    r"|exceeds the context length|exceeded max context length"
    r"|contextwindowexceedederror"
    r"|reduce the length of the messages"
    r"|prompt is too long"
    r"|input token count .{0,40}exceeds the maximum"
)

_STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

# Patterns, compiled on first use (re keeps them): importing the package compiles none.
_TITLE = rb"(?is)<title[^>]*>(.*?)</title>"
_TAG = r"<[^>]+>"
_SPACE = r"\s+"


def shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` with runs of white space folded, cut to ``limit`` characters."""
    text = re.sub(_SPACE, " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(raw: bytes) -> tuple[str, Any, str | None]:
    """The message, the body to keep and the error code in an error response's ``raw`` bytes.

    Reads every shape in the wild: ``{"error": {"message": ...}}`` (OpenAI and most hosts),
    ``{"error": "text"}`` (text-generation-inference), ``{"object": "error", "message": ...}``
    (vLLM), ``{"detail": ...}`` (FastAPI servers), an HTML page from a proxy, plain text, nothing.
    """
    try:
        parsed = json.loads(raw)
    except ValueError:
        return _message_from_text(raw), shorten(raw.decode("utf-8", "replace"), BODY_EXCERPT_CHARS), None
    if isinstance(parsed, dict):
        message, code = error_fields(parsed)
        if message is not None:
            return shorten(_without_traceback(message)), parsed, code
    return shorten(json.dumps(parsed)), parsed, None


def error_fields(parsed: dict[str, Any]) -> tuple[str | None, str | None]:
    """The message and code of an error object in ``parsed``, or ``(None, None)`` if none."""
    error = parsed.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or json.dumps(error)
        code = error.get("code") if error.get("code") is not None else error.get("type")
        return str(message), None if code is None else str(code)
    if isinstance(error, str) and error:
        return error, None
    if parsed.get("object") == "error" or (error is not None and "message" in parsed):
        code = parsed.get("code") if parsed.get("code") is not None else parsed.get("type")
        return str(parsed.get("message") or error), None if code is None else str(code)
    if "detail" in parsed:
        return _detail_text(parsed["detail"]), None
    return None, None


def _without_traceback(message: str) -> str:
    """``message`` without the Python traceback some servers append (llama-cpp-python does);
    the full text stays in the exception's ``body``."""
    head = message.split('\n  File "', 1)[0].strip()
    return head or message


def _detail_text(detail: Any) -> str:
    # FastAPI validation errors: [{"loc": ["body", "messages"], "msg": "field required"}, ...]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return detail if isinstance(detail, str) else json.dumps(detail)


def _message_from_text(raw: bytes) -> str:
    if not raw.strip():
        return "(empty body)"
    title = re.search(_TITLE, raw)
    if title:
        return shorten(title.group(1).decode("utf-8", "replace"))
    return shorten(re.sub(_TAG, " ", raw.decode("utf-8", "replace")))


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request id a response's ``headers`` carry, if any."""
    # One pass over the headers: looking up each name in turn costs a KeyError per miss.
    lower_items = getattr(headers, "lower_items", None)
    items = lower_items() if lower_items is not None else ((k.lower(), v) for k, v in headers.items())
    found = {name: value for name, value in items if name in _REQUEST_ID_NAMES and value}
    return next((found[name] for name in REQUEST_ID_HEADERS if name in found), None) if found else None


def status_error(
    status_code: int,
    raw: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    reason: str = "",
    context: str = "",
) -> APIStatusError:
    """The exception for a response with ``status_code`` and body ``raw``; ``context`` (the
    URL, a hint) is added to the message."""
    message, body, code = parse_error_body(raw)
    overflow = is_context_overflow(message, code)
    if message == "(empty body)" and reason:
        message = f"{reason} (empty body)"
    if "validation error" in message and isinstance(body, dict) and not isinstance(body.get("detail"), list):
        problems = validation_problems(body)  # pydantic's dump inside a message: llama-cpp-python
        if problems:
            message = "the server rejected the request: " + "; ".join(problems)
    if overflow:
        cls: type[APIStatusError] = ContextLengthError
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = _STATUS_ERRORS.get(status_code, APIStatusError)
    if context:
        message = f"{message} ({context})"
    return cls(
        message,
        status_code=status_code,
        body=body,
        request_id=request_id,
        code=code,
        retry_after=retry_after,
    )


# One error of pydantic's dump, as Python prints it: the message in '...' or, when it holds a
# quote itself, in "...".
_PYDANTIC_PROBLEM = (
    r"'loc': \(([^)]*)\), 'msg': (?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")(?:, 'input': ([^}]*))?"
)


def validation_problems(body: Any) -> list[str]:
    """``field: problem`` for each field a request-validation error names, or [] if ``body``
    is not one: an OpenAI-style ``invalid_request_error``, a FastAPI ``detail`` list, or
    pydantic's errors inside a message (llama-cpp-python answers those with HTTP 500)."""
    if not isinstance(body, dict):
        return []
    detail = body.get("detail")
    if isinstance(detail, list) and detail and all(isinstance(d, dict) and "msg" in d for d in detail):
        return [_field_problem(d.get("loc", ()), str(d["msg"]), d.get("input")) for d in detail]
    error = body.get("error")
    if not isinstance(error, dict):
        return []
    message = str(error.get("message") or "")
    found = re.findall(_PYDANTIC_PROBLEM, message) if "validation error" in message else []
    if found:
        return [_field_problem([p.strip(" '\"") for p in loc.split(",") if p.strip()], single or double, got or None)
                for loc, single, double, got in found]
    if error.get("type") == "invalid_request_error":
        where = error.get("param")
        return [f"{where}: {_without_traceback(message)}" if where else _without_traceback(message)]
    return []


def _field_problem(location: Any, problem: str, got: Any) -> str:
    parts = [str(p) for p in location if str(p) != "body"] if isinstance(location, (list, tuple)) else []
    field = ".".join(parts) or "request"
    shown = f" (got {shorten(str(got).strip(), 40)})" if got is not None else ""
    return f"{field}: {problem}{shown}"


def is_context_overflow(message: str, code: str | None) -> bool:
    """Whether an error's ``message`` or ``code`` says the prompt is over the model's context."""
    if code in ("context_length_exceeded", "exceed_context_size_error"):
        return True
    return re.search(CONTEXT_WORDINGS, message.lower()) is not None


def is_final(error: Any) -> bool:
    """Whether a status error says the same request will fail the same way however long one
    waits: a used-up quota, a prompt over the context, or a request the server finds invalid
    (llama-cpp-python answers those with HTTP 500)."""
    if isinstance(error, ContextLengthError) or getattr(error, "code", None) in FINAL_CODES:
        return True
    body = getattr(error, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("type") in FINAL_CODES:
        return True
    return bool(validation_problems(body))
