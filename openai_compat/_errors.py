"""The exception tree, and how a server's error body becomes one of its exceptions.

::

    OpenAICompatError
    ├── APIConnectionError        cannot connect, connection dropped, stream cut off
    │   └── APITimeoutError       a connect, read or total-deadline timeout
    ├── APIStatusError            a non-2xx answer: .status_code .message .body .request_id .code
    │   ├── BadRequestError           400
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── ConflictError             409
    │   ├── UnprocessableEntityError  422
    │   ├── RateLimitError            429
    │   └── InternalServerError       >= 500
    ├── APIResponseError          a 2xx the SDK cannot use: not JSON, no choices, an error object
    │   └── EmptyAnswerError      the model spent its max_tokens thinking and gave no answer
    ├── UnhandledToolCallsError   chat() got tool calls, which a str cannot hold
    ├── JSONOutputError           chat_json() got an answer that is not JSON, or not the schema's
    ├── CassetteError             a request in replay that the cassette did not record
    └── BatchItemError            a request of a provider batch job that has no answer

Every exception holds plain data only (never the live response or the request headers), so it
pickles and never carries the API key.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

#: How much of a body an exception keeps, and how much of a message it shows.
BODY_EXCERPT_CHARS = 2000
MESSAGE_CHARS = 500

#: Response headers that carry a request id, most specific first.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "openai-request-id", "x-litellm-call-id", "x-generation-id",
                      "x-amzn-requestid", "cf-ray")
_REQUEST_ID_NAMES = frozenset(REQUEST_ID_HEADERS)


class OpenAICompatError(Exception):
    """The root of every error this SDK raises.

        >>> from openai_compat import Client, OpenAICompatError
        >>> try:
        ...     Client("http://127.0.0.1:9/v1", max_retries=0).chat("hi", model="m")
        ... except OpenAICompatError as exc:
        ...     print(type(exc).__name__)
        APIConnectionError
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the message, then restore every attribute: extra constructor
        # arguments never get lost in a pickle round trip (multiprocessing, joblib).
        return (type(self), (self.message,), self.__dict__)

    def __str__(self) -> str:
        return self.message


class APIConnectionError(OpenAICompatError):
    """The server could not be reached, or the connection broke before the answer ended."""


class APITimeoutError(APIConnectionError):
    """A connect or read timeout, or the total deadline of a call, ran out."""


class APIStatusError(OpenAICompatError):
    """The server answered with a non-2xx status.

    Attributes: ``status_code``, ``message`` (the server's own words), ``body`` (the parsed
    JSON, or an excerpt of the text), ``request_id``, ``code`` (the error code in the body, if
    any) and ``retry_after`` (seconds the server asked to wait, if it said).

        >>> from openai_compat import APIStatusError
        >>> exc = APIStatusError("Invalid API key", status_code=401, request_id="req_1")
        >>> str(exc)
        'HTTP 401: Invalid API key (request id req_1)'
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 0,
        body: Any = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = f"HTTP {self.status_code}: {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(APIStatusError):
    """400: the server rejected the request body."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: wrong base URL, path or model name."""


class ConflictError(APIStatusError):
    """409: the server reports a conflicting request (retried)."""


class UnprocessableEntityError(APIStatusError):
    """422: the body is well-formed JSON the server could not accept."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` holds the wait the server asked for."""


class InternalServerError(APIStatusError):
    """5xx: the server or a proxy in front of it failed (retried)."""


class APIResponseError(OpenAICompatError):
    """A 2xx answer the SDK cannot use: not JSON, no choices, or an error object.

    ``body`` holds an excerpt of what came, ``request_id`` and ``code`` what the server said.

        >>> from openai_compat import APIResponseError
        >>> str(APIResponseError("the response has no choices", request_id="abc"))
        'the response has no choices (request id abc)'
    """

    def __init__(
        self,
        message: str,
        *,
        body: Any = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.body = body
        self.request_id = request_id
        self.code = code

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class EmptyAnswerError(APIResponseError):
    """A reasoning model spent its whole ``max_tokens`` thinking and never answered.

    ``reasoning`` holds what it thought, so nothing is lost; raise ``max_tokens`` or think less.

        >>> from openai_compat import EmptyAnswerError
        >>> exc = EmptyAnswerError("the model spent its max_tokens thinking", reasoning="Let me see...")
        >>> exc.reasoning
        'Let me see...'
    """

    def __init__(self, message: str, *, reasoning: str = "", request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.reasoning = reasoning


class UnhandledToolCallsError(OpenAICompatError):
    """``chat()`` got tool calls back, which a plain ``str`` cannot carry.

    Nothing is lost: ``assistant_message`` is the assistant message dict as the server sent it (append it
    to your message list), ``tool_calls`` its calls. Use ``Client.chat_message()`` to get that
    dict without an exception.

        >>> from openai_compat import UnhandledToolCallsError
        >>> msg = {"role": "assistant", "content": None,
        ...        "tool_calls": [{"id": "1", "type": "function",
        ...                        "function": {"name": "add", "arguments": "{}"}}]}
        >>> print(UnhandledToolCallsError.from_message(msg))
        the model answered with tool calls (add) instead of text: use chat_message() to handle them
    """

    def __init__(self, text: str, *, message: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.assistant_message: dict[str, Any] = dict(message or {})
        self.tool_calls = list(self.assistant_message.get("tool_calls") or [])

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> UnhandledToolCallsError:
        """Build the error for an assistant ``message`` that holds tool calls."""
        names = ", ".join(
            str((call.get("function") or {}).get("name"))
            for call in message.get("tool_calls") or []
            if isinstance(call, dict)
        )
        return cls(
            f"the model answered with tool calls ({names}) instead of text: use chat_message() to handle them",
            message=message,
        )


class JSONOutputError(OpenAICompatError):
    """``chat_json()`` got an answer that is not JSON, or JSON its schema does not allow.

    ``text`` holds the answer as it came; ``errors`` lists what was wrong, one readable line
    each (``"$.items[2].price: expected number, got string '3'"``).

        >>> from openai_compat import JSONOutputError
        >>> JSONOutputError("not JSON", text="Sure! Here it is").text
        'Sure! Here it is'
    """

    def __init__(self, message: str, *, text: str = "", errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.errors = list(errors or [])


_STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` with runs of white space folded, cut to ``limit`` characters."""
    text = _SPACE.sub(" ", text).strip()
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
    title = _TITLE.search(raw)
    if title:
        return shorten(title.group(1).decode("utf-8", "replace"))
    return shorten(_TAG.sub(" ", raw.decode("utf-8", "replace")))


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
    if message == "(empty body)" and reason:
        message = f"{reason} (empty body)"
    if "validation error" in message and isinstance(body, dict) and not isinstance(body.get("detail"), list):
        problems = validation_problems(body)  # pydantic's dump inside a message: llama-cpp-python
        if problems:
            message = "the server rejected the request: " + "; ".join(problems)
    if status_code >= 500:
        cls: type[APIStatusError] = InternalServerError
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
_PYDANTIC_PROBLEM = re.compile(
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
    found = _PYDANTIC_PROBLEM.findall(message) if "validation error" in message else []
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
