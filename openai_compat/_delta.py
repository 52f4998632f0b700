"""What a choice says: answer text, reasoning and tool calls, decided here and nowhere else.

A streamed delta, a whole message and a completion's text all go through ``Answer``, which
labels each piece and keeps what a call's end needs (the thinking, the tool calls, whether any
answer came, how it finished). The reasoning arrives in four wire forms:

- ``reasoning_content``: DeepSeek, Fireworks, llama.cpp (``--reasoning-format deepseek``),
  Groq (``reasoning_format: "parsed"``), vLLM before 2026;
- ``reasoning``: OpenRouter (with ``reasoning_details``), Ollama's ``/v1``, vLLM since 2026;
- content parts ``{"type": "thinking", "thinking": [...]}``: Mistral's Magistral;
- ``<think>...</think>`` at the start of ``content``: Together's R1, Groq's ``raw`` format,
  llama.cpp with reasoning parsing off. The tags may arrive cut across chunks.
"""

from __future__ import annotations

import json
from typing import Any, List, Tuple

from ._error_bodies import shorten
from ._errors import ContentFilterError, EmptyAnswerError, RefusalError, UnhandledToolCallsError

#: A piece of an answer and what it is: ``("reasoning", text)`` or ``("answer", text)``.
Labelled = Tuple[str, str]
Pieces = List[Labelled]

OPEN, CLOSE = "<think>", "</think>"
#: The fields a delta or message may carry its thinking in (OpenRouter may send both at once).
REASONING_FIELDS = ("reasoning_content", "reasoning")
_NOTHING: Pieces = []


class ThinkSplitter:
    """Takes an inline ``<think>...</think>`` block at the start of the content out of the answer.

    Feed it the content pieces in order; it returns labelled pieces. Text that could still be
    the start of a tag is held until the next piece tells.

        >>> splitter = ThinkSplitter()
        >>> splitter.feed("<thi") + splitter.feed("nk>2+2</th") + splitter.feed("ink>\\n\\n4") + splitter.end()
        [('reasoning', '2+2'), ('answer', '4')]
    """

    def __init__(self) -> None:
        self._state = "start"  # start: before any text; think: inside the block; after; answer
        self._held = ""

    def feed(self, text: str) -> Pieces:
        if self._state == "answer":
            return [("answer", text)] if text else []
        self._held += text
        if self._state == "start":
            stripped = self._held.lstrip()
            if not stripped or (OPEN.startswith(stripped) and stripped != OPEN):
                return []  # nothing yet, or maybe the start of <think>
            if not stripped.startswith(OPEN):
                self._state = "answer"
                held, self._held = self._held, ""
                return [("answer", held)]
            self._state = "think"
            self._held = stripped[len(OPEN) :]
        if self._state == "after":  # white space between </think> and the answer
            rest, self._held = self._held.lstrip(), ""
            if not rest:
                return []
            self._state = "answer"
            return [("answer", rest)]
        out: Pieces = []
        end = self._held.find(CLOSE)
        if end >= 0:
            if end:
                out.append(("reasoning", self._held[:end]))
            rest, self._held = self._held[end + len(CLOSE) :].lstrip(), ""
            self._state = "answer" if rest else "after"
            if rest:
                out.append(("answer", rest))
            return out
        keep = _partial_suffix(self._held, CLOSE)
        if len(self._held) > keep:
            out.append(("reasoning", self._held[: len(self._held) - keep]))
            self._held = self._held[len(self._held) - keep :]
        return out

    @property
    def answering(self) -> bool:
        """Whether the content is past any think block, so pieces are answer as they come."""
        return self._state == "answer"

    def end(self) -> Pieces:
        """What is still held when the content ends: an unfinished tag is text after all."""
        held, self._held = self._held, ""
        if not held or self._state == "after":
            return []
        return [("reasoning" if self._state == "think" else "answer", held)]


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def delta_pieces(delta: dict[str, Any], splitter: ThinkSplitter | None) -> Pieces:
    """The labelled pieces of one delta (or message): reasoning fields, thinking parts, text.

    ``splitter`` takes inline think blocks out of string content; None keeps them in the answer.
    """
    out: Pieces = []
    for field in REASONING_FIELDS:
        value = delta.get(field)
        if isinstance(value, str) and value:
            out.append(("reasoning", value))
            break  # OpenRouter may send both names for the same text
    content = delta.get("content")
    if isinstance(content, str):
        if content:
            out += splitter.feed(content) if splitter is not None else [("answer", content)]
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "thinking":
                text = "".join(p.get("text") or "" for p in part.get("thinking") or () if isinstance(p, dict))
                if text:
                    out.append(("reasoning", text))
            elif isinstance(part.get("text"), str) and part["text"]:
                out.append(("answer", part["text"]))
    return out


