"""The labsim CLI in process: argument parsing, state commands and clear errors (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypsrp.serializer import Serializer

from labsim.cli import _plain, main, parse_exec_args

pytestmark = pytest.mark.unit


def test_parse_exec_args() -> None:
    assert parse_exec_args(["-Name", "MgmtSvc-TenantSite", "-Port", "40005", "-Force", "-Offset", "-3", "x",
                            "-Enabled", "$false"]) == [
        ("Name", "MgmtSvc-TenantSite"), ("Port", 40005), ("Force", True), ("Offset", -3), (None, "x"),
        ("Enabled", False)]


def test_exec_prints_objects_of_types_pypsrp_does_not_know() -> None:
    listed = Serializer().deserialize('<Obj RefId="0"><TN RefId="0"><T>Contoso.Things</T><T>System.Object</T></TN>'
                                      '<LST><S>a</S></LST></Obj>')
    named = Serializer().deserialize('<Obj RefId="0"><TN RefId="0"><T>Contoso.Thing</T><T>System.Object</T></TN>'
                                     '<ToString>thing</ToString></Obj>')
    assert json.loads(json.dumps(_plain(listed))) == ["<LST><S>a</S></LST>"]
    assert _plain(named) == "thing"


def test_state_commands_without_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSIM_STATE_DIR", str(tmp_path / "s"))
    assert main(["fault", "wapcomputer1", "command-error", "Get-Website", "IIS is busy"]) == 0
    assert main(["fault", "AzS-ERCS01", "slow", "1.5"]) == 0
    assert main(["fault", "AzS-HOST", "wsman-fault"]) == 0
    assert main(["show", "wapcomputer1"]) == 0
    out = capsys.readouterr().out
    snap = json.loads(out[out.index("{"):])
    assert snap["sites"]["mgmtsvc-tenantsite"]["state"] == "Started"
    from labsim.state import LabState

    kinds = [(f.host, f.kind, f.command, f.message, f.seconds) for f in LabState.in_dir(tmp_path / "s").faults()]
    assert kinds == [("wapcomputer1", "command_error", "Get-Website", "IIS is busy", 0.0),
                     ("AzS-ERCS01", "slow", None, None, 1.5), ("AzS-HOST", "wsman_fault", None, None, 0.0)]
    assert main(["reset"]) == 0
    assert LabState.in_dir(tmp_path / "s").faults() == []


@pytest.mark.parametrize("argv, message", [
    (["show", "nohost"], "no host 'nohost' in lab 'seed-example'"),
    (["fault", "wapcomputer1", "wobbly"], "unknown fault 'wobbly'"),
    (["fault", "wapcomputer1", "slow"], "fault slow takes 1 argument(s), got 0"),
    (["fault", "wapcomputer1", "slow", "soon"], "slow takes a number of seconds"),
    (["exec", "wapcomputer1", "Get-Website"], "labsim is not running for lab 'seed-example'"),
    (["stop"], "labsim is not running for lab 'seed-example'"),
])
def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                      argv: list[str], message: str) -> None:
    monkeypatch.setenv("LABSIM_STATE_DIR", str(tmp_path / "s"))
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_lab_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text("name: x\nhosts:\n  - name: h\n    fqdn: not_valid!\n    address: 10.0.0.1\n    roles: [asdk_host]\n"
                   "    users: [{name: u, password: p}]\n")
    assert main(["--lab", str(bad), "show", "h"]) == 2
    err = capsys.readouterr().err
    assert "not a valid FQDN" in err and "not a loopback address" in err
