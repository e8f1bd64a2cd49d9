"""A lab's hosts are spread over explicit dynamic-provider processes (components/providers.py), under the real
engine: the processes really run side by side, and regrouping the hosts of a deployed stack (as happens when it
was created with Pulumi's default provider, or when clouds are added) replaces nothing and touches no host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks.lab_scale import ProcessWatch
from components.preflight import READ_COMMANDS
from tests.e2e.lab_stack import LabStack, lab_stack

pytestmark = pytest.mark.e2e


def watched_up(lab: LabStack, *extra: str) -> tuple[subprocess.CompletedProcess[str], ProcessWatch]:
    project = lab.project
    cmd = ["pulumi", "up", "--yes", "--skip-preview", *extra, "--non-interactive", "--stack", project.stack]
    proc = subprocess.Popen(cmd, cwd=project.project_dir, env=project.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    with ProcessWatch(proc.pid, interval=0.1) as watch:
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return subprocess.CompletedProcess(cmd, proc.returncode, out), watch


def set_provider_processes(lab: LabStack, count: int) -> None:
    path = lab.project.config_file
    doc = yaml.safe_load(path.read_text())
    doc["config"]["wapconnector:providerProcesses"] = count
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_hosts_run_in_several_provider_processes_and_regrouping_replaces_nothing(tmp_path: Path) -> None:
    with lab_stack(tmp_path, provider_processes=None) as lab:
        # The seed lab: 5 hosts -> 3 provider processes, each a real process of the engine.
        _, watch = watched_up(lab)
        assert len(watch.providers_seen) == 3
        refs = {r["urn"]: r["provider"] for r in lab.project.resources()}
        assert len({ref.rsplit("::", 1)[0] for ref in refs.values()}) == 3
        ids = {r["urn"]: r["id"] for r in lab.project.resources()}

        set_provider_processes(lab, 1)
        steps = lab.project.preview_json()["steps"]
        changes = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in steps if s["op"] != "same"}
        assert changes == {"lab-providers-1": "delete", "lab-providers-2": "delete"}, changes
        before = lab.last_invocation_id()
        _, watch = watched_up(lab)
        assert {r["urn"]: r["id"] for r in lab.project.resources()} == ids  # same resources, not recreated
        assert len({r["provider"] for r in lab.project.resources()}) == 1
        # No host was touched: the only commands are the program's read-only preflight.
        assert [i["command"] for i in lab.invocations(after=before) if i["command"] not in READ_COMMANDS] == []
        lab.assert_clean()
