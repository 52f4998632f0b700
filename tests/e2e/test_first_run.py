"""What a new user runs first: `make serve` and the build's progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from openai_compat import LlamaCppClient

from .llama_server import build_step, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_make_serve_keeps_a_server_until_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve"], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, OPENAI_COMPAT_PORT=str(port)))
    try:
        client = LlamaCppClient(f"http://127.0.0.1:{port}/v1", model="tiny", max_retries=0, timeout=(1, 30))
        answer = None
        for _ in range(600):
            try:
                answer = client.chat("Hi", max_tokens=5)
                break
            except Exception:
                time.sleep(0.2)
        assert isinstance(answer, str), "the server answered a chat"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/v1" in stderr and "Ctrl-C" in stderr and "stopped" in stderr


def test_the_build_progress_reads_the_compilers_steps() -> None:
    assert build_step("  [12/193] Building C object vendor/llama.cpp/ggml/src/ggml.c.o") == (12, 193)
    assert build_step("[193/193] Linking CXX shared library bin/libllama.so") == (193, 193)
    assert build_step("  Building wheel for llama-cpp-python (pyproject.toml): still running...") is None
    assert build_step("[0/0] nothing") is None
