"""Drift on the real engine: an administrator changes a deployed lab out of band (over PSRP, like
`labsim exec`); `pulumi preview --refresh --json` names exactly what drifted, `pulumi up --refresh` heals it on
the host, and the next `preview --refresh --expect-no-changes` is clean.

All five cases share ONE deployed lab (module fixture), in file order; each ends clean, which is the next one's
starting point.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labsim.hosts.wapconnector import CONNECTOR_PRODUCTS
from tests.e2e.lab_stack import LabStack, lab_stack

pytestmark = pytest.mark.e2e

BUNDLE = r"C:\temp\WAPConnector"
STORE = "Data Source=wapcomputer1;Initial Catalog=Microsoft.MgmtSvc.Store;Integrated Security=True"
TRUST_ROW = ("Microsoft.MgmtSvc.Store", "TenantAPI", "Authentication.IdentityProvider.Secondary")
SITE1 = "lab-AzurePack_1-wapcomputer1-connector-site"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabStack]:
    with lab_stack(tmp_path_factory.mktemp("drift")) as lab:
        lab.project.up()
        lab.assert_clean()
        yield lab


def heal(lab: LabStack) -> list[dict]:
    """`pulumi up --refresh`, then the lab must be clean; returns the commands the heal ran on the hosts."""
    mark = lab.last_invocation_id()
    up = lab.project.up("--refresh")
    assert "error" not in up.output.lower(), up.output
    ran = lab.invocations(after=mark)
    lab.assert_clean()
    return ran


def changes(ran: list[dict]) -> set[tuple[str, str]]:
    """(host, command leaf) of the commands that change a host (scripts, imports, the PEP cmdlet, SQL writes)."""
    writers = ("Install-Connector.ps1", "Configure-Certificates.ps1", "Configure-WapConnector.ps1",
               "Update-TenantAPI.ps1", "Configure-TrustAzureStack.ps1", "Import-PfxCertificate", "Import-Certificate",
               "Add-AzurePackConnector", "Set-MgmtSvcDatabaseSetting", "Start-Process", "Start-Website")
    return {(i["host"], i["command"].rsplit("\\", 1)[-1]) for i in ran
            if i["command"].rsplit("\\", 1)[-1] in writers}


def connector_binding(lab: LabStack, host: str) -> str | None:
    site = lab.snapshot(host)["sites"].get("mgmtsvc-connector")
    if site is None:
        return None
    return next(b["certificateHash"] for b in site["bindings"] if b["protocol"] == "https")


def test_a_connector_site_uninstalled_is_named_alone_and_reinstalled(lab: LabStack) -> None:
    thumb = lab.outputs()["clouds"]["AzurePack_1"]["thumbprint"]
    assert connector_binding(lab, "wapcomputer1") == thumb
    _site, _port, _msi, code, _display = CONNECTOR_PRODUCTS[0]
    lab.admin("wapcomputer1", "Start-Process", "Wait", "PassThru", FilePath="msiexec.exe",
              ArgumentList=["/x", code, "/qn", "/norestart"])
    assert connector_binding(lab, "wapcomputer1") is None

    # Only the site drifted. Its EndpointCheck expects the certificate the stack installed (known in the preview),
    # so the site's update does not drag it in; nothing on wapcomputer2 or the Azure Stack side moves. The plan
    # names what drifted (the sites and packages it read, and the FQDNs its configuration held), not the
    # connection, which did not change.
    assert lab.planned_fields() == {SITE1: ("update", ["azure_stack_portal_fqdn", "packages", "sites",
                                                       "tenant_api_fqdn", "tenant_portal_fqdn"])}

    ran = heal(lab)
    assert ("wapcomputer1", "Install-Connector.ps1") in changes(ran)
    assert {h for h, _ in changes(ran)} == {"wapcomputer1"}, changes(ran)
    assert connector_binding(lab, "wapcomputer1") == thumb


def test_b_other_certificate_bound_is_named_alone_and_rebound(lab: LabStack) -> None:
    thumb = lab.outputs()["clouds"]["AzurePack_1"]["thumbprint"]
    other = next(iter(lab.snapshot("wapcomputer1", baseline=True)["certs"]["My"]))  # the WAP host certificate
    assert other != thumb
    lab.admin("wapcomputer1", rf"{BUNDLE}\Setup\Scripts\Configure-Certificates.ps1", Thumbprint=other)
    assert connector_binding(lab, "wapcomputer1") == other

    assert lab.planned_fields() == {SITE1: ("update", ["certificate_thumbprint"])}

    ran = heal(lab)
    # Only the binding is redone: no reinstall, no FQDN step.
    assert changes(ran) == {("wapcomputer1", "Configure-Certificates.ps1")}, changes(ran)
    assert connector_binding(lab, "wapcomputer1") == thumb


def test_c_trust_row_deleted_is_named_alone_and_rewritten(lab: LabStack) -> None:
    db, ns, name = TRUST_ROW
    before = lab.snapshot("wapcomputer1")["sql"][db][ns][name]
    lab.admin("wapcomputer1", "Set-MgmtSvcDatabaseSetting", "Force", ConnectionString=STORE, Namespace=ns,
              Name=name, Value="")
    assert name not in lab.snapshot("wapcomputer1")["sql"][db][ns]

    assert lab.planned() == {"lab-AzurePack_1-trust": "update"}

    ran = heal(lab)
    assert changes(ran) == {("wapcomputer1", "Configure-TrustAzureStack.ps1")}, changes(ran)
    assert json.loads(lab.snapshot("wapcomputer1")["sql"][db][ns][name]) == json.loads(before)


def test_d_ca_removed_from_user_portal_is_read_as_gone_and_recreated(lab: LabStack) -> None:
    ca = lab.outputs()["caThumbprint"]
    assert ca in lab.snapshot("AzS-WASP01")["certs"]["CA"]
    lab.admin("AzS-WASP01", "Remove-Item", Path=rf"Cert:\LocalMachine\CA\{ca}")
    assert ca not in lab.snapshot("AzS-WASP01")["certs"]["CA"]

    # A certificate that is no longer in the store reads as gone: the plan creates it again.
    assert lab.planned() == {"lab-user-portal-ca": "create"}

    ran = heal(lab)
    assert changes(ran) == {("AzS-WASP01", "Import-Certificate")}, changes(ran)
    assert ca in lab.snapshot("AzS-WASP01")["certs"]["CA"]


def test_e_multi_cloud_disabled_is_named_with_the_trusts_fed_by_its_output_files(lab: LabStack) -> None:
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")
    assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is False

    # Only the AzurePackConnector drifted. Each TenantApiTrust's data_file_name/data_file_content are inputs taken
    # from the connector's cloud_outputs (the output files, whose names carry the PEP's timestamp): a resource
    # being updated has unknown outputs in a preview, so the engine must plan the trusts as possibly changing;
    # a new file name is applied in place (docs/resources/tenant-api.md). That is the dependency doing its job,
    # not the trusts drifting: they are planned from an unknown input, nothing else is.
    assert lab.planned() == {"lab-multi-cloud": "update", "lab-AzurePack_1-trust": "update",
                             "lab-AzurePack_2-trust": "update"}

    ran = heal(lab)
    assert ("AzS-ERCS01", "Add-AzurePackConnector") in changes(ran)
    pep = lab.snapshot("AzS-ERCS01")["pep"]
    assert pep["multicloud"] is True
    assert sorted(c["CloudName"] for c in pep["clouds"]) == ["AzurePack_1", "AzurePack_2"]
    assert lab.outputs()["azureStack"]["multiCloudEnabled"] is True
    # The trust rows were rewritten in place (never emptied), hold the PEP's realm, and only the new data files
    # are staged.
    assert not [c for c in changes(ran) if c[1] == "Set-MgmtSvcDatabaseSetting"], changes(ran)
    db, ns, name = TRUST_ROW
    for host in ("wapcomputer1", "wapcomputer2"):
        snap = lab.snapshot(host)
        assert json.loads(snap["sql"][db][ns][name])["Realm"] == pep["realm"]
        staged = [p for p, f in snap["files"].items()
                  if not f.get("dir") and p.rsplit("\\", 1)[-1].startswith("AzurePack-")]
        assert len(staged) == 1, staged
