"""Interruptions on the real engine: the CLI killed in the middle of `pulumi up`, and a host down during
`pulumi up`. Either way the stack is repaired the documented way and a rerun converges with nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from labsim.runtime import Fault
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.polling import listening

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TRUST_ROW = ("Microsoft.MgmtSvc.Store", "TenantAPI", "Authentication.IdentityProvider.Secondary")
UPDATED_TENANT_API = "{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}"


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def processes_in(directory: Path) -> list[int]:
    """PIDs of the processes whose working directory is ``directory`` (this test's throwaway project)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if Path(os.readlink(proc / "cwd")) == directory:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def state_names(lab: LabStack) -> set[str]:
    return {r["urn"].rsplit("::", 1)[1] for r in lab.project.export()["deployment"].get("resources") or []
            if not r["type"].startswith(("pulumi:pulumi:Stack", "pulumi:providers:"))}


def pending(lab: LabStack) -> dict[str, str]:
    ops = lab.project.export()["deployment"].get("pending_operations") or []
    return {op["resource"]["urn"].rsplit("::", 1)[1]: op["type"] for op in ops}


def assert_hosts_configured(lab: LabStack, hosts: tuple[str, ...] = ("wapcomputer1", "wapcomputer2")) -> None:
    outputs = lab.outputs()
    assert outputs["azureStack"]["multiCloudEnabled"] is True
    assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is True
    assert outputs["caThumbprint"] in lab.snapshot("AzS-WASP01")["certs"]["CA"]
    for n, host in enumerate(hosts, start=1):
        snap = lab.snapshot(host)
        binding = snap["sites"]["mgmtsvc-connector"]["bindings"][0]["certificateHash"]
        assert binding == outputs["clouds"][f"AzurePack_{n}"]["thumbprint"], host
        assert snap["registry"][r"SOFTWARE\Microsoft\MgmtSvc\TenantAPI"]["ProductCode"] == UPDATED_TENANT_API
        db, ns, name = TRUST_ROW
        assert name in snap["sql"][db][ns], host
        # One connector certificate per host: the rerun did not import a second copy.
        stack_certs = [t for t, c in snap["certs"]["My"].items() if "Connector Root CA" in c["issuer"]]
        assert stack_certs == [outputs["clouds"][f"AzurePack_{n}"]["thumbprint"]], host


def test_cli_killed_mid_up_then_cancel_clear_pending_creates_and_up_converges(tmp_path: Path) -> None:
    # latency_factor 0.05: Install-Connector takes 2 s, Update-TenantAPI 1.5 s, Add-AzurePackConnector 2.25 s,
    # so the kill below lands while host work is in flight.
    with lab_stack(tmp_path, latency_factor=0.05) as lab:
        project = lab.project
        everything = lab.planned(refresh=False)  # a fresh stack's preview: every resource to create
        assert set(everything.values()) == {"create"}, everything
        assert "lab-AzurePack_2-wapcomputer2-connector-site" in everything

        proc = subprocess.Popen(
            ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", "--stack", project.stack],
            cwd=project.project_dir, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)  # a process group of its own, to kill it like a crash would
        try:
            wait_for(lambda: [i for i in lab.invocations(command="Install-Connector.ps1") if i["outcome"] == "running"],
                     60, "Install-Connector.ps1 to be running")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            # The engine starts its plugins (language host, dynamic provider) in process groups of their own:
            # killing the CLI's group orphans them, as a crash of the CLI would. They hold no state; end them too
            # (they are ours: they run in this test's project directory), so nothing of the killed run goes on.
            for pid in processes_in(project.project_dir.resolve()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        wait_for(lambda: not [p for p in processes_in(project.project_dir.resolve()) if running(p)],
                 10, "the killed run's processes to be gone")

        # Killed mid-flight: some resources recorded, the ones in flight left as pending creates.
        interrupted = pending(lab)
        assert interrupted and set(interrupted.values()) == {"creating"}, interrupted
        assert any(name.endswith("-connector-site") for name in interrupted), interrupted
        assert len(state_names(lab)) < len(everything)

        # The DIY backend keeps the dead process's lock; the CLI's own message names the remedy, `pulumi cancel`
        # (for a file/cloud-storage backend it deletes the lock file; on Pulumi Cloud it cancels the update).
        blocked = project.run("up", "--yes", "--skip-preview")
        assert blocked.returncode != 0 and "locked" in blocked.output and "pulumi cancel" in blocked.output, \
            blocked.output
        project.run("cancel", "--yes", check=True)
        # Pending CREATEs: the documented repair is `pulumi refresh`, which asks interactively; non-interactively
        # (v3.259 `pulumi refresh --help`) either --import-pending-creates URN ID... (when the IDs are known) or
        # --clear-pending-creates. Our creates are idempotent (each reads the host and converges), so clearing
        # them and letting `up` create them again is the safe choice.
        project.run("refresh", "--yes", "--skip-preview", "--clear-pending-creates", check=True)
        assert pending(lab) == {}

        up = project.up()
        assert "error" not in up.output.lower(), up.output
        assert state_names(lab) == set(everything)
        assert pending(lab) == {}
        lab.assert_clean()
        assert_hosts_configured(lab)


def test_host_down_during_up_other_hosts_complete_and_rerun_converges(tmp_path: Path) -> None:
    with lab_stack(tmp_path) as lab:
        # The operator knows wapcomputer2 is down and goes on around it: preflight warns instead of stopping.
        lab.set_preflight("warn")
        state = lab.runtime.state
        address, port = lab.server.endpoint("wapcomputer2")
        state.set_fault(Fault("wapcomputer2", "down"))
        wait_for(lambda: not listening(address, port), 10, "wapcomputer2's listener to go down")
        everything = lab.planned(refresh=False)
        on_down_host = {n for n in everything if "wapcomputer2" in n} | {"lab-AzurePack_2-trust"}

        # --continue-on-error: without it the engine stops starting new steps at the first failure, so how much
        # of wapcomputer1 gets done would depend on timing; with it, everything that does not need wapcomputer2
        # is done in this run.
        failed = lab.project.up("--continue-on-error", check=False)
        assert failed.returncode != 0
        # The error names the host (its FQDN) and where it was reached.
        assert "wapcomputer2.contoso.com" in failed.output and f"{address}:{port}" in failed.output, failed.output
        errors = [line for line in failed.output.splitlines() if "error:" in line]
        assert errors and not [line for line in errors if "wapcomputer1" in line or "AzS-" in line], errors
        assert state_names(lab) == set(everything) - on_down_host
        assert lab.invocations(host="wapcomputer2") == []
        assert lab.snapshot("wapcomputer2") == lab.snapshot("wapcomputer2", baseline=True)
        assert lab.snapshot("wapcomputer1")["sites"]["mgmtsvc-connector"]["state"] == "Started"

        state.clear_faults()
        wait_for(lambda: listening(address, port), 10, "wapcomputer2's listener to come back")
        up = lab.project.up()
        assert "error" not in up.output.lower(), up.output
        assert state_names(lab) == set(everything)
        # Only wapcomputer2's resources (and its cloud's trust) were left to do.
        assert f"+ {len(on_down_host)} created" in up.output, up.output
        lab.assert_clean()
        assert_hosts_configured(lab)
