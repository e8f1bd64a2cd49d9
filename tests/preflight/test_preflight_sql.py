"""The trust's SQL check: the Tenant API VM that runs Configure-TrustAzureStack.ps1 asks the Store's SQL server,
as the login the script will use, whether that login is sysadmin; the server is the configured one or the one
the Tenant API's ManagementStore setting names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, PASS, STEP
from providers.errors import StepTimedOut
from tests.preflight.fake_lab import healthy, row, second_cloud, stack

pytestmark = pytest.mark.unit

CHECK = "sysadmin (C1)"


def grant(login: str, sql: str) -> str:
    return (f"grant {login} the sysadmin role on {sql} (Configure-TrustAzureStack.ps1 needs it), or set "
            f"wapconnector:clouds[0].sqlCredential to a login that has it")


def test_the_sql_credential_is_the_login_asked_and_the_winrm_user_otherwise(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01", sqlCredential="sql"))
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result, r.todo) == (PASS, "sa-trust is sysadmin on sql01", "")
    assert lab.sql_logins() == ["sa-trust"]
    lab = healthy(stack(sqlServer="sql01"))
    assert row(lab.run(tmp_path), "api1", CHECK).result == "CONTOSO\\admin is sysadmin on sql01"
    assert lab.sql_logins() == [None]  # Integrated Security: the WinRM user's own login


@pytest.mark.parametrize(("answer", "ok"), [
    (1, True), ("1", True), (True, True), ("True", True), ("true", True),
    (0, False), ("0", False), (False, False), (None, False), ("yes", False),
])
def test_only_a_yes_from_sql_server_is_sysadmin(tmp_path: Path, answer: Any, ok: bool) -> None:
    lab = healthy(stack(sqlServer="sql01", sqlCredential="sql"))
    lab.hosts["api1"].sysadmin["sql01"] = answer
    r = row(lab.run(tmp_path), "api1", CHECK)
    if ok:
        assert (r.status, r.result, r.todo) == (PASS, "sa-trust is sysadmin on sql01", "")
    else:
        assert (r.status, r.result, r.todo) == (FAIL, "sa-trust is not sysadmin on sql01", grant("sa-trust", "sql01"))


def test_a_login_sql_server_refuses_is_said_with_its_message(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01", sqlCredential="sql"))
    lab.hosts["api1"].failing = {"Invoke-Sqlcmd": "Login failed for user 'sa-trust'."}
    report = lab.run(tmp_path)
    r = row(report, "api1", CHECK)
    assert (r.status, r.result, r.todo) == (
        FAIL, "cannot ask sql01 as sa-trust: Login failed for user 'sa-trust'.",
        "check wapconnector:clouds[0].sqlServer / sqlCredential, and that the SqlServer PowerShell module is on api1")
    assert [(x.check, x.status) for x in report.failures] == [(CHECK, FAIL)]  # api1's other reads still judged
    assert "sql-pw-not-real" not in report.table()


def test_without_a_configured_server_the_one_the_store_names_is_asked(tmp_path: Path) -> None:
    lab = healthy(stack())
    report = lab.run(tmp_path)
    r = row(report, "api1", CHECK)
    assert (r.status, r.result) == (PASS, "CONTOSO\\admin is sysadmin on sql01.contoso.com")
    asked = [c for c in lab.transport.calls if "Invoke-Sqlcmd" in c.names]
    assert len(asked) == 1 and asked[0].host == "api1.contoso.com" and len(asked[0].statements) == 1
    lab.hosts["api1"].sysadmin["sql01.contoso.com"] = 0
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result) == (FAIL, "CONTOSO\\admin is not sysadmin on sql01.contoso.com")
    lab = healthy(stack(sqlCredential="sql"))
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result) == (PASS, "sa-trust is sysadmin on sql01.contoso.com")
    assert lab.sql_logins() == ["sa-trust"]  # the login the trust script will use, on the discovered server too
    assert all(c.step == STEP and c.idempotent for c in lab.transport.calls)  # a read, like every other


def test_a_discovered_server_that_refuses_or_a_connection_that_breaks_is_said(tmp_path: Path) -> None:
    lab = healthy(stack(sqlCredential="sql"))
    lab.hosts["api1"].failing = {"Invoke-Sqlcmd": "Login failed for user 'sa-trust'."}
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result) == (FAIL, "cannot ask sql01.contoso.com as sa-trust: Login failed for user "
                                          "'sa-trust'.")
    broke = StepTimedOut("api1.contoso.com", STEP, seconds=30, waiting_for="finish")
    lab = healthy(stack())
    lab.hosts["api1"].failing = {"Invoke-Sqlcmd": broke}
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result) == (FAIL, f"cannot ask sql01.contoso.com as CONTOSO\\admin: {broke}")


@pytest.mark.parametrize("store", ["empty", "unreadable"])
def test_no_server_configured_or_named_by_the_store_fails_without_asking_sql(tmp_path: Path, store: str) -> None:
    lab = healthy(stack())
    if store == "empty":
        lab.hosts["api1"].management_store = None
    else:
        lab.hosts["api1"].failing = {"Get-MgmtSvcSetting": "Namespace 'TenantAPI' is not configured."}
    r = row(lab.run(tmp_path), "api1", CHECK)
    assert (r.status, r.result, r.todo) == (FAIL, "no SQL server: none configured and ManagementStore names none",
                                            "set wapconnector:clouds[0].sqlServer")
    assert lab.sql_logins() == []


def test_the_trust_is_checked_on_its_own_host_for_each_cloud(tmp_path: Path) -> None:
    def two_clouds(raw: dict[str, Any]) -> None:
        second_cloud(raw, sqlServer="sql02", sqlCredential="sql")
        raw["hosts"]["api3"] = {"fqdn": "api3.contoso.com", "credential": "admin"}
        raw["clouds"][0]["tenantApiHosts"] = ["api1", "api3"]
        raw["clouds"][0]["trustHost"] = "api3"

    lab = healthy(stack(two_clouds, sqlServer="sql01"))
    lab.hosts["api2"].sysadmin["sql02"] = 0
    report = lab.run(tmp_path)
    trusts = [(r.host, r.check, r.status, r.result, r.todo) for r in report.rows if r.check.startswith("sysadmin")]
    assert trusts == [
        ("api3", "sysadmin (C1)", PASS, "CONTOSO\\admin is sysadmin on sql01", ""),
        ("api2", "sysadmin (C2)", FAIL, "sa-trust is not sysadmin on sql02",
         "grant sa-trust the sysadmin role on sql02 (Configure-TrustAzureStack.ps1 needs it), or set "
         "wapconnector:clouds[1].sqlCredential to a login that has it")]
