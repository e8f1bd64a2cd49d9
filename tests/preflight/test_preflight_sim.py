"""Preflight against labsim over real WinRM/PSRP: every check on a healthy lab, and each problem on its own while
the other hosts are still checked. The invocation log shows that only reads reached the hosts."""

from __future__ import annotations

import pytest

from components.preflight import FAIL, PASS, READ_COMMANDS, run_preflight
from labsim.lab import load_lab
from labsim.runtime import Fault
from tests.preflight.helpers import config_for, lab_data, served

pytestmark = pytest.mark.sim

READ_ONLY = {c.lower() for c in READ_COMMANDS}


def fails(report) -> list[tuple[str, str]]:
    return [(r.host, r.check) for r in report.rows if r.status == FAIL]


def row(report, host, check):
    return next(r for r in report.rows if r.host == host and r.check == check)


def test_healthy_lab_passes_and_only_reads_reach_the_hosts(tmp_path) -> None:
    with served(tmp_path, lab_data()) as (server, lab):
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim"), project_dir=tmp_path)
        assert report.ok, report.table()
        sent = server.runtime.state.invocations()
        assert {i["command"].lower() for i in sent} <= READ_ONLY
        assert {i["host"] for i in sent} == {h.name for h in lab.hosts}
        assert row(report, "AzS-ERCS01", "PrivilegedEndpoint").status == PASS


def test_tls_name_mismatch_says_which_name_was_checked_and_the_rest_is_still_checked(tmp_path) -> None:
    def wrong_name(raw):
        raw["hosts"]["wapcomputer1"]["tlsServerName"] = "not-this-host.contoso.com"

    with served(tmp_path, lab_data()) as (server, lab):
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim", edit=wrong_name), project_dir=tmp_path)
        assert fails(report) == [("wapcomputer1", "TLS")]
        tls = row(report, "wapcomputer1", "TLS")
        assert "checked as not-this-host.contoso.com" in tls.result and "tlsServerName" in tls.todo
        assert row(report, "wapcomputer2", "URL Rewrite").status == PASS


def test_a_down_host_fails_reach_and_the_user_portal_cannot_ping_it(tmp_path) -> None:
    with served(tmp_path, lab_data()) as (server, lab):
        server.runtime.state.set_fault(Fault(host="wapcomputer2", kind="down"))
        report = run_preflight(config_for(lab, tmp_path, tmp_path / "labsim"), project_dir=tmp_path)
        assert fails(report) == [("AzS-WASP01", "reaches wapcomputer2"), ("wapcomputer2", "reachable")]
        assert row(report, "wapcomputer1", "sysadmin (AzurePack_1)").status == PASS


def test_sql_credential_is_what_is_checked_and_the_server_is_discovered(tmp_path) -> None:
    data = lab_data(load_lab("labsim/labs/three-clouds.yaml"))
    sql = next(h for h in data["hosts"] if h["name"] == "wap1-sql")
    sql["users"].append({"name": "trustops", "password": "LabOnly-Trust-1!", "sql_sysadmin": False})

    def use_login(raw):
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
        logged = [i for i in server.runtime.state.invocations() if i["command"] == "Invoke-Sqlcmd"]
        assert logged and "LabOnly-Trust-1!" not in str(logged)
