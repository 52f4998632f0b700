"""``make serve``: the demo's local llama.cpp server, kept running in the foreground.

It listens on ``127.0.0.1:8080`` (``OPENAI_COMPAT_PORT`` picks another port), so that
``LlamaCppClient(model="tiny")`` works at once in a notebook. Ctrl-C stops it.
"""

from __future__ import annotations

import os

from .llama_server import LlamaServer, port_is_free, say


def main() -> int:
    port = int(os.environ.get("OPENAI_COMPAT_PORT", "8080"))
    if not port_is_free(port):
        say(f"something already listens on 127.0.0.1:{port}: stop it, or set OPENAI_COMPAT_PORT")
        return 1
    server = LlamaServer(port=port)
    try:
        with server:  # the server's own output goes to its log file; the banner comes last
            say(f"serving the tiny random model at {server.base_url} until Ctrl-C (its log: {server.log_path})."
                " In Python:")
            say(f'    from openai_compat import LlamaCppClient; LlamaCppClient('
                f'{"" if port == 8080 else repr(server.base_url) + ", "}model="tiny").chat("Hi")')
            assert server.process is not None
            return server.process.wait()
    except KeyboardInterrupt:
        say("stopped")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
