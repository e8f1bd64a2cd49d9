"""docs/performance.md is the rendering of docs/performance-figures.json (the records `make bench` keeps) and
docs/performance-template.md: this renders it again and compares the whole text, so a figure typed into the page
by hand fails. Every record names the commit it measured and the command that measures it again, and a record
whose measured code has changed is reported STALE (scripts/provenance.py)."""

from __future__ import annotations

from typing import Any

import pytest

from scripts import performance_report as report
from scripts import provenance

pytestmark = pytest.mark.unit

REGENERATE = ("docs/performance.md is not the rendering of docs/performance-figures.json and "
              "docs/performance-template.md: run `make bench` (new figures) or `python scripts/performance_report.py` "
              "(after a change of the template), and commit the page")


def test_the_page_is_the_rendering_of_the_committed_records() -> None:
    page = report.DOC.read_text(encoding="utf-8")
    rendered = report.render(report.load())
    if page != rendered:
        diff = [f"line {n}: page {a!r} != rendered {b!r}"
                for n, (a, b) in enumerate(zip(page.splitlines(), rendered.splitlines(), strict=False), 1) if a != b]
        pytest.fail(f"{REGENERATE}\n" + "\n".join(diff[:10] or ["(lengths differ)"]))


def test_every_record_names_its_commit_and_command_and_the_page_shows_them() -> None:
    records = report.load()
    assert records, "docs/performance-figures.json holds no record: run `make bench N=2` at least"
    page = report.DOC.read_text(encoding="utf-8")
    for r in records:
        st = r["provenance"]
        assert len(st["commit"].split("+")[0]) == 40 and st["command"].startswith(("make bench", "python benchmarks"))
        assert st["measured"]["paths"] == list(provenance.PERFORMANCE_CODE) and len(st["measured"]["digest"]) == 64
        assert f"`{st['commit'][:12]}`" in page and f"`{st['command']}`" in page


def test_the_template_leaves_no_field_unfilled_and_the_page_names_the_n_not_measured() -> None:
    empty = report.render([])
    assert "{{" not in empty and "not yet measured" in empty
    missing = [n for n in report.DEFAULT_CLOUDS if n not in {r["clouds"] for r in report.load()}]
    if missing:
        assert f"Not measured by this command yet: N = {', '.join(map(str, missing))}" in report.render(report.load())


def test_a_record_is_stale_exactly_when_the_code_it_measured_changed() -> None:
    paths = ["components"]
    current: dict[str, Any] = {"commit": provenance.head(), "command": "make bench N=2",
               "measured": {"paths": paths, "digest": provenance.code_digest(paths)}}
    assert provenance.stale("docs/performance.md (N=2)", current) is None
    changed = {**current, "measured": {"paths": paths, "digest": "0" * 64}}
    line = provenance.stale("docs/performance.md (N=2)", changed)
    assert line is not None and line.startswith("STALE: docs/performance.md (N=2) measured commit ")
    assert current["commit"][:12] in line and "rerun `make bench N=2`" in line
