"""The calls of ``Client`` built on ``chat()``: JSON output, several choices, many prompts.

``chat_json()`` steps down the format ladder (``_json_output.py``), ``chat_choices()`` asks for
``n`` answers and ``batch()`` runs many calls on threads (``_batch.py``). Each is a few lines
over ``chat()`` and the endpoint methods; the logic lives in the module named for it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Literal, Sequence, overload

from ._answers import reply_text
from ._errors import APITimeoutError, RateLimitError
from ._options import NOT_GIVEN, check_deadline
from ._params import Prompt, check_stream, messages_of, split_params
from ._retry import check_policy, remaining

if TYPE_CHECKING:
    from ._call_record import CallRecord
    from ._connection import Connection
    from ._endpoints import Endpoints

    _Base = Endpoints
else:
    _Base = object


class BeyondText(_Base):
    """``chat_json()``, ``chat_choices()`` and ``batch()`` of ``Client``; use ``Client``.

        >>> from openai_compat import Client
        >>> callable(Client("http://127.0.0.1:8080/v1").chat_json)
        True
    """

    # What the client sets up (``_client.py``).
    _connection: Connection
    if TYPE_CHECKING:
        @property
        def last(self) -> CallRecord | None: ...
    chat: Callable[..., Any]
    chat_message: Callable[..., Any]
    complete: Callable[..., Any]

    def chat_json(
        self,
        prompt: Prompt,
        *,
        schema: Any = None,
        retries: int = 0,
        response_format: dict[str, Any] | None = NOT_GIVEN,
        stream: bool = False,
        **params: Any,
    ) -> Any:
        """Send a chat asking for JSON and return the parsed value, checked against ``schema``.

        ``schema`` is a JSON Schema dict, a dataclass, a ``TypedDict`` or a pydantic-style
        class; with a class, the result is an instance of it. The request asks for the schema
        in the most exact way the server takes: a ``json_schema`` format first, then
        ``json_object`` with the schema in the system text, then the instructions alone; the
        client remembers the step that worked. Without ``schema`` it asks for ``json_object``.
        An explicit ``response_format`` is sent exactly as given, with no stepping down.

        The answer is checked locally (with ``jsonschema`` when it is installed): one that is
        not JSON or breaks the schema raises ``JSONOutputError`` with the raw ``text`` and a list
        of ``errors``. ``retries=1`` asks once more, showing the model the errors. An answer cut
        off at ``max_tokens`` before its JSON ended says so, and is not asked again. A server that
        takes a format and ignores it (an answer that is not JSON) is asked once more by a
        forced function call whose parameters are the schema, and the client remembers that.
        ``deadline`` bounds all of it, every request together.

        ``stream=True`` returns a generator of partial values as the answer grows, each a valid
        parse of the JSON so far (its open strings and brackets closed), the last the whole
        value, checked and built into the schema's type.

        With a model that follows instructions:

            from dataclasses import dataclass

            @dataclass
            class City:
                name: str
                population: int

            client = Client("http://127.0.0.1:8080/v1", model="qwen2.5-7b-instruct")
            client.chat_json("The largest city of Norway?", schema=City)   # City(name='Oslo', population=709037)
        """
        from ._json_output import Ladder, ask_json, parse_checked, stream_json
        from ._schema import schema_of

        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"chat_json(): retries must be a whole number >= 0, got {retries!r}")
        spec = schema_of(schema) if schema is not None else None
        messages = messages_of(prompt, params.pop("system", None))
        ladder = self.__dict__.setdefault("_json_ladder", Ladder())  # the format this server took last
        if check_stream("chat_json", stream):
            def open_stream(asked: list[Any], response_format: Any, stream: bool) -> Any:
                return self.chat(asked, response_format=response_format, stream=stream, **params)

            if response_format is not NOT_GIVEN:
                return stream_json(lambda asked, **_: open_stream(asked, response_format, True), ladder, messages,
                                   spec)
            return stream_json(open_stream, ladder, messages, spec)
        ask = self._within_one_deadline(params)
        if response_format is not NOT_GIVEN:
            return parse_checked(ask(messages, response_format), spec)
        return ask_json(ask, ladder, messages, spec, retries)

    def _within_one_deadline(self, params: dict[str, Any]) -> Callable[..., str]:
        """``chat(messages, response_format=...)`` with ``params``, each call given what is left
        of one deadline that started now."""
        given = params.pop("deadline", NOT_GIVEN)
        deadline = self.deadline if given is NOT_GIVEN else check_deadline(given)
        deadline_at = None if deadline is None else time.monotonic() + deadline

        def passed() -> APITimeoutError:
            return APITimeoutError(f"the call's deadline of {deadline:g} s passed")

        def ask(messages: list[Any], response_format: Any, tool: Any = None) -> str:
            if deadline_at is not None and time.monotonic() >= deadline_at:
                raise passed()
            try:
                return asked(messages, response_format, tool)
            except APITimeoutError as exc:
                if deadline_at is None or time.monotonic() < deadline_at:
                    raise
                raise passed() from exc

        def asked(messages: list[Any], response_format: Any, tool: Any) -> str:
            if tool is not None:  # one forced function call whose parameters are the schema
                from ._json_output import tool_request

                tools, choice = tool_request(tool)
                reply = self.chat_message(messages, tools=tools, tool_choice=choice, deadline=remaining(deadline_at),
                                          **params)
                calls = reply.get("tool_calls") or []
                return str(calls[0]["function"].get("arguments") or "") if calls else str(reply.get("content") or "")
            text = str(self.chat(messages, response_format=response_format, deadline=remaining(deadline_at),
                                 **params))
            if self.last is not None and self.last.finish_reason == "length":
                from ._json_output import check_not_cut_off

                check_not_cut_off(text, params.get("max_tokens"))
            return text

        return ask

    @overload
    def chat_choices(self, prompt: Prompt, *, n: int, stream: Literal[False] = False, **params: Any) -> list[str]: ...

    @overload
    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: Literal[True], **params: Any
    ) -> Generator[tuple[int, str], None, None]: ...

    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: bool = False, **params: Any
    ) -> list[str] | Generator[tuple[int, str], None, None]:
        """Ask for ``n`` answers: a list of their texts by choice index, or, with ``stream=True``,
        a generator of ``(index, piece)`` as the pieces of every choice arrive.

        A server that ignores ``n`` (llama.cpp does) sends fewer: the list holds what came. Each
        text leaves out an inline ``<think>`` block, as ``chat()`` does.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> names = client.chat_choices("Name a cat", n=3, temperature=1.0, max_tokens=5)  # ['Tom', ...]
            >>> pieces = list(client.chat_choices("Name a cat", n=3, max_tokens=5, stream=True))  # [(0, 'To'), ...]
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        options = self._options(params.pop("timeout", NOT_GIVEN), params.pop("max_retries", None),
                                params.pop("deadline", NOT_GIVEN))
        body = self._body("chat_choices", params.pop("model", None),
                          {"messages": messages_of(prompt, params.pop("system", None)), "n": n}, *split_params(params),
                          options)
        if check_stream("chat_choices", stream):
            from ._chat_stream import iter_choices

            return iter_choices(self._chat_stream("/chat/completions", body, options))
        answer = self._answer_call("/chat/completions", body, options)
        choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
        return [reply_text(choice) for choice in choices]

    def batch(
        self,
        prompts: Sequence[Prompt],
        *,
        complete: bool = False,
        max_workers: int = 8,
        return_exceptions: bool = True,
        progress: bool = False,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        **params: Any,
    ) -> list[Any]:
        """Run ``chat()`` (or ``complete()``) on every prompt, ``max_workers`` at a time.

        Results come in input order. A prompt that fails leaves its exception in its place
        (``return_exceptions=False`` raises the first failure at once, stops the calls not yet
        started and leaves those in flight behind). Each call retries and honours rate limits as
        usual. ``progress=True`` shows a progress bar (tqdm's when it is installed) with the
        running usage.

        ``requests_per_minute`` and ``tokens_per_minute`` pace the calls (token buckets), and a
        call that still ends rate-limited halves the concurrency, which climbs back as calls
        succeed; it is asked again while its prompt has sent fewer than ``max_retries + 1``
        requests in all. ``checkpoint="answers.jsonl"`` appends each answer as it arrives, and a
        rerun skips the prompts already answered there (a lost notebook kernel resumes).

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answers = client.batch([f"Translate {w!r} to French" for w in ["cat", "dog"]], max_tokens=10)
            >>> [type(answer).__name__ for answer in answers]
            ['str', 'str']
        """
        from ._batch import Checkpoint, Pacer, run_batch

        if params.get("stream"):
            raise ValueError("batch() returns whole answers: stream=True is not supported")
        call = self.complete if complete else self.chat
        if isinstance(max_workers, int):
            self._connection.ensure_pool(max_workers)  # one connection per worker, none discarded
        retry = check_policy(self.retry, params.pop("max_retries", None))
        pacer = None
        if requests_per_minute is not None or tokens_per_minute is not None:
            pacer = Pacer(max_workers, requests_per_minute, tokens_per_minute, self._tokens_of_last, RateLimitError,
                          retry)

        def one(prompt: Any, retries: int = retry.max_retries) -> Any:
            return call(prompt, max_retries=retries, **params)

        return run_batch(one, list(prompts), max_workers=max_workers, return_exceptions=return_exceptions,
                         progress=progress, describe=self._calls.usage.__str__, pacer=pacer,
                         checkpoint=Checkpoint(checkpoint) if checkpoint is not None else None)

    def _tokens_of_last(self) -> int:
        """The tokens this thread's last call spent (0 if the server did not say)."""
        last = self._calls.last
        return (last.usage.total_tokens or 0) if last is not None else 0
