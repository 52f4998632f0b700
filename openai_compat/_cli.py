"""The ``openai-compat`` command: chat or complete from a terminal, streamed by default."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable, TextIO

from ._answers import reply_text
from ._call_record import CallRecord
from ._cassette import Cassette
from ._client import Client
from ._delta import message_reasoning
from ._errors import JSONOutputError, OpenAICompatError, UnhandledToolCallsError
from ._media import attach
from ._presets import PROVIDERS
from ._reasoning import Thinking, thinking_params

THINKING: dict[str, Thinking] = {"on": True, "off": False, "low": "low", "medium": "medium", "high": "high"}

EXAMPLES = """\
examples:
  export FIREWORKS_API_KEY=...
  openai-compat chat --provider fireworks --model accounts/fireworks/models/llama-v3p1-8b-instruct \\
      "Write a haiku about the sea"
  echo "Summarise: $(cat notes.txt)" | openai-compat chat --provider groq --model llama-3.1-8b-instant
  openai-compat complete --base-url http://127.0.0.1:8080/v1 --model tiny --max-tokens 20 "Once upon a time"
  openai-compat chat --provider ollama --model llama3.2 --json --no-stream "Hi"

The key comes from the provider's variable (FIREWORKS_API_KEY, TOGETHER_API_KEY, ...); with
--base-url, from the variable named by --api-key-env, if any. Local servers need none.
providers: """ + ", ".join(sorted(PROVIDERS))


def _add_destination(command: argparse.ArgumentParser) -> None:
    """Where a command sends its requests, and with which model."""
    command.add_argument("--provider", choices=sorted(PROVIDERS), help="a known provider or local server")
    command.add_argument("--base-url", help="any OpenAI-compatible base URL, ending in /v1 or similar")
    command.add_argument("--api-key-env", metavar="VAR", help="the variable holding the key for --base-url")
    command.add_argument("--model", required=True, help="the model to ask, as the server names it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openai-compat",
        description="Talk to any server that speaks the OpenAI HTTP API.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"openai-compat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{chat,complete,doctor}")
    for name, what in (("chat", "send a chat message"), ("complete", "continue a text (/completions)")):
        sub = commands.add_parser(name, help=what, description=what, epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("prompt", nargs="*", help="the prompt (read from standard input when left out)")
        _add_destination(sub)
        if name == "chat":
            sub.add_argument("--system", help="a system message sent first")
            sub.add_argument("--reasoning", action="store_true",
                             help="show the model's thinking, dimmed, on standard error")
            sub.add_argument("--thinking", choices=sorted(THINKING), help="turn thinking on or off, or set its effort")
            sub.add_argument("--json-schema", metavar="FILE",
                             help="ask for JSON fitting the JSON Schema in FILE and print it, checked")
            sub.add_argument("--image", action="append", metavar="PATH_OR_URL", help="an image to send (repeatable)")
            sub.add_argument("--audio", action="append", metavar="PATH", help="an audio file to send (repeatable)")
            sub.add_argument("--tool", action="append", metavar="MODULE:FUNCTION",
                             help="a Python function the model may call; each call and result is shown on"
                                  " standard error (repeatable)")
        sub.add_argument("--max-tokens", type=int, metavar="N", help="stop the answer after N tokens")
        sub.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (0 for the likeliest)")
        sub.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
        sub.add_argument("--usage", action="store_true",
                         help="after the answer, print tokens, cost, time and speed on standard error")
        sub.add_argument("--curl", action="store_true",
                         help="after the call, print it as a curl command on standard error (the key as a variable)")
        sub.add_argument("--record", metavar="FILE", help="record the call to a cassette file")
        sub.add_argument("--replay", metavar="FILE", help="answer from a cassette file, with no network")
        sub.add_argument("--json", action="store_true",
                         help="print the full response (one chunk per line when streaming)")
    doctor = commands.add_parser("doctor", help="probe what a server really supports",
                                 description="Probe what a server really does with one tiny request per question:"
                                 " streaming, [DONE], usage, n, json_object, json_schema, tools, reasoning, ...")
    _add_destination(doctor)
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    return parser


def doctor(args: argparse.Namespace, stdout: TextIO) -> int:
    """Print the probe's report; 0 when blocking and streamed chat both work, else 1."""
    with make_client(args) as client:
        report = client.probe(args.model)
    if args.json:
        stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        stdout.write(f"{report.base_url}, model {report.model}:\n{report.table()}\n")
    return 0 if report.ok else 1


