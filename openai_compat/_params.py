"""Request bodies: the messages of a prompt, and the parameters beside them."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

Message = Mapping[str, Any]
Prompt = Union[str, Sequence[Message]]


def messages_of(prompt: Prompt, system: str | None) -> list[Message]:
    if isinstance(prompt, str):
        messages: list[Message] = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, (list, tuple)):
        messages = list(prompt)
    else:
        raise TypeError(f"chat(): prompt must be a str or a list of message dicts, got {type(prompt).__name__}")
    if system is not None:
        if not isinstance(system, str):
            raise TypeError(f"chat(): system must be a str, got {type(system).__name__}")
        messages.insert(0, {"role": "system", "content": system})
    check_messages(messages)
    return messages


def check_messages(messages: Any) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of message dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"message {i} must be a dict, got {type(message).__name__}")
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise ValueError(f"message {i} has no role: {message!r:.200}")


CHAT_PARAMETERS = frozenset({
    "max_tokens", "temperature", "top_p", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "response_format", "user", "tools", "tool_choice",
})


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAI parameters in ``params`` (None: leave out) and the rest (sent unchanged)."""
    named = {k: v for k, v in params.items() if k in CHAT_PARAMETERS}
    return named, {k: v for k, v in params.items() if k not in CHAT_PARAMETERS}


def build_body(
    model: Any, owner: str, base: dict[str, Any], params: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    """The JSON body: ``model``, then ``base``, the named ``params`` that are not None, ``extra``."""
    if not model:
        raise ValueError(f"no model: pass model=... to the call or to {owner}(...)")
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, got {type(model).__name__}")
    body: dict[str, Any] = {"model": model, **base}
    body.update((k, v) for k, v in params.items() if v is not None)
    body.update(extra)
    return body
