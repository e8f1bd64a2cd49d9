"""The privileged endpoint: JEA refusals, Add-AzurePackConnector's success line, polling and stop, the output
folder seen from the ASDK host, -DisableMultiCloud."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from labsim.hosts import LabRuntime
from labsim.hosts.pep import DISABLED_LINE, POLLING_LINE, SUCCESS_LINE
from labsim.hosts.wapconnector import parse_output_file
from labsim.runtime import Session
from tests.labsim.hosts_helpers import (
    ASDK,
    PEP,
    cmd,
    count_sleeps,
    default_lab,
    pep_session,
    run,
    run_in_thread,
    session,
)

pytestmark = pytest.mark.unit
OUTPUT = "\\\\su1fileserver\\SU1_Infrastructure_1\\AzurePackConnectorOutput"
CLOUDS = [{"CloudName": "AzurePack_1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"},
          {"CloudName": "AzurePack_2", "CloudEndpoint": "https://wapcomputer2.contoso.com:40005"}]


def asdk() -> Session:
    return session(ASDK, "AZURESTACK\\AzureStackAdmin")


def output_files(rt: LabRuntime) -> dict[str, dict]:
    files = run(rt, asdk(), cmd("Get-ChildItem", Path=OUTPUT, ErrorAction="SilentlyContinue")).ok().outputs
    out = {}
    for f in files:
        text = run(rt, asdk(), cmd("Get-Content", Path=f.properties["FullName"], Raw=True)).ok().outputs[0]
        out[f.properties["Name"]] = json.loads(text)
    return out


def test_script_text_is_refused_like_jea(rt: LabRuntime) -> None:
    r = run(rt, pep_session(), cmd("Add-AzurePackConnector -DisableMultiCloud", script=True))
    assert r.failed().message == ("The syntax is not supported by this runspace. This can occur if the runspace is in "
                               "no-language mode.")
    assert (r.failed().error_id, r.failed().category) == ("ScriptsNotAllowed", 17)
    assert rt.state.invocations(PEP)[-1]["outcome"] == "failed"  # recorded all the same


def test_only_allow_listed_commands(rt: LabRuntime) -> None:
    assert run(rt, pep_session(), cmd("Get-ChildItem", Path="C:\\")).failed().error_id == "CommandNotFoundException"
    names = [o.properties["Name"] for o in run(rt, pep_session(), cmd("Get-Command")).ok().outputs]
    assert "Add-AzurePackConnector" in names and "Get-ChildItem" not in names


def test_add_connector_writes_one_file_per_cloud_then_polls_until_done(rt: LabRuntime,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    waits = count_sleeps(monkeypatch)
    r = run(rt, pep_session(),
            cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS, AzureStackCloudName="AzureStack")).ok()
    assert sum(waits) == pytest.approx(rt.lab.settings.pep_polling_seconds)  # polled (and slept) until done
    assert SUCCESS_LINE in r.sink.verboses and r.outputs == []
    files = output_files(rt)
    assert len(files) == 2
    by_cloud = {v["CloudName"]: (name, v) for name, v in files.items()}
    name, content = by_cloud["AzurePack_1"]
    assert name.startswith("AzurePack-") and name.endswith("-AzurePack_1.txt")
    assert content["AzurePackConnectorEndpoint"] == "https://wapcomputer1.contoso.com:40005"
    partner = content["AuthenticationIdentityProviderPartner"]
    assert partner["Realm"].startswith("https://adfs.local.azurestack.external/adfs/")
    assert partner["Realm"].endswith("/")
    assert parse_output_file(json.dumps(content))["Realm"] == partner["Realm"]


def test_success_line_then_polling_stopped_by_the_client(tmp_path: Path) -> None:
    from labsim.hosts import LabRuntime

    lab = default_lab()
    lab.settings.pep_polling_seconds = 60
    rt = LabRuntime.open(lab, tmp_path)
    thread, sink, box = run_in_thread(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS[:1],
                                                             AzureStackCloudName="AzureStack"))
    deadline = time.monotonic() + 10
    while SUCCESS_LINE not in sink.verboses and time.monotonic() < deadline:
        time.sleep(0.02)
    assert SUCCESS_LINE in sink.verboses
    assert len(output_files(rt)) == 1  # configuration done at the success line
    sink.stop_requested.set()
    thread.join(5)
    assert not thread.is_alive() and box[0].stopped
    assert rt.state.invocations(PEP, "Add-AzurePackConnector")[-1]["outcome"] == "stopped"


def test_polling_emits_verbose_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labsim.hosts import LabRuntime
    from labsim.hosts.base import Ctx

    lab = default_lab()
    lab.settings.pep_polling_seconds = 4.5
    rt = LabRuntime.open(lab, tmp_path)
    waits: list[float] = []

    def not_slept(ctx: Ctx, seconds: float) -> None:  # the waits are counted here; other tests really sleep them
        waits.append(seconds)
        ctx.check_stop()

    monkeypatch.setattr(Ctx, "sleep", not_slept)
    r = run(rt, pep_session(),
            cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS[:1], AzureStackCloudName="AzureStack"))
    assert [w for w in waits if w] == [2.0, 2.0, 0.5]  # (a zero wait is the latency the lab does not add)
    assert r.sink.verboses.count(POLLING_LINE) == 2  # every 2 s, not after the last wait


def test_rerun_replaces_the_folder_and_disable_empties_it(rt: LabRuntime) -> None:
    run(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS, AzureStackCloudName="AzureStack")).ok()
    run(rt, pep_session(),
        cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS[1:], AzureStackCloudName="AzureStack")).ok()
    assert [v["CloudName"] for v in output_files(rt).values()] == ["AzurePack_2"]
    r = run(rt, pep_session(), cmd("Add-AzurePackConnector", DisableMultiCloud=True)).ok()
    assert r.sink.verboses == [DISABLED_LINE]
    assert output_files(rt) == {}
    assert run(rt, asdk(), cmd("Test-Path", Path=OUTPUT)).outputs == [True]  # the folder stays
    assert rt.snapshot(PEP)["pep"]["multicloud"] is False


@pytest.mark.parametrize("clouds, reason", [
    ([{"CloudName": "A"}], "Each cloud needs CloudName and CloudEndpoint."),
    ([{"CloudName": "A", "CloudEndpoint": "http://x:40005"}],
     "CloudEndpoint 'http://x:40005' is not an absolute https URL."),
    ([{"CloudName": "A", "CloudEndpoint": "https://x"}, {"CloudName": "a", "CloudEndpoint": "https://y"}],
     "CloudName 'a' is used twice."),
    ([{"CloudName": "A", "CloudEndpoint": "https://x", "Port": 1}],
     "Unexpected key 'Port'; a cloud has CloudName and CloudEndpoint."),
])
def test_invalid_clouds(rt: LabRuntime, clouds: list[dict[str, Any]], reason: str) -> None:
    r = run(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=clouds, AzureStackCloudName="AzureStack"))
    assert r.failed().message == f"Cannot validate argument on parameter 'AzurePackClouds'. {reason}"
    assert r.failed().error_id == "ParameterArgumentValidationError,Add-AzurePackConnector"
    assert output_files(rt) == {}


def test_parameter_sets(rt: LabRuntime) -> None:
    r = run(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS, DisableMultiCloud=True,
                                   AzureStackCloudName="x"))
    assert r.failed().error_id == "AmbiguousParameterSet,Add-AzurePackConnector"
    r = run(rt, pep_session(), cmd("Add-AzurePackConnector"))
    assert r.failed().message.endswith("missing mandatory parameters: AzurePackClouds AzureStackCloudName.")


def test_every_call_recorded_with_parameters(rt: LabRuntime) -> None:
    run(rt, pep_session(),
        cmd("Add-AzurePackConnector", AzurePackClouds=CLOUDS[:1], AzureStackCloudName="AzureStack")).ok()
    row = rt.state.invocations(PEP)[-1]
    assert row["user"] == "AZURESTACK\\CloudAdmin" and row["configuration"] == "PrivilegedEndpoint"
    assert dict(row["parameters"])["AzurePackClouds"] == CLOUDS[:1]
