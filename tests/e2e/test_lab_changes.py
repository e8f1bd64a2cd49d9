"""A changed input on the real engine: a new Azure Stack portal FQDN in the stack config plans an update
of exactly the resources whose inputs use it (the ConnectorSites), `pulumi up` applies it on the hosts, and the
stack is clean afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsim.hosts.wapconnector import CONNECTOR_SITES
from tests.e2e.lab_stack import LabStack, lab_stack

pytestmark = pytest.mark.e2e

NEW_PORTAL = "portal.east.azurestack.example"
SITES = {"lab-AzurePack_1-wapcomputer1-connector-site", "lab-AzurePack_2-wapcomputer2-connector-site"}


def portal_settings(lab: LabStack, host: str) -> set[str]:
    sites = lab.snapshot(host)["sites"]
    return {sites[s.lower()]["appSettings"]["AzureStackPortalFQDN"] for s in CONNECTOR_SITES}


def test_new_azure_stack_portal_fqdn_updates_only_the_connector_sites(tmp_path: Path) -> None:
    with lab_stack(tmp_path) as lab:
        lab.project.up()
        old = lab.outputs()["azureStack"]["portalFqdn"]
        assert old != NEW_PORTAL
        for host in ("wapcomputer1", "wapcomputer2"):
            assert portal_settings(lab, host) == {old}

        lab.project.run("config", "set", "--path", "wapconnector:azureStack.portalFqdn", NEW_PORTAL, check=True)
        # Without and with a refresh: the plan is the input change, nothing else (the stack's own output
        # azureStack.portalFqdn changes too, but the stack is not a resource of the lab).
        assert lab.planned(refresh=False) == {s: "update" for s in SITES}
        assert lab.planned() == {s: "update" for s in SITES}

        mark = lab.last_invocation_id()
        up = lab.project.up()
        assert "2 updated" in up.output, up.output
        scripts = {(i["host"], i["command"].rsplit("\\", 1)[-1]) for i in lab.invocations(after=mark)
                   if i["command"].endswith(".ps1")}
        # Only the FQDN step runs, once per tenant portal VM: no reinstall, no certificate rebinding.
        assert scripts == {("wapcomputer1", "Configure-WapConnector.ps1"),
                           ("wapcomputer2", "Configure-WapConnector.ps1")}, scripts
        for host in ("wapcomputer1", "wapcomputer2"):
            assert portal_settings(lab, host) == {NEW_PORTAL}
        assert lab.outputs()["azureStack"]["portalFqdn"] == NEW_PORTAL
        lab.assert_clean()
