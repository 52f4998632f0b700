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
from typing import Any

import pytest

from openai_compat import PROVIDERS

from .command import run_command
from .server import LoopbackServer, Request, Wire, chunk, completion, event, json_with_id, stream_of


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
    nowhere = cli("chat", "--model", "m", "x")
    assert (nowhere.returncode, nowhere.stderr) == (
        1, "openai-compat: error: say where to send it: --provider NAME or --base-url URL\n")
    empty = cli("chat", "--base-url", server.url, "--model", "m", stdin=" \n")
    assert (empty.returncode, empty.stderr) == (
        1, "openai-compat: error: the prompt is empty: give it as arguments or on standard input\n")
    unset = cli("chat", "--base-url", server.url, "--api-key-env", "OPENAI_COMPAT_UNSET_VARIABLE", "--model", "m", "x")
    assert (unset.returncode, unset.stderr) == (1, "openai-compat: error: OPENAI_COMPAT_UNSET_VARIABLE is not set\n")
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


def test_ctrl_c_inside_a_tool_exits_130_after_a_line_break(server: LoopbackServer, tmp_path: Path) -> None:
    (tmp_path / "stopping.py").write_text("def stop() -> str:\n    'Stop.'\n    raise KeyboardInterrupt\n")
    answer = completion("", finish_reason="tool_calls")
    answer["choices"][0]["message"]["tool_calls"] = [
        {"id": "c1", "type": "function", "function": {"name": "stop", "arguments": "{}"}}]
    server.handler = lambda req, wire: wire.json(answer)
    result = run_command("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--tool", "stopping:stop",
                         "x", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "\n")


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


def _unexplained(help_text: str) -> list[str]:
    """The options and commands ``--help`` lists with no words after them."""
    lines = help_text.split("\n\nexamples:")[0].splitlines()
    bare = []
    for number, line in enumerate(lines):
        entry = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent not in (2, 4) or entry.startswith("{"):  # "{chat,...}" heads the commands listed below it
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        explained_below = len(following) - len(following.lstrip()) > 8
        if "  " not in entry and not explained_below:
            bare.append(entry)
    return bare


@pytest.mark.parametrize("command", [[], ["chat"], ["complete"], ["doctor"]], ids=["top", "chat", "complete", "doctor"])
def test_help_explains_every_option_and_names_the_program(command: list[str]) -> None:
    shown = cli(*command, "--help")
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"usage: {' '.join(['openai-compat', *command])} ")
    assert _unexplained(shown.stdout) == []
    if not command:
        assert "\nTalk to any server that speaks the OpenAI HTTP API.\n" in shown.stdout
        assert "{chat,complete,doctor}" in shown.stdout


def test_the_command_the_model_and_known_choices_are_required() -> None:
    bare = cli()
    assert bare.returncode == 2 and "required: {chat,complete,doctor}" in bare.stderr.replace("arguments are", "")
    no_model = cli("chat", "--base-url", "http://127.0.0.1:9/v1", "x")
    assert no_model.returncode == 2 and "required: --model" in no_model.stderr.replace("arguments are", "")
    for option in ("--provider", "--thinking"):
        wrong = cli("chat", option, "nope", "--model", "m", "x")
        assert wrong.returncode == 2 and f"argument {option}: invalid choice: 'nope'" in wrong.stderr


#: What ``--help`` says of each option, and how it names the option's value.
HELP = {
    "prompt": "the prompt (read from standard input when left out)",
    "--provider {" + ",".join(sorted(PROVIDERS)) + "}": "a known provider or local server",
    "--base-url BASE_URL": "any OpenAI-compatible base URL, ending in /v1 or similar",
    "--api-key-env VAR": "the variable holding the key for --base-url",
    "--model MODEL": "the model to ask, as the server names it",
    "--system SYSTEM": "a system message sent first",
    "--reasoning": "show the model's thinking, dimmed, on standard error",
    "--thinking {high,low,medium,off,on}": "turn thinking on or off, or set its effort",
    "--json-schema FILE": "ask for JSON fitting the JSON Schema in FILE and print it, checked",
    "--image PATH_OR_URL": "an image to send (repeatable)",
    "--audio PATH": "an audio file to send (repeatable)",
    "--tool MODULE:FUNCTION": "a Python function the model may call; each call and result is shown on standard error"
                              " (repeatable)",
    "--max-tokens N": "stop the answer after N tokens",
    "--temperature T": "sampling temperature (0 for the likeliest)",
    "--no-stream": "wait for the whole answer",
    "--usage": "after the answer, print tokens, cost, time and speed on standard error",
    "--curl": "after the call, print it as a curl command on standard error (the key as a variable)",
    "--record FILE": "record the call to a cassette file",
    "--replay FILE": "answer from a cassette file, with no network",
    "--json": "print the full response (one chunk per line when streaming)",
}


