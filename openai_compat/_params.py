"""Request bodies: the messages of a prompt, and the parameters beside them."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

Message = Mapping[str, Any]
Prompt = Union[str, Sequence[Message]]


def messages_of(prompt: Prompt, system: str | None) -> list[Message]:
    """The messages of a prompt (a string is one user message), ``system`` first, checked; a
    message given as another mapping than a dict is sent as a dict of it."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("the prompt is empty: a model asked nothing answers nothing")
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
    return [message if type(message) is dict else dict(message) for message in messages]


def check_messages(messages: Any) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of message dicts")
    for i, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
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


#: Every keyword the front-door methods name, for telling a typo from a provider's extra.
KNOWN_NAMES = (*CHAT_PARAMETERS, "model", "system", "stream", "timeout", "max_retries", "deadline", "template",
               "echo", "logprobs", "suffix", "batch_size", "tool_calls_from_content",
               "continue_on_length")

#: Named parameters: the types each accepts and the range of a number, checked before sending.
_NUMBER = (int, float)
_CHECKS: dict[str, tuple[tuple[type, ...], float | None, float | None]] = {
    "max_tokens": ((int,), 1, None),
    "n": ((int,), 1, None),
    "seed": ((int,), None, None),
    "logprobs": ((bool, int), 0, None),
    "temperature": (_NUMBER, 0, None),
    "top_p": (_NUMBER, 0, 1),
    "presence_penalty": (_NUMBER, -2, 2),
    "frequency_penalty": (_NUMBER, -2, 2),
    "stop": ((str, list), None, None),
    "logit_bias": ((dict,), None, None),
    "response_format": ((dict,), None, None),
    "tools": ((list,), None, None),
    "tool_choice": ((str, dict), None, None),
    "user": ((str,), None, None),
    "echo": ((bool,), None, None),
    "suffix": ((str,), None, None),
}

#: Keywords that providers and local servers really take, beyond the named parameters. An
#: extra keyword one edit away from a name here or a named parameter is taken for a typo.
KNOWN_EXTRAS = frozenset({
    "top_k", "min_p", "top_a", "typical_p", "tfs_z", "repetition_penalty", "repeat_penalty", "min_tokens",
    "max_completion_tokens", "stream_options", "top_logprobs", "parallel_tool_calls", "reasoning_effort",
    "reasoning", "thinking", "chat_template_kwargs", "service_tier", "metadata", "store", "modalities",
    "audio", "prediction", "safety_model", "context_length_exceeded_behavior", "best_of", "ignore_eos",
    "grammar", "json_schema", "mirostat", "mirostat_tau", "mirostat_eta", "cache_prompt", "n_probs",
    "structured_outputs", "guided_json", "include_reasoning", "transforms", "models", "provider", "route",
    "reasoning_format", "return_tokens_as_token_ids", "skip_special_tokens", "images", "keep_alive",
    "dimensions", "encoding_format", "input_type", "truncate", "documents", "tool_resources",
})


#: Names other APIs give the output limit (Hugging Face, Gemini, Ollama, Anthropic): an
#: OpenAI-compatible server takes ``max_tokens`` and most ignore these.
OTHER_LIMIT_NAMES = frozenset({"max_new_tokens", "maxTokens", "max_length", "maxOutputTokens", "num_predict",
                               "max_tokens_to_sample", "max_output_tokens"})


def check_params(owner: str, named: dict[str, Any], extra: dict[str, Any], known: Sequence[str]) -> None:
    """Refuse a named parameter of the wrong type or range, and an extra keyword that looks
    like a typo of a known one, before anything is sent; warn about an output limit under
    another API's name."""
    for name, value in named.items():
        if value is None or name not in _CHECKS:
            continue
        types, low, high = _CHECKS[name]
        if name == "max_tokens" and owner == "complete":
            low = 0  # max_tokens=0 with echo and logprobs scores a prompt without generating
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise TypeError(f"{owner}(): {name} must be {wanted}, got {type(value).__name__} {value!r:.40}")
        if isinstance(value, _NUMBER) and not isinstance(value, bool) and (
            (low is not None and value < low) or (high is not None and value > high)
        ):
            bounds = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise ValueError(f"{owner}(): {name} must be {bounds}, got {value!r}")
    for name in extra:
        if name in KNOWN_EXTRAS:
            continue
        if name in OTHER_LIMIT_NAMES:
            from ._warnings import warn  # only a mistake needs it

            warn(f"{owner}(): {name} is another API's name for the output limit, sent as given; most"
                 " OpenAI-compatible servers ignore it: the limit is max_tokens")
            continue
        close = [k for k in (*known, *KNOWN_EXTRAS) if _one_edit_apart(name, k)]
        if close:
            raise TypeError(
                f"{owner}() got an unexpected keyword {name!r}: did you mean {close[0]}? (to send it as"
                f" named, pass extra_body={{{name!r}: ...}})"
            )


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def check_stream(owner: str, stream: Any) -> bool:
    """``stream`` as a bool; anything else (``"yes"``, 1) is refused rather than guessed."""
    if not isinstance(stream, bool):
        raise TypeError(f"{owner}(): stream must be True or False, got {stream!r:.40}")
    return stream


def unknown_option(owner: str, name: str, function: Any) -> TypeError:
    """The error for an unknown keyword ``name`` given to ``owner``, naming the one meant."""
    import inspect  # only a mistake needs it

    options = [p for p in inspect.signature(function).parameters if p not in ("self", "unknown_options")]
    close = [option for option in options if _one_edit_apart(name, option) or name.lower() == option.lower()]
    if not close:
        import difflib

        close = difflib.get_close_matches(name, options, n=1)
    hint = f": did you mean {close[0]}?" if close else f"; it takes {', '.join(options)}"
    return TypeError(f"{owner}() got an unexpected keyword argument {name!r}{hint}")
