"""What a fresh clone needs is in it: the Makefile's .PHONY names exactly its targets, and no code comment or
document cites a file outside the repository (the notes the project was started from are not part of a clone)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_SKIPPED = {".git", ".venv", ".state", "mutants", "node_modules", "__pycache__", ".labsim"}


def makefile_targets(text: str) -> tuple[set[str], set[str]]:
    """(the targets a Makefile defines, the names its .PHONY lines list)."""
    targets = {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE)}
    phony = {name for line in re.findall(r"^\.PHONY\s*:(.*)$", text, re.MULTILINE) for name in line.split()}
    return targets - {".PHONY"}, phony


def test_makefile_targets_reads_targets_and_phony_lines() -> None:
    text = ".PHONY: a b\nSHELL := /bin/bash\na: b\n\t@echo\nb:\n\t@true\n.PHONY: c\nc:\n"
    assert makefile_targets(text) == ({"a", "b", "c"}, {"a", "b", "c"})


def test_phony_lists_every_target_and_nothing_else() -> None:
    targets, phony = makefile_targets((ROOT / "Makefile").read_text(encoding="utf-8"))
    assert phony - targets == set(), "listed in .PHONY but not a target"
    assert targets - phony == set(), "a target missing from .PHONY"


def _text_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if _SKIPPED.intersection(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix in {".py", ".md", ".sh", ".toml", ".yaml", ".mod"} or path.name == "Makefile":
            found.append(path)
    return found


def test_nothing_cites_a_file_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|/work/shared|shared notes/")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in _text_files()
                 for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if outside.search(line) and path != Path(__file__).resolve()]
    assert offenders == []


def test_the_docs_the_code_cites_exist() -> None:
    cited = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.md\b")
    missing = sorted({f"{path.relative_to(ROOT)}: {m.group(0)}" for path in _text_files()
                      if path.suffix == ".py" for m in cited.finditer(path.read_text(encoding="utf-8"))
                      if not (ROOT / m.group(0)).is_file()})
    assert missing == []
