"""The mutation score of ``make mutate``, and every mutant it leaves alive with its verdict.

Reads mutmut's results (``mutants/*.meta``) and the mutated sources beside them, prints the score
per module, and writes the list of survivors into docs/contributing.md between its markers.
Each survivor needs a line in tests/mutation_verdicts.txt saying why it lives: ``equivalent``
(no test can tell it from the original), ``elsewhere`` (its line runs only on another stack or
in a forked child, where mutmut does not follow it) or ``gap`` (a test could catch it, and none
does yet). A survivor without one, a verdict for a mutant that no longer survives, or (once
every module has run) a reason that no survivor has, is reported and fails the run. An
``elsewhere`` survivor that tests/mutation_elsewhere.py killed on the stack where its line runs
counts as killed; one that survived there too counts as a gap.

    python tests/mutation_report.py            # print the score and the survivors' verdicts
    python tests/mutation_report.py --write    # ... and update docs/contributing.md
    python tests/mutation_report.py --again    # forget the results of survivors with no verdict or
                                               # a gap, so the next make mutate runs them again
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants" / "openai_compat"
VERDICTS = ROOT / "tests" / "mutation_verdicts.txt"
ELSEWHERE = ROOT / "mutants" / "elsewhere.json"  # written by tests/mutation_elsewhere.py
CONTRIBUTING = ROOT / "docs" / "contributing.md"
BEGIN = "<!-- survivors: written by tests/mutation_report.py -->"
END = "<!-- end of survivors -->"
#: mutmut's exit codes by outcome (a mutant that hangs a test is stopped: a timeout kills it).
KILLED = {1, 3, -24, -9, 24, 36, 152, 255}
NO_TESTS = 33
KINDS = ("equivalent", "elsewhere", "gap")


@dataclass
class Reason:
    kind: str  # one of KINDS
    text: str


def suspect_timeouts() -> list[str]:
    """Mutants mutmut stopped for CPU time before they had run as long as their tests take: once
    in a while it stops a mutant far below its limit, which then passes when run alone."""
    suspects = []
    for meta in sorted(MUTANTS.glob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for name, code in data["exit_code_by_key"].items():
            took, expected = data["durations_by_key"].get(name), data["estimated_durations_by_key"].get(name)
            if code == -24 and took is not None and expected is not None and took < expected:
                suspects.append(name)
    return suspects


@dataclass
class Survivor:
    name: str
    change: str
    reason: str | None  # its reason's id in tests/mutation_verdicts.txt
    unreached: bool  # no test runs its function at all
    there: str | None = None  # "killed" or "survived" on the stack where its line runs


def read_verdicts() -> tuple[dict[str, Reason], dict[str, str]]:
    """The reasons (``@id kind text``) and each mutant's reason id (``name id``)."""
    reasons: dict[str, Reason] = {}
    verdicts: dict[str, str] = {}
    for number, line in enumerate(VERDICTS.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            name, kind, text = line[1:].split(None, 2)
            if kind not in KINDS:
                raise SystemExit(f"{VERDICTS}:{number}: the kind must be one of {', '.join(KINDS)}, not {kind!r}")
            reasons[name] = Reason(kind, text)
        else:
            mutant, reason = line.split()
            verdicts[mutant] = reason
    unknown = sorted({r for r in verdicts.values() if r not in reasons})
    if unknown:
        raise SystemExit(f"{VERDICTS}: no reason named {', '.join(unknown)}")
    return reasons, verdicts


def function_sources(module: Path) -> dict[str, str]:
    """Every function in a mutated module by its name (methods as ``xǁClassǁname__mutmut_N``)."""
    text = module.read_text(encoding="utf-8")
    lines = text.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
            for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def fingerprint(sources: dict[str, str], mutant: str) -> str:
    """A hash of the mutant as mutmut made it: mutmut reuses a mutant's name when its function
    changes, so a result kept by name holds only while the fingerprint is the same."""
    return hashlib.sha256(sources.get(mutant.rsplit(".", 1)[1], "").encode("utf-8")).hexdigest()[:16]


def results_elsewhere(sources: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    """What tests/mutation_elsewhere.py found for each of ``names`` ("killed" or "survived"),
    where it was measured on the mutant that has the name now."""
    kept = json.loads(ELSEWHERE.read_text(encoding="utf-8")) if ELSEWHERE.exists() else {}
    return {name: kept[name]["outcome"] for name in names
            if name in kept and kept[name]["mutant"] == fingerprint(sources, name)}


def change_of(sources: dict[str, str], mutant: str) -> str:
    """What the mutant changed, as ``old → new`` on the lines that differ."""
    function = mutant.rsplit(".", 1)[1]
    original_name = function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    original = sources.get(original_name, "").replace(original_name, "", 1).splitlines()
    mutated = sources.get(function, "").replace(function, "", 1).splitlines()
    old: list[str] = []
    new: list[str] = []
    for line in difflib.ndiff(original, mutated):
        if line.startswith("- "):
            old.append(line[2:].strip())
        elif line.startswith("+ "):
            new.append(line[2:].strip())
    return f"`{' '.join(old)}` → `{' '.join(new) or '(removed)'}`"


def short_name(mutant: str) -> str:
    module, function = mutant.split(".")[1:]
    function = function.replace("xǁ", "").replace("ǁ", ".")
    return f"{module}.{function[2:] if function.startswith('x_') else function}"


def forget_survivors() -> int:
    """Clear the result of every survivor that a test might kill now (one with no verdict, or a
    gap) and of every suspect timeout: the next run runs them."""
    reasons, verdicts = read_verdicts()
    settled = {name for name, reason in verdicts.items() if reasons[reason].kind != "gap"}
    cleared = 0
    suspects = set(suspect_timeouts())
    for meta in sorted(MUTANTS.glob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        results = data["exit_code_by_key"]
        again = [name for name, code in results.items()
                 if (code is not None and code not in KILLED and name not in settled) or name in suspects]
        for name in again:
            results[name] = None
        if again:
            meta.write_text(json.dumps(data), encoding="utf-8")
        cleared += len(again)
    print(f"{cleared} mutants will run again")
    return 0


def main() -> int:
    if "--again" in sys.argv:
        return forget_survivors()
    reasons, verdicts = read_verdicts()
    survivors: list[Survivor] = []
    table = ["| module | mutants | killed | equivalent | elsewhere | gaps | score | score without the equivalent |",
             "|---|---|---|---|---|---|---|---|"]
    totals = [0, 0, 0, 0, 0]
    known: set[str] = set()
    ran_names: set[str] = set()
    not_run: list[str] = []
    for meta in sorted(MUTANTS.glob("*.py.meta")):
        results = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        known.update(results)
        ran = {name: code for name, code in results.items() if code is not None}
        ran_names.update(ran)
        if not ran:
            not_run.append(f"`{meta.stem}` ({len(results)})")
            continue
        sources = function_sources(meta.with_suffix(""))
        there = results_elsewhere(sources, [name for name in ran if name in verdicts
                                            and reasons[verdicts[name]].kind == "elsewhere"])
        alive = [Survivor(name, change_of(sources, name), verdicts.get(name), code == NO_TESTS, there.get(name))
                 for name, code in ran.items() if code not in KILLED]
        survivors += alive
        alive = [s for s in alive if s.there != "killed"]
        kinds = [reasons[s.reason].kind if s.reason is not None and s.there is None else "gap" for s in alive]
        counts = (len(ran), len(ran) - len(alive), *(kinds.count(kind) for kind in KINDS))
        totals = [t + n for t, n in zip(totals, counts)]
        label = f"`{meta.stem}`" + (f" ({len(ran)} of {len(results)} run)" if len(ran) < len(results) else "")
        table.append(row(label, counts))
    table.append(row("**together**", totals, bold=True))
    killed_there = sum(s.there == "killed" for s in survivors)
    if killed_there:
        table += ["", f"*killed* counts {killed_there} mutants that outlived mutmut and were killed on the stack "
                  "where their line runs (tests/mutation_elsewhere.py)."]
    if not_run:
        table += ["", f"Not run yet (mutants): {', '.join(not_run)}."]
    print("\n".join(table))

    for name in sorted(set(suspect_timeouts())):
        print(f"stopped as a timeout sooner than its tests take (run it again: mutmut run {name})")
    unclassified = [s for s in survivors if s.reason is None]
    # A verdict is stale once its mutant is gone (its function changed) or has run and died.
    surviving = {s.name for s in survivors}
    stale = sorted(name for name in verdicts if name not in known or (name in ran_names and name not in surviving))
    for survivor in unclassified:
        print(f"no verdict: {survivor.name}  {survivor.change}")
    for name in stale:
        print(f"a verdict for a mutant that no longer survives: {name}")
    for survivor in survivors:
        if survivor.there == "survived":
            print(f"survived on the stack where its line runs too (a gap): {survivor.name}")
    # Until every module has run, a reason may still be waiting for the survivors of one that has not.
    unused = [] if not_run else sorted(set(reasons) - set(verdicts.values()))
    for name in unused:
        print(f"a reason no survivor has: @{name}")
    if "--write" in sys.argv:
        write_survivors(table, survivors, reasons)
    return 1 if unclassified or stale or unused else 0


def row(label: str, counts: Sequence[int], bold: bool = False) -> str:
    total, killed, equivalent = counts[:3]
    cells = [*map(str, counts), percent(killed, total), percent(killed, total - equivalent)]
    if bold:
        cells = [f"**{cell}**" for cell in cells]
    return f"| {label} | {' | '.join(cells)} |"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def write_survivors(table: list[str], survivors: list[Survivor], reasons: dict[str, Reason]) -> None:
    used = {s.reason for s in survivors if s.there != "killed"}
    lines = [BEGIN, "", *table, "", "Why each survivor lives:", ""]
    lines += [f"- **{name}** ({reason.kind}): {reason.text}" for name, reason in reasons.items() if name in used]
    lines += ["", "| mutant | change | why |", "|---|---|---|"]
    for survivor in survivors:
        if survivor.there == "killed":
            continue
        why = survivor.reason or "**no verdict yet**"
        why += ", and it survived there too" if survivor.there == "survived" else ""
        why += " (no test reaches it)" if survivor.unreached else ""
        lines.append(f"| `{short_name(survivor.name)}` | {survivor.change.replace('|', '&#124;')} | {why} |")
    lines += ["", END]
    text = CONTRIBUTING.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    CONTRIBUTING.write_text(head + "\n".join(lines) + tail, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