def make_client(args: argparse.Namespace) -> Client:
    if args.api_key_env and not os.environ.get(args.api_key_env):
        raise ValueError(f"{args.api_key_env} is not set")
    api_key = os.environ[args.api_key_env] if args.api_key_env else None
    tape = getattr(args, "record", None) or getattr(args, "replay", None)
    cassette = Cassette(tape, "record" if getattr(args, "record", None) else "replay") if tape else None
    options: dict[str, Any] = {"api_key": api_key, "model": args.model,
                               "stream_usage": True if getattr(args, "usage", False) else "auto", "cassette": cassette}
    if args.provider:
        return PROVIDERS[args.provider](args.base_url, **options)
    if args.base_url:
        return Client(args.base_url, **options)
    raise ValueError("say where to send it: --provider NAME or --base-url URL")


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    prompt = " ".join(args.prompt) if args.prompt else stdin.read()
    if not prompt.strip():
        raise ValueError("the prompt is empty: give it as arguments or on standard input")
    with make_client(args) as client:
        try:
            _answer(args, client, prompt, stdout)
        finally:
            if args.curl and client.last is not None and client.last._request is not None:
                sys.stderr.write(client.last.as_curl() + "\n")
        if args.usage and client.last is not None:
            sys.stderr.write(usage_line(client.last) + "\n")


def usage_line(record: CallRecord) -> str:
    """``usage: 12 prompt (3 cached) + 40 completion (20 reasoning) = 52 tokens, $0.0001, 1.20 s, 33.3 tokens/s``"""
    usage = record.usage
    counts = []  # only what the server counted: some send a total alone, or leave out the prompt
    if usage.prompt_tokens is not None:
        counts.append(f"{usage.prompt_tokens} prompt" + (f" ({usage.cached_tokens} cached)" if usage.cached_tokens
                                                         else ""))
    if usage.completion_tokens is not None:
        counts.append(f"{usage.completion_tokens} completion" + (
            f" ({usage.reasoning_tokens} reasoning)" if usage.reasoning_tokens else ""))
    counted = " + ".join(counts)
    if usage.total_tokens is not None:
        counted = f"{counted} = {usage.total_tokens} tokens" if counted else f"{usage.total_tokens} tokens"
    elif counted:
        counted += " tokens"
    parts = [counted or "the server reported no token usage"]
    if usage.cost is not None:
        parts.append(f"${usage.cost:.6f}")
    if record.elapsed:
        parts.append(f"{record.elapsed:.2f} s")
        if usage.completion_tokens:
            parts.append(f"{usage.completion_tokens / record.elapsed:.1f} tokens/s")
    return "usage: " + ", ".join(parts)


def _answer(args: argparse.Namespace, client: Client, prompt: str, stdout: TextIO) -> None:
    params: dict[str, Any] = {"max_tokens": args.max_tokens, "temperature": args.temperature}
    params = {k: v for k, v in params.items() if v is not None}
    stream = not args.no_stream
    if args.command == "complete":
        if args.json:
            _print_json(client.create_completion(prompt=prompt, stream=stream, **params), stream, stdout)
            return
        answer = client.complete(prompt, stream=stream, **params)
        for piece in [answer] if isinstance(answer, str) else answer:
            stdout.write(piece)
            stdout.flush()
        stdout.write("\n")
        return
    messages = [{"role": "user", "content": prompt}]
    if args.system is not None:
        messages.insert(0, {"role": "system", "content": args.system})
    if args.json:
        _print_json(client.create_chat_completion(messages=messages, stream=stream, **params), stream, stdout)
        return
    if args.thinking:
        if client.thinking_style is None:
            raise ValueError("--thinking needs a server whose thinking switch is known: use --provider (groq,"
                             " deepseek, llamacpp, vllm, ...) rather than --base-url, or leave --thinking out")
        params.update(thinking_params(client.thinking_style, THINKING[args.thinking], type(client).__name__))
    if args.image or args.audio:
        messages = attach(messages, args.image, args.audio, None, None)
    if args.json_schema:
        value = client.chat_json(messages, schema=_read_schema(args.json_schema), **params)
        stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
        return
    if args.tool:
        _run_tools(client, messages, params, [_import_tool(spec) for spec in args.tool], stream, stdout)
        return
    _print_chat(client, messages, params, stream, args.reasoning, stdout, sys.stderr)


