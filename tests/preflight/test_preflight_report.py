"""The report an operator reads: every check preflight makes of a healthy lab, in order, and how the table and its
summary line show them."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.preflight import FAIL, PASS, SKIP, WARN, Report, Row, render
from tests.preflight.fake_lab import healthy, stack

pytestmark = pytest.mark.unit

UR = "(UR9.1 or later, UR9.1 = 3.50.48.0 [inferred])"
SPF = ("SPF Update Rollup", SKIP, "SPF is not installed here; check UR9 or later on the SPF server by hand")
VMM = ("VMM Update Rollup", SKIP, "VMM is not installed here; check UR9 or later on the VMM server by hand")


def connected(host: str, auth: str = "negotiate", check: str = "authentication") -> list[tuple[str, str, str]]:
    return [("reachable", PASS, f"WinRM answered on {host}.contoso.com:5986"),
            ("TLS", PASS, f"certificate trusted for {host}.contoso.com (system CAs)"),
            (check, PASS, f"CONTOSO\\admin accepted ({auth})")]


def wap_computer(host: str, package: str, sites: str) -> list[tuple[str, str, str]]:
    return [*connected(host),
            ("Windows / PowerShell", PASS, "Windows Server 2012 R2 Datacenter (build 9600), Windows PowerShell 4.0"),
            ("room for the bundle", PASS, "51200 MiB free on C:, 200 MiB needed"),
            ("WAP Update Rollup", PASS, f"lowest: Windows Azure Pack - {package} - 2013 3.50.48.0 {UR}"),
            SPF, VMM, ("WAP sites", PASS, sites)]


def tenant_portal(host: str) -> list[tuple[str, str, str]]:
    return [*wap_computer(host, "Tenant Site", "MgmtSvc-TenantSite Started, MgmtSvc-AuthSite Started"),
            ("URL Rewrite", PASS, "installed (version 7.2.1952)"),
            ("connector certificate", PASS,
             "issued by the stack's lab CA for tenant.contoso.com (server auth, with key) at deploy")]


AZURE_STACK_WINDOWS = ("Windows / PowerShell", PASS,
                       "Windows Server 2016 Datacenter (build 14393), Windows PowerShell 5.1.14393.0")

HEALTHY = {
    "(this machine)": [("bundle", PASS, "bundle: 3 KiB")],
    "pep": [*connected("pep", "credssp", "authentication (CredSSP)"),
            ("Windows / PowerShell", SKIP, "not readable through the PrivilegedEndpoint session (Azure Stack runs "
                                           "it on Windows Server 2016 / PowerShell 5.1)"),
            ("PrivilegedEndpoint", PASS, "session opened; Add-AzurePackConnector available")],
    "wasp": [*connected("wasp"), AZURE_STACK_WINDOWS,
             ("reaches portal1", PASS, "ping portal1.contoso.com answered"),
             ("reaches portal2", PASS, "ping portal2.contoso.com answered")],
    "host": [*connected("host"), AZURE_STACK_WINDOWS,
             ("infrastructure share", PASS, "\\\\su1fileserver\\SU1_Infrastructure_1 visible")],
    "portal1": tenant_portal("portal1"),
    "portal2": tenant_portal("portal2"),
    "api1": [*wap_computer("api1", "Tenant API", "MgmtSvc-TenantAPI Started"),
             ("ManagementStore", PASS, "TenantAPI ManagementStore names SQL server sql01.contoso.com"),
             ("sysadmin (C1)", PASS, "CONTOSO\\admin is sysadmin on sql01")],
}


def test_a_healthy_lab_gets_every_check_of_every_host_in_order_and_nothing_to_do(tmp_path: Path) -> None:
    report = healthy(stack(sqlServer="sql01")).run(tmp_path)
    assert [(r.host, r.check, r.status, r.result) for r in report.rows] == [
        (host, *check) for host, checks in HEALTHY.items() for check in checks]
    assert all(r.todo == "" for r in report.rows)
    assert report.ok and report.failures == []
    assert report.summary().startswith("preflight: 50 checks on 7 host(s), 0 failed (0 host(s)), ")
    assert report.summary().endswith(" s")


def test_the_summary_counts_checks_hosts_and_the_hosts_that_failed() -> None:
    rows = [Row("a", "reachable", PASS, "ok"), Row("a", "TLS", FAIL, "bad", "fix"), Row("b", "TLS", FAIL, "bad"),
            Row("b", "x", FAIL, "bad"), Row("c", "y", WARN, "hm"), Row("d", "z", SKIP, "not run")]
    report = Report(rows, seconds=2.25)
    assert report.failures == [rows[1], rows[2], rows[3]] and not report.ok
    assert report.summary() == "preflight: 6 checks on 4 host(s), 3 failed (2 host(s)), 2.2 s"
    assert Report([Row("a", "reachable", WARN, "slow")]).ok  # a warning never fails the run


def test_the_table_aligns_host_and_check_and_points_to_what_to_do() -> None:
    rows = [Row("portal1", "TLS", FAIL, "not trusted", "give the CA"), Row("AzS-WASP01", "reaches portal1", PASS, "ok")]
    assert render(rows).splitlines() == [
        "HOST        CHECK            RESULT  -> WHAT TO DO",
        "portal1     TLS              FAIL not trusted  -> give the CA",
        "AzS-WASP01  reaches portal1  PASS ok",
    ]
    assert Report(rows).table() == render(rows)
