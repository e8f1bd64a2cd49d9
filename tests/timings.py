"""Where the suite's time goes: a pytest plugin (``-p tests.timings``, in pyproject's addopts) that writes every
test's time, tier and outcome to ``.state/test-times.json`` (``$TEST_TIMES`` names another file) and ends the run
with each tier's time and the slowest tests.

A test's tier is the first of ``TIERS`` among its markers. Its time is setup + call + teardown (a module fixture's
setup counts for the test that started it), and so is its CPU time: the worker's own (the test, and labsim's threads
in it) plus that of the processes it ran and waited for (the Pulumi CLI, its language host and providers). Unlike
wall time, CPU time hardly moves with the machine's load, so it is what tells whether a change made the suite
cheaper. A tier's wall time is the span from the start of its first test to the end of its last; with several
workers (pytest-xdist) the tiers overlap, so its test time (the sum over its tests, on all workers) is printed beside
it. Under xdist the plugin runs in the controller, which sees every worker's
reports; the workers write nothing.

``scripts/test_suite.py`` (`make test`) runs pytest more than once (the parallel part, then the tests that must run
alone) and prints the same summary for the whole suite from these files, then one closing line.

Every run also updates ``.state/test-durations.json``, each test's last measured time whatever run measured it:
``module_seconds`` reads it to tell how long each module will take, so that the longest start first; a module never
measured here takes its committed time (``tests/module-seconds.json``, `make test-durations`).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

TIERS = ("e2e", "sim", "conformance", "unit")
SLOWEST = 20
REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / ".state" / "test-times.json"
KNOWN = REPO / ".state" / "test-durations.json"
# Each module's seconds from a whole run, committed (`make test-durations` writes it): a fresh clone, which has no
# KNOWN, would otherwise guess from tiers alone and start a two-minute one-test module last.
MODULE_SECONDS = REPO / "tests" / "module-seconds.json"
# A test never measured here: what a test of its tier typically takes (a fresh clone orders on these alone).
TYPICAL_SECONDS = {"e2e": 45.0, "sim": 1.0, "conformance": 0.1, "unit": 0.02, "unmarked": 0.02}
# What pytest's closing line counts, in its order.
OUTCOMES = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings", "error")


_CPU_AT = pytest.StashKey[float]()  # the CPU seconds when a test's current phase began


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (user + system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def times_path() -> Path:
    env = os.environ.get("TEST_TIMES")
    return Path(env) if env else DEFAULT


def tier_of(markers: Iterable[str]) -> str:
    names = set(markers)
    return next((t for t in TIERS if t in names), "unmarked")


class Timings:
    def __init__(self, markers: Iterable[str]) -> None:
        self.markers = frozenset(markers)  # the registered ones (pyproject.toml): a report's keywords hold more
        self.tests: dict[str, dict[str, Any]] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Under xdist the controller collects nothing: the markers come with the worker's report (as a user
        # property: its keywords also hold the names of the folders above the test, which may be a tier's name).
        props = dict(report.user_properties)
        sent = props.get("markers")
        markers = sorted(self.markers.intersection(sent if isinstance(sent, list) else report.keywords))
        test = self.tests.setdefault(report.nodeid, {"tier": tier_of(markers), "markers": markers, "seconds": 0.0})
        test["seconds"] = round(test["seconds"] + report.duration, 3)
        cpu = props.get("cpu_seconds")
        if isinstance(cpu, int | float):
            test["cpu"] = round(test.get("cpu", 0.0) + cpu, 3)
        test["start"] = min(test.get("start", report.start), report.start)
        test["stop"] = max(test.get("stop", report.stop), report.stop)
        if getattr(report, "node", None) is not None:  # the xdist worker that ran it
            test["worker"] = getattr(report.node, "gateway", report.node).id
        if report.when == "call" or report.outcome != "passed":
            test["outcome"] = report.outcome if report.when == "call" else f"{report.outcome} in {report.when}"

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        ran = {k: v for k, v in self.tests.items() if "start" in v}
        counts = {k: len(v) for k, v in terminalreporter.stats.items() if k and k in OUTCOMES}
        ended = time.time()
        run = {"started": self.started, "ended": ended, "counts": counts,
               "args": list(terminalreporter.config.invocation_params.args)}
        path = times_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run": run, "tests": ran}, indent=0) + "\n", encoding="utf-8")
        remember(ran)
        for line in summary_lines(ran, ended - self.started):
            terminalreporter.write_line(line)


def _seconds_in(path: Path) -> dict[str, float]:
    """A JSON map of names to seconds (empty when the file is missing or cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)} if isinstance(data, dict) else {}