def test_chat_help_says_what_each_option_does() -> None:
    said = " ".join(cli("chat", "--help").stdout.split())
    for option, what in HELP.items():
        assert f"{option} {what}" in said, option
    assert said.startswith("usage: openai-compat chat ") and "send a chat message positional arguments:" in said
    top = " ".join(cli("--help").stdout.split())
    assert "chat send a chat message complete continue a text (/completions) doctor probe what a server really" \
           " supports" in top
    complete = " ".join(cli("complete", "--help").stdout.split())
    assert "continue a text (/completions) positional arguments:" in complete
    doctor = " ".join(cli("doctor", "--help").stdout.split())
    assert ("Probe what a server really does with one tiny request per question: streaming, [DONE], usage, n,"
            " json_object, json_schema, tools, reasoning, ... options:") in doctor.replace("optional arguments:",
                                                                                        "options:")
    assert "--json the report as JSON" in doctor


@pytest.mark.parametrize("command", [[], ["chat"], ["complete"]], ids=["top", "chat", "complete"])
def test_help_ends_with_the_examples_line_by_line(command: list[str]) -> None:
    lines = cli(*command, "--help").stdout.splitlines()
    assert "examples:" in lines
    assert '  openai-compat chat --provider ollama --model llama3.2 --json --no-stream "Hi"' in lines
    assert lines[-1] == "providers: " + ", ".join(sorted(PROVIDERS))


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


# -- every way the command prints ----------------------------------------------------------------------


def test_complete_prints_the_text_blocking_and_streamed_with_the_settings_sent(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(stream_of(["Grü", "ße"], chat=False))
    streamed = cli("complete", "--base-url", server.url, "--model", "m", "--max-tokens", "5", "--temperature", "0",
                   "Once")
    assert (streamed.returncode, streamed.stdout, streamed.stderr) == (0, "Grüße\n", "")
    server.handler = lambda req, wire: wire.json(completion("Grüße", chat=False))
    blocking = cli("complete", "--base-url", server.url, "--model", "m", "--max-tokens", "5", "--no-stream", "Once")
    assert (blocking.returncode, blocking.stdout) == (0, "Grüße\n")
    assert [r.json for r in server.requests] == [
        {"model": "m", "prompt": "Once", "max_tokens": 5, "temperature": 0.0, "stream": True},
        {"model": "m", "prompt": "Once", "max_tokens": 5}]


def test_json_is_printed_as_sent_unescaped_one_object_per_line(server: LoopbackServer) -> None:
    answer = completion("Grüße", chat=False)
    server.handler = lambda req, wire: wire.json(answer)
    blocking = cli("complete", "--base-url", server.url, "--model", "m", "--no-stream", "--json", "--max-tokens", "3",
                   "x")
    assert blocking.stdout == json.dumps(answer, ensure_ascii=False) + "\n"
    chunks = [{"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": end}]}
              for text, end in (("Grü", None), ("ße", "stop"))]
    server.handler = lambda req, wire: wire.sse([event(c) for c in chunks] + ["data: [DONE]\n\n"])
    streamed = cli("complete", "--base-url", server.url, "--model", "m", "--json", "x")
    assert streamed.stdout == "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks)
    server.handler = lambda req, wire: wire.json(completion("Grüße"))
    chat = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--json", "--max-tokens", "3", "x")
    assert chat.stdout == json.dumps(completion("Grüße"), ensure_ascii=False) + "\n"
    assert [r.json.get("max_tokens") for r in server.requests] == [3, None, 3]
    assert [r.json.get("prompt") for r in server.requests] == ["x", "x", None]


def _usage_line(usage: Any, delay: float = 0.0) -> Any:
    def handler(req: Request, wire: Wire) -> None:
        time.sleep(delay)
        answer = completion("hi")
        answer.pop("usage", None)
        wire.json(dict(answer, usage=usage) if usage is not None else answer)

    return handler


