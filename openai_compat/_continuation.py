"""Going on with an answer cut off at ``max_tokens`` (``chat(continue_on_length=N)``): the request
that asks the server to continue from where the answer stopped.

Where a server can continue a final assistant message (assistant prefill), the text so far is
that message: vLLM takes ``continue_final_message``, Mistral a ``prefix: true`` message, and
llama.cpp's server continues a final assistant message by itself. Elsewhere a user turn asks the
model to go on.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterator

#: The user turn sent where the server has no assistant prefill.
GO_ON = "Continue exactly where your last message stopped: no repetition, no preamble."

#: How each style asks a server to continue: the assistant message's extra fields, the body's
#: extra fields, and whether a user turn follows.
STYLES: dict[str | None, tuple[dict[str, Any], dict[str, Any], bool]] = {
    None: ({}, {}, True),
    "continue_final_message": ({}, {"continue_final_message": True, "add_generation_prompt": False}, False),
    "prefix": ({"prefix": True}, {}, False),
    "final_assistant": ({}, {}, False),
}


def check_turns(turns: Any, body: dict[str, Any]) -> int:
    """``continue_on_length``, checked: a whole number, and one answer to continue."""
    if not isinstance(turns, int) or isinstance(turns, bool) or turns < 0:
        raise ValueError(f"chat(): continue_on_length must be a whole number >= 0, got {turns!r}")
    if turns and (body.get("n") or 1) > 1:
        raise ValueError("chat(): continue_on_length continues one answer: leave n out")
    return turns


def continued(body: dict[str, Any], text: str, style: str | None) -> dict[str, Any]:
    """``body`` asking the server to go on after ``text``, the answer so far."""
    message_fields, body_fields, ask = STYLES[style]
    messages = [*body["messages"], {"role": "assistant", "content": text, **message_fields}]
    if ask:
        messages.append({"role": "user", "content": GO_ON})
    return {**body, **body_fields, "messages": messages}


def continue_blocking(text: str, ask: Callable[[dict[str, Any]], str], cut_off: Callable[[], bool],
                      body: dict[str, Any], style: str | None, turns: int) -> str:
    """``text``, continued by ``ask(body)`` up to ``turns`` times while ``cut_off()`` says the
    last answer stopped at ``max_tokens``."""
    for _ in range(turns):
        if not cut_off():
            break
        text += ask(continued(body, text, style))
    return text


def continue_stream(pieces: Iterator[Any], start: Callable[[dict[str, Any]], Iterator[Any]],
                    cut_off: Callable[[], bool], body: dict[str, Any], style: str | None, turns: int,
                    labelled: bool) -> Generator[Any, None, None]:
    """The pieces of a stream, then of up to ``turns`` more started by ``start(body)`` while
    ``cut_off()`` says the last one stopped at ``max_tokens``: one answer, as one generator."""
    text: list[str] = []
    for turn in range(turns + 1):
        if turn:
            pieces = start(continued(body, "".join(text), style))
        for piece in pieces:
            if not labelled:
                text.append(piece)
            elif piece[0] == "answer":
                text.append(piece[1])
            yield piece
        if not cut_off():
            return
