"""``make serve``: the demo's local llama.cpp server, kept running in the foreground.

It listens on ``127.0.0.1:8080`` (``OPENAI_COMPAT_PORT`` picks another port), so that
``LlamaCppClient(model="tiny")`` works at once in a notebook. Ctrl-C stops it.
"""

from __future__ import annotations

import os
import subprocess

from .llama_server import ensure_environment, ensure_model, port_is_free, say


def main() -> int:
    port = int(os.environ.get("OPENAI_COMPAT_PORT", "8080"))
    if not port_is_free(port):
        say(f"something already listens on 127.0.0.1:{port}: stop it, or set OPENAI_COMPAT_PORT")
        return 1
    python = ensure_environment()
    model = ensure_model(python)
    base_url = f"http://127.0.0.1:{port}/v1"
    say(f"serving the tiny random model at {base_url} until Ctrl-C. In Python:")
    say(f'    from openai_compat import LlamaCppClient; LlamaCppClient({"" if port == 8080 else repr(base_url) + ", "}'
        'model="tiny").chat("Hi")')
    process = subprocess.Popen(
        [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--interrupt_requests", "false"],
    )
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        say("stopped")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
