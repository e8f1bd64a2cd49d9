"""What an operator sees during `pulumi up` (real CLI, labsim with real-ish step durations).

One `up` of the seed lab with the long steps at 0.3 x their real duration (Install-Connector.ps1 ~12 s) and
Install-Connector.ps1 failing on wapcomputer2:
* progress, live: each step's start, its elapsed time while it runs and the host's verbose lines appear in the
  resource's row while it is still "creating"; a long step leaves its duration in the diagnostics;
* failures read as the project's messages, without grpc's "Exception calling application:" prefix, naming the
  stack config key to fix (a TLS name mismatch on AzS-WASP01: `wapconnector:hosts.AzS-WASP01.tlsServerName`);
* no password appears anywhere in the output.
(That a rerun converges after such a failure is tests/reliability/test_fault_e2e.py's business.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.lab_stack import lab_stack

pytestmark = pytest.mark.e2e

SITE1 = "ConnectorSite lab-AzurePack_1-wapcomputer1-connector-site"
INSTALL = "install the connector (Install-Connector.ps1)"


def test_progress_is_live_and_errors_have_no_sdk_prefix(tmp_path: Path) -> None:
    import yaml

    from labsim.runtime import Fault

    with lab_stack(tmp_path, latency_factor=0.3) as lab:
        # AzS-WASP01 is reached under a name its WinRM certificate does not carry: a TLS error.
        doc = yaml.safe_load(lab.project.config_file.read_text())
        wasp = next(k for k in doc["config"]["wapconnector:hosts"] if k.lower() == "azs-wasp01")
        doc["config"]["wapconnector:hosts"][wasp]["tlsServerName"] = "elsewhere.azurestack.local"
        doc["config"]["wapconnector:preflight"] = "warn"  # let the provider meet it (the preflight would stop first)
        lab.project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        host2 = lab.lab.host("wapcomputer2").name
        lab.runtime.state.set_fault(Fault(host=host2, kind="command_error", command="Install-Connector.ps1"))
        deadline = time.monotonic() + 10
        while not lab.server.faults_in_force("wapcomputer2"):
            assert time.monotonic() < deadline
            time.sleep(0.05)

        run = lab.project.up("--continue-on-error", check=False)  # the other hosts go on, showing progress
        out = run.output
        assert run.returncode != 0, out

        rows = [ln for ln in out.splitlines() if SITE1 in ln]
        creating = [ln.split(f"{SITE1} creating (", 1)[1] for ln in rows if f"{SITE1} creating (" in ln]
        # The step's start, its elapsed time while it runs, the host's own verbose lines: all in the live row.
        assert any(f"wapcomputer1.contoso.com: {INSTALL}" in ln for ln in creating), rows
        assert any(re.search(rf"{re.escape(INSTALL)} \(\d+ s\)", ln) for ln in creating), rows
        assert any("wapcomputer1.contoso.com: Installing Windows Azure Pack Connector" in ln for ln in creating), rows
        created_at = next(i for i, ln in enumerate(rows) if f"{SITE1} created" in ln)
        verbose_at = next(i for i, ln in enumerate(rows) if "Windows Azure Pack Connector installed." in ln)
        assert verbose_at < created_at
        # A long step leaves its duration in the diagnostics.
        diagnostics = out.split("Diagnostics:", 1)[1]
        assert re.search(rf"wapcomputer1\.contoso\.com: {re.escape(INSTALL)} took 1\d s", diagnostics), diagnostics

        # The failure: the project's message, naming host, step and what to do; no SDK prefix.
        assert "Exception calling application" not in out, out
        assert re.search(rf"error: wapcomputer2\.contoso\.com, step '{re.escape(INSTALL)}': .* failed: .*; fix what "
                         rf"the error says on the host", diagnostics), diagnostics

        # Errors name the stack config key the operator wrote, not the provider's field.
        key = f"wapconnector:hosts.{wasp}.tlsServerName"
        assert re.search(rf"error: azs-wasp01\.azurestack\.local, step '[^']+': the host's TLS certificate was not "
                         rf"trusted .*\({re.escape(key)}\): set {re.escape(key)} to a name", diagnostics), diagnostics
        assert "tls_server_name" not in out

        for h in lab.lab.hosts:
            for user in h.users:
                assert user.password not in out


def test_plans_name_the_changed_connection_field_and_a_refresh_lists_only_real_drift(tmp_path: Path) -> None:
    import yaml

    with lab_stack(tmp_path) as lab:
        project = lab.project
        project.up()
        passwords = [u.password for h in lab.lab.hosts for u in h.users]

        # One host's timeouts change: its resources update, the plan names the fields, never the password.
        doc = yaml.safe_load(project.config_file.read_text())
        hosts = doc["config"]["wapconnector:hosts"]
        entry = next(v for k, v in hosts.items() if k.lower() == "wapcomputer1")
        entry.update(operationTimeout=30, readTimeout=40)
        project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        plan = project.run("preview", "--diff", check=True).output
        rows = re.findall(r"~ pulumi-python:dynamic/wapconnector:(\w+): \(update\)", plan)
        # The endpoint check follows in a preview only: it takes the certificate's thumbprint, an output the
        # engine does not know before the certificate's update ran (it is unchanged, and `up` leaves the check).
        assert sorted(set(rows) - {"EndpointCheck"}) == ["Certificate", "ConnectorBundle", "ConnectorSite",
                                                         "TenantApiTrust", "TenantApiUpdate"], plan
        assert len(re.findall(r"\+ operation_timeout\s*: 30", plan)) == 5, plan
        assert len(re.findall(r"\+ read_timeout\s*: 40", plan)) == 5, plan
        assert "password" in plan and "[secret]" in plan
        assert not any(p in plan for p in passwords)
        up = project.up().output
        assert "5 updated" in up, up

        # Drift: multi-cloud mode switched off out of band. The refresh names that, not the inputs it cannot see.
        lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")
        refresh = project.run("refresh", "--preview-only", "--diff", check=True).output
        assert re.search(r"~ multi_cloud_enabled\s*: true => false", refresh), refresh
        assert not re.search(r"- (clouds|azure_stack_cloud_name)\s*:", refresh), refresh
        assert not any(p in refresh for p in passwords)
