"""Lab state: baseline seeded once and kept across restarts, reset, snapshots, faults, invocation log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labsim.hosts import LabRuntime
from labsim.lab import Lab
from labsim.runtime import Fault, SecretStr
from labsim.state import LabState
from tests.labsim.hosts_helpers import WAP, cmd, default_lab, run, session

pytestmark = pytest.mark.unit


def test_baseline_has_wap_sites_certificate_and_product_codes(rt: LabRuntime) -> None:
    snap = rt.snapshot(WAP)
    sites = snap["sites"]
    assert sites["mgmtsvc-tenantsite"]["bindings"][0]["bindingInformation"] == "*:30081:"
    assert sites["mgmtsvc-authsite"]["bindings"][0]["bindingInformation"] == "*:30071:"
    assert sites["mgmtsvc-tenantapi"]["bindings"][0]["bindingInformation"] == "*:30005:"
    assert sites["mgmtsvc-adminapi"]["bindings"][0]["bindingInformation"] == "*:30004:"
    thumb = sites["mgmtsvc-tenantsite"]["bindings"][0]["certificateHash"]
    cert = snap["certs"]["My"][thumb]
    assert cert["has_private_key"] and cert["issuer"] != cert["subject"]  # CA-issued, not self-signed
    assert snap["registry"]["SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI"]["ProductCode"] == \
        "{CF41308C-9BC3-46C1-8B39-135D00E491E8}"
    assert snap["registry"]["SOFTWARE\\Microsoft\\IIS Extensions\\URL Rewrite"]["Version"]
    assert "Authentication.IdentityProvider" in snap["sql"]["Microsoft.MgmtSvc.Store"]["TenantAPI"]
    assert not any("wapconnector" in p.lower() for p in snap["files"])  # the bundle is the providers' to stage
    json.dumps(snap)  # JSON-able


def test_url_rewrite_absent_when_lab_says_so(tmp_path: Path) -> None:
    rt = LabRuntime.open(default_lab(url_rewrite=False), tmp_path)
    assert "SOFTWARE\\Microsoft\\IIS Extensions\\URL Rewrite" not in rt.snapshot(WAP)["registry"]


def test_state_survives_restart_and_baseline_is_not_reseeded(tmp_path: Path, lab: Lab) -> None:
    rt1 = LabRuntime.open(lab, tmp_path)
    before = rt1.snapshot(WAP)
    run(rt1, session(), cmd("New-Item", Path="C:\\temp", ItemType="Directory")).ok()
    rt1.state.close()
    rt2 = LabRuntime.open(lab, tmp_path)
    after = rt2.snapshot(WAP)
    assert after["certs"] == before["certs"]  # same certificates, not a new baseline
    assert after["files"]["C:\\temp"] == {"dir": True}


def test_reset_restores_baseline_and_clears_faults(rt: LabRuntime) -> None:
    baseline = rt.snapshot(WAP)
    run(rt, session(), cmd("Stop-Website", Name="MgmtSvc-TenantSite")).ok()
    run(rt, session(), cmd("New-Item", Path="C:\\temp\\x.txt", ItemType="File", Force=True)).ok()
    rt.state.set_fault(Fault(host=WAP, kind="command_error", command="Get-Website"))
    assert rt.snapshot(WAP) != baseline
    assert rt.snapshot(WAP, baseline=True) == baseline  # the baseline itself is untouched
    rt.state.reset()
    assert rt.snapshot(WAP) == baseline
    assert rt.faults(WAP) == []


def test_saved_hosts_come_back_with_faults_cleared_and_the_log_kept(rt: LabRuntime) -> None:
    run(rt, session(), cmd("Stop-Website", Name="MgmtSvc-TenantSite")).ok()
    run(rt, session(), cmd("New-Item", Path="C:\\temp\\x.txt", ItemType="File", Force=True)).ok()
    saved, point = rt.snapshot(WAP), rt.state.save_hosts()
    run(rt, session(), cmd("Start-Website", Name="MgmtSvc-TenantSite")).ok()
    run(rt, session(), cmd("Remove-Item", Path="C:\\temp\\x.txt")).ok()
    run(rt, session(), cmd("New-Item", Path="C:\\temp\\y.txt", ItemType="File", Force=True)).ok()
    rt.state.set_fault(Fault(host=WAP, kind="down"))
    rt.state.reset()
    rt.state.restore_hosts(point)
    assert rt.snapshot(WAP) == saved
    assert rt.snapshot(WAP, baseline=True) != saved  # the baseline is untouched
    assert rt.faults(WAP) == []
    assert len(rt.state.invocations(WAP)) == 5


def test_invocations_after_a_mark(rt: LabRuntime) -> None:
    assert rt.state.last_invocation_id() == 0
    run(rt, session(), cmd("Get-Website"))
    mark = rt.state.last_invocation_id()
    assert mark == rt.state.invocations()[-1]["id"]
    run(rt, session(), cmd("Get-Website", Name="MgmtSvc-TenantSite"))
    run(rt, session(), cmd("Test-Path", Path="C:\\"))
    assert [r["command"] for r in rt.state.invocations(after=mark)] == ["Get-Website", "Test-Path"]
    assert [r["command"] for r in rt.state.invocations(WAP, "Get-Website", after=mark)] == ["Get-Website"]
    assert rt.state.invocations(after=rt.state.last_invocation_id()) == []


def test_state_of_another_lab_is_refused(tmp_path: Path, lab: Lab) -> None:
    LabRuntime.open(lab, tmp_path)
    other = lab.model_copy(update={"name": "other-lab"})
    with pytest.raises(ValueError, match="belongs to lab 'seed-example'"):
        LabRuntime.open(other, tmp_path)


def test_faults_set_replace_list_clear(rt: LabRuntime) -> None:
    rt.state.set_fault(Fault(host=WAP, kind="slow", seconds=1.0))
    rt.state.set_fault(Fault(host=WAP, kind="slow", seconds=2.5))
    rt.state.set_fault(Fault(host="AzS-HOST", kind="down"))
    assert rt.faults(WAP) == [Fault(host=WAP, kind="slow", seconds=2.5)]
    rt.state.clear_faults(WAP)
    assert rt.faults(WAP) == [] and rt.faults("AzS-HOST")[0].kind == "down"
    with pytest.raises(ValueError, match="unknown fault kind"):
        rt.state.set_fault(Fault(host=WAP, kind="flaky"))


def test_faults_written_by_another_process_are_seen(rt: LabRuntime) -> None:
    other = LabState(rt.state.path)  # what `labsim fault` does from another process
    other.set_fault(Fault(host=WAP, kind="auth_broken"))
    assert [f.kind for f in rt.faults(WAP)] == ["auth_broken"]


def test_invocations_recorded_with_secrets_redacted(rt: LabRuntime) -> None:
    run(rt, session(), cmd("Import-PfxCertificate", FilePath="C:\\nope.pfx",
                           CertStoreLocation="Cert:\\LocalMachine\\My", Password=SecretStr("hunter2")))
    run(rt, session(), cmd("Get-MgmtSvcDatabaseSetting", Namespace="TenantAPI",
                           ConnectionString="Data Source=wapcomputer1;User ID=sa;Password=s3cret"))
    run(rt, session(), cmd("Set-Content", Path="C:\\a.bin", Value=b"\x00" * 100, Encoding="Byte"))
    rows = rt.state.invocations(host=WAP)
    assert [r["command"] for r in rows] == ["Import-PfxCertificate", "Get-MgmtSvcDatabaseSetting", "Set-Content"]
    dump = json.dumps(rows)
    assert "hunter2" not in dump and "s3cret" not in dump
    assert dict(rows[0]["parameters"])["Password"] == "****"
    assert "Password=****" in dict(rows[1]["parameters"])["ConnectionString"]
    assert dict(rows[2]["parameters"])["Value"].startswith("<byte[100]")
    assert rows[0]["outcome"] == "failed" and rows[2]["outcome"] == "ok"
    assert rows[0]["user"] == "CONTOSO\\WapAdmin" and rows[0]["configuration"] == "Microsoft.PowerShell"
    assert rows[0]["ended"] >= rows[0]["started"]
    assert rt.state.invocations(command="set-content")[0]["id"] == rows[2]["id"]
