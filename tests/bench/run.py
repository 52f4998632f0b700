"""``make bench``: what openai-compat costs over bare requests, next to the official client.

Starts the loopback server of ``server.py`` in its own process, runs ``measure.py`` for
openai-compat (this environment) and for the official ``openai`` package (its own virtual
environment under ``~/.cache/openai-compat``, never a dependency of this package), measures
import time in fresh processes, prints the table and writes it to ``docs/performance.md``.
Exits 1 when openai-compat misses a target.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HOME = Path(os.environ.get("OPENAI_COMPAT_LLAMA_ENV", Path.home() / ".cache" / "openai-compat"))
OPENAI_VENV = HOME / "bench-openai-venv"
OPENAI_PYTHON = OPENAI_VENV / "bin" / "python"
IMPORT_RUNS = 31
FLAT_MB = 5.0  # growth of resident memory over a million events that still counts as flat


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_openai() -> Path:
    ready = OPENAI_VENV / ".ready"
    wanted = "openai requests sseclient-py"
    if not ready.exists() or ready.read_text() != wanted:
        say(f"installing the official openai package into {OPENAI_VENV} (once)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(OPENAI_VENV)], check=True)
        subprocess.run([str(OPENAI_PYTHON), "-m", "pip", "install", "--quiet", *wanted.split()], check=True)
        ready.write_text(wanted)
    return OPENAI_PYTHON


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    process = subprocess.Popen([sys.executable, str(HERE / "server.py"), str(port_file)])
    for _ in range(100):
        if port_file.exists() and port_file.read_text():
            return process, f"http://127.0.0.1:{port_file.read_text()}/v1"
        time.sleep(0.05)
    process.kill()
    raise SystemExit("make bench: the loopback server did not start")


def run_json(python: Path | str, *args: str) -> Any:
    out = subprocess.run([str(python), str(HERE / "measure.py"), *args], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout)


#: What each implementation's "first line" is: the package, and the client class a call needs.
IMPORTS = {"openai_compat": ("import openai_compat", "from openai_compat import Client"),
           "openai": ("import openai", "from openai import OpenAI")}
BASE_IMPORT = "import requests, sseclient"


def import_cpu(python: Path | str, statement: str) -> float:
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(out.stdout)


def import_ratio(python: Path | str, statement: str) -> tuple[float, float, float]:
    """``statement`` against importing requests and sseclient-py in fresh processes, in adjacent
    pairs: the median of the pairs' ratios, and each side's least CPU milliseconds."""
    ours, base = [], []
    import_cpu(python, statement), import_cpu(python, BASE_IMPORT)  # warm the file cache
    for _ in range(IMPORT_RUNS):
        ours.append(import_cpu(python, statement))
        base.append(import_cpu(python, BASE_IMPORT))
    ratio = statistics.median(x / y for x, y in zip(ours, base))
    return ratio, min(ours) * 1000, min(base) * 1000


def versions(python: Path | str, modules: list[str]) -> str:
    code = ("import importlib.metadata as m\n"
            f"for n in {modules!r}:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout
    return ", ".join(out.splitlines())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def collect(name: str, python: Path | str, module: str, url: str) -> dict[str, Any]:
    say(f"{name}: calls, a {20_000:,}-event stream, first-piece latency")
    figures = run_json(python, module, url)
    say(f"{name}: a {1_000_000:,}-event stream for memory")
    figures["memory"] = run_json(python, module, url, "--memory")
    say(f"{name}: import time")
    package, client = IMPORTS[module]
    figures["import_ratio"], figures["import_ms"], figures["import_base_ms"] = import_ratio(python, package)
    figures["client_ratio"], figures["client_ms"], _ = import_ratio(python, client)
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, str, bool]]:
    """(figure, measured, compared with, target, met) for one implementation."""
    call, event, imported = figures["call_ratio"], figures["event_ratio"], figures["import_ratio"]
    memory = figures["memory"]
    growth = memory["rss_peak_mb"] - memory["rss_start_mb"]
    table = [
        ("client CPU per non-streamed chat call",
         f"{call:.2f}× ({figures['call_us']:.0f} µs vs {figures['call_base_us']:.0f} µs)",
         "`requests.Session().post(...).json()`", "≤ 1.05×", call <= 1.05),
        ("the same, against requests reading the environment once",
         f"{figures['own_ratio']:.2f}× ({figures['call_us']:.0f} µs vs {figures['own_base_us']:.0f} µs)",
         "the same, on a session with `trust_env = False`", "— (shown)", True),
        ("client CPU per streamed event (20 000 events)",
         f"{event:.2f}× ({figures['event_us']:.2f} µs vs {figures['event_base_us']:.2f} µs)",
         "hand-written `iter_lines` parser", "≤ 1.05×", event <= 1.05),
        ("import of the package in a fresh process",
         f"{imported:.2f}× ({figures['import_ms']:.1f} ms vs {figures['import_base_ms']:.1f} ms)",
         "`import requests, sseclient`", "≤ 1.05×", imported <= 1.05),
        ("import of the client class in a fresh process",
         f"{figures['client_ratio']:.2f}× ({figures['client_ms']:.1f} ms vs {figures['import_base_ms']:.1f} ms)",
         "`import requests, sseclient`", "— (shown)", True),
    ]
    for framing, label in (("chunked", "chunked"), ("close", "close-delimited"), ("gzip", "gzip")):
        latency = figures["first_piece"][framing]
        table.append((f"piece in hand after its bytes are written: {label}",
                      f"{latency['median_ms']:.2f} ms (max {latency['max_ms']:.2f} ms)", "—", "≤ 5 ms",
                      latency["max_ms"] <= 5.0))
    table.append(("resident memory over a 1 000 000-event stream",
                  f"{growth:+.1f} MB ({memory['rss_start_mb']:.1f} → peak {memory['rss_peak_mb']:.1f} MB)",
                  "memory at the start of the stream", f"flat (< {FLAT_MB:.0f} MB)", growth < FLAT_MB))
    return table


def markdown(results: dict[str, dict[str, Any]], header: str) -> str:
    lines = [header, "", "| figure | openai-compat | official `openai` | compared with | target |",
             "|---|---|---|---|---|"]
    ours, theirs = rows(results["openai-compat"]), rows(results["openai"]) if "openai" in results else None
    for i, (figure, value, base, target, met) in enumerate(ours):
        other = theirs[i][1] if theirs else "not measured"
        lines.append(f"| {figure} | {value}{'' if met else ' **missed**'} | {other} | {base} | {target} |")
    for figure, value, other, met in batch_rows(results):
        lines.append(f"| {figure} | {value}{'' if met else ' **missed**'} | {other} | the official client with a"
                     " thread pool of as many workers | ≥ 2.0× |")
    return "\n".join(lines)


def batch_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    """Calls per second of ``batch()`` against the official client on a thread pool."""
    ours, theirs = results["openai-compat"]["batch_calls_per_s"], results.get("openai", {}).get("batch_calls_per_s")
    table = []
    for workers, rate in ours.items():
        other = theirs[workers] if theirs else None
        ratio = f" ({rate / other:.2f}×)" if other else ""
        table.append((f"batch throughput, {workers} workers", f"{rate:.0f} calls/s{ratio}",
                      f"{other:.0f} calls/s" if other else "not measured", other is None or rate >= 2 * other))
    return table


def main() -> None:
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # An installed package has its bytecode compiled; measure that, not compiling.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "openai_compat")], check=True)
    server, url = start_server()
    results: dict[str, dict[str, Any]] = {}
    try:
        results["openai-compat"] = collect("openai-compat", sys.executable, "openai_compat", url)
        try:
            results["openai"] = collect("openai", ensure_openai(), "openai", url)
        except (subprocess.CalledProcessError, OSError) as exc:
            say(f"the official openai package could not be measured: {exc}")
    finally:
        server.kill()
    ours = versions(sys.executable, ["requests", "urllib3", "sseclient-py"])
    theirs = versions(OPENAI_PYTHON, ["openai", "httpx", "httpcore"]) if "openai" in results else "not measured"
    header = (f"Measured on {datetime.date.today().isoformat()} on {machine()}; {ours}; {theirs}. "
              "CPU is the client process's own (the server runs in another process); each ratio is the median "
              "over adjacent pairs of rounds in the same run, and the times beside it are each side's fastest round.")
    table = markdown(results, header)
    print(table)
    page = ROOT / "docs" / "performance.md"
    page.write_text(
        "# Performance\n\n"
        "openai-compat should cost almost nothing over `requests` itself. `make bench` measures it on\n"
        "loopback against a server in its own process, as ratios against a bare-requests baseline\n"
        "measured side by side in the same run, and writes this page. The official `openai` package\n"
        "is measured the same way, from its own virtual environment.\n\n"
        f"{table}\n\n"
        "What the figures mean:\n\n"
        "- *Non-streamed call*: `client.chat(...)` against `session.post(...).json()`, 200 calls a round.\n"
        "  requests reads the proxy variables, the CA bundle and `~/.netrc` from the environment on every\n"
        "  request (the difference between the two baselines); openai-compat's own session reads them once,\n"
        "  when the client is made, which is why it can cost less than bare requests. The next row\n"
        "  compares against requests doing the same, so it shows what the SDK's own work costs: the\n"
        "  arguments checked, the body built, the answer checked, the call's record and usage kept.\n"
        "- *Streamed event*: `for piece in client.chat(..., stream=True)` over 20 000 chunks against a\n"
        "  hand-written parser over `response.iter_lines()` with `json.loads` per event. Both parse every\n"
        "  event; openai-compat also runs sseclient-py and tracks finish reasons and errors.\n"
        "- *Import*: CPU in a fresh process (bytecode compiled) against `import requests, sseclient`.\n"
        "  Importing the package loads none of its modules; a name is loaded on first use, with what it\n"
        "  needs. The second row is what a program that makes a call pays: the client class and the\n"
        "  modules of a plain `chat()` (a stream's reader, `chat_json()`'s ladder and the rest load when\n"
        "  first used).\n"
        "- *Piece in hand*: the server writes its clock into each event, 20 ms apart; the figure is the\n"
        "  time until that piece leaves the generator.\n"
        "- *Memory*: resident set size sampled every 10 000 events of a million-event stream.\n"
        "- *Batch throughput*: 400 calls through `client.batch(..., max_workers=N)` against the official\n"
        "  client's `chat.completions.create` on a thread pool of N, wall-clock calls per second, the best\n"
        "  of three runs; both warm their connections first.\n"
    )
    say(f"wrote {page.relative_to(ROOT)}")
    missed = [figure for figure, _, _, _, met in rows(results["openai-compat"]) if not met]
    missed += [figure for figure, _, _, met in batch_rows(results) if not met]
    if missed:
        raise SystemExit("make bench: missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
