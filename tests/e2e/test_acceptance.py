"""`make acceptance` (scripts/acceptance.py) against a throwaway labsim stack, so the real-lab tier cannot rot:
read-only first (nothing on any host may change: labsim's invocation log proves it), then the opted-in cycle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.preflight import READ_COMMANDS
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.e2e.pulumi_cli import ROOT, engine_missing

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

# Commands a read may run (the doctor's reads, and the resources' reads): everything else changes a host.
READ_VERBS = ("Get-", "Test-", "Measure-", "Select-", "Where-", "Sort-", "ConvertTo-", "Resolve-")
READS = {c.lower() for c in READ_COMMANDS}


def acceptance(lab: LabStack, report: Path, *extra: str) -> tuple[int, str, dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "acceptance.py"), "--stack", lab.project.stack,
                           "--pulumi", "pulumi", "--cwd", str(lab.project.project_dir), "--report", str(report),
                           *extra], env=lab.project.env, capture_output=True, text=True, timeout=1400)
    return proc.returncode, proc.stdout + proc.stderr, json.loads(report.with_suffix(".json").read_text())


def test_acceptance_read_only_then_full_cycle(tmp_path: Path) -> None:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    with lab_stack(tmp_path, pep_polling_seconds=0.5) as lab:
        lab.project.up()
        before = lab.last_invocation_id()

        code, output, data = acceptance(lab, tmp_path / "read-only.md")
        assert code == 0, output
        checks = {c["name"].split(":")[0]: c for c in data["checks"]}
        assert checks["preview --refresh"]["result"] == "PASS"
        assert checks["preview --refresh"]["detail"] == "in sync: no change planned"
        assert checks["reads"]["result"] == "PASS"
        assert data["resources"] and all(r["read"] == "read" and r["shape"] == "ok" and r["plan"] == "same"
                                         for r in data["resources"])
        assert {r["type"].rsplit(":", 1)[-1] for r in data["resources"]} >= {"ConnectorSite", "AzurePackConnector"}
        assert checks["doctor"]["result"] == "PASS", checks["doctor"]
        writes = [i["command"] for i in lab.invocations(after=before)
                  if not i["command"].split("\\")[-1].startswith(READ_VERBS) and i["command"].lower() not in READS]
        assert writes == [], writes  # read-only means read-only
        text = (tmp_path / "read-only.md").read_text()
        assert "result: **PASS**" in text and "| ConnectorSite |" in text
        # The doctor's checks are a table of their own: one row per check, every host.
        assert {r["host"] for r in data["doctor"]} >= {h.name for h in lab.lab.hosts}
        assert "## Doctor" in text and "<br>" not in text.split("## Doctor")[0]
        assert f"| AzS-ERCS01 | {data['doctor'][0]['check']} | PASS |" in text or \
            any(line.startswith("| AzS-ERCS01 | ") and " | PASS | " in line for line in text.splitlines())
        for host in lab.lab.hosts:
            for user in host.users:
                assert user.password not in text and user.password not in json.dumps(data)

        code, output, data = acceptance(lab, tmp_path / "cycle.md", "--cycle")
        assert code == 0, output
        results = {c["name"].split(":")[0]: c["result"] for c in data["checks"]}
        for name in ("up", "preview --refresh", "reads", "idempotent", "drift", "heal", "healed", "destroy"):
            assert results[name] == "PASS", (name, data["checks"])
        drift = next(c for c in data["checks"] if c["name"].startswith("drift"))
        assert "MgmtSvc-Connector" in drift["detail"]
        assert lab.project.resources() == []
