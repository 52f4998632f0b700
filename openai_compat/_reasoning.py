"""Reasoning (thinking): the four ways servers send it, and the knob that turns it on or off.

The wire forms, in a delta or a message:

- ``reasoning_content``: DeepSeek, Fireworks, llama.cpp (``--reasoning-format deepseek``),
  Groq (``reasoning_format: "parsed"``), vLLM before 2026;
- ``reasoning``: OpenRouter (with ``reasoning_details``), Ollama's ``/v1``, vLLM since 2026;
- content parts ``{"type": "thinking", "thinking": [...]}``: Mistral's Magistral;
- ``<think>...</think>`` at the start of ``content``: Together's R1, Groq's ``raw`` format,
  llama.cpp with reasoning parsing off. The tags may arrive cut across chunks.
"""

from __future__ import annotations

from typing import Any, Tuple, Union

from ._errors import EmptyAnswerError

#: A piece of a stream and what it is: ``("reasoning", text)`` or ``("answer", text)``.
Labelled = Tuple[str, str]
#: What ``thinking=`` takes: on, off, or an effort level.
Thinking = Union[bool, str]

OPEN, CLOSE = "<think>", "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning")


class ThinkSplitter:
    """Takes an inline ``<think>...</think>`` block at the start of the content out of the answer.

    Feed it the content pieces in order; it returns labelled pieces. Text that could still be
    the start of a tag is held until the next piece tells.

        >>> splitter = ThinkSplitter()
        >>> splitter.feed("<thi") + splitter.feed("nk>2+2</th") + splitter.feed("ink>\\n\\n4") + splitter.end()
        [('reasoning', '2+2'), ('answer', '4')]
    """

    def __init__(self) -> None:
        self._state = "start"  # start: before any text; think: inside the block; answer: after
        self._held = ""

    def feed(self, text: str) -> list[Labelled]:
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
        out: list[Labelled] = []
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

    def end(self) -> list[Labelled]:
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


def split_think(content: str) -> tuple[str, str]:
    """``(reasoning, answer)`` of a whole content string with an inline think block."""
    splitter = ThinkSplitter()
    pieces = splitter.feed(content) + splitter.end()
    return ("".join(t for k, t in pieces if k == "reasoning"), "".join(t for k, t in pieces if k == "answer"))


def delta_pieces(delta: dict[str, Any], splitter: ThinkSplitter | None) -> list[Labelled]:
    """The labelled pieces of one delta (or message): reasoning fields, thinking parts, text.

    ``splitter`` takes inline think blocks out of string content; None keeps them in the answer.
    """
    out: list[Labelled] = []
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


def check_answer(answer: str, finish_reason: Any, reasoning: str, usage: Any) -> None:
    """Raise ``EmptyAnswerError`` when a model spent its whole budget thinking."""
    if answer or finish_reason != "length" or not reasoning:
        return
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if tokens is None and isinstance(usage, dict):
        tokens = usage.get("completion_tokens")
    spent = f" ({tokens} tokens of it)" if isinstance(tokens, int) else ""
    raise EmptyAnswerError(
        f"the model spent its max_tokens thinking{spent} and gave no answer: raise max_tokens, or think"
        " less (thinking=False, or an effort such as thinking=\"low\")",
        reasoning=reasoning,
    )


# -- the knob -------------------------------------------------------------------------------------

def thinking_params(style: str | None, thinking: Thinking, owner: str) -> dict[str, Any]:
    """The body fields that say ``thinking`` in a server's own words (its preset's ``style``)."""
    if not isinstance(thinking, (bool, str)) or thinking == "":
        raise TypeError(f"thinking must be True, False or an effort such as 'low', got {thinking!r}")
    effort = None if isinstance(thinking, bool) else thinking
    if style == "reasoning_effort":
        if effort is not None:
            return {"reasoning_effort": effort}
        return {} if thinking else {"reasoning_effort": "none"}
    if style == "chat_template_kwargs":
        if effort is not None:
            return {"reasoning_effort": effort}
        return {"chat_template_kwargs": {"enable_thinking": bool(thinking)}}
    if style == "reasoning":
        return {"reasoning": {"effort": effort} if effort is not None else {"enabled": bool(thinking)}}
    if style == "thinking":
        if effort is not None:
            raise ValueError(f"{owner}: thinking takes True or False here, not an effort ({effort!r})")
        return {"thinking": {"type": "enabled" if thinking else "disabled"}}
    raise ValueError(
        f"{owner} does not know this server's thinking switch: pass its own field instead, such as"
        " reasoning_effort='none', chat_template_kwargs={'enable_thinking': False},"
        " reasoning={'enabled': False} or thinking={'type': 'disabled'}"
    )
