"""The ``Client``: the front door. Each method builds a request body and hands it on.

``chat()``, ``complete()`` and ``respond()`` return a ``str`` (or a generator of ``str`` with
``stream=True``). Beyond plain text: ``chat_message()`` for tools, ``chat_json()``,
``chat_choices()``, ``batch()`` and ``submit_batch()``. The lower layer (``create_*``,
``embed()``, ``models()``) is in ``_endpoints.py``, construction in ``_base_client.py``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence, overload

from ._chunks import iter_choices, iter_text, normalize_tool_calls, reply_text
from ._endpoints import EndpointsClient
from ._errors import APIResponseError, RateLimitError
from ._json_output import ask_json, parse_checked
from ._options import NOT_GIVEN, Timeout
from ._params import Prompt, check_stream, messages_of, split_params
from ._reasoning import Thinking

if TYPE_CHECKING:
    from ._media import Media

class Client(EndpointsClient):
    """A connection to one server that speaks the OpenAI HTTP API.

    ``base_url`` ends in the API version (``.../v1``); ``api_key`` is sent as
    ``Authorization: Bearer ...``; ``headers`` go with every request; ``model`` is the default
    for calls that name none. ``timeout`` is seconds or ``(connect, read)``; ``deadline``
    bounds a whole call, stream included; ``max_retries`` counts retries after the first try.
    ``session`` is your own ``requests.Session`` (proxies, CA bundle, adapters): it is used as
    is and left open by ``close()``. ``event_hook`` is called with a ``RequestEvent`` at
    each step, for metering. ``stream_usage=True`` asks every stream for its usage
    (``stream_options``, which some servers refuse). ``adapt=True`` lets the client learn which
    optional fields the server refuses (``stream_options``, ``n``, ``seed``, ``logprobs``,
    ``parallel_tool_calls``, ``max_tokens`` / ``max_completion_tokens``) and stop sending them.
    ``cassette`` (a ``Cassette``, or a path to record once and replay after) records every call
    to a file, or replays calls from it without the network.

    One client may be shared by many threads as long as nobody changes its session meanwhile,
    and by forked worker processes: a child never touches the parent's pooled connections. A
    client pickles into a working client (for Spark, Ray, Dask and ``spawn`` pools).

        >>> from openai_compat import Client
        >>> client = Client("http://127.0.0.1:8080/v1/", model="tiny")
        >>> client.base_url
        'http://127.0.0.1:8080/v1'
        >>> client
        Client(base_url='http://127.0.0.1:8080/v1', model='tiny')
    """

    # -- the front door --------------------------------------------------------------------

    @overload
    def chat(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Iterator[tuple[str, str]]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], reasoning: Literal[False] = False, **params: Any
    ) -> Iterator[str]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: bool, reasoning: bool = False, **params: Any
    ) -> str | Iterator[str] | Iterator[tuple[str, str]]: ...

    def chat(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        system: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        response_format: dict[str, Any] | None = None,
        user: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        thinking: Thinking | None = None,
        reasoning: bool = False,
        keep_think: bool = False,
        images: Sequence[Media] | None = None,
        audio: Sequence[Media] | None = None,
        detail: str | None = None,
        inline_urls: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Iterator[str] | Iterator[tuple[str, str]]:
        """Send a chat and return the answer's text, or a generator of its pieces.

        ``prompt`` is a string (one user message) or a list of message dicts, sent as given;
        ``system`` puts a system message first. The OpenAI parameters keep their wire names and
        ``None`` leaves them out; any other keyword (``top_k``, ``min_p``, ...) goes into the
        JSON body unchanged. ``timeout``, ``max_retries`` and ``deadline`` override the client's
        for this call.

        With ``stream=True`` the request is sent (and a status error raised) before this
        returns; the generator then yields each non-empty piece as it arrives and closes the
        connection when it ends, is closed or is dropped.

        The answer never includes the model's thinking, whichever way the server sends it (see
        the Reasoning page); ``keep_think=True`` keeps an inline ``<think>`` block in the text.
        With ``stream=True, reasoning=True`` the generator yields ``("reasoning", piece)`` and
        ``("answer", piece)`` as they arrive. ``thinking`` (True, False, or an effort such as
        ``"low"``) turns thinking on or off with the preset's own knob. A model that spends all
        of ``max_tokens`` thinking raises ``EmptyAnswerError`` instead of returning ``""``.

        ``images`` and ``audio`` (paths, bytes, URLs, PIL images) are added to the last user
        message as content parts; ``detail`` applies to images; ``inline_urls=True`` downloads
        http(s) URLs (through this client's session, never with its key) for servers that only
        take inline data.

        If the model answers with tool calls, ``UnhandledToolCallsError`` carries them:
        use ``chat_message()`` to handle tools.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.chat("Write a haiku", max_tokens=30)
            >>> pieces = list(client.chat("Write a haiku", max_tokens=30, stream=True))
            >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
            True
        """
        body = self._body(
            "chat",
            model,
            {"messages": self._media(messages_of(prompt, system), images, audio, detail, inline_urls)},
            dict(
                max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n,
                seed=seed, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                logit_bias=logit_bias, response_format=response_format, user=user, tools=tools,
                tool_choice=tool_choice,
            ),
            dict(extra, thinking=thinking) if thinking is not None else extra,
        )
        options = self._call_options(timeout, max_retries, deadline)
        if check_stream("chat", stream):
            stream_of = self._stream("/chat/completions", body, options)
            return iter_text(stream_of, chat=True, labelled=reasoning, keep_think=keep_think)
        if reasoning:
            raise ValueError("chat(): reasoning=True labels the pieces of a stream: pass stream=True too"
                             " (a blocking call's reasoning is in chat_message())")
        completion = self._call("/chat/completions", body, options)
        return reply_text(completion["choices"][0], keep_think=keep_think, usage=completion.get("usage"))

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[True], **params: Any) -> Iterator[str]: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: bool, **params: Any) -> str | Iterator[str]: ...

    def complete(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        template: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        echo: bool | None = None,
        logprobs: int | None = None,
        suffix: str | None = None,
        user: str | None = None,
        keep_think: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Iterator[str]:
        """Continue ``prompt`` over ``/completions``; the same shape and options as ``chat()``.

        ``template`` (``"chatml"``, ``"llama3"``, ``"mistral"`` or ``"plain"``) renders a message
        list (or a string, as one user message) into a chat prompt for a completion model, and
        adds the template's stop sequence to yours.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.complete("Once upon a time", max_tokens=20)
            >>> reply = client.complete([{"role": "user", "content": "Hi"}], template="chatml", max_tokens=20)
        """
        if template is not None:
            from ._templates import render

            prompt, template_stop = render(messages_of(prompt, None), template)
            given = [stop] if isinstance(stop, str) else list(stop or [])
            stop = given + [s for s in template_stop if s not in given]
        elif not isinstance(prompt, str):
            raise TypeError(
                f"complete(): prompt must be a str, or a message list with template=, got {type(prompt).__name__}"
            )
        body = self._body(
            "complete",
            model,
            {"prompt": prompt},
            dict(
                max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n,
                seed=seed, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                logit_bias=logit_bias, echo=echo, logprobs=logprobs, suffix=suffix, user=user,
            ),
            extra,
        )
        options = self._call_options(timeout, max_retries, deadline)
        if check_stream("complete", stream):
            return iter_text(self._stream("/completions", body, options), chat=False, keep_think=keep_think)
        completion = self._call("/completions", body, options)
        return reply_text(completion["choices"][0], chat=False, keep_think=keep_think, usage=completion.get("usage"))

    @overload
    def respond(self, input: str | list[Any], *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], reasoning: Literal[False] = False, **params: Any
    ) -> Iterator[str]: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Iterator[tuple[str, str]]: ...

    def respond(
        self,
        input: str | list[Any],
        *,
        instructions: str | None = None,
        model: str | None = None,
        stream: bool = False,
        reasoning: bool = False,
        **params: Any,
    ) -> str | Iterator[str] | Iterator[tuple[str, str]]:
        """Ask over the Responses API (``/responses``): the output text, or a generator of its
        pieces; ``reasoning=True`` labels them like ``chat()``'s. Everything else works as for
        ``chat()``: retries, timeouts, the deadline, the event hook, ``client.last``.

        ``input`` is a string or a list of input items. Function calls raise
        ``UnhandledToolCallsError``; a failed or incomplete response raises ``APIResponseError``.

        With a server that has ``/responses`` (OpenAI, Ollama, vLLM, Groq, LM Studio, ...):

            client = Client("http://127.0.0.1:11434/v1", model="llama3.2")
            client.respond("Write a haiku", instructions="Be brief.")
        """
        from ._responses import function_calls, iter_response_text, output_text, raise_for_calls, raise_for_status

        if not isinstance(input, (str, list)):
            raise TypeError(f"respond(): input must be a str or a list of input items, got {type(input).__name__}")
        if instructions is not None:
            params["instructions"] = instructions
        if check_stream("respond", stream):
            return iter_response_text(self.create_response(input=input, model=model, stream=True, **params),
                                      labelled=reasoning)
        result = self.create_response(input=input, model=model, **params)
        raise_for_status(result, self.last.request_id if self.last else None)
        raise_for_calls(function_calls(result))
        return output_text(result)

    # -- beyond plain text ------------------------------------------------------------------

    def chat_message(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        system: str | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **params: Any,
    ) -> dict[str, Any]:
        """Send a chat and return the assistant message dict: ``content``, and ``tool_calls``
        when the model calls tools. Append it to your messages as it is for the next turn.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> tools = [{"type": "function", "function": {"name": "get_weather",
            ...           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
            >>> messages = [{"role": "user", "content": "Weather in Paris?"}]
            >>> reply = client.chat_message(messages, tools=tools, max_tokens=30)
            >>> messages.append(reply)
            >>> for call in reply.get("tool_calls") or []:
            ...     messages.append({"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"})
            >>> answer = client.chat(messages, tools=tools, max_tokens=30)   # 'It is 18 C and sunny in Paris.'
        """
        messages = self._media(messages_of(prompt, system), params.pop("images", None), params.pop("audio", None),
                               params.pop("detail", None), params.pop("inline_urls", False))
        body = self._body("chat_message", model, {"messages": messages}, *split_params(params))
        completion = self._call("/chat/completions", body, self._call_options(timeout, max_retries, deadline))
        choice = completion["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise APIResponseError("the response's first choice has no message", body=completion)
        return normalize_tool_calls(message)

    def chat_json(
        self,
        prompt: Prompt,
        *,
        schema: Any = None,
        retries: int = 0,
        response_format: dict[str, Any] | None = NOT_GIVEN,
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
        of ``errors``. ``retries=1`` asks once more, showing the model the errors.

        With a model that follows instructions:

            from dataclasses import dataclass

            @dataclass
            class City:
                name: str
                population: int

            client = Client("http://127.0.0.1:8080/v1", model="qwen2.5-7b-instruct")
            client.chat_json("The largest city of Norway?", schema=City)   # City(name='Oslo', population=709037)
        """
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"chat_json(): retries must be a whole number >= 0, got {retries!r}")
        from ._schema import schema_of

        spec = schema_of(schema) if schema is not None else None
        messages = messages_of(prompt, params.pop("system", None))
        if response_format is not NOT_GIVEN:
            return parse_checked(self.chat(messages, response_format=response_format, **params), spec)
        return ask_json(lambda m, response_format: self.chat(m, response_format=response_format, **params),
                        self._json_ladder, messages, spec, retries)

    @overload
    def chat_choices(self, prompt: Prompt, *, n: int, stream: Literal[False] = False, **params: Any) -> list[str]: ...

    @overload
    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: Literal[True], **params: Any
    ) -> Iterator[tuple[int, str]]: ...

    def chat_choices(
        self, prompt: Prompt, *, n: int, stream: bool = False, **params: Any
    ) -> list[str] | Iterator[tuple[int, str]]:
        """Ask for ``n`` answers: a list of their texts by choice index, or, with ``stream=True``,
        a generator of ``(index, piece)`` as the pieces of every choice arrive.

        A server that ignores ``n`` (llama.cpp does) sends fewer: the list holds what came.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> names = client.chat_choices("Name a cat", n=3, temperature=1.0, max_tokens=5)  # ['Tom', ...]
            >>> pieces = list(client.chat_choices("Name a cat", n=3, max_tokens=5, stream=True))  # [(0, 'To'), ...]
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        options = self._call_options(params.pop("timeout", NOT_GIVEN), params.pop("max_retries", None),
                                params.pop("deadline", NOT_GIVEN))
        body = self._body("chat_choices", params.pop("model", None),
                          {"messages": messages_of(prompt, params.pop("system", None)), "n": n}, *split_params(params))
        if check_stream("chat_choices", stream):
            return iter_choices(self._stream("/chat/completions", body, options))
        completion = self._call("/chat/completions", body, options)
        choices = sorted(completion["choices"], key=lambda c: c.get("index", 0))
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
        (``return_exceptions=False`` raises the first failure instead, after stopping the
        rest). Each call retries and honours rate limits as usual. ``progress=True`` shows a
        progress bar (tqdm's when it is installed) with the running usage.

        ``requests_per_minute`` and ``tokens_per_minute`` pace the calls (token buckets), and a
        call that still ends rate-limited halves the concurrency, which climbs back as calls
        succeed. ``checkpoint="answers.jsonl"`` appends each answer as it arrives, and a rerun
        skips the prompts already answered there (a lost notebook kernel resumes).

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
            self._transport.ensure_pool(max_workers)  # one connection per worker, none discarded
        pacer = None
        if requests_per_minute is not None or tokens_per_minute is not None:
            pacer = Pacer(max_workers, requests_per_minute, tokens_per_minute, self._tokens_of_last, RateLimitError)
        return run_batch(lambda prompt: call(prompt, **params), list(prompts), max_workers=max_workers,
                         return_exceptions=return_exceptions, progress=progress, describe=self.usage.__str__,
                         pacer=pacer, checkpoint=Checkpoint(checkpoint) if checkpoint is not None else None)

    def _tokens_of_last(self) -> int:
        """The tokens this thread's last call spent (0 if the server did not say)."""
        last = self.last
        return (last.usage.total_tokens or 0) if last is not None else 0
