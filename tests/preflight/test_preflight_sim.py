"""Preflight against labsim over real WinRM/PSRP: every check on a healthy lab, and each problem on its own while
the other hosts are still checked. The invocation log shows that only reads reached the hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, PASS, READ_COMMANDS, Report, Row, run_preflight
from labsim.lab import load_lab
from labsim.runtime import Fault
from tests.cert_factory import Issued
from tests.lab_state import lab_state
from tests.preflight.helpers import config_for, lab_data, served

pytestmark = pytest.mark.sim

READ_ONLY = {c.lower() for c in READ_COMMANDS}


def fails(report: Report) -> list[tuple[str, str]]:
    return [(r.host, r.check) for r in report.rows if r.status == FAIL]


def row(report: Report, host: str, check: str) -> Row:
    return next(r for r in report.rows if r.host == host and r.check == check)


def test_healthy_lab_passes_and_only_reads_reach_the_hosts(tmp_path: Path) -> None:
    with served(tmp_path, lab_data()) as (server, lab):
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim"), project_dir=tmp_path)
        assert report.ok, report.table()
        sent = lab_state(server).invocations()
        assert {i["command"].lower() for i in sent} <= READ_ONLY
        assert {i["host"] for i in sent} == {h.name for h in lab.hosts}
        assert row(report, "AzS-ERCS01", "PrivilegedEndpoint").status == PASS
        # Each host's Windows, read from its registry in its one pipeline: the seed's WAP computers run 2012 R2.
        wap = row(report, "wapcomputer1", "Windows / PowerShell")
        assert (wap.status, wap.result) == (PASS, "Windows Server 2012 R2 Datacenter (build 9600), Windows "
                                                  "PowerShell 4.0")
        assert row(report, "AzS-WASP01", "Windows / PowerShell").result == \
            "Windows Server 2016 Datacenter (build 14393), Windows PowerShell 5.1.14393.0"


def test_tls_name_mismatch_says_which_name_was_checked_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    def wrong_name(raw: dict[str, Any]) -> None:
        raw["hosts"]["wapcomputer1"]["tlsServerName"] = "not-this-host.contoso.com"

    with served(tmp_path, lab_data()) as (server, lab):
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim", edit=wrong_name), project_dir=tmp_path)
        assert fails(report) == [("wapcomputer1", "TLS")]
        tls = row(report, "wapcomputer1", "TLS")
        assert "checked as not-this-host.contoso.com" in tls.result and "tlsServerName" in tls.todo
        assert row(report, "wapcomputer2", "URL Rewrite").status == PASS


def test_a_down_host_fails_reach_and_the_user_portal_cannot_ping_it(tmp_path: Path) -> None:
    with served(tmp_path, lab_data()) as (server, lab):
        lab_state(server).set_fault(Fault(host="wapcomputer2", kind="down"))
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim"), project_dir=tmp_path)
        assert fails(report) == [("AzS-WASP01", "reaches wapcomputer2"), ("wapcomputer2", "reachable")]
        assert row(report, "wapcomputer1", "sysadmin (AzurePack_1)").status == PASS


def test_sql_credential_is_what_is_checked_and_the_server_is_discovered(tmp_path: Path) -> None:
    data = lab_data(load_lab("labsim/labs/three-clouds.yaml"))
    sql = next(h for h in data["hosts"] if h["name"] == "wap1-sql")
    sql["users"].append({"name": "trustops", "password": "LabOnly-Trust-1!", "sql_sysadmin": False})

    def use_login(raw: dict[str, Any]) -> None:
        raw["credentials"]["trust"] = {"username": "trustops", "password": "LabOnly-Trust-1!"}
        raw["credentials"]["wrong"] = {"username": "trustops", "password": "not-the-password"}
        raw["clouds"][0]["sqlCredential"] = "trust"
        raw["clouds"][1]["sqlCredential"] = "wrong"
        raw["clouds"][2].pop("sqlServer")  # found through the Tenant API's ManagementStore setting

    with served(tmp_path, data) as (server, lab):
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim", edit=use_login), project_dir=tmp_path)
        assert fails(report) == [("wap1-api1", "sysadmin (WapCloud1)"), ("wap2-api1", "sysadmin (WapCloud2)")], \
            report.table()
        assert "trustops is not sysadmin on wap1-sql" in row(report, "wap1-api1", "sysadmin (WapCloud1)").result
        assert "Login failed for user 'trustops'" in row(report, "wap2-api1", "sysadmin (WapCloud2)").result
        assert "is sysadmin on wap3-sql" in row(report, "wap3-api1", "sysadmin (WapCloud3)").result
        assert "not-the-password" not in report.table() and "LabOnly-Trust-1!" not in report.table()
        logged = [i for i in lab_state(server).invocations() if i["command"] == "Invoke-Sqlcmd"]
        assert logged and "LabOnly-Trust-1!" not in str(logged)


def test_store_source_certificate_is_read_on_each_portal_vm(tmp_path: Path) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from providers.transport import Command, HostConnection, PsrpTransport, Secret
    from tests.cert_factory import org_ca, web_server_cert

    ca = org_ca("Fabrikam Root CA")
    (tmp_path / "ca.pem").write_text(ca.pem)
    with served(tmp_path, lab_data()) as (server, lab):
        host = lab.host("wapcomputer2")
        fqdn = host.fqdn

        def place(cert: Issued) -> None:  # what the administrator did before the stack existed
            address, port = server.endpoint(host.name)
            conn = HostConnection(fqdn=fqdn, address=address, port=port, ca_file=str(server.ca_file), auth="ntlm",
                                  username=host.users[0].name, password=host.users[0].password)
            staged = f"C:\\Windows\\Temp\\{cert.thumbprint}.pfx"
            PsrpTransport().run(conn, "admin", [
                Command("Set-Content", {"Path": staged, "Value": cert.pfx("Admin-1"), "Encoding": "Byte"}),
                Command("Import-PfxCertificate", {"FilePath": staged, "CertStoreLocation": "Cert:\\LocalMachine\\My",
                                                  "Password": Secret("Admin-1")})])

        def preflight_with(thumbprint: str) -> Report:
            def store(raw: dict[str, Any]) -> None:
                raw["clouds"][1]["connectorCertificate"] = {"source": "store", "thumbprint": thumbprint,
                                                            "issuingCaFile": str(tmp_path / "ca.pem")}
            return run_preflight(config_for(lab, tmp_path, tmp_path / "labsim", edit=store), project_dir=tmp_path)

        good = web_server_cert(ca, (fqdn,))
        report = preflight_with(good.thumbprint)  # not imported yet
        assert fails(report) == [("wapcomputer2", "connector certificate")]
        assert "is not in Cert:\\LocalMachine\\My" in row(report, "wapcomputer2", "connector certificate").result
        assert row(report, "(this machine)", "connector certificate (AzurePack_2)").status == PASS

        place(good)
        report = preflight_with(good.thumbprint)
        assert report.ok, report.table()
        assert "chain trusted" in row(report, "wapcomputer2", "connector certificate").result

        unfit = web_server_cert(ca, ("other.contoso.com",), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        place(unfit)
        result = row(preflight_with(unfit.thumbprint), "wapcomputer2", "connector certificate")
        assert result.status == FAIL and f"do not include {fqdn}" in result.result
        assert "not for server authentication" in result.result
