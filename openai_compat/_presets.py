"""Provider presets: a base URL and the variable that holds the key, nothing else.

Each preset reads its key from its own variable, and only when it talks to its own host. A
preset is one class here, named by ``provider=`` (which registers it in ``PROVIDERS``), plus its
name in the package's exports and its row in docs/providers.md (a test checks both).

    >>> from openai_compat import PROVIDERS, LlamaCppClient
    >>> LlamaCppClient().base_url
    'http://127.0.0.1:8080/v1'
    >>> sorted(PROVIDERS)[:3]
    ['deepinfra', 'deepseek', 'fireworks']
"""

from __future__ import annotations

from types import MappingProxyType as _MappingProxyType
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
    thinking_style = "reasoning_effort"


class TogetherClient(Client, provider="together"):
    """Together AI; the key comes from ``TOGETHER_API_KEY``.

        >>> from openai_compat import TogetherClient
        >>> TogetherClient(api_key="tg-...").base_url
        'https://api.together.xyz/v1'
    """

    default_base_url = "https://api.together.xyz/v1"
    api_key_env = "TOGETHER_API_KEY"
    thinking_style = "reasoning"


class GroqClient(Client, provider="groq"):
    """Groq; the key comes from ``GROQ_API_KEY``.

        >>> from openai_compat import GroqClient
        >>> GroqClient(api_key="gsk-...").base_url
        'https://api.groq.com/openai/v1'
    """

    default_base_url = "https://api.groq.com/openai/v1"
    api_key_env = "GROQ_API_KEY"
    thinking_style = "reasoning_effort"


class DeepInfraClient(Client, provider="deepinfra"):
    """DeepInfra; the key comes from ``DEEPINFRA_API_KEY``.

        >>> from openai_compat import DeepInfraClient
        >>> DeepInfraClient(api_key="di-...").base_url
        'https://api.deepinfra.com/v1/openai'
    """

    default_base_url = "https://api.deepinfra.com/v1/openai"
    api_key_env = "DEEPINFRA_API_KEY"
    thinking_style = "reasoning_effort"


class OpenRouterClient(Client, provider="openrouter"):
    """OpenRouter; the key comes from ``OPENROUTER_API_KEY``.

        >>> from openai_compat import OpenRouterClient
        >>> OpenRouterClient(api_key="or-...").base_url
        'https://openrouter.ai/api/v1'
    """

    default_base_url = "https://openrouter.ai/api/v1"
    api_key_env = "OPENROUTER_API_KEY"
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
    thinking_style = "reasoning_effort"


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


#: Every preset by the short name the CLI's ``--provider`` takes (each registers itself).
PROVIDERS: _Mapping[str, type[Client]] = _MappingProxyType(_PRESETS)
