"""ConvertTo-Json, Select-Object, Where-Object, faults."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from labsim.hosts import LabRuntime
from labsim.runtime import Fault, PSObject, SecretStr
from tests.labsim.hosts_helpers import WAP, cmd, run, run_in_thread, session

pytestmark = pytest.mark.unit


def test_convert_to_json_ps51_shapes(rt: LabRuntime) -> None:
    obj = PSObject({"When": dt.datetime(2017, 7, 10, tzinfo=dt.UTC), "Ok": True, "N": 3, "S": "a<b",
                    "Secret": SecretStr("x"), "Nested": {"L1": {"L2": {"L3": 1}}}})
    text = run(rt, session(), cmd("ConvertTo-Json", Compress=True), input=[obj]).ok().outputs[0]
    assert text.startswith('{"When":"\\/Date(1499644800000)\\/","Ok":true,"N":3,"S":"a\\u003cb",'
                           '"Secret":"System.Security.SecureString",')
    assert json.loads(text)["Nested"]["L1"]["L2"] == "System.Collections.Hashtable"  # beyond -Depth 2
    deep = json.loads(run(rt, session(), cmd("ConvertTo-Json", Depth=5), input=[obj]).ok().outputs[0])
    assert deep["Nested"]["L1"]["L2"] == {"L3": 1}
    many = run(rt, session(), cmd("ConvertTo-Json", Compress=True), input=[1, 2]).ok().outputs
    assert many == ["[1,2]"]


def test_get_website_select_object_convert_to_json(rt: LabRuntime) -> None:
    out = run(rt, session(), cmd("Get-Website", Name="MgmtSvc-TenantSite"),
              cmd("Select-Object", Property=["name", "state"]), cmd("ConvertTo-Json", Compress=True)).ok().outputs
    assert json.loads(out[0]) == {"name": "MgmtSvc-TenantSite", "state": "Started"}
    out = run(rt, session(), cmd("Get-Website"), cmd("Where-Object", "name", "*Tenant*", Like=True),
              cmd("Select-Object", ExpandProperty="name")).ok().outputs
    assert out == ["MgmtSvc-TenantSite", "MgmtSvc-TenantAPI", "MgmtSvc-TenantPublicAPI"]  # by site id
    r = run(rt, session(), cmd("Get-Website", Name="MgmtSvc-TenantSite"), cmd("Select-Object", ExpandProperty="nope"))
    assert r.errors[0]["error_id"] == "ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand"


def test_fault_command_error_is_non_terminating(rt: LabRuntime) -> None:
    rt.state.set_fault(Fault(host=WAP, kind="command_error", command="get-website", message="IIS is busy"))
    r = run(rt, session(), cmd("Get-Website", Name="MgmtSvc-TenantSite"))
    assert r.error is None and r.errors[0]["message"] == "IIS is busy" and len(r.outputs) == 1
    r = run(rt, session(), cmd("Get-Website", Name="MgmtSvc-TenantSite", ErrorAction="Stop"))
    assert r.failed().message == "IIS is busy"


def test_fault_command_terminating_applies_to_scripts_by_leaf_name(rt: LabRuntime) -> None:
    rt.state.set_fault(Fault(host=WAP, kind="command_terminating", command="Get-Website"))
    assert run(rt, session(), cmd("Get-Website")).failed().error_id == "LabsimFault,Get-Website"
    assert run(rt, session(), cmd("Get-Item", Path="C:\\Windows")).error is None  # other commands unaffected


def test_fault_command_hang_until_stopped(rt: LabRuntime) -> None:
    rt.state.set_fault(Fault(host=WAP, kind="command_hang", command="Get-Website"))
    thread, sink, box = run_in_thread(rt, session(), cmd("Get-Website"))
    time.sleep(0.2)
    assert thread.is_alive()
    sink.stop_requested.set()
    thread.join(5)
    assert box[0].stopped


def test_latency_factor_scales_long_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labsim.hosts import LabRuntime
    from labsim.hosts.latency import PROFILE
    from tests.labsim.hosts_helpers import count_sleeps, default_lab, stage_bundle

    lab = default_lab()
    lab.settings.latency_factor = 0.3 / PROFILE["Install-Connector"]
    rt = LabRuntime.open(lab, tmp_path / "s")
    stage_bundle(rt, tmp_path)
    waits = count_sleeps(monkeypatch)
    run(rt, session(), cmd("C:\\temp\\WAPConnector\\Setup\\Scripts\\Install-Connector.ps1")).ok()
    assert waits == [pytest.approx(0.3)]  # the install's 40 s on Windows, scaled (and slept: Ctx.sleep)
