"""A whole simulated lab under the real Pulumi CLI: labsim in this process on free loopback addresses, a
throwaway project/backend (tests/e2e/pulumi_cli.py), and the stack configuration `labsim stack-config` writes.

    with lab_stack(tmp_path) as lab:
        lab.project.up()
        lab.snapshot("wapconnector1")      # a host's state, as `labsim show` prints it
        lab.admin("wapcomputer1", "Remove-Item", Path=r"Cert:\\LocalMachine\\My\\<thumb>")   # out-of-band change
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labsim.hosts import LabRuntime
from labsim.hosts.wapconnector import make_bundle
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.stack_config import write_stack_config
from labsim.testing import free_loopback_lab, start_labsim
from tests.e2e.pulumi_cli import ROOT, PulumiProject


@dataclass
class LabStack:
    project: PulumiProject
    lab: Lab
    server: Any
    lab_file: Path

    @property
    def runtime(self) -> LabRuntime:
        return self.server.runtime

    def snapshot(self, host: str, baseline: bool = False) -> dict[str, Any]:
        return self.runtime.snapshot(self.lab.host(host).name, baseline=baseline)

    def admin(self, host: str, cmdlet: str, *switches: str, **params: Any) -> Any:
        """An administrator's out-of-band change, over PSRP like any client (what `labsim exec` does)."""
        from providers.transport import Command, PsrpTransport

        h = self.lab.host(host)
        address, port = self.server.endpoint(h.name)
        conn = {"fqdn": h.fqdn, "address": address, "port": port, "ca_file": str(self.server.ca_file),
                "auth": "credssp" if h.winrm.auth == ["credssp"] or [a.value for a in h.winrm.auth] == ["credssp"]
                else "ntlm", "username": h.users[0].name, "password": h.users[0].password}
        if conn["auth"] == "credssp":
            conn["configuration_name"] = "PrivilegedEndpoint"
        from providers.transport import HostConnection

        return PsrpTransport().run(HostConnection.parse(conn), "out-of-band change",
                                   Command(cmdlet, params, switches)).output

    def set_preflight(self, mode: str) -> None:
        """wapconnector:preflight (enforce | warn): tests that break a host on purpose before `up`, to see how the
        resources fail, say `warn` as an operator working around a known-down host would."""
        doc = yaml.safe_load(self.project.config_file.read_text())
        doc["config"]["wapconnector:preflight"] = mode
        self.project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    # -- helpers for the drift, change, topology and interruption tests -------------------------------------
    def planned_fields(self, *extra: str) -> dict[str, tuple[str, list[str]]]:
        """Like :meth:`planned` (a refreshing preview), with the fields each planned step names: {resource name:
        (op, sorted detailedDiff keys)}, what the plan line shows as ``[diff: ~sites]``."""
        run = self.project.run("preview", "--json", "--refresh", *extra)
        assert run.returncode == 0, run.output
        ops = self.planned_from(run.json())
        steps = {s["urn"].rsplit("::", 1)[1]: s for s in run.json().get("steps") or []}
        return {name: (op, sorted(steps[name].get("detailedDiff") or {})) for name, op in ops.items()}

    def planned(self, *extra: str, refresh: bool = True) -> dict[str, str]:
        """`pulumi preview [--refresh] --json`: {resource name: op} for every resource the plan would touch
        (ops other than "same" and the "refresh" reads a refreshing preview lists), the stack itself and provider
        instances excluded.
        A resource that a refresh reads as gone plans "create". Fails on a non-zero exit or an error diagnostic."""
        run = self.project.run("preview", "--json", *(["--refresh"] if refresh else []), *extra)
        assert run.returncode == 0, run.output
        return self.planned_from(run.json())

    @staticmethod
    def planned_from(data: dict[str, Any]) -> dict[str, str]:
        """{resource name: op} of a `preview --json` (see :meth:`planned`)."""
        errors = [d["message"] for d in data.get("diagnostics") or [] if d.get("severity") == "error"]
        assert not errors, errors
        out: dict[str, str] = {}
        for step in data.get("steps") or []:
            urn = step["urn"]
            kind = urn.split("::")[-2].rsplit("$", 1)[-1]  # the type, without its parents' types
            if step["op"] in ("same", "refresh") or kind.endswith("pulumi:pulumi:Stack") or \
                    kind.startswith("pulumi:providers:"):  # provider instances (components/providers.py)
                continue
            out[urn.rsplit("::", 1)[1]] = step["op"]
        return out

    def assert_clean(self) -> None:
        """`pulumi preview --refresh --expect-no-changes` exits 0 (it exits 7 on changes)."""
        run = self.project.run("preview", "--refresh", "--expect-no-changes")
        assert run.returncode == 0, run.output

    def invocations(self, host: str | None = None, command: str | None = None,
                    after: int = 0) -> list[dict[str, Any]]:
        """labsim's recorded commands (oldest first) with an id greater than ``after``."""
        name = self.lab.host(host).name if host else None
        return self.runtime.state.invocations(name, command, after=after)

    def last_invocation_id(self) -> int:
        return self.runtime.state.last_invocation_id()

    def doctor(self) -> subprocess.CompletedProcess[str]:
        """`make doctor` (scripts/doctor.py) against this stack."""
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "doctor.py"), "--stack", self.project.stack,
                               "--cwd", str(self.project.project_dir)], env={**os.environ, **self.project.env},
                              capture_output=True, text=True, timeout=300)

    def outputs(self) -> dict[str, Any]:
        return self.project.run("stack", "output", "--json", "--show-secrets", check=True).json()


# How many provider processes serve a test stack (wapconnector:providerProcesses). An operator's stack gets the
# program's grouping (6 processes for the default lab's 13 hosts; docs/performance.md): that is for labs whose steps
# take minutes. Against labsim without latency one process does the same work, and each process costs about a CPU
# second per engine run to start (Python, gRPC, pypsrp, cryptography), which most tests pay several times over.
# The tests about grouping and concurrency (test_lab_scale, test_lab_topologies) and the seed example's lifecycle
# (test_lab_lifecycle, as an operator deploys it) pass None.
TEST_PROVIDER_PROCESSES = 1


@contextlib.contextmanager
def lab_stack(tmp_path: Path, lab: Lab | None = None, *, project_env: dict[str, str] | None = None,
              provider_processes: int | None = TEST_PROVIDER_PROCESSES, **settings: Any) -> Iterator[LabStack]:
    """``project_env`` goes to every pulumi command (e.g. another PULUMI_BACKEND_URL); ``provider_processes`` to
    wapconnector:providerProcesses (None: the program's own grouping, as an operator's stack has it); ``settings``
    to the lab."""
    data = free_loopback_lab(lab or load_lab(DEFAULT_LAB)).model_dump(mode="json")
    data.setdefault("settings", {}).update({"pep_polling_seconds": 5.0, **settings})
    lab = Lab.model_validate(data)
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(yaml.safe_dump(data, sort_keys=False))
    state_dir = tmp_path / "labsim"
    with start_labsim(lab, LabRuntime.open, state_dir) as server:
        project = PulumiProject(tmp_path / "pulumi", extra_env=project_env)
        make_bundle(tmp_path / "bundle")
        write_stack_config(lab, lab_file, stack=project.stack, project_dir=project.project_dir,
                           state_dir=state_dir, bundle_dir=tmp_path / "bundle", env=project.env)
        if provider_processes is not None:
            doc = yaml.safe_load(project.config_file.read_text())
            doc["config"]["wapconnector:providerProcesses"] = provider_processes
            project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        yield LabStack(project, lab, server, lab_file)
