"""A real llama.cpp server on loopback, for the end-to-end tests and ``make demo``.

The server comes from ``llama-cpp-python[server]`` (PyPI), built once per machine into its own
virtual environment (never a dependency of the SDK) and reused after that; the model is a tiny
random one that ``tiny_model`` writes, since none can be downloaded here.

``OPENAI_COMPAT_LLAMA_ENV`` moves the environment (default ``~/.cache/openai-compat``).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"
GGUF = "gguf==0.19.0"
#: What the build leaves out: tuning for this CPU (the cache may move between machines) and the
#: multimodal library, which the server loads only for a vision model (a third of the build).
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
HERE = Path(__file__).resolve().parent
HOME = Path(os.environ.get("OPENAI_COMPAT_LLAMA_ENV", Path.home() / ".cache" / "openai-compat"))
VENV = HOME / "llama-server-venv"
PYTHON = VENV / "bin" / "python"
READY = VENV / ".openai-compat-ready"


def say(message: str) -> None:
    print(f"[llama-server] {message}", file=sys.stderr, flush=True)


def ensure_environment(report: Callable[[str], None] = say) -> Path:
    """Build the server's virtual environment unless a finished one is there; return its python."""
    wanted = f"{LLAMA_CPP_PYTHON} {GGUF} {CMAKE_ARGS}"
    if READY.exists() and READY.read_text() == wanted and PYTHON.exists():
        return PYTHON
    report(f"building the llama.cpp server once into {VENV}: 4 to 12 minutes on 2 cores, then it is reused")
    HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS)
    started = time.monotonic()
    log_path = HOME / "llama-server-build.log"
    # pip's verbose output carries the compiler's own "[n/m]" steps: they become the progress.
    process = subprocess.Popen(
        [str(PYTHON), "-m", "pip", "install", "-v", "--progress-bar", "off", LLAMA_CPP_PYTHON, GGUF],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    shown = -1
    last_report = started
    with open(log_path, "w") as log:
        for line in process.stdout:
            log.write(line)
            step = build_step(line)
            now = time.monotonic()
            if step is not None:
                percent = 100 * step[0] // step[1]
                if percent >= shown + 5 or now - last_report >= 30:
                    shown, last_report = percent, now
                    report(f"compiling llama.cpp: {percent:3d}% ({step[0]} of {step[1]} steps,"
                           f" {(now - started) / 60:.1f} min so far)")
            elif line.startswith(("Collecting", "Successfully", "ERROR")):
                report(line.strip())
    if process.wait() != 0:
        raise RuntimeError(f"building llama-cpp-python failed (pip exit {process.returncode}); the log is {log_path}")
    READY.write_text(wanted)
    report(f"built in {(time.monotonic() - started) / 60:.1f} min")
    return PYTHON


_STEP = re.compile(r"^\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]")


def build_step(line: str) -> tuple[int, int] | None:
    """``(done, total)`` from a build tool's progress line such as ``[12/345] Building C object``."""
    match = _STEP.match(line)
    if match is None or int(match.group(2)) == 0:
        return None
    return int(match.group(1)), int(match.group(2))


def ensure_model(python: Path) -> Path:
    """Write the tiny model unless this version of it is already there; return its path."""
    source = (HERE / "tiny_model.py").read_bytes()
    path = HOME / f"tiny-{hashlib.sha256(source).hexdigest()[:12]}.gguf"
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run([str(python), str(HERE / "tiny_model.py"), str(partial)], check=True)
        partial.rename(path)
    return path


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def serves_tiny(port: int) -> bool:
    """Whether the server on ``port`` is this project's (``make serve``): it lists the tiny model."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as answer:
            return b'"tiny"' in answer.read()
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` with the tiny model on a free loopback port.

    Example::

        with LlamaServer() as server:
            print(server.base_url)         # http://127.0.0.1:41234/v1
    """

    def __init__(
        self, report: Callable[[str], None] = say, extra_args: list[str] | None = None, port: int | None = None
    ) -> None:
        self.report = report
        self.extra_args = extra_args or []
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = HOME / f"llama-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        python = ensure_environment(self.report)
        model = ensure_model(python)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
             "--interrupt_requests", "false", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready(timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited ({self.process.returncode}):\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the llama.cpp server did not answer within {timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-2000:]

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    ensure_model(ensure_environment())
