"""Tools: ``chat_message()`` hands back the assistant message with its tool calls, and
``run_tools()`` runs the loop around it over plain Python functions: ask, run each call, hand
back the results, until the model answers in text.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Generator, Sequence

from ._answers import first_choice, reply_text
from ._delta import normalize_tool_calls
from ._errors import APIResponseError, ToolArgumentsError, ToolLoopError, UnhandledToolCallsError
from ._options import NOT_GIVEN, Timeout
from ._params import Prompt, messages_of, split_params

if TYPE_CHECKING:
    from ._endpoints import Endpoints

    _Base = Endpoints
else:
    _Base = object

#: Called after each tool runs: the call's name, its arguments, and the result handed back.
OnTool = Callable[[str, Any, str], None]


class ToolUse(_Base):
    """``chat_message()`` and ``run_tools()`` of ``Client``; use ``Client``.

        >>> from openai_compat import Client
        >>> callable(Client("http://127.0.0.1:8080/v1").run_tools)
        True
    """

    chat: Callable[..., Any]
    _media: Callable[..., list[Any]]

    def chat_message(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        system: str | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        tool_calls_from_content: bool = False,
        **params: Any,
    ) -> dict[str, Any]:
        """Send a chat and return the assistant message dict: ``content``, and ``tool_calls``
        when the model calls tools. Append it to your messages as it is for the next turn: its
        ``content`` is ``""`` beside tool calls, never null, as strict servers want it back.
        ``tool_calls_from_content=True`` moves calls a chat template wrote into the text into
        ``tool_calls``. ``run_tools()`` runs the whole loop for you.

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
        options = self._options(timeout, max_retries, deadline)
        body = self._body("chat_message", model, {"messages": messages}, *split_params(params), options)
        answer = self._answer_call("/chat/completions", body, options)
        message = first_choice(answer).get("message")
        if not isinstance(message, dict):
            raise APIResponseError("the response's first choice has no message", body=answer)
        if tool_calls_from_content:
            from ._tool_calls import calls_from_content

            message = calls_from_content(message)
        return normalize_tool_calls(message)

    def run_tools(
        self,
        prompt: Prompt,
        *,
        tools: Sequence[Callable[..., Any]],
        max_turns: int = 8,
        parallel: bool = False,
        raise_tool_errors: bool = False,
        on_tool: OnTool | None = None,
        stream: bool = False,
        system: str | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """Let the model call ``tools``, plain Python functions, until it answers in text: that
        answer, or with ``stream=True`` a generator of its pieces (of every turn's text).

        Each function's schema comes from its signature, type hints and docstring. Every call
        of a turn runs, in order (on threads with ``parallel=True``); its result goes back as
        text (JSON for anything not a ``str``). A tool's exception goes back to the model as
        its result, as do an unknown name and arguments that do not parse or fit, so that the
        model can correct itself; ``raise_tool_errors=True`` raises a tool's exception instead.
        ``on_tool(name, arguments, result)`` is called after each call. ``tool_choice`` holds
        for the first turn only (a forced call would never let the model answer). Past
        ``max_turns`` requests, ``ToolLoopError`` carries the conversation.

        ``prompt`` may be a message list: the turns are appended to it, so the conversation
        can go on. ``client.usage`` counts every turn; ``client.last`` is the last one's.

            >>> from openai_compat import Client
            >>> def add(a: int, b: int) -> int:
            ...     '''Add two whole numbers.'''
            ...     return a + b
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answer = client.run_tools("What is 2 + 3?", tools=[add], max_tokens=30, max_turns=3)
        """
        from ._function_schema import function_schema

        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
            raise ValueError(f"run_tools(): max_turns must be a whole number >= 1, got {max_turns!r}")
        if not tools or isinstance(tools, dict) or not all(callable(tool) for tool in tools):
            raise TypeError("run_tools(): tools must be a list of functions")
        specs = [function_schema(tool) for tool in tools]
        by_name = {spec["function"]["name"]: (tool, spec["function"]["parameters"]) for spec, tool in zip(specs, tools)}
        if isinstance(prompt, list) and system is not None:
            raise ValueError("run_tools(): with a message list, put the system message in the list")
        messages = prompt if isinstance(prompt, list) else messages_of(prompt, system)
        runner = _Runner(by_name, parallel, raise_tool_errors, on_tool)
        turns = _Turns(self, messages, specs, params, tool_choice, max_turns)
        if stream:
            return turns.streamed(runner)
        return turns.blocking(runner)


class _Turns:
    """The requests of one tool loop: each turn's call, its reply appended, its results after."""

    def __init__(self, client: Any, messages: list[Any], specs: list[dict[str, Any]], params: dict[str, Any],
                 tool_choice: Any, max_turns: int) -> None:
        self.client, self.messages, self.specs, self.params = client, messages, specs, params
        self.tool_choice, self.max_turns = tool_choice, max_turns

    def _params(self, turn: int) -> dict[str, Any]:
        choice = self.tool_choice if turn == 0 else None
        return dict(self.params, tools=self.specs, **({"tool_choice": choice} if choice is not None else {}))

    def blocking(self, runner: _Runner) -> str:
        for turn in range(self.max_turns):
            reply = self.client.chat_message(self.messages, **self._params(turn))
            self.messages.append(reply)
            calls = reply.get("tool_calls")
            if not calls:
                return reply_text({"message": reply})
            self.messages.extend(runner.run(calls))
        raise self._too_many()

    def streamed(self, runner: _Runner) -> Generator[str, None, None]:
        for turn in range(self.max_turns):
            pieces: list[str] = []
            try:
                for piece in self.client.chat(self.messages, stream=True, **self._params(turn)):
                    pieces.append(piece)
                    yield piece
            except UnhandledToolCallsError as exc:
                reply = normalize_tool_calls(dict(exc.assistant_message, content="".join(pieces)))
                self.messages.append(reply)
                self.messages.extend(runner.run(reply["tool_calls"]))
                continue
            self.messages.append({"role": "assistant", "content": "".join(pieces)})
            return
        raise self._too_many()

    def _too_many(self) -> ToolLoopError:
        return ToolLoopError(f"the model was still calling tools after {self.max_turns} turns (max_turns); the"
                             " conversation is in .messages", messages=self.messages)


class _Runner:
    """Runs the tool calls of one turn and words their results for the model."""

    def __init__(self, by_name: dict[str, tuple[Callable[..., Any], dict[str, Any]]], parallel: bool,
                 raise_errors: bool, on_tool: OnTool | None) -> None:
        self.by_name, self.parallel, self.raise_errors, self.on_tool = by_name, parallel, raise_errors, on_tool

    def run(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ``tool`` messages answering ``calls``, in the order of the calls."""
        if self.parallel and len(calls) > 1:
            with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                results = list(pool.map(self.one, calls))
        else:
            results = [self.one(call) for call in calls]
        return [{"role": "tool", "tool_call_id": call.get("id") or "", "content": result}
                for call, result in zip(calls, results)]

    def one(self, call: dict[str, Any]) -> str:
        from ._errors import call_name
        from ._function_schema import build_arguments
        from ._schema import check
        from ._tool_calls import parse_arguments

        name = (call.get("function") or {}).get("name")
        known = self.by_name.get(name) if isinstance(name, str) else None
        arguments: Any = None
        if known is None:
            result = f"Error: there is no tool named {call_name(call)!r}; the tools are {', '.join(self.by_name)}."
        else:
            tool, parameters = known
            try:
                arguments = parse_arguments(call)
                problems = check(arguments, parameters)
                if problems:
                    result = f"Error: the arguments do not fit {name}(): {'; '.join(problems)}. Call it again."
                else:
                    result = _as_text(tool(**build_arguments(tool, arguments)))
            except ToolArgumentsError as exc:
                result = f"Error: {exc}. Call it again with a JSON object."
            except Exception as exc:
                if self.raise_errors:
                    raise
                result = f"Error: {type(exc).__name__}: {exc}"
        if self.on_tool is not None:
            self.on_tool(str(name), arguments, result)
        return result


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
