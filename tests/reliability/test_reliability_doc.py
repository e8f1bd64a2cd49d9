"""docs/reliability.md is generated (`make test` rewrites it after the suite, `make reliability` too); this keeps the
page the suite starts from in step with the code: the
fault matrix grid has exactly the cells of tests/reliability/matrix.py (adding a cell without regenerating the
page turns CI red), every applicable cell passed and every n/a cell is one the matrix declares n/a, and the
sections come in figures.SECTIONS order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.reliability import figures
from tests.reliability.matrix import FAULTS, OPERATIONS, RESOURCES, cells

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
REGENERATE = ("docs/reliability.md is out of date or shows a failing run: a green `make test` rewrites it; "
              "commit that page")

pytestmark = pytest.mark.unit


def _text() -> str:
    assert DOC.exists(), REGENERATE
    return DOC.read_text(encoding="utf-8")


def test_sections_in_order() -> None:
    headings = re.findall(r"^## (.+)$", _text(), re.M)
    assert headings == [figures.SECTION_TITLES[s] for s in figures.SECTIONS], REGENERATE


def test_fault_matrix_grid_matches_the_matrix_definition() -> None:
    text = _text()
    header = next(line for line in text.splitlines() if line.startswith("| resource | operation |"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == list(FAULTS), REGENERATE
    grid: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(parts) >= 2 and parts[0] in RESOURCES and parts[1] in OPERATIONS:
            grid[(parts[0], parts[1])] = parts[2:]
    expected = cells()
    assert sum(len(v) for v in grid.values()) == len(expected), REGENERATE
    assert set(grid) == {(r, o) for r in RESOURCES for o in OPERATIONS}, REGENERATE
    for cell in expected:
        status = grid[(cell.resource, cell.operation)][list(FAULTS).index(cell.fault)]
        want = "n/a" if cell.reason else "pass"
        assert status == want, f"{cell.id}: the page says {status!r}, expected {want!r}; {REGENERATE}"
    m = re.search(r"Cells: \*\*(\d+)\*\*", text)
    assert m and int(m.group(1)) == len(expected), REGENERATE