def message_reasoning(message: dict[str, Any]) -> str:
    """All the reasoning text of an assistant message, whichever form the server used."""
    pieces = delta_pieces(message, ThinkSplitter())
    return "".join(text for kind, text in pieces if kind == "reasoning")


def plain_text(message: dict[str, Any], keep_think: bool) -> str | None:
    """The content of a message that is plain text with no thinking anywhere, else None."""
    content = message.get("content")
    if (type(content) is str and "reasoning_content" not in message and "reasoning" not in message
            and (keep_think or not content.lstrip().startswith(OPEN))):
        return content
    return None


def content_text(content: Any) -> str | None:
    """The text of a ``content`` field: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return None


class ToolCallRoutes:
    """Where each tool-call fragment of one choice goes: to the call with its ``id`` when it has
    one, else to the call last seen at its ``index``, else (no id, no index: Gemini) to the last
    call. A fragment that matches none starts a new call, so calls keep the order in which they
    first appeared, whatever indexes a server uses (a gateway starting at 1, DeepSeek reusing
    an index for a new id). An empty ``id``, ``name`` or ``type`` means "not given": Alibaba's
    qwen3-max and vLLM send ``"id": ""`` in every fragment after the first."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self.by_id: dict[Any, dict[str, Any]] = {}
        self.by_index: dict[Any, dict[str, Any]] = {}

    def add(self, fragment: dict[str, Any]) -> None:
        calls = self.message.setdefault("tool_calls", [])
        call_id, index = fragment.get("id") or None, fragment.get("index")
        if call_id is not None:
            call = self.by_id.get(call_id)
        elif index is not None:
            call = self.by_index.get(index)
        else:
            call = calls[-1] if calls else None
        if call is None:
            call = {"id": call_id, "type": fragment.get("type") or "function",
                    "function": {"name": None, "arguments": ""}}
            calls.append(call)
            if call_id is not None:
                self.by_id[call_id] = call
        if index is not None:
            self.by_index[index] = call
        function = fragment.get("function") or {}
        if function.get("name") and not call["function"]["name"]:
            # Names are not concatenated: llama-cpp-python repeats the name in every fragment.
            call["function"]["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, (dict, list)):
            arguments = json.dumps(arguments)  # some servers send an object: the wire form is a string
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments

    def finish(self) -> None:
        """Drop phantom calls (no name and no arguments: nothing to dispatch or to lose)."""
        calls = self.message.get("tool_calls")
        if calls is not None:
            calls[:] = [c for c in calls if c["function"]["name"] or c["function"]["arguments"]]
            if not calls:
                del self.message["tool_calls"]


def normalize_tool_calls(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as strict servers take it back: each tool call's ``arguments`` a JSON string
    (llama.cpp's server sent an object for a while), ``content`` ``""`` rather than null beside
    tool calls, and no legacy ``function_call`` beside them (llama-cpp-python refuses both)."""
    calls = message.get("tool_calls")
    for call in calls or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), (dict, list)):
            function["arguments"] = json.dumps(function["arguments"])
    if calls and message.get("content") is None:
        message["content"] = ""
    if "function_call" in message and (calls or message["function_call"] is None):
        del message["function_call"]
    return message


class Answer:
    """One choice's answer, taken in piece by piece: a streamed delta, a whole message, or a
    completion's text. ``feed()`` labels each piece; the answer keeps the thinking, the tool
    calls, whether any answer text came and how it finished; ``check()`` raises when the answer
    is not one a ``str`` can carry. Only the answer text itself is left to the caller (a stream
    hands it on and keeps none of it).

    ``keep_think`` leaves an inline ``<think>`` block in the answer.

        >>> answer = Answer()
        >>> answer.feed({"reasoning_content": "2+2?"}) + answer.feed({"content": "4"})
        [('reasoning', '2+2?'), ('answer', '4')]
        >>> answer.reasoning
        '2+2?'
    """

    def __init__(self, *, keep_think: bool = False) -> None:
        self.splitter = None if keep_think else ThinkSplitter()
        self._plain = keep_think  # whether string content is answer as it comes (past any think block)
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self.answered = False
        self.finish_reason: Any = None
        self._calls: ToolCallRoutes | None = None

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    @property
    def refusal(self) -> str | None:
        """The model's refusal (``refusal`` fields and parts, joined), or None if it gave none."""
        return "".join(self._refusal) or None

    def feed(self, part: dict[str, Any]) -> Pieces:
        """The labelled pieces of a delta or a message (chat) or of a choice's text (completions)."""
        content = part.get("content")
        if type(content) is str and self._plain and (len(part) == 1 or (
                "reasoning_content" not in part and "reasoning" not in part and not part.get("tool_calls")
                and not part.get("refusal"))):
            # The usual delta, read at once: this runs for every event of a stream.
            if not content:
                return _NOTHING
            self.answered = True
            return [("answer", content)]
        refusal = part.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal.append(refusal)
        if part.get("tool_calls"):
            for fragment in part["tool_calls"] if isinstance(part["tool_calls"], list) else ():
                if isinstance(fragment, dict):
                    self.add_call(fragment)
        pieces = self._note(delta_pieces(part, self.splitter))
        self._plain = self.splitter is None or self.splitter.answering
        return pieces

    def feed_text(self, text: str) -> Pieces:
        """The labelled pieces of a completion's text."""
        if not text:
            return _NOTHING
        return self._note(self.splitter.feed(text) if self.splitter is not None else [("answer", text)])

    def add(self, kind: str, text: str) -> Pieces:
        """One piece already labelled by its wire form (a Responses event); a refusal is kept,
        never handed on as text."""
        if kind == "refusal":
            self._refusal.append(text)
            return _NOTHING
        return self._note([(kind, text)]) if text else _NOTHING

    def add_call(self, call: dict[str, Any]) -> None:
        """One whole tool call, in chat's shape."""
        if self._calls is None:
            self._calls = ToolCallRoutes({"role": "assistant", "content": None})
        self._calls.add(call)

    def end(self) -> Pieces:
        """The pieces still held when the answer ends (an unfinished tag is text after all)."""
        return self._note(self.splitter.end()) if self.splitter is not None else _NOTHING

    def _note(self, pieces: Pieces) -> Pieces:
        for kind, text in pieces:
            if kind == "answer":
                self.answered = True
            else:
                self._reasoning.append(text)
        return pieces

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls, their fragments assembled."""
        if self._calls is None:
            return []
        self._calls.finish()
        return list(self._calls.message.get("tool_calls") or ())

    def check(self, usage: Any = None, text: str = "", request_id: str | None = None) -> None:
        """Raise when the answer is not text: a refusal, a content filter's stop, tool calls, or
        nothing after all of ``max_tokens`` went on thinking. ``text`` is the answer text a
        blocking call got (a stream has handed its text on); ``request_id`` goes on the error."""
        if self._refusal:
            refusal = "".join(self._refusal)
            raise RefusalError(f"the model refused: {shorten(refusal)}", refusal=refusal, text=text,
                               request_id=request_id)
        if self.finish_reason == "content_filter":
            came = "what came before it is in .text" if text else "before any text came" if not self.answered \
                else "after the text already handed on"
            raise ContentFilterError(f"the server's content filter stopped the answer (finish_reason"
                                     f" \"content_filter\"), {came}", text=text, request_id=request_id)
        calls = self.tool_calls
        if calls:
            raise UnhandledToolCallsError.from_message({"role": "assistant", "content": None, "tool_calls": calls})
        if self.answered or self.finish_reason != "length" or not self._reasoning:
            return
        details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
        tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if tokens is None and isinstance(usage, dict):
            tokens = usage.get("completion_tokens")
        spent = f" ({tokens} tokens of it)" if isinstance(tokens, int) else ""
        raise EmptyAnswerError(
            f"the model spent its max_tokens thinking{spent} and gave no answer: raise max_tokens, or think"
            " less (thinking=False, or an effort such as thinking=\"low\")",
            reasoning=self.reasoning, request_id=request_id,
        )
