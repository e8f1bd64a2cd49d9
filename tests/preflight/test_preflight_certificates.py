"""The connector certificate on each tenant portal VM, by where it comes from, and AzS-WASP01's TCP test of an
installed connector's port. The operator's own certificate (store) cannot be healed by the stack: every problem
fails. The stack's own (lab CA) can: what is wrong with the bound one is drift `up` heals, a warning."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.preflight import FAIL, PASS, STEP, WARN, Report
from providers.errors import HostUnreachable, StepTimedOut
from tests.cert_factory import org_ca, web_server_cert
from tests.preflight.fake_lab import CA, TENANT, FakeLab, certificate, healthy, row, second_cloud, stack

pytestmark = pytest.mark.unit

THUMB = "AB" * 20
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
HEALED = "`up` re-installs, trusts and rebinds the stack's certificate"
RENEW = ("renew or reissue it (CA-issued, SAN tenant.contoso.com, server authentication, with its private key, "
         "chain in Root/CA)")


def said(report: Report, host: str, check: str = "connector certificate") -> tuple[str, str, str]:
    r = row(report, host, check)
    return r.status, r.result, r.todo


# -- the operator's certificate, already in the VMs' store -------------------------------------------------------
def store_lab(tmp_path: Path, thumbprint: str = THUMB) -> FakeLab:
    (tmp_path / "issuing-ca.pem").write_text(org_ca("Contoso Issuing CA").pem)
    lab = healthy(stack(sqlServer="sql01", connectorCertificate={
        "source": "store", "thumbprint": thumbprint, "issuingCaFile": str(tmp_path / "issuing-ca.pem")}))
    for p in ("portal1", "portal2"):
        lab.hosts[p].my = [certificate()]
        lab.hosts[p].ca = [CA]
    return lab


def test_a_fit_operator_certificate_in_the_store_passes(tmp_path: Path) -> None:
    lab = store_lab(tmp_path, THUMB.lower())
    lab.hosts["portal2"].my = [certificate(Thumbprint=THUMB.lower())]  # as the store spells it
    report = lab.run(tmp_path)
    fit = (PASS, f"store {THUMB}, expires 2027-01-01, names {TENANT}, server auth, key present, chain trusted", "")
    assert said(report, "portal1") == fit
    assert said(report, "portal2")[:2] == (PASS, f"store {THUMB.lower()}, expires 2027-01-01, names {TENANT}, server "
                                                 f"auth, key present, chain trusted")


def test_an_operator_certificate_missing_from_a_vm_fails_there(tmp_path: Path) -> None:
    lab = store_lab(tmp_path)
    lab.hosts["portal2"].my = [certificate(Thumbprint="CD" * 20)]
    assert said(lab.run(tmp_path), "portal2") == (
        FAIL, f"{THUMB} is not in Cert:\\LocalMachine\\My",
        "import your organization's certificate (with its private key) into LocalMachine\\My on portal2, or fix "
        "wapconnector:clouds[0].connectorCertificate.thumbprint")


@pytest.mark.parametrize(("change", "status", "problems"), [
    ({"NotAfter": dt.datetime(2026, 6, 11, tzinfo=dt.UTC)}, WARN, "expires in 10 day(s)"),
    ({"NotAfter": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)}, FAIL, "expired on 2026-05-01"),
    ({"HasPrivateKey": False}, FAIL, "no private key on this host"),
    ({"Issuer": "CN=Fabrikam CA"}, FAIL, "its issuer 'CN=Fabrikam CA' is not in the host's Root or CA store: import "
                                         "the issuing CA chain"),
    ({"NotBefore": dt.datetime(2026, 7, 1, tzinfo=dt.UTC)}, FAIL, "not valid before 2026-07-01"),
    ({"Issuer": f"CN={TENANT}"}, FAIL, "self-signed (Configure-Certificates.ps1 refuses it): use a certificate "
                                       "issued by a CA"),
    ({"DnsNameList": ["www.contoso.com"]}, FAIL, f"its names (www.contoso.com) do not include {TENANT}"),
    ({"EnhancedKeyUsageList": ["Client Authentication (1.3.6.1.5.5.7.3.2)"]}, FAIL,
     "not for server authentication (its usages: Client Authentication (1.3.6.1.5.5.7.3.2))"),
    ({"HasPrivateKey": False, "NotAfter": dt.datetime(2026, 6, 11, tzinfo=dt.UTC)}, FAIL,
     "no private key on this host"),  # expiring soon is said only of an otherwise fit certificate
])
def test_every_problem_of_an_operator_certificate_fails_but_an_approaching_expiry_warns(
        tmp_path: Path, change: dict[str, Any], status: str, problems: str) -> None:
    lab = store_lab(tmp_path)
    lab.hosts["portal1"].my = [certificate(**change)]
    expires = change["NotAfter"].date() if "NotAfter" in change else "2027-01-01"
    assert said(lab.run(tmp_path), "portal1") == (status, f"store {THUMB}, expires {expires}: {problems}", RENEW)


def test_an_operator_certificate_is_checked_on_this_machine_too(tmp_path: Path) -> None:
    lab = store_lab(tmp_path)
    report = lab.run(tmp_path)
    local = row(report, "(this machine)", "connector certificate (C1)")
    issuing_ca = x509.load_pem_x509_certificate((tmp_path / "issuing-ca.pem").read_bytes())
    issuing_thumbprint = issuing_ca.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' thumbprint
    assert (local.status, local.result, local.todo) == (
        PASS, f"store {THUMB}, issuing CA {issuing_thumbprint} (the certificate itself is checked on each tenant "
              f"portal VM)", "")
    (tmp_path / "issuing-ca.pem").write_text("not a certificate")
    local = row(lab.run(tmp_path), "(this machine)", "connector certificate (C1)")
    assert (local.status, local.todo) == (FAIL, "fix wapconnector:clouds[0].connectorCertificate")
    assert local.result.startswith("wapconnector:clouds[0].connectorCertificate.issuingCaFile: ")


def test_an_operator_pfx_is_checked_on_this_machine_and_imported_at_deploy(tmp_path: Path) -> None:
    ca = org_ca("Contoso Issuing CA")
    leaf = web_server_cert(ca, (TENANT,))
    (tmp_path / "issuing-ca.pem").write_text(ca.pem)
    (tmp_path / "connector.pfx").write_bytes(leaf.pfx("Pfx-1"))
    cert = {"source": "pfx", "pfxFile": str(tmp_path / "connector.pfx"), "pfxPassword": "Pfx-1",
            "issuingCaFile": str(tmp_path / "issuing-ca.pem")}
    lab = healthy(stack(sqlServer="sql01", connectorCertificate=cert))
    report = lab.run(tmp_path, now=None)
    expires = leaf.cert.not_valid_after_utc.date().isoformat()
    assert said(report, "(this machine)", "connector certificate (C1)") == (
        PASS, f"PFX {leaf.thumbprint}, expires {expires}: chain to the issuing CA, names {TENANT}, server auth, key",
        "")
    assert said(report, "portal1") == (
        PASS, f"the operator's PFX for {TENANT} is imported and bound at deploy (checked on this machine)", "")
    unfit = web_server_cert(ca, ("other.contoso.com",), eku=(CLIENT_AUTH,))
    (tmp_path / "connector.pfx").write_bytes(unfit.pfx("Pfx-1"))
    local = row(lab.run(tmp_path, now=None), "(this machine)", "connector certificate (C1)")
    each = local.result.split("; ")  # every problem, each naming the setting to fix
    assert local.status == FAIL and len(each) == 2, local.result
    assert all(p.startswith("wapconnector:clouds[0].connectorCertificate.pfxFile: ") for p in each)
    assert "Pfx-1" not in local.result


# -- the stack's own certificate (lab CA) ------------------------------------------------------------------------
def installed(lab: FakeLab, *portals: str, **change: Any) -> None:
    """The connector installed on these VMs: its site started, the stack's certificate bound and trusted."""
    for p in portals:
        lab.hosts[p].sites["MgmtSvc-Connector"] = "Started"
        lab.hosts[p].binding = THUMB
        lab.hosts[p].my = [certificate(**change)]
        lab.hosts[p].root = [CA]
        lab.hosts["wasp"].open_ports.add((f"{p}.contoso.com", 40005))


