"""openai-compat: a small synchronous client for every server that speaks the OpenAI HTTP API.

    >>> from openai_compat import Client
    >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
    >>> text = client.chat("Write a haiku about the sea")                 # doctest: +SKIP
    >>> for piece in client.chat("Write a haiku", stream=True):           # doctest: +SKIP
    ...     print(piece, end="", flush=True)
"""

import logging

from ._client import DEFAULT_TIMEOUT, Client, RequestEvent
from ._errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    JSONOutputError,
    NotFoundError,
    OpenAICompatError,
    PermissionDeniedError,
    RateLimitError,
    UnhandledToolCallsError,
    UnprocessableEntityError,
)
from ._presets import (
    PROVIDERS,
    DeepInfraClient,
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
from ._streaming import ChunkStream, merge_chunks

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
    "ChunkStream",
    "Client",
    "ConflictError",
    "DeepInfraClient",
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
    "VLLMClient",
    "merge_chunks",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
