"""Run each ``elsewhere`` survivor of ``make mutate`` on the stack where its line runs.

mutmut runs one stack (the newest Python and urllib3 in .venv) and puts its trampolines between
every call. A survivor whose verdict is ``elsewhere`` says that its line only runs, or only
shows, somewhere else: on urllib3 1.26 or Python 3.8 (a ``make compat`` row), without the
trampolines, or under a locale that is not UTF-8. This script checks that claim: for each such
survivor it writes the mutant into a copy of the package, runs the tests that reach its line on
that stack, and records whether they failed. ``tests/mutation_report.py`` counts a mutant
killed there as killed.

    python -m tests.mutation_elsewhere          # the survivors with no result here yet
    python -m tests.mutation_elsewhere --again  # all of them again

It needs ``make mutate``'s results and the ``make compat`` rows (``.nox``), which ``make mutate``
sets up. The tests first run on the unmutated copy of each stack; a stack whose tests fail there
is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.mutation_report import ELSEWHERE, KILLED, MUTANTS, ROOT, fingerprint, function_sources, read_verdicts

ASCII_LOCALE = (("LC_ALL", "C"), ("LANG", "C"), ("PYTHONUTF8", "0"), ("PYTHONCOERCECLOCALE", "0"))


@dataclass(frozen=True)
class Stack:
    venv: str  # .venv, or a make compat row under .nox
    tests: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def python(self) -> Path:
        return ROOT / self.venv / "bin" / "python"


URLLIB3_1_26 = ".nox/urllib3-1-26-latest-py3-8"
PYTHON_3_8 = ".nox/newest-py3-8"
#: Each ``elsewhere`` reason of tests/mutation_verdicts.txt: where its lines run, and the tests
#: that reach them there.
STACKS = {
    "urllib3-1.26-length": Stack(URLLIB3_1_26, ("tests/test_faults.py",)),
    "urllib3-1.26-repr": Stack(URLLIB3_1_26, ("tests/test_errors.py", "tests/test_faults.py")),
    "urllib3-1.26-wording": Stack(URLLIB3_1_26, ("tests/test_faults.py",)),
    "urllib3-1.26-restore": Stack(".nox/floors-py3-8", ("tests/test_faults.py",)),
    "python-3.8-readinto": Stack(PYTHON_3_8, ("tests/test_cassette.py",)),
    "python-3.8-typeddict": Stack(PYTHON_3_8, ("tests/test_structured.py", "tests/test_run_tools.py")),
    "trampoline-frames": Stack(".venv", ("tests/test_endpoint.py", "tests/test_first_hour.py")),
    "process-only": Stack(".venv", ("tests/test_cli.py",)),
    "platform-encoding": Stack(".venv", ("tests/test_scaling.py", "tests/test_cassette.py", "tests/test_cli.py"),
                               ASCII_LOCALE),
}


def make_copy(copy: Path) -> None:
    """A copy of the package and of what its tests read."""
    for name in ("openai_compat", "tests", "docs"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "README.md", "ruff.toml", "pyproject.toml"):
        shutil.copy(ROOT / name, copy / name)


def mutated_source(mutant: str, sources: dict[str, str]) -> tuple[Path, str] | None:
    """The module ``mutant`` belongs to, and its source with that one function mutated; None if
    the function has changed since make mutate made the mutant."""
    module, function = mutant.split(".")[1:]
    path = ROOT / "openai_compat" / f"{module}.py"
    original_name = function.rsplit("__mutmut_", 1)[0]
    if function not in sources:
        return None
    name = original_name.rsplit("ǁ", 1)[1] if "ǁ" in original_name else original_name[2:]
    original = sources[original_name + "__mutmut_orig"].replace(original_name + "__mutmut_orig", name, 1)
    mutated = sources[function].replace(function, name, 1)
    source = path.read_text(encoding="utf-8")
    if source.count(original) != 1:
        return None
    return path.relative_to(ROOT), source.replace(original, mutated)


def run_tests(stack: Stack, copy: Path) -> bool:
    """Whether the stack's tests pass on the copy as it is now."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", **dict(stack.env)}
    command = [str(stack.python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--rootdir", str(copy), *stack.tests]
    return subprocess.run(command, cwd=copy, env=env, capture_output=True).returncode == 0


def main() -> int:
    reasons, verdicts = read_verdicts()
    again = "--again" in sys.argv or not ELSEWHERE.exists()
    results: dict[str, dict[str, str]] = {} if again else json.loads(ELSEWHERE.read_text(encoding="utf-8"))
    sources = {module.stem: function_sources(module) for module in MUTANTS.glob("*.py")}

    def sources_of(name: str) -> dict[str, str]:
        return sources.get(name.split(".")[1], {})

    def measured(name: str) -> dict[str, str]:
        return {"mutant": fingerprint(sources_of(name), name), "on": repr(STACKS.get(verdicts[name]))}

    survived = {name for meta in MUTANTS.glob("*.py.meta")
                for name, code in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].items()
                if code is not None and code not in KILLED}
    todo = sorted(name for name, reason in verdicts.items() if reasons[reason].kind == "elsewhere"
                  and name in survived
                  and {k: results.get(name, {}).get(k) for k in ("mutant", "on")} != measured(name))
    unplaced = sorted({verdicts[name] for name in todo} - set(STACKS))
    if unplaced:
        raise SystemExit(f"no stack named for the elsewhere reasons {', '.join(unplaced)}: add them to STACKS")
    missing = sorted({STACKS[verdicts[name]].venv for name in todo if not STACKS[verdicts[name]].python.exists()})
    missing += sorted({test for stack in STACKS.values() for test in stack.tests if not (ROOT / test).exists()})
    if missing:
        raise SystemExit(f"not found: {', '.join(missing)} (a venv is made by make compat)")
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch)
        make_copy(copy)
        sound: dict[Stack, bool] = {}
        for name in todo:
            stack = STACKS[verdicts[name]]
            if stack not in sound:
                sound[stack] = run_tests(stack, copy)
                if not sound[stack]:
                    print(f"skipped: {' '.join(stack.tests)} fail on {stack.venv} without a mutant")
            if not sound[stack]:
                continue
            mutated = mutated_source(name, sources_of(name))
            if mutated is None:
                print(f"skipped: {name}, whose function changed since make mutate ran (or is gone)")
                continue
            path, source = mutated
            (copy / path).write_text(source, encoding="utf-8")
            try:
                outcome = "survived" if run_tests(stack, copy) else "killed"
            finally:
                shutil.copy(ROOT / path, copy / path)
            results[name] = {"outcome": outcome, **measured(name)}
            print(f"{outcome}: {name} on {stack.venv}", flush=True)
            ELSEWHERE.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
