"""What each host's role asks of it, one prerequisite at a time: the row that judges it, pass or fail, the words an
operator reads and what they are told to install or fix. Every other check still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, PASS, SKIP, WARN, Report, Row, run_preflight
from tests.preflight.fake_lab import WS2016, Host, healthy, row, stack

pytestmark = pytest.mark.unit

MiB = 2**20
BUNDLE = 3 * 1024  # the fake bundle's size (fake_lab.FakeLab.run)


def judged(tmp_path: Path, host: str, check: str, change: dict[str, Any], **cloud: Any) -> Row:
    lab = healthy(stack(**{"sqlServer": "sql01", **cloud}))
    for key, value in change.items():
        setattr(lab.hosts[host], key, value)
    report = lab.run(tmp_path)
    assert [(r.host, r.check) for r in report.failures] in ([], [(host, check)]), report.table()
    return row(report, host, check)


def said(r: Row) -> tuple[str, str, str]:
    return r.status, r.result, r.todo


# -- the privileged endpoint ------------------------------------------------------------------------------------
def test_a_privileged_endpoint_without_multi_cloud_mode(tmp_path: Path) -> None:
    todo = ("this Azure Stack version's PEP no longer offers multi-cloud mode; the connector needs a version that "
            "has Add-AzurePackConnector")
    r = judged(tmp_path, "pep", "PrivilegedEndpoint", {"cmdlets": {"Get-AzureStackLog"}})
    assert said(r) == (FAIL, "session opened, but Add-AzurePackConnector is not available (not listed)", todo)
    r = judged(tmp_path, "pep", "PrivilegedEndpoint", {"failing": {"Get-Command": "The term is not recognized."}})
    assert said(r) == (FAIL, "session opened, but Add-AzurePackConnector is not available (The term is not "
                             "recognized.)", todo)


# -- the bundle's room ------------------------------------------------------------------------------------------
def test_room_for_the_bundle_is_its_size_and_a_margin_on_the_destination_drive(tmp_path: Path) -> None:
    need = BUNDLE + 200 * MiB
    enough = judged(tmp_path, "portal1", "room for the bundle", {"drives": {"C": need}})
    assert said(enough) == (PASS, "200 MiB free on C:, 200 MiB needed", "")
    short = judged(tmp_path, "portal1", "room for the bundle", {"drives": {"C": need - 1}})
    assert said(short) == (FAIL, "200 MiB free on C:, 200 MiB needed",
                           "free at least 1 MiB on C: or set wapconnector:bundle.destination to another drive")
    r = judged(tmp_path, "api1", "room for the bundle", {"drives": {"C": 100 * MiB}})
    assert r.status == FAIL and r.todo.startswith("free at least 101 MiB on C: ")


def test_the_bundle_goes_to_the_drive_its_destination_names(tmp_path: Path) -> None:
    def to_d(raw: dict[str, Any]) -> None:
        raw["bundle"]["destination"] = "d:\\Installers\\WAPConnector"

    lab = healthy(stack(to_d, sqlServer="sql01"))
    lab.hosts["portal1"].drives = {"C": 50 * 2**30, "D": 300 * MiB}
    lab.hosts["portal2"].drives = {"C": 50 * 2**30}
    report = lab.run(tmp_path)
    assert said(row(report, "portal1", "room for the bundle")) == (PASS, "300 MiB free on d:, 200 MiB needed", "")
    assert said(row(report, "portal2", "room for the bundle")) == (
        FAIL, "cannot read the free space of d: (no drive)",
        "check wapconnector:bundle.destination names a drive of the host")


def test_a_drive_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    r = judged(tmp_path, "api1", "room for the bundle", {"failing": {"Get-PSDrive": "Access is denied."}})
    assert said(r)[:2] == (FAIL, "cannot read the free space of C: (Access is denied.)")


def test_no_room_is_judged_when_the_bundle_folder_is_missing(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts["portal1"].drives = {}
    report = run_preflight(lab.config, transport=lab.transport, project_dir=tmp_path)
    assert [(r.host, r.check, r.status, r.result, r.todo) for r in report.failures] == [
        ("(this machine)", "bundle", FAIL, "bundle is not a folder",
         "extract the WAPConnector download there or fix wapconnector:bundle.sourceDir")]
    assert all(r.check != "room for the bundle" for r in report.rows)


# -- Windows and Windows PowerShell ----------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "powershell", "status"), [
    ("portal1", "4.0", PASS), ("portal1", "5.1.14409.1005", PASS), ("api1", "3.0", FAIL),
    ("wasp", "5.1.14393.0", PASS), ("wasp", "5.0.10586.117", FAIL), ("host", "4.0", FAIL),
])
def test_each_kind_of_host_needs_the_windows_powershell_its_commands_exist_in(tmp_path: Path, host: str,
                                                                             powershell: str, status: str) -> None:
    r = judged(tmp_path, host, "Windows / PowerShell", {"powershell": powershell})
    need = "4.0" if host in ("portal1", "api1") else "5.1"
    windows = "Windows Server 2012 R2 Datacenter (build 9600)" if need == "4.0" else \
        "Windows Server 2016 Datacenter (build 14393)"
    shown = f"{windows}, Windows PowerShell {powershell}"
    if status == PASS:
        assert said(r) == (PASS, shown, "")
    else:
        assert said(r) == (FAIL, f"{shown}: below {need}, which the providers' commands need",
                           f"install Windows Management Framework 5.1 (or at least PowerShell {need}) on {host}")


def test_a_powershell_version_the_registry_does_not_show_is_said_not_guessed(tmp_path: Path) -> None:
    r = judged(tmp_path, "wasp", "Windows / PowerShell", {"powershell": None})
    assert said(r) == (WARN, "Windows Server 2016 Datacenter (build 14393); PowerShell version not found at "
                             "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine (no PowerShellVersion)",
                       "check that Windows PowerShell 5.1 or later runs on wasp")
    r = judged(tmp_path, "portal2", "Windows / PowerShell", {"windows": None, "powershell": None})
    assert said(r) == (WARN, "Windows (not named in the registry); PowerShell version not found at "
                             "HKLM:\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine (no PowerShellVersion)",
                       "check that Windows PowerShell 4.0 or later runs on portal2")
    r = judged(tmp_path, "portal2", "Windows / PowerShell",
               {"failing": {"Get-ItemProperty HKLM:\\SOFTWARE\\Microsoft\\PowerShell": "Access is denied."}})
    assert r.status == WARN and r.result.endswith("PowerShellEngine (Access is denied.)")
    r = judged(tmp_path, "host", "Windows / PowerShell", {"windows": None})
    assert said(r) == (PASS, "Windows (not named in the registry), Windows PowerShell 5.1.14393.0", "")


def test_a_wap_computer_on_windows_server_2016_is_judged_as_a_wap_computer(tmp_path: Path) -> None:
    r = judged(tmp_path, "api1", "Windows / PowerShell", {"windows": WS2016, "powershell": "4.0"})
    assert said(r) == (PASS, "Windows Server 2016 Datacenter (build 14393), Windows PowerShell 4.0", "")


# -- WAP's sites, URL Rewrite, the Store -------------------------------------------------------------------------
def test_the_wap_sites_each_role_needs_must_exist_and_be_started(tmp_path: Path) -> None:
    todo = "install / start the WAP role's sites (Start-Website) before connecting it"
    r = judged(tmp_path, "portal1", "WAP sites", {"sites": {"MgmtSvc-TenantSite": "Stopped"}})
    assert said(r) == (FAIL, "missing: MgmtSvc-AuthSite; not started: MgmtSvc-TenantSite", todo)
    r = judged(tmp_path, "api1", "WAP sites",
               {"sites": {"mgmtsvc-tenantapi": "Started", "Default Web Site": "Stopped"}})
    assert said(r) == (PASS, "MgmtSvc-TenantAPI Started", "")
    r = judged(tmp_path, "api1", "WAP sites", {"sites": {}})
    assert said(r) == (FAIL, "missing: MgmtSvc-TenantAPI", todo)
    r = judged(tmp_path, "portal2", "WAP sites", {"failing": {"Get-Website": "Cannot find drive IIS."}})
    assert said(r) == (FAIL, "cannot list IIS sites: Cannot find drive IIS.", "check IIS and WebAdministration")


def test_a_computer_with_both_wap_roles_needs_every_site_of_both(tmp_path: Path) -> None:
    def one_computer(raw: dict[str, Any]) -> None:
        raw["clouds"][0]["tenantApiHosts"] = ["portal1"]
        del raw["hosts"]["api1"]

    lab = healthy(stack(one_computer, sqlServer="sql01"))
    lab.hosts["portal1"].sites = {"MgmtSvc-TenantSite": "Started", "MgmtSvc-AuthSite": "Started"}
    r = row(lab.run(tmp_path), "portal1", "WAP sites")
    assert said(r) == (FAIL, "missing: MgmtSvc-TenantAPI", "install / start the WAP role's sites (Start-Website) "
                                                           "before connecting it")
    lab.hosts["portal1"].sites["MgmtSvc-TenantAPI"] = "Started"
    r = row(lab.run(tmp_path), "portal1", "WAP sites")
    assert r.result == "MgmtSvc-TenantSite Started, MgmtSvc-AuthSite Started, MgmtSvc-TenantAPI Started"


def test_url_rewrite_is_needed_on_each_tenant_portal_vm(tmp_path: Path) -> None:
    r = judged(tmp_path, "portal2", "URL Rewrite", {"url_rewrite": None})
    assert said(r) == (FAIL, "the IIS URL Rewrite module is not installed",
                       "install IIS URL Rewrite 2.x (https://www.iis.net/downloads/microsoft/url-rewrite)")


def test_the_tenant_api_vm_must_name_its_store(tmp_path: Path) -> None:
    todo = "run on a configured WAP Tenant API VM (Get-MgmtSvcSetting -Namespace TenantAPI)"
    r = judged(tmp_path, "api1", "ManagementStore", {"management_store": None})
    assert said(r) == (FAIL, "no TenantAPI ManagementStore setting (empty)", todo)
    r = judged(tmp_path, "api1", "ManagementStore",
               {"failing": {"Get-MgmtSvcSetting": "Namespace 'TenantAPI' is not configured."}})
    assert said(r) == (FAIL, "no TenantAPI ManagementStore setting (Namespace 'TenantAPI' is not configured.)", todo)
    r = judged(tmp_path, "api1", "ManagementStore", {"management_store": "Server=SQL02\\WAP,1433;Database=x"})
    assert said(r) == (PASS, "TenantAPI ManagementStore names SQL server SQL02\\WAP,1433", "")
    r = judged(tmp_path, "api1", "ManagementStore", {"management_store": "Data Source=not a server!;Database=x"})
    assert said(r) == (FAIL, "no TenantAPI ManagementStore setting (empty)", todo)


# -- the Azure Stack side ----------------------------------------------------------------------------------------
def test_the_share_host_must_see_the_infrastructure_share(tmp_path: Path) -> None:
    todo = "map the share for this user on host, or set wapconnector:azureStack.shareHost to a host that sees it"
    r = judged(tmp_path, "host", "infrastructure share", {"share": False})
    assert said(r) == (FAIL, "\\\\su1fileserver\\SU1_Infrastructure_1 not visible", todo)
    r = judged(tmp_path, "host", "infrastructure share", {"failing": {"Test-Path": "Access is denied."}})
    assert said(r) == (FAIL, "\\\\su1fileserver\\SU1_Infrastructure_1 not visible (Access is denied.)", todo)


def test_the_user_portal_must_reach_every_tenant_portal_vm(tmp_path: Path) -> None:
    r = judged(tmp_path, "wasp", "reaches portal2", {"answers_ping": {"portal1.contoso.com"}})
    assert said(r) == (FAIL, "ping portal2.contoso.com got no answer",
                       "open the network (and ICMP) from wasp to portal2.contoso.com: the portal must reach it")
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts["wasp"].failing = {"Test-Connection": "Testing connection failed: the host is unknown."}
    report = lab.run(tmp_path)
    assert [(r.check, r.result) for r in report.failures] == [
        ("reaches portal1", "ping portal1.contoso.com got no answer (Testing connection failed: the host is unknown.)"),
        ("reaches portal2", "ping portal2.contoso.com got no answer (Testing connection failed: the host is unknown.)")]
    assert row(report, "wasp", "Windows / PowerShell").status == PASS  # the other reads came back all the same


# -- the update rollups ------------------------------------------------------------------------------------------
def test_the_rollup_rows_name_the_lowest_component_and_what_to_install(tmp_path: Path) -> None:
    old = [("Windows Azure Pack - Tenant API - 2013", "3.50.47.9"),
           ("Windows Azure Pack - Admin API - 2013", "3.50.48.0"),
           ("Windows Azure Pack - Connector - 2013", "1.0.0.0"), ("Windows Azure Pack - Broken - 2013", "")]
    r = judged(tmp_path, "api1", "WAP Update Rollup", {"packages": old})
    assert said(r) == (FAIL, "lowest: Windows Azure Pack - Tenant API - 2013 3.50.47.9 (older than UR9.1, UR9.1 = "
                             "3.50.48.0 [inferred])",
                       "install Windows Azure Pack Update Rollup 9.1 or later on this computer")
    r = judged(tmp_path, "api1", "WAP Update Rollup", {"packages": [("Windows Azure Pack - Connector - 2013", "3.60")]})
    assert said(r) == (FAIL, "no Windows Azure Pack product in the Uninstall keys (none named "
                             "'Windows Azure Pack - *')",
                       "install Windows Azure Pack with Update Rollup 9.1 or later")
    r = judged(tmp_path, "api1", "WAP Update Rollup", {"failing": {"Get-ChildItem HKLM:": "Registry access denied."}})
    assert said(r)[:2] == (FAIL, "no Windows Azure Pack product in the Uninstall keys (Registry access denied.)")


def test_wap_package_names_are_matched_whatever_their_case(tmp_path: Path) -> None:
    upper = [("WINDOWS AZURE PACK - TENANT API - 2013", "3.51")]
    r = judged(tmp_path, "api1", "WAP Update Rollup", {"packages": upper})
    assert said(r) == (PASS, "lowest: WINDOWS AZURE PACK - TENANT API - 2013 3.51 (UR9.1 or later, UR9.1 = 3.50.48.0 "
                             "[inferred])", "")


@pytest.mark.parametrize(("label", "package", "version", "minimum", "ok"), [
    ("SPF", "System Center 2012 R2 Service Provider Foundation", "7.2.1034.0", "7.2.1034.0", True),
    ("SPF", "System Center 2012 R2 Service Provider Foundation", "7.2.1033.9", "7.2.1034.0", False),
    ("SPF", "Service Provider Foundation 2016", "7.3.100.0", "7.2.1034.0", True),
    ("VMM", "System Center 2012 R2 Virtual Machine Manager Server", "3.2.8145.0", "3.2.8145.0", True),
    ("VMM", "System Center 2012 R2 Virtual Machine Manager Console", "3.2.7510.0", "3.2.8145.0", False),
    ("VMM", "System Center Virtual Machine Manager 2016 Server", "4.0.1662.0", "3.2.8145.0", True),
])
def test_system_center_components_next_to_wap_are_judged_on_their_own_rollup(
        tmp_path: Path, label: str, package: str, version: str, minimum: str, ok: bool) -> None:
    packages = [("Windows Azure Pack - Tenant API - 2013", "3.50.48.0"), (package, version)]
    r = judged(tmp_path, "api1", f"{label} Update Rollup", {"packages": packages})
    assert said(r) == (PASS if ok else FAIL, f"{package} {version} (UR9 = {minimum} [inferred])",
                       "" if ok else f"install {label} Update Rollup 9 or later")
    other = "VMM" if label == "SPF" else "SPF"
    assert row(healthy_run(tmp_path, packages), "api1", f"{other} Update Rollup").status == SKIP


def healthy_run(tmp_path: Path, packages: list[tuple[str, str]]) -> Report:
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts["api1"] = Host(**{**vars(lab.hosts["api1"]), "packages": packages})
    return lab.run(tmp_path)
