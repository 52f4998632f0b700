"""openai-compat: a small synchronous client for every server that speaks the OpenAI HTTP API.

    >>> from openai_compat import Client
    >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
    >>> text = client.chat("Write a haiku about the sea", max_tokens=30)
    >>> pieces = list(client.chat("Write a haiku about the sea", max_tokens=30, stream=True))
    >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
    True

Every public name is loaded on first use: importing the package loads none of its modules,
and a call loads only those it needs (a stream its reader, ``chat_json()`` its ladder, ...).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._batch_jobs import BatchItemError, BatchJob
    from ._call_record import CallRecord, RateLimits, Usage, UsageTotals
    from ._cassette import Cassette, CassetteError
    from ._chat_stream import ChunkStream
    from ._client import Client
    from ._errors import (
        APIConnectionError,
        APIResponseError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        ContentFilterError,
        ContextLengthError,
        EmptyAnswerError,
        InternalServerError,
        JSONOutputError,
        NotFoundError,
        OpenAICompatError,
        PermissionDeniedError,
        RateLimitError,
        RefusalError,
        ToolArgumentsError,
        ToolLoopError,
        UnhandledToolCallsError,
        UnprocessableEntityError,
    )
    from ._media import Media
    from ._merge import merge_chunks
    from ._options import DEFAULT_TIMEOUT, Timeout
    from ._params import Message, Prompt
    from ._pipeline import EventHook, RequestEvent
    from ._presets import *  # noqa: F403 (the presets: each class in _presets.py, with PROVIDERS)
    from ._probe import ProbeItem, ProbeReport
    from ._reasoning import Thinking
    from ._responses import ResponseStream
    from ._retry import RetryPolicy
    from ._tool_calls import parse_arguments
    from ._tool_use import OnTool

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "AzureClient",
    "BadRequestError",
    "BatchItemError",
    "BatchJob",
    "CallRecord",
    "Cassette",
    "CassetteError",
    "ChunkStream",
    "Client",
    "ConflictError",
    "ContentFilterError",
    "ContextLengthError",
    "DeepInfraClient",
    "DeepSeekClient",
    "EmptyAnswerError",
    "EventHook",
    "FireworksClient",
    "GroqClient",
    "InternalServerError",
    "JSONOutputError",
    "LMStudioClient",
    "LlamaCppClient",
    "Media",
    "Message",
    "MistralClient",
    "NotFoundError",
    "OllamaClient",
    "OnTool",
    "OpenAIClient",
    "OpenAICompatError",
    "OpenRouterClient",
    "PermissionDeniedError",
    "PerplexityClient",
    "ProbeItem",
    "ProbeReport",
    "Prompt",
    "RateLimitError",
    "RateLimits",
    "RefusalError",
    "RequestEvent",
    "ResponseStream",
    "RetryPolicy",
    "Thinking",
    "Timeout",
    "TogetherClient",
    "ToolArgumentsError",
    "ToolLoopError",
    "UnhandledToolCallsError",
    "UnprocessableEntityError",
    "Usage",
    "UsageTotals",
    "VLLMClient",
    "merge_chunks",
    "parse_arguments",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Where each public name lives; a module's names are loaded together, on first use.
_MODULES = {
    "_batch_jobs": ("BatchItemError", "BatchJob"),
    "_call_record": ("CallRecord", "RateLimits", "Usage", "UsageTotals"),
    "_cassette": ("Cassette", "CassetteError"),
    "_chat_stream": ("ChunkStream",),
    "_client": ("Client",),
    "_errors": ("APIConnectionError", "APIResponseError", "APIStatusError", "APITimeoutError", "AuthenticationError",
                "BadRequestError", "ConflictError", "ContentFilterError", "ContextLengthError", "EmptyAnswerError",
                "InternalServerError", "JSONOutputError", "NotFoundError", "OpenAICompatError",
                "PermissionDeniedError", "RateLimitError", "RefusalError", "ToolArgumentsError",
                "ToolLoopError", "UnhandledToolCallsError", "UnprocessableEntityError"),
    "_media": ("Media",),
    "_merge": ("merge_chunks",),
    "_options": ("DEFAULT_TIMEOUT", "Timeout"),
    "_params": ("Message", "Prompt"),
    "_pipeline": ("EventHook", "RequestEvent"),
    "_probe": ("ProbeItem", "ProbeReport"),
    "_reasoning": ("Thinking",),
    "_responses": ("ResponseStream",),
    "_retry": ("RetryPolicy",),
    "_tool_calls": ("parse_arguments",),
    "_tool_use": ("OnTool",),
}
#: The rest of ``__all__`` are the presets (``_presets.py``).
_MODULES["_presets"] = tuple(sorted(set(__all__) - {name for names in _MODULES.values() for name in names}))
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(f".{module}", __name__)
    for each in _MODULES[module]:
        globals()[each] = getattr(loaded, each)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
