"""Every read of a run, not only the first pipeline of a healthy lab: the reads asked again one at a time after one
of them failed, the second round's SQL question and AzS-WASP01's port tests are all preflight's read-only step,
marked safe to retry (the transport retries only those)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from components.preflight import READ_COMMANDS, STEP, run_preflight
from components.preflight import run as run
from tests.preflight.fake_lab import FakeLab, certificate, healthy, project, stack

pytestmark = pytest.mark.unit


def installed(lab: FakeLab, portal: str) -> None:
    lab.hosts[portal].sites["MgmtSvc-Connector"] = "Started"
    lab.hosts[portal].binding = "AB" * 20
    lab.hosts[portal].my = [certificate()]
    lab.hosts["wasp"].open_ports.add((f"{portal}.contoso.com", 40005))


def test_reads_asked_again_one_at_a_time_and_the_second_round_are_read_only_and_safe_to_retry(
        tmp_path: Path) -> None:
    lab = healthy(stack())  # no sqlServer: the Store's is asked in a second round
    installed(lab, "portal1")
    lab.hosts["portal2"].failing = {"Get-WebBinding": "Cannot find drive. A drive with the name 'IIS' does not exist."}
    report = lab.run(tmp_path)
    assert [(r.host, r.check) for r in report.failures] == []
    calls = {h: [c for c in lab.transport.calls if c.host == f"{h}.contoso.com"] for h in ("portal2", "wasp", "api1")}
    assert len(calls["portal2"]) > 2  # the whole pipeline, then each read on its own
    assert any("Test-NetConnection" in c.names for c in calls["wasp"])
    assert any("Invoke-Sqlcmd" in c.names for c in calls["api1"])
    for host, made in calls.items():
        for call in made:
            assert (call.step, call.idempotent) == (STEP, True), (host, call.names)
            assert set(call.names) <= READ_COMMANDS, (host, call.names)


def test_the_summary_gives_the_runs_own_duration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    clock = iter([100.0, 102.25])  # the run's start, then its end, as its monotonic clock reads them
    monkeypatch.setattr(run, "time", SimpleNamespace(monotonic=lambda: next(clock)))  # the run's clock only
    report = run_preflight(lab.config, transport=lab.transport, project_dir=project(tmp_path))
    assert report.seconds == 2.25
    assert report.summary().endswith(", 2.2 s")
