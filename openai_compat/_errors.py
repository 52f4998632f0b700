"""The exception tree. How a server's error body becomes one of these is in ``_error_bodies.py``.

::

    OpenAICompatError
    ├── APIConnectionError        cannot connect, connection dropped, stream cut off
    │   └── APITimeoutError       a connect, read or total-deadline timeout
    ├── APIStatusError            a non-2xx answer: .status_code .message .body .request_id .code
    │   ├── BadRequestError           400
    │   │   └── ContextLengthError    the prompt (with max_tokens) is over the model's context
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── ConflictError             409
    │   ├── UnprocessableEntityError  422
    │   ├── RateLimitError            429
    │   └── InternalServerError       >= 500
    ├── APIResponseError          a 2xx the SDK cannot use: not JSON, no choices, an error object
    │   ├── EmptyAnswerError      the model spent its max_tokens thinking and gave no answer
    │   ├── RefusalError          the model refused: .refusal holds its words
    │   └── ContentFilterError    the server's content filter stopped the answer
    ├── UnhandledToolCallsError   chat() got tool calls, which a str cannot hold
    ├── ToolArgumentsError        a tool call's arguments that are not a JSON object, even repaired
    ├── ToolLoopError             run_tools() ran out of turns: .messages holds the conversation
    ├── JSONOutputError           chat_json() got an answer that is not JSON, or not the schema's
    ├── CassetteError             a request in replay that the cassette did not record
    └── BatchItemError            a request of a provider batch job that has no answer

Every exception holds plain data only (never the live response or the request headers), so it
pickles and never carries the API key.
"""

from __future__ import annotations

from typing import Any


class OpenAICompatError(Exception):
    """The root of every error this SDK raises.

        >>> from openai_compat import Client, OpenAICompatError
        >>> try:
        ...     Client("http://127.0.0.1:9/v1", max_retries=0).chat("hi", model="m")
        ... except OpenAICompatError as exc:
        ...     print(type(exc).__name__)
        APIConnectionError
    """

    #: How many requests the call sent before it gave up (retries included).
    attempts = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the message, then restore every attribute: extra constructor
        # arguments never get lost in a pickle round trip (multiprocessing, joblib).
        return (type(self), (self.message,), self.__dict__)

    def __str__(self) -> str:
        return self.message + self._attempts_note()

    def _attempts_note(self) -> str:
        return f" ({self.attempts} attempts)" if self.attempts > 1 else ""


class APIConnectionError(OpenAICompatError):
    """The server could not be reached, or the connection broke before the answer ended."""

    #: Whether sending again may help: an invalid header or an untrusted certificate will not.
    retryable = True
    #: Whether the server closed the connection before a byte of its answer came back.
    unanswered = False


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
        return text + self._attempts_note()


class BadRequestError(APIStatusError):
    """400: the server rejected the request body."""


class ContextLengthError(BadRequestError):
    """The prompt, with room for ``max_tokens``, is longer than the model's context.

    Recognised by its code (``context_length_exceeded``, llama.cpp's ``exceed_context_size_error``)
    and by each server's wording, whatever the status; never retried, since waiting will not
    shorten the prompt. Shorten the messages, lower ``max_tokens``, or use a longer context.

        >>> from openai_compat import ContextLengthError
        >>> exc = ContextLengthError("This model's maximum context length is 8192 tokens", status_code=400)
        >>> print(exc)
        HTTP 400: This model's maximum context length is 8192 tokens
    """


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
            return f"{self.message} (request id {self.request_id}){self._attempts_note()}"
        return self.message + self._attempts_note()


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


class RefusalError(APIResponseError):
    """The model refused to answer (a ``refusal`` in the message, the stream or the response).

    ``refusal`` holds the model's words and ``text`` any answer text that came before them (a
    stream has already yielded that text).

        >>> from openai_compat import RefusalError
        >>> exc = RefusalError("the model refused: I can't help with that.", refusal="I can't help with that.")
        >>> exc.refusal
        "I can't help with that."
    """

    def __init__(self, message: str, *, refusal: str = "", text: str = "", request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.refusal = refusal
        self.text = text


class ContentFilterError(APIResponseError):
    """The server's content filter stopped the answer (``finish_reason: "content_filter"``).

    ``text`` holds what came before the filter cut in (a stream has already yielded it).

        >>> from openai_compat import ContentFilterError
        >>> ContentFilterError("the content filter stopped the answer", text="Once upon").text
        'Once upon'
    """

    def __init__(self, message: str, *, text: str = "", request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.text = text


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
        names = ", ".join(call_name(call) for call in message.get("tool_calls") or [] if isinstance(call, dict))
        return cls(
            f"the model answered with tool calls ({names}) instead of text: use chat_message() to handle them",
            message=message,
        )


class ToolArgumentsError(OpenAICompatError):
    """A tool call's arguments are not a JSON object, even after the usual repairs.

    ``text`` holds the arguments as the model wrote them and ``name`` the call's name: hand the
    message back to the model as the tool's result, and it can try again.

        >>> from openai_compat import ToolArgumentsError, parse_arguments
        >>> try:
        ...     parse_arguments('{"city": Oslo}')
        ... except ToolArgumentsError as exc:
        ...     print(exc.text)
        {"city": Oslo}
    """

    def __init__(self, message: str, *, text: str = "", name: str | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.name = name


class ToolLoopError(OpenAICompatError):
    """``run_tools()`` reached ``max_turns`` with the model still calling tools.

    ``messages`` holds the whole conversation, every call and result included, to go on from
    or to read.

        >>> from openai_compat import ToolLoopError
        >>> ToolLoopError("out of turns", messages=[{"role": "user", "content": "Hi"}]).messages[0]["role"]
        'user'
    """

    def __init__(self, message: str, *, messages: list[Any] | None = None) -> None:
        super().__init__(message)
        self.messages = list(messages or [])


def call_name(call: dict[str, Any]) -> str:
    """How an error names a tool call: its function's name, or a custom tool's name and type."""
    kind = call.get("type") or "function"
    inner = call.get(kind) if isinstance(call.get(kind), dict) else call.get("function")
    name = inner.get("name") if isinstance(inner, dict) else None
    shown = str(name) if name else "unnamed"
    return shown if kind == "function" else f"{shown} ({kind})"


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
