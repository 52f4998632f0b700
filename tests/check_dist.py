"""Check the built wheel and sdist: only the two runtime dependencies, py.typed, one version.

Run by ``make build`` after ``python -m build``: ``python tests/check_dist.py dist``.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

RUNTIME = {"requests", "sseclient-py"}


def main(folder: str) -> None:
    wheels = list(Path(folder).glob("*.whl"))
    sdists = list(Path(folder).glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, f"expected one wheel and one sdist in {folder}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
        entry_points = wheel.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    required = {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip()
                for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r}
    assert required == RUNTIME, f"the wheel requires {sorted(required)}, not just {sorted(RUNTIME)}"
    assert "openai_compat/py.typed" in names, "py.typed is missing from the wheel"
    assert not any(n.startswith("tests/") for n in names), "tests leaked into the wheel"
    assert "openai-compat = openai_compat._cli:main" in entry_points, "the console script is missing"
    version = metadata["Version"]
    assert sdists[0].name == f"openai_compat-{version}.tar.gz", f"sdist {sdists[0].name} is not version {version}"
    with tarfile.open(sdists[0]) as sdist:
        assert any(n.endswith("openai_compat/py.typed") for n in sdist.getnames()), "py.typed is missing from the sdist"
    print(f"dist ok: openai-compat {version} requires only {', '.join(sorted(RUNTIME))}; py.typed included")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist")
