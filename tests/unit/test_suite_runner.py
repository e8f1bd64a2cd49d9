"""scripts/test_suite.py, which `make test` runs: the -m expression of a part (PYTEST_ARGS) is kept in both runs,
the serial tests are only in the second, and the closing line for both runs reads like pytest's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import test_suite as suite
from tests import timings
from tests.timings import TYPICAL_SECONDS, module_seconds, summary_lines, tier_of

pytestmark = pytest.mark.unit


def test_a_part_keeps_its_marker_expression_and_serial_tests_run_only_in_the_second_run() -> None:
    (_, parallel), (_, serial) = suite.runs(["-m", "unit or sim", "-k", "fault", "tests/x"], "2")
    assert parallel[:4] == ["-n", "2", "--dist", "loadscope"]
    assert parallel[parallel.index("-m") + 1] == "(unit or sim) and not serial"
    assert serial[serial.index("-m") + 1] == "(unit or sim) and serial"
    assert parallel[-3:] == serial[-3:] == ["-k", "fault", "tests/x"]
    (_, parallel), (_, serial) = suite.runs([], "auto")
    assert "not serial" in parallel and "serial" in serial


def test_the_closing_line_counts_both_runs_in_pytests_words() -> None:
    line = suite.closing_line({"passed": 1630, "failed": 2, "error": 1, "skipped": 3, "deselected": 1640,
                               "warnings": 1}, 512.3)
    assert line.strip("= ") == "2 failed, 1630 passed, 3 skipped, 1 warning, 1 error in 512.30s (0:08:32)"
    assert suite.closing_line({"passed": 3, "error": 2}, 0.5).strip("= ") == "3 passed, 2 errors in 0.50s"


def test_the_suite_fails_when_either_run_fails_and_an_empty_run_does_not_count() -> None:
    s = suite.Suite()
    s.codes = [0, suite.NO_TESTS]
    assert s.rc == 0
    s.codes = [suite.NO_TESTS, 1]
    assert s.rc == 1
    s.codes = [suite.NO_TESTS, suite.NO_TESTS]
    assert s.rc == suite.NO_TESTS


def test_each_tier_gets_its_tests_wall_test_and_cpu_time_and_the_slowest_come_first() -> None:
    assert tier_of(["sim", "e2e"]) == "e2e" and tier_of(["unit"]) == "unit" and tier_of([]) == "unmarked"
    tests = {"a": {"tier": "unit", "seconds": 1.0, "cpu": 0.5, "start": 0.0, "stop": 1.0},
             "b": {"tier": "unit", "seconds": 2.0, "cpu": 1.25, "start": 0.5, "stop": 4.0},
             "c": {"tier": "e2e", "seconds": 9.0, "start": 0.0, "stop": 9.0}}  # measured before CPU was
    lines = summary_lines(tests, 10.0, slowest=2)
    assert any(line.split() == ["unit", "2", "4.0", "3.0", "1.8"] for line in lines), lines
    assert any(line.split() == ["e2e", "1", "9.0", "9.0", "0.0"] for line in lines), lines
    assert [line.split()[-1] for line in lines[-2:]] == ["c", "b"]


def test_the_parallel_run_keeps_the_collected_order_of_modules() -> None:
    (_, parallel), (_, serial) = suite.runs([], "2")
    assert "--no-loadscope-reorder" in parallel  # xdist's own order would put the long one-test modules last


def test_a_module_is_expected_to_take_its_tests_last_times_or_their_tiers_typical_time() -> None:
    tests = [("tests/e2e/test_a.py::test_one", "e2e"), ("tests/e2e/test_a.py::test_two", "e2e"),
             ("tests/unit/test_b.py::test_x", "unit"), ("tests/sim/test_c.py::test_y", "sim")]
    expected = module_seconds(tests, {"tests/e2e/test_a.py::test_one": 12.5, "tests/sim/test_c.py::test_y": 80.0})
    assert expected == {"tests/e2e/test_a.py": 12.5 + TYPICAL_SECONDS["e2e"],
                        "tests/unit/test_b.py": TYPICAL_SECONDS["unit"], "tests/sim/test_c.py": 80.0}


def test_each_run_adds_its_times_to_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timings, "KNOWN", tmp_path / "durations.json")
    assert timings.known_durations() == {}  # a fresh clone
    timings.remember({"a::t": {"seconds": 1.0}, "b::t": {"seconds": 2.0}})
    timings.remember({"a::t": {"seconds": 3.0}})
    assert timings.known_durations() == {"a::t": 3.0, "b::t": 2.0}
    (tmp_path / "durations.json").write_text("{not json")
    assert timings.known_durations() == {}  # a damaged file orders as a fresh clone does, it stops nothing


def test_a_tests_tier_comes_from_its_markers_not_from_the_folders_above_it(pytester: pytest.Pytester,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout in a folder named like a tier (…/e2e/tests/…) must not put every test in that tier; and each
    test's CPU seconds are recorded beside its wall time."""
    pytester.makeini("[pytest]\nmarkers =\n    unit: u\n    e2e: e\n")
    (pytester.path / "e2e").mkdir()
    (pytester.path / "e2e" / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.unit\ndef test_u():\n    sum(range(100000))\n")
    times = pytester.path / "times.json"
    monkeypatch.setenv("TEST_TIMES", str(times))
    monkeypatch.setattr(timings, "KNOWN", pytester.path / "known.json")
    result = pytester.runpytest("-p", "tests.timings", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (test,) = json.loads(times.read_text())["tests"].values()
    assert test["tier"] == "unit" and test["markers"] == ["unit"]
    assert test["cpu"] > 0


def test_the_parallel_run_has_two_workers_per_core_unless_told(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(suite, "REPO", tmp_path)
    monkeypatch.setattr(suite, "TIMES", tmp_path / ".state" / "test-times")

    def call(cmd: list[str], **_: object) -> int:
        calls.append(cmd)
        return 0

    monkeypatch.setattr(suite.subprocess, "call", call)
    monkeypatch.setattr(suite.os, "cpu_count", lambda: 3)
    monkeypatch.delenv("TEST_WORKERS", raising=False)

    def workers_of(*args: str) -> str:
        calls.clear()
        suite.run_suite([], *args)
        parallel = calls[0]
        return parallel[parallel.index("-n") + 1]

    assert workers_of() == "6"
    assert workers_of("auto") == "auto"  # make test-fast: one per core
    monkeypatch.setenv("TEST_WORKERS", "1")
    assert workers_of() == "1"


def test_a_module_never_measured_here_takes_its_committed_time() -> None:
    tests = [("tests/e2e/test_a.py::test_one", "e2e"), ("tests/sim/test_c.py::test_y", "sim"),
             ("tests/sim/test_c.py::test_z", "sim"), ("tests/unit/test_d.py::test_w", "unit")]
    committed = {"tests/e2e/test_a.py": 120.0, "tests/sim/test_c.py": 3.0}
    # A fresh clone: the committed times where there are some, the tier's typical time elsewhere.
    assert module_seconds(tests, {}, committed) == {"tests/e2e/test_a.py": 120.0, "tests/sim/test_c.py": 3.0,
                                                   "tests/unit/test_d.py": TYPICAL_SECONDS["unit"]}
    # A test measured here wins over the committed figure for its whole module.
    assert module_seconds(tests, {"tests/sim/test_c.py::test_y": 40.0}, committed)["tests/sim/test_c.py"] == \
        40.0 + TYPICAL_SECONDS["sim"]


def test_the_committed_module_times_come_from_the_last_measured_ones(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timings, "KNOWN", tmp_path / "durations.json")
    monkeypatch.setattr(timings, "MODULE_SECONDS", tmp_path / "module-seconds.json")
    timings.remember({"tests/a.py::t1": {"seconds": 1.25}, "tests/a.py::t2": {"seconds": 2.0},
                      "tests/b.py::t": {"seconds": 0.5}})
    timings.write_module_seconds()
    assert timings.committed_module_seconds() == {"tests/a.py": 3.2, "tests/b.py": 0.5}
    assert list(timings.committed_module_seconds()) == ["tests/a.py", "tests/b.py"]  # sorted: small diffs
