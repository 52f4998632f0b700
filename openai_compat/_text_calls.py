"""``chat()``, ``complete()`` and ``respond()``: the calls that return the answer's text, or a
generator of its pieces. They build the body (``_endpoints.py``), send it through the client's
pipeline, and read the answer (``_answers.py``) or the stream (``_chat_stream.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator, Iterator, Literal, Sequence, overload

from ._answers import first_choice
from ._continuation import check_turns, continue_blocking, continue_stream
from ._options import NOT_GIVEN, Timeout
from ._params import Prompt, check_stream, messages_of
from ._settings import labelled_and_extra

if TYPE_CHECKING:
    from ._call_record import CallRecord
    from ._endpoints import Endpoints
    from ._media import Media
    from ._reasoning import Thinking

    _Base = Endpoints
else:
    _Base = object


class TextCalls(_Base):
    """``chat()``, ``complete()`` and ``respond()`` of ``Client``; use ``Client``.

        >>> from openai_compat import Client
        >>> callable(Client("http://127.0.0.1:8080/v1").chat)
        True
    """

    # What the client sets up (``_client.py``).
    prefill_style: str | None
    if TYPE_CHECKING:
        @property
        def last(self) -> CallRecord | None: ...

    def _media(self, messages: list[Any], images: Any, audio: Any, detail: str | None,
               inline_urls: bool) -> list[Any]:
        """``messages`` with images and audio added to the last user message."""
        if not images and not audio:
            return messages
        from ._media import attach, downloader

        connection = self._connection
        fetch = downloader(connection.session, connection.settings_for) if inline_urls else None
        return attach(messages, images, audio, detail, fetch)

    @overload
    def chat(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], labelled: Literal[False] = False,
        reasoning: Literal[False] | dict[str, Any] = False, **params: Any
    ) -> Generator[str, None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], labelled: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def chat(
        self, prompt: Prompt, *, stream: bool, labelled: bool = False, reasoning: bool | dict[str, Any] = False,
        **params: Any
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]: ...

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
        labelled: bool = False,
        reasoning: bool | dict[str, Any] = False,
        keep_think: bool = False,
        images: Sequence[Media] | None = None,
        audio: Sequence[Media] | dict[str, Any] | None = None,
        detail: str | None = None,
        inline_urls: bool = False,
        tool_calls_from_content: bool = False,
        continue_on_length: int = 0,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]:
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
        With ``stream=True, labelled=True`` the generator yields ``("reasoning", piece)`` and
        ``("answer", piece)`` as they arrive (``reasoning=True`` is the older spelling; a dict
        ``reasoning={"effort": ...}`` is sent as the wire field, as OpenRouter takes it).
        ``thinking`` (True, False, or an effort such as ``"low"``) turns thinking on or off with
        the preset's own knob. A model that spends all
        of ``max_tokens`` thinking raises ``EmptyAnswerError`` instead of returning ``""``.

        ``images`` and ``audio`` (paths, bytes, URLs, PIL images) are added to the last user
        message as content parts (a dict ``audio={"voice": ..., "format": ...}`` is the wire
        field that asks for spoken output instead); ``detail`` applies to images; ``inline_urls=True`` downloads
        http(s) URLs (through this client's session, never with its key) for servers that only
        take inline data.

        If the model answers with tool calls, ``UnhandledToolCallsError`` carries them:
        use ``chat_message()`` or ``run_tools()`` to handle tools. ``tool_calls_from_content=True``
        (blocking calls) takes calls a chat template wrote into the text (``<tool_call>`` blocks,
        a bare JSON call) for tool calls.

        An answer cut off at ``max_tokens`` comes back as it came, with
        ``client.last.finish_reason == "length"``; ``continue_on_length=N`` asks the server up to
        N more times to go on from where it stopped (by assistant prefill where the preset knows
        the server's way, ``prefill_style``), returned as one answer, blocking or streamed.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> text = client.chat("Write a haiku", max_tokens=30)
            >>> pieces = list(client.chat("Write a haiku", max_tokens=30, stream=True))
            >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
            True
        """
        labelled, extra = labelled_and_extra(labelled, reasoning, extra)
        if isinstance(audio, dict):
            extra["audio"], audio = audio, None
        options = self._options(timeout, max_retries, deadline)
        body = self._body(
            "chat", model, {"messages": self._media(messages_of(prompt, system), images, audio, detail, inline_urls)},
            dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=seed,
                 presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, logit_bias=logit_bias,
                 response_format=response_format, user=user, tools=tools, tool_choice=tool_choice),
            dict(extra, thinking=thinking) if thinking is not None else extra, options,
        )
        turns = check_turns(continue_on_length, body)
        if check_stream("chat", stream):
            if turns:
                def start(more: dict[str, Any]) -> Iterator[Any]:
                    return self._chat_stream("/chat/completions", more, options, keep_think=keep_think).text(
                        labelled=labelled)

                return continue_stream(start(body), start, self._cut_off, body, self.prefill_style, turns, labelled)
            if tool_calls_from_content:
                raise ValueError("chat(): tool_calls_from_content=True reads a whole answer: leave stream=True off")
            return self._chat_stream("/chat/completions", body, options, keep_think=keep_think).text(
                labelled=labelled)
        if labelled:
            raise ValueError("chat(): labelled=True labels the pieces of a stream: pass stream=True too"
                             " (a blocking call's reasoning is in client.last.reasoning)")
        answer = self._answer_call("/chat/completions", body, options)
        choice = first_choice(answer)
        if tool_calls_from_content and isinstance(choice.get("message"), dict):
            from ._tool_calls import calls_from_content

            choice = dict(choice, message=calls_from_content(choice["message"]))
        text = self._reply(choice, answer, keep_think=keep_think)
        if not turns:
            return text

        def ask(more: dict[str, Any]) -> str:
            answer = self._answer_call("/chat/completions", more, options)
            return self._reply(first_choice(answer), answer, keep_think=keep_think)

        return continue_blocking(text, ask, self._cut_off, body, self.prefill_style, turns)

    def _cut_off(self) -> bool:
        """Whether the last call's answer stopped at ``max_tokens``."""
        return self.last is not None and self.last.finish_reason == "length"

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: Literal[True], **params: Any) -> Generator[str, None, None]: ...

    @overload
    def complete(self, prompt: Prompt, *, stream: bool, **params: Any) -> str | Generator[str, None, None]: ...

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
    ) -> str | Generator[str, None, None]:
        """Continue ``prompt`` over ``/completions``; the same shape and options as ``chat()``.

        ``template`` (``"chatml"``, ``"llama3"``, ``"mistral"`` or ``"plain"``) renders a message
        list (or a string, as one user message) into a chat prompt for a completion model, and
        adds the template's stop sequence to yours, once; since the API takes at most 4 stops,
        more than 3 of your own with a template is refused before sending.

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
            if len(stop) > 4:
                raise ValueError(f"complete(): the API takes at most 4 stop sequences, and your {len(given)} with the"
                                 f" {template!r} template's {template_stop} make {len(stop)}: pass at most"
                                 f" {4 - (len(stop) - len(given))} of your own")
        elif not isinstance(prompt, str):
            raise TypeError(
                f"complete(): prompt must be a str, or a message list with template=, got {type(prompt).__name__}"
            )
        options = self._options(timeout, max_retries, deadline)
        body = self._body(
            "complete", model, {"prompt": prompt},
            dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=seed,
                 presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, logit_bias=logit_bias,
                 echo=echo, logprobs=logprobs, suffix=suffix, user=user),
            extra, options,
        )
        if check_stream("complete", stream):
            return self._chat_stream("/completions", body, options, chat=False, keep_think=keep_think).text()
        answer = self._answer_call("/completions", body, options)
        return self._reply(first_choice(answer), answer, chat=False, keep_think=keep_think)

    @overload
    def respond(self, input: str | list[Any], *, stream: Literal[False] = False, **params: Any) -> str: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], labelled: Literal[False] = False,
        reasoning: Literal[False] | dict[str, Any] = False, **params: Any
    ) -> Generator[str, None, None]: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], labelled: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    @overload
    def respond(
        self, input: str | list[Any], *, stream: Literal[True], reasoning: Literal[True], **params: Any
    ) -> Generator[tuple[str, str], None, None]: ...

    def respond(
        self,
        input: str | list[Any],
        *,
        instructions: str | None = None,
        model: str | None = None,
        stream: bool = False,
        labelled: bool = False,
        reasoning: bool | dict[str, Any] = False,
        **params: Any,
    ) -> str | Generator[str, None, None] | Generator[tuple[str, str], None, None]:
        """Ask over the Responses API (``/responses``): the output text, or a generator of its
        pieces; ``labelled=True`` labels them like ``chat()``'s (``reasoning=True`` is the older
        spelling). ``reasoning={"effort": "low", "summary": "auto"}`` is the API's own field.
        Everything else works as for ``chat()``: retries, timeouts, the deadline, the event hook, ``client.last``.

        ``input`` is a string or a list of input items. Function calls raise
        ``UnhandledToolCallsError``; a failed or incomplete response raises ``APIResponseError``.

        With a server that has ``/responses`` (OpenAI, Ollama, vLLM, Groq, LM Studio, ...):

            client = Client("http://127.0.0.1:11434/v1", model="llama3.2")
            client.respond("Write a haiku", instructions="Be brief.")
        """
        from ._responses import response_text

        if not isinstance(input, (str, list)):
            raise TypeError(f"respond(): input must be a str or a list of input items, got {type(input).__name__}")
        if instructions is not None:
            params["instructions"] = instructions
        labelled, params = labelled_and_extra(labelled, reasoning, params)
        if check_stream("respond", stream):
            return self.create_response(input=input, model=model, stream=True, **params).text(labelled=labelled)
        answer = self.create_response(input=input, model=model, **params)
        return response_text(answer, self.last.request_id if self.last else None)
