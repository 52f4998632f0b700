"""openai-compat: a small synchronous client for every server that speaks the OpenAI HTTP API.

    >>> from openai_compat import Client
    >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
    >>> text = client.chat("Write a haiku about the sea", max_tokens=30)
    >>> pieces = list(client.chat("Write a haiku about the sea", max_tokens=30, stream=True))
    >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
    True
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._call_record import CallRecord, RateLimits, Usage, UsageTotals
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
    EmptyAnswerError,
    InternalServerError,
    JSONOutputError,
    NotFoundError,
    OpenAICompatError,
    PermissionDeniedError,
    RateLimitError,
    UnhandledToolCallsError,
    UnprocessableEntityError,
)
from ._options import DEFAULT_TIMEOUT, Timeout
from ._params import Message, Prompt
from ._pipeline import EventHook, RequestEvent
from ._presets import (
    PROVIDERS,
    DeepInfraClient,
    DeepSeekClient,
    FireworksClient,
    GroqClient,
    LlamaCppClient,
    LMStudioClient,
    MistralClient,
    OllamaClient,
    OpenAIClient,
    OpenRouterClient,
    TogetherClient,
    VLLMClient,
)
from ._reasoning import Thinking
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ._batch_jobs import BatchItemError, BatchJob
    from ._cassette import Cassette, CassetteError
    from ._media import Media
    from ._merge import merge_chunks
    from ._probe import ProbeItem, ProbeReport
    from ._responses import ResponseStream

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchItemError",
    "BatchJob",
    "CallRecord",
    "Cassette",
    "CassetteError",
    "ChunkStream",
    "Client",
    "ConflictError",
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
    "OpenAIClient",
    "OpenAICompatError",
    "OpenRouterClient",
    "PermissionDeniedError",
    "ProbeItem",
    "ProbeReport",
    "Prompt",
    "RateLimitError",
    "RateLimits",
    "RequestEvent",
    "ResponseStream",
    "RetryPolicy",
    "Thinking",
    "Timeout",
    "TogetherClient",
    "UnhandledToolCallsError",
    "UnprocessableEntityError",
    "Usage",
    "UsageTotals",
    "VLLMClient",
    "merge_chunks",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Loaded on first use, so that importing the package stays as cheap as importing requests.
_LAZY = {"BatchItemError": "_batch_jobs", "BatchJob": "_batch_jobs", "Cassette": "_cassette",
         "CassetteError": "_cassette", "Media": "_media", "merge_chunks": "_merge", "ProbeItem": "_probe",
         "ProbeReport": "_probe", "ResponseStream": "_responses"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
