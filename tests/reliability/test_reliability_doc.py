"""docs/reliability.md is the rendering of docs/reliability-figures.json (both written by a green
`make reliability`): this renders the page again, from the committed figures and the current code, and compares
the whole text, so a hand edit of the page (a count, a cell, a verdict) fails. The committed figures themselves
must show a green run: every applicable fault-matrix cell passed, every n/a cell is one the matrix declares n/a,
nothing found where nothing may be found, and every count that the page shows is the number of distinct things
the figures file lists."""

from __future__ import annotations

import pytest

from scripts import reliability_report as report
from tests.reliability import figures
from tests.reliability.matrix import cells

pytestmark = pytest.mark.unit

REGENERATE = ("docs/reliability.md is not the rendering of docs/reliability-figures.json: run `make reliability` "
              "(new figures), or `python scripts/reliability_report.py` after a change of the code the page quotes "
              "(step names, timeout defaults), and commit both files")


@pytest.fixture(scope="module")
def committed() -> tuple[dict, str]:
    assert report.FIGURES_DOC.exists() and report.DOC.exists(), REGENERATE
    return report.load_committed()


def test_the_page_is_the_rendering_of_the_committed_figures(committed: tuple[dict, str]) -> None:
    page = report.DOC.read_text(encoding="utf-8")
    rendered = report.render(*committed)
    if page != rendered:
        diff = [f"line {n}: page {a!r} != rendered {b!r}"
                for n, (a, b) in enumerate(zip(page.splitlines(), rendered.splitlines(), strict=False), 1) if a != b]
        pytest.fail(f"{REGENERATE}\n" + "\n".join(diff[:10] or ["(lengths differ)"]))


def test_the_committed_figures_are_a_green_run_of_every_section(committed: tuple[dict, str]) -> None:
    summary, source = committed
    assert source.startswith("`make reliability`") and "exit code" not in source, source
    assert set(summary) == set(figures.SECTIONS), sorted(summary)
    matrix = summary["fault_matrix"]
    for cell in cells():
        status = matrix.get(f"cell:{cell.id}")
        if cell.reason:
            assert isinstance(status, str) and status.startswith("n/a"), (cell.id, status)
        else:
            assert status == "pass", (cell.id, status)


def test_the_committed_figures_name_the_commit_and_the_command_that_measured_them() -> None:
    st = report.load_provenance()
    assert st is not None, "docs/reliability-figures.json names no commit: rerun `make reliability`"
    assert len(st["commit"].split("+")[0]) == 40 and st["command"] == "make reliability"
    assert len(st["measured"]["digest"]) == 64 and st["measured"]["paths"]
    assert f"on commit {st['commit'][:12]} (rerun: `make reliability`)" in report.DOC.read_text(encoding="utf-8")


# Figures that must be 0 in a green run, and the lists of distinct things that must not be empty.
ZERO = [("injection", "executed_as_code"), ("secrets", "found"), ("soak", "failures"),
        ("soak", "shells_left_after_reaper"), ("transport_security", "failed")]


@pytest.mark.parametrize("section, key", ZERO, ids=[f"{s}.{k}" for s, k in ZERO])
def test_what_must_be_zero_is_zero(committed: tuple[dict, str], section: str, key: str) -> None:
    assert committed[0][section].get(key) == 0, (section, key, committed[0][section].get(key))


def test_counted_figures_list_what_they_count(committed: tuple[dict, str]) -> None:
    listed = {(s, k): v for s, sec in committed[0].items() for k, v in sec.items() if isinstance(v, list)}
    for where in (("injection", "hostile_strings"), ("secrets", "secrets"), ("bad_inputs", "bad_inputs"),
                  ("transport_security", "cases_passed")):
        assert listed.get(where), f"{where}: no list of distinct things in the committed figures"
    for (section, key), items in listed.items():
        assert len(set(items)) == len(items) and all(isinstance(i, str) and i for i in items), (section, key)