@pytest.mark.parametrize(("usage", "line"), [
    (None, r"usage: the server reported no token usage, \d+\.\d\d s"),
    ({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
     r"usage: 3 prompt \+ 2 completion = 5 tokens, \d+\.\d\d s, \d+\.\d tokens/s"),
    ({"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3, "cost": 0.00012},
     r"usage: 3 prompt \+ 0 completion = 3 tokens, \$0\.000120, \d+\.\d\d s"),
    ({"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49,
      "prompt_tokens_details": {"cached_tokens": 32}, "completion_tokens_details": {"reasoning_tokens": 7}},
     r"usage: 40 prompt \(32 cached\) \+ 9 completion \(7 reasoning\) = 49 tokens, \d+\.\d\d s, \d+\.\d tokens/s"),
    ({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0},
      "completion_tokens_details": {"reasoning_tokens": 0}},
     r"usage: 3 prompt \+ 2 completion = 5 tokens, \d+\.\d\d s, \d+\.\d tokens/s"),
    ({"prompt_tokens": 3, "total_tokens": 3}, r"usage: 3 prompt = 3 tokens, \d+\.\d\d s"),
    ({"total_tokens": 7}, r"usage: 7 tokens, \d+\.\d\d s"),
    ({"completion_tokens": 2}, r"usage: 2 completion tokens, \d+\.\d\d s, \d+\.\d tokens/s"),
    ({"prompt_tokens": 3}, r"usage: 3 prompt tokens, \d+\.\d\d s"),
], ids=["none", "plain", "cost-no-completion", "cached-and-reasoning", "zero-cached-and-reasoning", "no-completion",
        "total-alone", "completion-alone", "prompt-alone"])
def test_the_usage_line_says_what_the_server_counted(server: LoopbackServer, usage: Any, line: str) -> None:
    import re

    server.handler = _usage_line(usage)
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--usage", "x")
    assert result.returncode == 0 and result.stdout == "hi\n"
    assert re.fullmatch(line + "\n", result.stderr), result.stderr


def test_the_usage_lines_speed_is_completion_tokens_over_the_time(server: LoopbackServer) -> None:
    import re

    server.handler = _usage_line({"prompt_tokens": 3, "completion_tokens": 300, "total_tokens": 303}, delay=0.5)
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--usage", "x")
    found = re.search(r", (\d+\.\d\d) s, (\d+\.\d) tokens/s", result.stderr)
    assert found is not None, result.stderr
    seconds, speed = float(found.group(1)), float(found.group(2))
    assert seconds >= 0.5 and abs(speed - 300 / seconds) <= 300 / seconds * 0.03


def test_curl_and_usage_are_each_one_line_on_stderr(server: LoopbackServer) -> None:
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--curl", "--usage", "hi")
    curl, usage = result.stderr.split("\n")[:2]
    assert result.stderr == f"{curl}\n{usage}\n"
    assert curl.startswith("curl -X POST ") and usage.startswith("usage: 3 prompt + 2 completion = 5 tokens, ")


def test_record_records_again_over_an_old_tape(server: LoopbackServer, tmp_path: Path) -> None:
    tape = str(tmp_path / "tape.jsonl")
    for text in ("first", "second"):
        server.handler = json_with_id(completion(text), "req")
        result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--record", tape, "x")
        assert result.stdout == text + "\n"
    assert len(server.requests) == 2


def test_doctor_prints_a_heading_and_asks_no_stream_for_usage_unasked(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: (wire.sse(stream_of(["hi"])) if req.json.get("stream")
                                        else wire.json(completion("hi")))
    table = cli("doctor", "--base-url", server.url, "--model", "m")
    assert table.stdout.startswith(f"{server.url}, model m:\nblocking chat ")
    assert "stream_options" not in server.requests[1].json, "the plain stream is probed as it comes"
    as_json = cli("doctor", "--base-url", server.url, "--model", "m", "--json")
    report = json.loads(as_json.stdout)
    assert as_json.stdout == json.dumps(report, indent=2) + "\n"
    assert (report["base_url"], report["model"]) == (server.url, "m")


THINKING_EVENTS = [event({"choices": [{"index": 0, "delta": {"reasoning_content": "Two"}}]}),
                   event({"choices": [{"index": 0, "delta": {"reasoning_content": " and"}}]}),
                   event({"choices": [{"index": 0, "delta": {"reasoning_content": " two."}}]}),
                   event(chunk("4")), event({"choices": [{"index": 0, "delta": {"reasoning_content": "late"}}]}),
                   event(chunk("!", finish_reason="stop")), "data: [DONE]\n\n"]


def test_on_a_terminal_thinking_is_a_passing_line_or_dimmed(server: LoopbackServer) -> None:
    server.handler = lambda req, wire: wire.sse(THINKING_EVENTS)
    base = ["chat", "--base-url", server.url, "--model", "m", "x"]
    hidden = run_command(*base, terminal=True)
    assert (hidden.stdout, hidden.stderr) == ("4!\n", "thinking…\r\033[K")
    shown = run_command(*base, "--reasoning", terminal=True)
    assert (shown.stdout, shown.stderr) == ("4!\n", "\033[2mTwo\033[0m\033[2m and\033[0m\033[2m two.\033[0m\n")
    piped = run_command(*base)
    assert (piped.stdout, piped.stderr) == ("4!\n", "")


def test_thinking_is_set_with_the_presets_switch_or_refused(server: LoopbackServer) -> None:
    plain = cli("chat", "--base-url", server.url, "--model", "m", "--thinking", "off", "x")
    assert (plain.returncode, plain.stderr) == (1, "openai-compat: error: --thinking needs a server whose thinking"
                                                   " switch is known: use --provider (groq, deepseek, llamacpp, vllm,"
                                                   " ...) rather than --base-url, or leave --thinking out\n")
    effort = cli("chat", "--provider", "deepseek", "--base-url", server.url, "--api-key-env", "PATH", "--model", "m",
                 "--thinking", "low", "x")
    assert effort.stderr == ("openai-compat: error: DeepSeekClient: thinking takes True or False here, not an effort"
                             " ('low')\n")
    assert server.requests == []


def test_an_answer_spent_thinking_says_so_as_chat_does(server: LoopbackServer) -> None:
    from openai_compat import Client, EmptyAnswerError

    answer = completion("", finish_reason="length", usage={"prompt_tokens": 3, "completion_tokens": 8,
                        "total_tokens": 11, "completion_tokens_details": {"reasoning_tokens": 8}})
    answer["choices"][0]["message"]["reasoning_content"] = "Hmm"
    server.handler = lambda req, wire: wire.json(answer)
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "x")
    with pytest.raises(EmptyAnswerError) as raised:
        Client(server.url, model="m").chat("x")
    assert "8" in str(raised.value)
    assert (result.returncode, result.stderr) == (1, f"openai-compat: error: {raised.value}\n")


def test_an_image_alone_is_sent(server: LoopbackServer, tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24)
    result = cli("chat", "--base-url", server.url, "--model", "m", "--no-stream", "--image", str(image), "What?")
    assert result.returncode == 0, result.stderr
    parts = server.requests[0].json["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]


def test_json_schema_output_is_indented_unescaped_and_the_settings_are_sent(server: LoopbackServer,
                                                                           tmp_path: Path) -> None:
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps({"type": "object", "description": "Eine Stadt, z. B. Zürich",
                                  "properties": {"name": {"type": "string"}}, "required": ["name"]},
                                 ensure_ascii=False), encoding="utf-8")  # read as UTF-8 under any locale
    server.handler = lambda req, wire: wire.json(completion('{"name": "Zürich"}'))
    result = cli("chat", "--base-url", server.url, "--model", "m", "--json-schema", str(schema), "--max-tokens", "20",
                 "x")
    assert (result.returncode, result.stdout) == (0, '{\n  "name": "Zürich"\n}\n')
    assert server.requests[0].json["max_tokens"] == 20
    assert "Eine Stadt, z. B. Zürich" in json.dumps(server.requests[0].json, ensure_ascii=False)
    missing = cli("chat", "--base-url", server.url, "--model", "m", "--json-schema", str(tmp_path / "none.json"), "x")
    assert missing.stderr == (f"openai-compat: error: cannot read the JSON Schema in {tmp_path / 'none.json'}:"
                              f" [Errno 2] No such file or directory: '{tmp_path / 'none.json'}'\n")
    (tmp_path / "list.json").write_text("[]")
    listed = cli("chat", "--base-url", server.url, "--model", "m", "--json-schema", str(tmp_path / "list.json"), "x")
    assert listed.stderr == f"openai-compat: error: {tmp_path / 'list.json'} does not hold a JSON Schema object\n"
