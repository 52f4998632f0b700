"""openai-compat: a small synchronous client for every server that speaks the OpenAI HTTP API.

    >>> from openai_compat import Client
    >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
    >>> text = client.chat("Write a haiku about the sea", max_tokens=30)
    >>> pieces = list(client.chat("Write a haiku about the sea", max_tokens=30, stream=True))
    >>> isinstance(text, str) and all(isinstance(piece, str) for piece in pieces)
    True
"""

import logging

from ._batch_jobs import BatchItemError, BatchJob
from ._cassette import Cassette, CassetteError
from ._chunks import merge_chunks
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
from ._options import DEFAULT_TIMEOUT
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
from ._record import CallRecord, Usage, UsageTotals
from ._sse import ChunkStream
from ._transport import RequestEvent

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
    "FireworksClient",
    "GroqClient",
    "InternalServerError",
    "JSONOutputError",
    "LMStudioClient",
    "LlamaCppClient",
    "MistralClient",
    "NotFoundError",
    "OllamaClient",
    "OpenAIClient",
    "OpenAICompatError",
    "OpenRouterClient",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestEvent",
    "TogetherClient",
    "UnhandledToolCallsError",
    "UnprocessableEntityError",
    "Usage",
    "UsageTotals",
    "VLLMClient",
    "merge_chunks",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
