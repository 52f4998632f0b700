"""Chat prompt templates, for sending a message list to a completion model over ``/completions``.

    >>> from openai_compat._templates import render
    >>> prompt, stop = render([{"role": "user", "content": "Hi"}], "chatml")
    >>> print(prompt)
    <|im_start|>user
    Hi<|im_end|>
    <|im_start|>assistant
    <BLANKLINE>
    >>> stop
    ['<|im_end|>']
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

Messages = Sequence[Mapping[str, Any]]


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise TypeError(f"a {message.get('role')} message's content must be text to fit a prompt template")


def _chatml(messages: Messages) -> str:
    turns = [f"<|im_start|>{m['role']}\n{_text(m)}<|im_end|>\n" for m in messages]
    return "".join(turns) + "<|im_start|>assistant\n"


def _llama3(messages: Messages) -> str:
    # The leading <|begin_of_text|> is left to the server, which adds the BOS token itself.
    turns = [f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{_text(m)}<|eot_id|>" for m in messages]
    return "".join(turns) + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _mistral(messages: Messages) -> str:
    # Mistral instruct has no system role: the system text leads the first user turn.
    system = "\n\n".join(_text(m) for m in messages if m["role"] == "system")
    prompt = ""
    for message in (m for m in messages if m["role"] != "system"):
        if message["role"] == "assistant":
            prompt += f" {_text(message)}</s>"
        else:
            text = f"{system}\n\n{_text(message)}" if system else _text(message)
            system = ""
            prompt += f"[INST] {text} [/INST]"
    return prompt


def _plain(messages: Messages) -> str:
    return "".join(f"{m['role']}: {_text(m)}\n" for m in messages) + "assistant:"


#: name -> (renderer, the stop sequences that end the assistant's turn)
TEMPLATES: Mapping[str, tuple[Callable[[Messages], str], list[str]]] = {
    "chatml": (_chatml, ["<|im_end|>"]),
    "llama3": (_llama3, ["<|eot_id|>"]),
    "mistral": (_mistral, ["</s>", "[INST]"]),
    "plain": (_plain, ["\nuser:"]),
}


def render(messages: Messages, template: str) -> tuple[str, list[str]]:
    """The prompt for ``messages`` in ``template``, and the template's stop sequences."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}: choose one of {', '.join(sorted(TEMPLATES))}")
    renderer, stop = TEMPLATES[template]
    return renderer(messages), list(stop)
