"""House rules a reader relies on (docs/style.md): what a fresh clone needs is in it (no code comment or document
cites a file outside the repository; the Makefile's .PHONY names exactly its targets), no import cycle (not even
one hidden by an import inside a function), and no module over 500 lines unless its docstring says why it is one
job."""

from __future__ import annotations

import ast
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere in its body (functions included), counting a
    package's ``__init__`` for each submodule imported from it, except the importing module's own packages."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            while target:
                if target != name and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
                if target not in known:
                    break
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_import_cycles_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["labsim", "providers", "components"])
def test_no_import_cycle(package: str) -> None:
    files = [p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts]
    known = {_module_name(p) for p in files}
    graph = {_module_name(p): imports_of(p, known) & known for p in files}
    assert import_cycles(graph) == []


@pytest.mark.parametrize("folder", ["labsim", "providers/transport"])
def test_modules_stay_under_500_lines_or_say_why_they_are_one_job(folder: str) -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
            and "one job" not in (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "")]
    assert long == []