def test_the_bound_certificate_of_an_installed_connector_and_its_port(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    lab.hosts["portal2"].binding = THUMB.lower()  # IIS may show the hash in either case
    report = lab.run(tmp_path)
    assert said(report, "portal1") == (PASS, f"bound {THUMB}, expires 2027-01-01, names {TENANT}, server auth, key "
                                             f"present", "")
    assert said(report, "wasp", "reaches portal1:40005") == (PASS, "TCP portal1.contoso.com:40005 open", "")
    assert said(report, "portal2")[:2] == (PASS, f"bound {THUMB}, expires 2027-01-01, names {TENANT}, server auth, "
                                                 f"key present")
    assert report.ok
    tested = [c for c in lab.transport.calls if "Test-NetConnection" in c.names]
    assert len(tested) == 1 and tested[0].host == "wasp.contoso.com" and len(tested[0].statements) == 2
    assert tested[0].step == STEP and tested[0].idempotent  # a read, like every other


def test_drift_of_the_stacks_own_certificate_warns_and_up_heals_it(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    lab.hosts["portal1"].my = [certificate(DnsNameList=["old.contoso.com"], HasPrivateKey=False)]
    lab.hosts["portal2"].my = []
    report = lab.run(tmp_path)
    assert said(report, "portal1") == (
        WARN, f"bound {THUMB}, expires 2027-01-01: its names (old.contoso.com) do not include {TENANT}; no private key "
              f"on this host", HEALED)
    assert said(report, "portal2") == (WARN, f"bound {THUMB} is not in Cert:\\LocalMachine\\My", HEALED)
    assert report.ok


def test_the_user_portal_must_trust_the_issuer_of_the_bound_certificate(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    lab.hosts["wasp"].root = []
    lab.hosts["wasp"].ca = []
    report = lab.run(tmp_path)
    assert said(report, "portal1") == (WARN, f"bound {THUMB}, expires 2027-01-01: AzS-WASP01 does not trust its "
                                             f"issuer '{CA}'", HEALED)
    lab.hosts["wasp"].ca = [CA]  # an intermediate store counts as trust
    assert said(lab.run(tmp_path), "portal1")[0] == PASS
    lab.hosts["wasp"].ca = []
    lab.hosts["wasp"].down = HostUnreachable("wasp.contoso.com", STEP, "connection refused")
    lab.transport.calls.clear()
    report = lab.run(tmp_path)
    assert said(report, "portal1")[0] == PASS  # what AzS-WASP01 trusts is unknown, not a problem
    assert [r.check for r in report.rows if r.host == "wasp" and r.check.startswith("reaches")] == []
    assert not any("Test-NetConnection" in c.names for c in lab.transport.calls)


def test_a_self_signed_bound_certificate_is_said_once(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2", Issuer=f"CN={TENANT}")
    lab.hosts["wasp"].root = []
    status, result, _ = said(lab.run(tmp_path), "portal1")
    assert (status, result) == (WARN, f"bound {THUMB}, expires 2027-01-01: self-signed (Configure-Certificates.ps1 "
                                      f"refuses it): use a certificate issued by a CA")


def test_a_closed_port_is_the_network_when_the_site_serves_and_drift_when_it_does_not(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    lab.hosts["wasp"].open_ports.clear()
    lab.hosts["portal2"].sites["MgmtSvc-Connector"] = "Stopped"
    report = lab.run(tmp_path)
    assert said(report, "wasp", "reaches portal1:40005") == (
        FAIL, "TCP portal1.contoso.com:40005 not reachable", "open port 40005 from wasp to portal1 (firewall, routing)")
    assert said(report, "wasp", "reaches portal2:40005") == (
        WARN, "TCP portal2.contoso.com:40005 not reachable (the MgmtSvc-Connector site is stopped, unbound or its "
              "certificate is gone)", "`up` starts and binds MgmtSvc-Connector again")
    lab.hosts["portal2"].sites["MgmtSvc-Connector"] = "Started"
    lab.hosts["portal2"].binding = ""  # an https binding without a certificate
    assert said(lab.run(tmp_path), "wasp", "reaches portal2:40005")[0] == WARN
    lab.hosts["portal2"].binding = THUMB
    lab.hosts["portal2"].my = []  # bound, but the certificate is gone from the store: the site serves nothing
    assert said(lab.run(tmp_path), "wasp", "reaches portal2:40005") == (
        WARN, "TCP portal2.contoso.com:40005 not reachable (the MgmtSvc-Connector site is stopped, unbound or its "
              "certificate is gone)", "`up` starts and binds MgmtSvc-Connector again")


def test_a_port_test_that_cannot_run_says_why_for_each_portal(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    lab.hosts["wasp"].failing = {"Test-NetConnection": "The term 'Test-NetConnection' is not recognized."}
    report = lab.run(tmp_path)
    for p in ("portal1", "portal2"):
        assert said(report, "wasp", f"reaches {p}:40005")[:2] == (
            FAIL, f"TCP {p}.contoso.com:40005 not reachable (The term 'Test-NetConnection' is not recognized.)")
    broke = StepTimedOut("wasp.contoso.com", STEP, seconds=30, waiting_for="finish")
    lab.hosts["wasp"].failing = {"Test-NetConnection": broke}
    assert said(lab.run(tmp_path), "wasp", "reaches portal2:40005")[1] == \
        f"TCP portal2.contoso.com:40005 not reachable ({broke})"


def test_the_port_tested_is_the_clouds_connector_port(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01", connectorPort=40123))
    installed(lab, "portal1")
    lab.hosts["wasp"].open_ports = {("portal1.contoso.com", 40123)}
    report = lab.run(tmp_path)
    assert said(report, "wasp", "reaches portal1:40123") == (PASS, "TCP portal1.contoso.com:40123 open", "")
    assert [r.check for r in report.rows if r.check.startswith("reaches portal2")] == ["reaches portal2"]


def test_a_lab_ca_that_cannot_issue_what_the_cloud_asks_fails(tmp_path: Path) -> None:
    def short_ca(raw: dict[str, Any]) -> None:
        raw["ca"] = {"validityDays": 365}

    report = healthy(stack(short_ca, sqlServer="sql01")).run(tmp_path)
    assert said(report, "portal1") == (
        FAIL, "wapconnector:clouds[0].certificateValidityDays (397) exceeds the lab CA's validityDays (365)",
        "fix the cloud's certificate settings")


def test_no_port_is_tested_from_a_user_portal_whose_settings_cannot_work(tmp_path: Path) -> None:
    def missing_ca(raw: dict[str, Any]) -> None:
        raw["hosts"]["wasp"]["caFile"] = "missing-ca.pem"

    lab = healthy(stack(missing_ca, sqlServer="sql01"))
    installed(lab, "portal1", "portal2")
    report = lab.run(tmp_path)
    assert [r.check for r in report.rows if r.host == "wasp"] == ["connection settings", "role checks"]
    assert said(report, "portal1")[0] == PASS  # what AzS-WASP01 trusts is unknown, not a problem


def test_a_lab_ca_that_outlives_the_certificates_it_issues_passes_and_each_cloud_is_named(tmp_path: Path) -> None:
    def two_clouds(raw: dict[str, Any]) -> None:
        raw["ca"] = {"validityDays": 400}
        second_cloud(raw, certificateValidityDays=500, sqlServer="sql01")
        raw["clouds"][0]["certificateValidityDays"] = 400

    report = healthy(stack(two_clouds, sqlServer="sql01")).run(tmp_path)
    assert said(report, "portal1")[0] == PASS
    assert said(report, "portal3") == (
        FAIL, "wapconnector:clouds[1].certificateValidityDays (500) exceeds the lab CA's validityDays (400)",
        "fix the cloud's certificate settings")


def test_the_operators_files_are_read_from_the_project_and_judged_at_the_runs_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "issuing-ca.pem").write_text(org_ca("Contoso Issuing CA", days=3650).pem)

    def two_clouds(raw: dict[str, Any]) -> None:  # the lab CA's cloud first, the operator's second
        second_cloud(raw, sqlServer="sql01", connectorCertificate={
            "source": "store", "thumbprint": THUMB, "issuingCaFile": "issuing-ca.pem"})

    lab = healthy(stack(two_clouds, project_dir=project, sqlServer="sql01"))
    lab.hosts["portal3"].my = [certificate(DnsNameList=["tenant2.contoso.com"])]
    lab.hosts["portal3"].ca = [CA]
    monkeypatch.chdir(tmp_path)  # not the project: files are found through it all the same
    report = lab.run(project)
    assert [(r.check, r.status) for r in report.rows if r.host == "(this machine)"] == [
        ("bundle", PASS), ("connector certificate (C2)", PASS)]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3660)  # the issuing CA has ended by then
    local = row(lab.run(project, now=later), "(this machine)", "connector certificate (C2)")
    assert (local.status, local.todo) == (FAIL, "fix wapconnector:clouds[1].connectorCertificate")
    assert local.result.startswith("wapconnector:clouds[1].connectorCertificate.issuingCaFile: CA certificate ")
    assert " expired on " in local.result
