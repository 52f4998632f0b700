"""What a new user runs first: `make serve` and the build's progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from openai_compat import LlamaCppClient

from .llama_server import build_step, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_make_serve_keeps_a_server_until_ctrl_c() -> None:
    port = free_port()
    # Started as from a shell, whatever the runner does with SIGINT: an ignored signal (a job
    # started in the background, a mutation worker) would be inherited.
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve"], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, OPENAI_COMPAT_PORT=str(port)),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stderr is not None
    try:
        # The banner comes last, once the server answers: everything before it is the build's.
        shown: list[str] = []
        while not shown or "Ctrl-C" not in shown[-1]:
            shown.append(process.stderr.readline())
            assert shown[-1], f"make serve ended before its banner: {''.join(shown)}"
        client = LlamaCppClient(f"http://127.0.0.1:{port}/v1", model="tiny", max_retries=0, timeout=(1, 30))
        assert isinstance(client.chat("Hi", max_tokens=5), str), "the server answered a chat"
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = "".join(shown) + (rest or "")
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/v1" in shown[-1] and "its log:" in shown[-1] and "stopped" in stderr
    assert "llama" not in "".join(shown[:-1]).replace("[llama-server]", ""), "the server's own output is in its log"


def test_the_build_progress_reads_the_compilers_steps() -> None:
    assert build_step("  [12/193] Building C object vendor/llama.cpp/ggml/src/ggml.c.o") == (12, 193)
    assert build_step("[193/193] Linking CXX shared library bin/libllama.so") == (193, 193)
    assert build_step("  Building wheel for llama-cpp-python (pyproject.toml): still running...") is None
    assert build_step("[0/0] nothing") is None