def _print_chat(
    client: Client, messages: list[Any], params: dict[str, Any], stream: bool, show: bool, stdout: TextIO,
    stderr: TextIO,
) -> None:
    """The answer on stdout; the thinking dimmed on stderr (``show``), or on a terminal a
    ``thinking…`` line while it lasts, so a pipe gets the answer alone."""
    terminal = stderr.isatty()
    dim, plain = ("\033[2m", "\033[0m") if terminal else ("", "")
    if stream:
        pieces: Iterable[tuple[str, str]] = client.chat(messages, stream=True, labelled=True, **params)
    else:
        choice = client.create_chat_completion(messages=messages, **params)
        message = choice["choices"][0].get("message") or {}
        answer = reply_text(choice["choices"][0], usage=choice.get("usage"))
        pieces = [("reasoning", message_reasoning(message)), ("answer", answer)]
    state = "start"  # start, thinking (reasoning shown or indicated), answering
    for kind, piece in pieces:
        if kind == "reasoning" and piece and state != "answering":
            if show:
                stderr.write(dim + piece + plain)
            elif terminal and state == "start":
                stderr.write("thinking…")
            stderr.flush()
            state = "thinking"
        elif kind == "answer":
            if state == "thinking":
                stderr.write("\n" if show else ("\r\033[K" if terminal else ""))
                stderr.flush()
            state = "answering"
            stdout.write(piece)
            stdout.flush()
    stdout.write("\n")


def _import_tool(spec: str) -> Any:
    """The function ``module:function`` names (the current directory is importable)."""
    import importlib

    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--tool {spec!r}: give it as MODULE:FUNCTION, e.g. --tool mytools:get_weather")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--tool {spec!r}: {exc}") from None
    if not callable(function):
        raise ValueError(f"--tool {spec!r} is not a function")
    return function


def _run_tools(client: Client, messages: list[Any], params: dict[str, Any], tools: list[Any], stream: bool,
               stdout: TextIO) -> None:
    def show(name: str, arguments: Any, result: str) -> None:
        shown = result if len(result) <= 300 else result[:299] + "…"
        sys.stderr.write(f"[tool] {name}({json.dumps(arguments, ensure_ascii=False)}) -> {shown}\n")
        sys.stderr.flush()

    answer = client.run_tools(messages, tools=tools, stream=stream, on_tool=show, **params)
    for piece in answer if stream else [answer]:
        stdout.write(piece)
        stdout.flush()
    stdout.write("\n")


def _read_schema(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            schema = json.load(file)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the JSON Schema in {path}: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{path} does not hold a JSON Schema object")
    return schema


def _print_json(result: Any, stream: bool, stdout: TextIO) -> None:
    for item in result if stream else [result]:
        stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
        stdout.flush()


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit status (130 after Ctrl-C, 1 after an error)."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        if args.command == "doctor":
            return doctor(args, sys.stdout)
        run(args, sys.stdin, sys.stdout)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # about the unflushed stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as for any program cut off by a closed pipe
    except UnhandledToolCallsError as exc:
        sys.stderr.write(f"openai-compat: {exc} (try --json)\n")
        return 1
    except JSONOutputError as exc:
        details = "".join(f"\n  {error}" for error in exc.errors if error not in exc.message)
        sys.stderr.write(f"openai-compat: error: {exc}{details}\n")
        return 1
    except (OpenAICompatError, ValueError, TypeError) as exc:
        from ._pipeline import NO_KEY_SENT

        advice = "no API key was sent: use --api-key-env VAR, or --provider NAME, which reads its variable"
        sys.stderr.write(f"openai-compat: error: {str(exc).replace(NO_KEY_SENT, advice)}\n")
        return 1
    return 0
