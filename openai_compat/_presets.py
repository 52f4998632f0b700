"""Provider presets: a base URL and the variable that holds the key, nothing else.

Each preset reads its key from its own variable, and only when it talks to its own host. A
preset is one class here, named by ``provider=`` (which registers it in ``PROVIDERS``), plus its
name in the package's exports and its row in docs/providers.md (a test checks both).

    >>> from openai_compat import PROVIDERS, LlamaCppClient
    >>> LlamaCppClient().base_url
    'http://127.0.0.1:8080/v1'
    >>> sorted(PROVIDERS)[:3]
    ['azure', 'deepinfra', 'deepseek']
"""

from __future__ import annotations

import os as _os
import re as _re
from types import MappingProxyType as _MappingProxyType
from typing import Any as _Any
from typing import Callable as _Callable
from typing import Mapping as _Mapping

from ._client import PRESETS as _PRESETS
from ._client import Client


class FireworksClient(Client, provider="fireworks"):
    """Fireworks AI; the key comes from ``FIREWORKS_API_KEY`` unless ``api_key=`` is given.

        >>> from openai_compat import FireworksClient
        >>> client = FireworksClient(api_key="fw-...")
        >>> client.base_url
        'https://api.fireworks.ai/inference/v1'
    """

    default_base_url = "https://api.fireworks.ai/inference/v1"
    api_key_env = "FIREWORKS_API_KEY"
    streams_usage = True
    thinking_style = "reasoning_effort"


class TogetherClient(Client, provider="together"):
    """Together AI; the key comes from ``TOGETHER_API_KEY``.

        >>> from openai_compat import TogetherClient
        >>> TogetherClient(api_key="tg-...").base_url
        'https://api.together.xyz/v1'
    """

    default_base_url = "https://api.together.xyz/v1"
    api_key_env = "TOGETHER_API_KEY"
    streams_usage = True
    thinking_style = "reasoning"


class GroqClient(Client, provider="groq"):
    """Groq; the key comes from ``GROQ_API_KEY``.

        >>> from openai_compat import GroqClient
        >>> GroqClient(api_key="gsk-...").base_url
        'https://api.groq.com/openai/v1'
    """

    default_base_url = "https://api.groq.com/openai/v1"
    api_key_env = "GROQ_API_KEY"
    streams_usage = True
    thinking_style = "reasoning_effort"


class DeepInfraClient(Client, provider="deepinfra"):
    """DeepInfra; the key comes from ``DEEPINFRA_API_KEY``.

        >>> from openai_compat import DeepInfraClient
        >>> DeepInfraClient(api_key="di-...").base_url
        'https://api.deepinfra.com/v1/openai'
    """

    default_base_url = "https://api.deepinfra.com/v1/openai"
    api_key_env = "DEEPINFRA_API_KEY"
    streams_usage = True
    thinking_style = "reasoning_effort"


class OpenRouterClient(Client, provider="openrouter"):
    """OpenRouter; the key comes from ``OPENROUTER_API_KEY``.

        >>> from openai_compat import OpenRouterClient
        >>> OpenRouterClient(api_key="or-...").base_url
        'https://openrouter.ai/api/v1'
    """

    default_base_url = "https://openrouter.ai/api/v1"
    api_key_env = "OPENROUTER_API_KEY"
    streams_usage = True
    thinking_style = "reasoning"


class DeepSeekClient(Client, provider="deepseek"):
    """DeepSeek; the key comes from ``DEEPSEEK_API_KEY``. ``thinking=False`` sends
    ``thinking: {"type": "disabled"}``.

        >>> from openai_compat import DeepSeekClient
        >>> DeepSeekClient(api_key="sk-...").base_url
        'https://api.deepseek.com'
    """

    default_base_url = "https://api.deepseek.com"
    api_key_env = "DEEPSEEK_API_KEY"
    streams_usage = True
    thinking_style = "thinking"


class MistralClient(Client, provider="mistral"):
    """Mistral AI; the key comes from ``MISTRAL_API_KEY``.

        >>> from openai_compat import MistralClient
        >>> MistralClient(api_key="ms-...").base_url
        'https://api.mistral.ai/v1'
    """

    default_base_url = "https://api.mistral.ai/v1"
    api_key_env = "MISTRAL_API_KEY"
    prefill_style = "prefix"


class OpenAIClient(Client, provider="openai"):
    """OpenAI itself; the key comes from ``OPENAI_API_KEY``.

        >>> from openai_compat import OpenAIClient
        >>> OpenAIClient(api_key="sk-...").base_url
        'https://api.openai.com/v1'
    """

    default_base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    streams_usage = True
    thinking_style = "reasoning_effort"
    #: Models that refuse ``max_tokens`` and take ``max_completion_tokens`` (the reasoning ones).
    completion_tokens_models = r"o\d|gpt-5"

    def _body(self, call: str, model: str | None, base: dict[str, _Any], params: dict[str, _Any],
              extra: dict[str, _Any], options: _Any, *, checked: bool = True) -> dict[str, _Any]:
        body = super()._body(call, model, base, params, extra, options, checked=checked)
        if (checked and "max_tokens" in body and "max_completion_tokens" not in body
                and _re.match(self.completion_tokens_models, str(body.get("model")))):
            body["max_completion_tokens"] = body.pop("max_tokens")  # sent right the first time
        return body


