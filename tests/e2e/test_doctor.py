"""`openai-compat doctor` against the real llama.cpp server: the report is what the server does."""

from __future__ import annotations

import json
import subprocess
import sys

from .llama_server import LlamaServer

# What llama-cpp-python's server does (see ../shared/PROVIDERS.md): it streams with [DONE], ignores
# n, stream_options and max_completion_tokens, refuses json_schema with a 500, and has no /responses.
KNOWN = {"blocking chat": "ok", "streaming chat": "ok", "[DONE]": "ok", "usage in blocking answers": "ok",
         "n > 1": "no", "stream_options.include_usage": "no", "json_object": "ok", "json_schema": "no",
         "max_completion_tokens": "no", "/completions": "ok", "/responses": "no"}


def test_doctor_reports_what_the_real_server_does(llama_server: LlamaServer) -> None:
    result = subprocess.run([sys.executable, "-m", "openai_compat", "doctor", "--base-url", llama_server.base_url,
                             "--model", "tiny", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    seen = {item["name"]: item["result"] for item in report["items"]}
    assert {name: seen[name] for name in KNOWN} == KNOWN
