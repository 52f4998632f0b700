"""Thinking on or off: ``thinking=`` in each kind of server's own words.

How the thinking itself arrives, and how it is kept out of the answer, is in ``_delta.py``.
"""

from __future__ import annotations

from typing import Any, Union

#: What ``thinking=`` takes: on, off, or an effort level.
Thinking = Union[bool, str]


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