def known_durations() -> dict[str, float]:
    """Each test's last measured seconds (empty on a fresh clone, or when the file cannot be read)."""
    return _seconds_in(KNOWN)


def remember(tests: Mapping[str, Mapping[str, Any]]) -> None:
    """Add the times of a run to the ones known, a test measured again keeping its newest time."""
    known = known_durations()
    known.update({nodeid: round(t["seconds"], 3) for nodeid, t in tests.items()})
    KNOWN.parent.mkdir(parents=True, exist_ok=True)
    tmp = KNOWN.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(KNOWN)  # a worker collecting at the same time reads the old file or the new one, never half


def module_seconds(tests: Iterable[tuple[str, str]], known: Mapping[str, float],
                   committed: Mapping[str, float] | None = None) -> dict[str, float]:
    """How long each module is expected to take, from its tests as (node id, tier): a test's last measured time,
    or what a test of its tier typically takes; a module none of whose tests was measured here takes its time in
    ``committed`` (MODULE_SECONDS, what a fresh clone has), if it is there."""
    out: dict[str, float] = {}
    measured: set[str] = set()
    for nodeid, tier in tests:
        module = nodeid.split("::", 1)[0]
        if nodeid in known:
            measured.add(module)
        out[module] = out.get(module, 0.0) + known.get(nodeid, TYPICAL_SECONDS.get(tier, 0.02))
    for module in out.keys() - measured:
        out[module] = (committed or {}).get(module, out[module])
    return out


def committed_module_seconds() -> dict[str, float]:
    """Each module's seconds as `make test-durations` last committed them (empty if the file cannot be read)."""
    return _seconds_in(MODULE_SECONDS)


def write_module_seconds() -> Path:
    """`make test-durations`: each module's seconds, from the tests' last measured times, into MODULE_SECONDS."""
    modules: dict[str, float] = {}
    for nodeid, seconds in known_durations().items():
        module = nodeid.split("::", 1)[0]
        modules[module] = round(modules.get(module, 0.0) + seconds, 1)
    MODULE_SECONDS.write_text(json.dumps(dict(sorted(modules.items())), indent=0) + "\n", encoding="utf-8")
    return MODULE_SECONDS


def summary_lines(tests: Mapping[str, Mapping[str, Any]], wall: float, slowest: int = SLOWEST) -> list[str]:
    """Each tier's tests, wall time and test time, then the slowest tests (printed by pytest and by
    scripts/test_suite.py for several runs together)."""
    if not tests:
        return []
    lines = [f"-- time by tier (run: {wall:.0f} s wall; .state/test-times.json) --",
             f"{'tier':<12} {'tests':>6} {'wall s':>8} {'test s':>8} {'cpu s':>8}"]
    for tier in (*TIERS, "unmarked"):
        mine = [t for t in tests.values() if t["tier"] == tier]
        if not mine:
            continue
        span = max(t["stop"] for t in mine) - min(t["start"] for t in mine)
        lines.append(f"{tier:<12} {len(mine):>6} {span:>8.1f} {sum(t['seconds'] for t in mine):>8.1f} "
                     f"{sum(t.get('cpu', 0.0) for t in mine):>8.1f}")
    lines.append(f"-- slowest {slowest} tests (setup + call + teardown; CPU seconds beside) --")
    ranked = sorted(tests.items(), key=lambda kv: kv[1]["seconds"], reverse=True)[:slowest]
    lines += [f"{t['seconds']:8.2f}s {t.get('cpu', 0.0):7.1f} {t['tier']:<11} {nodeid}" for nodeid, t in ranked]
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Each phase's CPU seconds and the test's markers go with its report (as user properties, which xdist carries
    to the controller)."""
    outcome = yield
    report = outcome.get_result()
    started = item.stash.get(_CPU_AT, None)
    if started is not None:
        report.user_properties.append(("cpu_seconds", round(cpu_seconds() - started, 3)))
    report.user_properties.append(("markers", sorted({m.name for m in item.iter_markers()})))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_CPU_AT] = cpu_seconds()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_CPU_AT] = cpu_seconds()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_CPU_AT] = cpu_seconds()
    yield


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller records its reports
        return
    names = [line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")]
    config.pluginmanager.register(Timings(names), "test-timings")


if __name__ == "__main__":
    print(f"wrote {write_module_seconds().relative_to(REPO)}")
