#!/usr/bin/env python3
"""The whole test suite as `make test` runs it: the test modules on every core (pytest-xdist, each module on one
worker: ``--dist loadscope``, longest module first: tests/conftest.py), then the tests marked ``serial`` alone, then
one summary of both runs: each tier's time, the slowest tests and one closing line in pytest's words ("N passed,
N failed ... in S s"), last, which is what CI reads.

    python scripts/test_suite.py [pytest args]      # e.g. -m unit, -k name, tests/labsim; -n/--workers: workers

Workers: ``--workers N`` or ``$TEST_WORKERS`` (``auto``: one per core); by default two per core. Measured on 2 cores
(the CPU column of the summary): with one worker per core the whole suite kept the CPUs busy about half the time, as
the end-to-end tests wait on the engine's round trips to the program and the providers, and the parallel run took
804 s; with two per core, 530 s. `make test-fast` (unit and conformance, CPU-bound) keeps one per core.
Each run's times go to ``.state/test-times/<run>.json`` (tests/timings.py) and the whole suite's to
``.state/test-times.json``. ``scripts/reliability_report.py --suite`` runs this with a fresh reliability figures file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.timings import OUTCOMES, summary_lines  # noqa: E402

TIMES = REPO / ".state" / "test-times"
NO_TESTS = 5  # pytest's exit code when the selection is empty
WORKERS_PER_CORE = 2  # the default; the module docstring says why


def split_marker(args: list[str]) -> tuple[str | None, list[str]]:
    """The ``-m`` expression among pytest's args (None without one), and the other args."""
    rest, expr = [], None
    it = iter(args)
    for a in it:
        if a == "-m":
            expr = next(it, None)
        elif a.startswith("-m") and len(a) > 2:
            expr = a[2:]
        else:
            rest.append(a)
    return expr, rest


def _and(expr: str | None, clause: str) -> str:
    return clause if not expr else f"({expr}) and {clause}"


def runs(args: list[str], workers: str) -> list[tuple[str, list[str]]]:
    expr, rest = split_marker(args)
    return [("parallel", ["-n", workers, "--dist", "loadscope", "--no-loadscope-reorder",
                          "-m", _and(expr, "not serial"), *rest]),
            ("serial", ["-n", "0", "-m", _and(expr, "serial"), *rest])]


def closing_line(counts: dict[str, int], seconds: float) -> str:
    """pytest's own closing line for the counts of several runs (its words, order and plurals)."""
    words = {"warnings": ("warning", "warnings"), "error": ("error", "errors")}
    parts = []
    for k in OUTCOMES:
        n = counts.get(k, 0)
        if n and k != "deselected":  # each run deselects the other's tests
            one, many = words.get(k, (k, k))
            parts.append(f"{n} {one if n == 1 else many}")
    took = f"{seconds:.2f}s"
    if seconds >= 60:
        took += f" ({int(seconds // 3600)}:{time.strftime('%M:%S', time.gmtime(seconds))})"
    return f" {', '.join(parts) or 'no tests ran'} in {took} ".center(80, "=")


class Suite:
    """What the runs of one suite found: exit code, pytest's counts summed, every test's time, wall seconds."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.counts: dict[str, int] = {}
        self.tests: dict[str, dict] = {}
        self.seconds = 0.0

    @property
    def rc(self) -> int:
        return max([c for c in self.codes if c != NO_TESTS], default=NO_TESTS)

    def summary(self) -> list[str]:
        """The tiers, the slowest tests, and the closing line: printed last."""
        return ["", "### the whole suite", *summary_lines(self.tests, self.seconds),
                closing_line(self.counts, self.seconds)]


def run_suite(pytest_args: list[str], workers: str | None = None) -> Suite:
    """Both runs, pytest's output streamed; the times of the whole suite to .state/test-times.json."""
    workers = workers or os.environ.get("TEST_WORKERS") or str(WORKERS_PER_CORE * (os.cpu_count() or 1))
    TIMES.mkdir(parents=True, exist_ok=True)
    suite = Suite()
    started = time.monotonic()
    for name, extra in runs(pytest_args, workers):
        path = TIMES / f"{name}.json"
        path.unlink(missing_ok=True)
        print(f"\n### pytest, {name} run: {' '.join(extra)}", flush=True)
        suite.codes.append(subprocess.call([sys.executable, "-m", "pytest", *extra], cwd=REPO,
                                           env={**os.environ, "TEST_TIMES": str(path)}))
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            for k, v in data["run"]["counts"].items():
                suite.counts[k] = suite.counts.get(k, 0) + v
            suite.tests.update(data["tests"])
    suite.seconds = time.monotonic() - started
    (REPO / ".state" / "test-times.json").write_text(json.dumps(
        {"run": {"seconds": round(suite.seconds, 1), "counts": suite.counts, "args": pytest_args},
         "tests": suite.tests}, indent=0) + "\n", encoding="utf-8")
    return suite


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--workers", default=None, help="pytest-xdist workers for the parallel run (default: "
                                                    "$TEST_WORKERS, or two per core; auto: one per core)")
    args, pytest_args = ap.parse_known_args(argv)
    suite = run_suite(pytest_args, args.workers)
    print("\n".join(suite.summary()), flush=True)
    return suite.rc


if __name__ == "__main__":
    sys.exit(main())
