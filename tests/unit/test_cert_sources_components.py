"""The connector certificate sources wired into the Lab under Pulumi's mocks: which Certificate each cloud's
tenant portal VMs get, which CAs AzS-WASP01 trusts (each distinct issuer once), what the endpoint check trusts,
and that the PFX and its password stay secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import StackConfig, parse_stack_config
from tests.cert_factory import Issued, org_ca, web_server_cert
from tests.unit.test_components import RecordingMonitor, deploy, registered, sim_config_values

pytestmark = pytest.mark.unit

PASSWORD = "Unit-Pfx-Pass-1"
ROOT = org_ca("Contoso Root CA")
ISSUING = org_ca("Contoso Issuing CA", parent=ROOT)


def config_with(tmp_path: Path, sources: list[dict | None]) -> StackConfig:
    """The seed lab's config with one connectorCertificate per cloud (None: the default lab CA)."""
    raw = sim_config_values()
    for cloud, cc in zip(raw["clouds"], sources, strict=True):
        if cc is not None:
            cloud["connectorCertificate"] = cc
    return parse_stack_config(raw, project_dir=tmp_path)


def pfx_source(tmp_path: Path, fqdn: str) -> tuple[Issued, dict[str, str]]:
    leaf = web_server_cert(ISSUING, (fqdn,))
    (tmp_path / f"{fqdn}.pfx").write_bytes(leaf.pfx(PASSWORD))
    (tmp_path / "issuing.cer").write_bytes(ISSUING.der)
    return leaf, {"source": "pfx", "pfxFile": f"{fqdn}.pfx", "pfxPassword": PASSWORD, "issuingCaFile": "issuing.cer"}


def test_pfx_and_store_clouds_share_their_issuer_on_wasp_and_make_no_lab_ca(monitor: RecordingMonitor, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from components.lab import Lab

    monkeypatch.chdir(tmp_path)  # relative files are the project directory's: the program runs there
    leaf1, pfx = pfx_source(tmp_path, "wapcomputer1.contoso.com")
    leaf2 = web_server_cert(ISSUING, ("wapcomputer2.contoso.com",))
    store = {"source": "store", "thumbprint": leaf2.thumbprint, "issuingCaFile": "issuing.cer"}
    config = config_with(tmp_path, [pfx, store])
    deploy(lambda: Lab("lab", config))
    regs = registered(monitor)

    assert "lab-ca" not in regs and not any(n.endswith("-connector") for n in regs)  # no lab PKI at all
    portal = [n for n in regs if n.startswith("lab-user-portal-ca")]
    assert portal == [f"lab-user-portal-ca-{ISSUING.thumbprint.lower()}"]  # one issuer, once
    assert regs[portal[0]].inputs["cert_pem"] == ISSUING.pem and regs[portal[0]].inputs["store"] == "CA"

    imported = regs["lab-AzurePack_1-wapcomputer1-connector-cert"]
    assert imported.inputs["cert_pem"] == leaf1.pem and "existing" not in imported.inputs
    assert imported.inputs["issuer_pem"] == ISSUING.pem  # its check runs the connector's rules against its CA
    assert imported.is_secret("pfx_base64") and imported.is_secret("pfx_password")
    assert imported.inputs["pfx_password"] == PASSWORD and imported.inputs["owner"] == "wapconnector/unit"

    verified = regs["lab-AzurePack_2-wapcomputer2-connector-cert"]
    assert verified.inputs["existing"] is True and verified.inputs["thumbprint"] == leaf2.thumbprint
    assert verified.inputs["issuer_pem"] == ISSUING.pem
    # The operator's certificate: nothing to import, and no owner (no marker is written for it).
    for absent in ("cert_pem", "pfx_base64", "pfx_password", "owner"):
        assert verified.inputs.get(absent) is None, absent

    for cloud, host in (("AzurePack_1", "wapcomputer1"), ("AzurePack_2", "wapcomputer2")):
        check = regs[f"lab-{cloud}-{host}-endpoint-check"]
        assert check.inputs["ca_pem"] == ISSUING.pem  # the endpoint is trusted through the operator's CA
    # Nothing carries the PFX password in clear.
    for r in regs.values():
        for prop, value in r.raw.items():
            if not r.is_secret(prop):
                assert PASSWORD not in str(value), (r.name, prop)


def test_a_lab_ca_cloud_and_a_pfx_cloud_give_wasp_both_cas(monitor: RecordingMonitor, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from components.lab import Lab

    monkeypatch.chdir(tmp_path)
    _, pfx = pfx_source(tmp_path, "wapcomputer2.contoso.com")
    config = config_with(tmp_path, [None, pfx])
    deploy(lambda: Lab("lab", config))
    regs = registered(monitor)
    assert {n for n in regs if n.startswith("lab-user-portal-ca")} == {
        "lab-user-portal-ca", f"lab-user-portal-ca-{ISSUING.thumbprint.lower()}"}
    assert regs["lab-user-portal-ca"].inputs["cert_pem"] == "CA-PEM"  # the lab CA keeps its resource name
    assert "lab-ca" in regs and "lab-AzurePack_1-connector" in regs and "lab-AzurePack_2-connector" not in regs
    assert regs["lab-AzurePack_1-wapcomputer1-endpoint-check"].inputs["ca_pem"] == "CA-PEM"
    # The lab CA's certificate keeps exactly the inputs it always had (no diff for existing stacks).
    assert "issuer_pem" not in regs["lab-AzurePack_1-wapcomputer1-connector-cert"].inputs
    assert regs["lab-AzurePack_2-wapcomputer2-connector-cert"].inputs["issuer_pem"] == ISSUING.pem
    assert regs["lab-AzurePack_2-wapcomputer2-endpoint-check"].inputs["ca_pem"] == ISSUING.pem
