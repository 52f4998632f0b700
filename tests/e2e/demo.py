"""``make demo``: stream a chat (and a completion) through the ``openai-compat`` command.

With ``FIREWORKS_API_KEY`` or ``TOGETHER_API_KEY`` set, it streams a chat from that provider
(``OPENAI_COMPAT_DEMO_MODEL`` picks another model). With neither, it starts a local llama.cpp
server with a tiny random model and streams from that.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .llama_server import LlamaServer, say

PROMPT = "Write a story about a robot learning to love"
PROVIDER_MODELS = {
    "fireworks": ("FIREWORKS_API_KEY", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
    "together": ("TOGETHER_API_KEY", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
}


def cli(*args: str) -> None:
    command: list[str] = [sys.executable, "-m", "openai_compat", *args]
    print(f"\n$ openai-compat {' '.join(args[:-1])} {args[-1]!r}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit("make demo: the command above failed")


def main() -> None:
    for provider, (variable, model) in PROVIDER_MODELS.items():
        if os.environ.get(variable):
            model = os.environ.get("OPENAI_COMPAT_DEMO_MODEL", model)
            print(f"{variable} is set: streaming a chat from {provider} ({model}).")
            cli("chat", "--provider", provider, "--model", model, "--max-tokens", "200", PROMPT)
            return
    print("No FIREWORKS_API_KEY or TOGETHER_API_KEY: running against a local llama.cpp server instead.")
    print("Its model is tiny and random, so the text is nonsense. The point is the wire: each piece")
    print("below came from a real OpenAI-compatible server as Server-Sent Events, read by openai-compat.")
    try:
        with LlamaServer() as server:
            say(f"serving the tiny model at {server.base_url}")
            common = ("--base-url", server.base_url, "--model", "tiny", "--max-tokens", "60", "--temperature", "0")
            cli("chat", *common, PROMPT)
            cli("complete", *common, "Once upon a time")
        print("\nThe demo's server has stopped. To keep one running for your own code, run `make serve`:")
        print('it listens on 127.0.0.1:8080, where LlamaCppClient(model="tiny").chat("Hi") works at once.')
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"make demo: the local llama.cpp server failed: {exc}") from None


if __name__ == "__main__":
    main()
