"""Counts the aspects compared with recorded Windows exchanges: printed at the end of the run and written to
.state/conformance/summary.txt (ignored by git)."""

from __future__ import annotations

from pathlib import Path

import pytest

_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "test_aspect[" not in report.nodeid or (report.when != "call" and report.outcome == "passed"):
        return
    name = report.nodeid.split("test_aspect[", 1)[1].rstrip("]")
    if hasattr(report, "wasxfail"):
        _OUTCOMES[name] = "differs"
    elif "XPASS(strict)" in str(report.longrepr):
        _OUTCOMES[name] = "FAILED (matches now: drop its differs= in aspects.py)"
    elif report.when == "call" or report.outcome != "passed":
        _OUTCOMES[name] = "matches" if report.outcome == "passed" else "FAILED"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    if not _OUTCOMES:
        return
    from tests.conformance.aspects import ASPECTS

    reasons = {a.name: a.differs for a in ASPECTS}
    matched = sum(1 for o in _OUTCOMES.values() if o == "matches")
    lines = [f"labsim matches {matched} of {len(_OUTCOMES)} aspects compared with recorded Windows exchanges"
             f" ({len(ASPECTS)} listed in tests/conformance/aspects.py)"]
    lines += [f"  {o}: {n}" + (f" ({reasons[n]})" if o == "differs" and reasons.get(n) else "")
              for n, o in sorted(_OUTCOMES.items()) if o != "matches"]
    terminalreporter.write_sep("-", "wire conformance")
    for line in lines:
        terminalreporter.write_line(line)
    out = Path(config.rootpath) / ".state" / "conformance"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
