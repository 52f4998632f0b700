"""The openai-compat command against the loopback server: in this process, and as a real one where
Ctrl-C, a closed pipe or the console script is the point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, stream_of


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_command(*args, stdin=stdin)


def test_chat_streams_to_stdout(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["Hel", "lo"]))
    result = cli("chat", "--base-url", server.url, "--model", "m", "--system", "Be brief.", "--max-tokens", "9",
                 "--temperature", "0.5", "say", "hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello\n", "")
    assert server.requests[0].json == {"model": "m", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "say hello"}],
        "max_tokens": 9, "temperature": 0.5, "stream": True}


def test_the_prompt_comes_from_stdin(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion(" continued", chat=False))
    result = cli("complete", "--base-url", server.url, "--model", "m", "--no-stream", stdin="Once upon")
    assert (result.returncode, result.stdout) == (0, " continued\n")
    assert server.requests[0].json["prompt"] == "Once upon"


def test_json_prints_the_full_response_or_one_chunk_per_line(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json(completion("hi"))
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--json", "x")
    assert json.loads(result.stdout) == completion("hi")
    server.handler = lambda req, wire: wire.sse(stream_of(["a", "b"]))
    result = cli("chat", "--base-url", server.url, "--model", "m", "--json", "x")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["choices"][0]["delta"].get("content") for line in lines] == ["a", "b", None]


def test_an_error_is_one_readable_line_and_a_non_zero_exit(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.json({"error": {"message": "Invalid API key"}}, status=401)
    result = cli("chat", "--base-url", server.url, "--model", "m", "x")
    assert result.returncode == 1
    assert result.stderr == ("openai-compat: error: HTTP 401: Invalid API key (no API key was sent: use --api-key-env"
                             " VAR, or --provider NAME, which reads its variable)\n")


def test_a_provider_key_missing_is_named() -> None:
    result = cli("chat", "--provider", "fireworks", "--model", "m", "x")
    assert result.returncode == 1 and "FIREWORKS_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_destination_and_no_prompt_are_usage_errors(server: LoopbackServer) -> None:
    assert "--provider NAME or --base-url URL" in cli("chat", "--model", "m", "x").stderr
    assert "prompt is empty" in cli("chat", "--base-url", server.url, "--model", "m", stdin="").stderr
    assert server.requests == []


def _endless(req: Request, wire: Wire) -> None:
    try:
        wire.sse((p for i in range(2000) for p in (event(chunk(f"line {i}\n")), 0.01)), end=False)
    except OSError:
        pass


def test_ctrl_c_exits_130_without_a_traceback(server: LoopbackServer) -> None:
    server.handler = _endless
    # Started as from a shell, whatever this test runner does with SIGINT itself: an ignored
    # signal would be inherited.
    process = subprocess.Popen([sys.executable, "-m", "openai_compat", "chat", "--base-url", server.url,
                                "--model", "m", "x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None and process.stdout.readline() == "line 0\n"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "Traceback" not in stderr


def test_a_closed_pipe_stops_quietly(server: LoopbackServer) -> None:
    server.handler = _endless
    # Buffered stdout, as for any user: with PYTHONUNBUFFERED there is nothing left to flush at
    # exit, and the exit-time complaint this guards against could not happen.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen([sys.executable, "-m", "openai_compat", "chat", "--base-url", server.url,
                                "--model", "m", "x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None and process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # what `| head -1` does once it has its line
    stderr = process.stderr.read() if process.stderr else b""
    assert process.wait(20) == 141
    assert stderr == b""


def test_help_shows_examples_and_providers() -> None:
    result = cli("chat", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "openai-compat chat --provider fireworks" in result.stdout
    assert "llamacpp" in result.stdout


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "openai-compat"
    if not script.exists():
        pytest.skip("not installed as a package here")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "chat" in result.stdout


def test_streaming_output_appears_piece_by_piece(server: LoopbackServer) -> None:
    released = threading.Event()

    def handler(req: Request, wire: Wire) -> None:
        def pieces():
            yield event(chunk("first\n"))
            released.wait(10)
            yield event(chunk("second", finish_reason="stop"))
        wire.sse(pieces())
    server.handler = handler
    process = subprocess.Popen([sys.executable, "-m", "openai_compat", "chat", "--base-url", server.url,
                                "--model", "m", "x"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    started = time.monotonic()
    assert process.stdout.readline() == "first\n"  # printed before the server goes on
    released.set()
    assert process.stdout.read() == "second\n"
    assert process.wait(20) == 0
    assert time.monotonic() - started < 10


def test_tool_calls_the_cli_cannot_print_exit_non_zero(server: LoopbackServer) -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}
    server.handler = lambda req, wire: wire.json({"choices": [{"index": 0, "message": message,
                                                               "finish_reason": "tool_calls"}]})
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "weather?")
    assert result.returncode == 1
    assert "get_weather" in result.stderr and result.stdout == ""


def test_a_blocking_answers_thinking_in_two_forms_is_shown_whole_on_stderr(server: LoopbackServer) -> None:
    answer = completion("<think>and then b.</think>It is c.")
    answer["choices"][0]["message"]["reasoning_content"] = "First a, "
    server.handler = lambda req, wire: wire.json(answer)
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--reasoning", "x")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("It is c.\n", "First a, and then b.\n")
