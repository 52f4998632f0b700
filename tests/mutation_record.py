"""Keeps the results of ``make mutate`` in the repository, so that a part run on one machine
counts on the next.

mutmut keeps its results in ``mutants/``, which a fresh checkout has not got, and a whole run
takes hours: without a record, each machine would start again from nothing. The record,
tests/mutation_results.json, holds for each module the hash mutmut gives each mutated function
and the exit code of each of its mutants that has run, with what tests/mutation_elsewhere.py
found. mutmut keeps a result only while its function's hash is the same, so the mutants of a
function changed since the record was saved run again.

    python -m tests.mutation_record restore   # mutants/*.meta from the record, where there is none
    python -m tests.mutation_record save      # the record from mutants/*.meta and elsewhere.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.mutation_report import ELSEWHERE, MUTANTS, ROOT

RECORD = ROOT / "tests" / "mutation_results.json"


def saved(meta: dict[str, Any]) -> dict[str, dict[str, str]]:
    """One module's meta file as the record keeps it: by function, its hash and the exit code of
    its mutant N as the Nth of a comma-separated list, empty where it has not run."""
    codes: dict[str, dict[int, int]] = {}
    for name, code in meta["exit_code_by_key"].items():
        function, _, number = name.rsplit(".", 1)[1].rpartition("__mutmut_")
        if code is not None:
            codes.setdefault(function, {})[int(number)] = code
    functions: dict[str, dict[str, str]] = {}
    for function, digest in sorted(meta["hash_by_function_name"].items()):
        ran = codes.get(function, {})
        row = ["" if n not in ran else str(ran[n]) for n in range(1, max(ran, default=0) + 1)]
        functions[function] = {"hash": digest, "results": ",".join(row)}
    return functions


def restored(module: str, functions: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A meta file mutmut reads, holding the recorded results of one module: mutmut adds the
    mutants that have no result when it makes the module's mutants."""
    results: dict[str, int] = {}
    for function, kept in functions.items():
        for number, code in enumerate(kept["results"].split(",") if kept["results"] else [], 1):
            if code:
                results[f"{module}.{function}__mutmut_{number}"] = int(code)
    return {"exit_code_by_key": results,
            "hash_by_function_name": {function: kept["hash"] for function, kept in functions.items()},
            "type_check_error_by_key": {}, "durations_by_key": {}, "estimated_durations_by_key": {}}


def save() -> int:
    """The record from mutants/, keeping what it held of modules that mutants/ has not got."""
    record: dict[str, Any] = {"modules": {}, "elsewhere": {}}
    if RECORD.exists():
        record = json.loads(RECORD.read_text(encoding="utf-8"))
    for meta in sorted(MUTANTS.glob("*.py.meta")):
        record["modules"][meta.name[: -len(".py.meta")]] = saved(json.loads(meta.read_text(encoding="utf-8")))
    if ELSEWHERE.exists():
        record["elsewhere"] = json.loads(ELSEWHERE.read_text(encoding="utf-8"))
    RECORD.write_text(json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    ran = sum(len([c for c in f["results"].split(",") if c]) for m in record["modules"].values() for f in m.values())
    print(f"{RECORD.relative_to(ROOT)}: the results of {ran} mutants")
    return 0


def restore() -> int:
    """A meta file for each recorded module that mutants/ has none for (a fresh checkout)."""
    if not RECORD.exists():
        print(f"no {RECORD.relative_to(ROOT)} yet: every mutant runs")
        return 0
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    MUTANTS.mkdir(parents=True, exist_ok=True)
    written = []
    for module, functions in record["modules"].items():
        meta = MUTANTS / f"{module}.py.meta"
        if not meta.exists():
            meta.write_text(json.dumps(restored(f"openai_compat.{module}", functions)), encoding="utf-8")
            written.append(module)
    if record["elsewhere"] and not ELSEWHERE.exists():
        ELSEWHERE.write_text(json.dumps(record["elsewhere"], indent=1, sort_keys=True), encoding="utf-8")
    print(f"results of {len(written)} modules taken from {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    commands = {"save": save, "restore": restore}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m tests.mutation_record {' | '.join(commands)}")
    sys.exit(commands[sys.argv[1]]())