class LlamaCppClient(Client, provider="llamacpp"):
    """A local llama.cpp server (``llama-server`` or ``python -m llama_cpp.server``); no key.

        >>> from openai_compat import LlamaCppClient
        >>> LlamaCppClient("http://127.0.0.1:9000/v1").base_url
        'http://127.0.0.1:9000/v1'
    """

    default_base_url = "http://127.0.0.1:8080/v1"
    thinking_style = "chat_template_kwargs"
    prefill_style = "final_assistant"


class OllamaClient(Client, provider="ollama"):
    """A local Ollama server; no key.

        >>> from openai_compat import OllamaClient
        >>> OllamaClient().base_url
        'http://127.0.0.1:11434/v1'
    """

    default_base_url = "http://127.0.0.1:11434/v1"
    thinking_style = "reasoning_effort"


class VLLMClient(Client, provider="vllm"):
    """A local vLLM server; no key.

        >>> from openai_compat import VLLMClient
        >>> VLLMClient().base_url
        'http://127.0.0.1:8000/v1'
    """

    default_base_url = "http://127.0.0.1:8000/v1"
    streams_usage = True
    thinking_style = "chat_template_kwargs"
    prefill_style = "continue_final_message"


class LMStudioClient(Client, provider="lmstudio"):
    """A local LM Studio server; no key.

        >>> from openai_compat import LMStudioClient
        >>> LMStudioClient().base_url
        'http://127.0.0.1:1234/v1'
    """

    default_base_url = "http://127.0.0.1:1234/v1"
    thinking_style = "reasoning_effort"




class PerplexityClient(Client, provider="perplexity"):
    """Perplexity; the key comes from ``PERPLEXITY_API_KEY``. Each answer's ``citations`` and
    ``search_results`` are kept on ``client.last.extras``.

        >>> from openai_compat import PerplexityClient
        >>> PerplexityClient(api_key="pplx-...").base_url
        'https://api.perplexity.ai'
    """

    default_base_url = "https://api.perplexity.ai"
    api_key_env = "PERPLEXITY_API_KEY"
    kept_fields = ("citations", "search_results")


class AzureClient(Client, provider="azure"):
    """Azure OpenAI: one deployment of one resource. Calls go to
    ``{endpoint}/openai/deployments/{deployment}/...?api-version=...``; the key goes in the
    ``api-key`` header (from ``AZURE_OPENAI_API_KEY`` when the endpoint is
    ``AZURE_OPENAI_ENDPOINT``'s), or ``token_provider`` returns an Entra ID token for each
    attempt, sent as ``Authorization: Bearer``. The model defaults to the deployment's name.

        >>> from openai_compat import AzureClient
        >>> client = AzureClient("https://my-resource.openai.azure.com", deployment="gpt-4o", api_key="...")
        >>> client.base_url
        'https://my-resource.openai.azure.com/openai/deployments/gpt-4o'
    """

    api_key_env = "AZURE_OPENAI_API_KEY"
    key_header = ("api-key", "")
    #: The ``api-version`` sent when none is given (the latest generally available one).
    default_api_version = "2024-10-21"

    def __init__(self, endpoint: str | None = None, *, deployment: str, api_version: str | None = None,
                 token_provider: _Callable[[], str] | None = None, **settings: _Any) -> None:
        endpoint = endpoint or _os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ValueError("AzureClient: pass the resource's endpoint, or set AZURE_OPENAI_ENDPOINT")
        if not isinstance(deployment, str) or not deployment or "/" in deployment:
            raise ValueError(f"AzureClient: deployment must be the deployment's name, got {deployment!r}")
        if token_provider is not None:
            if settings.get("api_key") is not None:
                raise ValueError("AzureClient: pass api_key= or token_provider=, not both")
            self.key_header = ("Authorization", "Bearer ")
            settings["api_key"] = token_provider
        self._endpoint = endpoint.rstrip("/")
        query = {"api-version": api_version or self.default_api_version, **(settings.pop("default_query", None) or {})}
        settings.setdefault("model", deployment)
        super().__init__(f"{self._endpoint}/openai/deployments/{deployment}", default_query=query, **settings)

    def _key_from_env(self) -> str | None:
        # The key belongs to the resource AZURE_OPENAI_ENDPOINT names: never sent to another.
        if self._endpoint != (_os.environ.get("AZURE_OPENAI_ENDPOINT") or "").rstrip("/"):
            raise ValueError(f"AzureClient: AZURE_OPENAI_API_KEY is only sent to AZURE_OPENAI_ENDPOINT's resource;"
                             f" pass api_key= or token_provider= to use {self._endpoint}")
        key = _os.environ.get("AZURE_OPENAI_API_KEY")
        if not key:
            raise ValueError("AzureClient: no API key: set AZURE_OPENAI_API_KEY, or pass api_key= or token_provider=")
        return key


#: Every preset by the short name the CLI's ``--provider`` takes (each registers itself).
PROVIDERS: _Mapping[str, type[Client]] = _MappingProxyType(_PRESETS)
