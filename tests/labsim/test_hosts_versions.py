"""A lab host answers as its Windows release does (labsim/windows.py): its PSVersionTable and PSRP protocol
version, the information stream, and only the cmdlets and parameters that release has, refused with Windows'
errors. And the lab file's `windows` / `powershell` settings are validated, naming the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool

from labsim import windows
from labsim.hosts import LabRuntime
from labsim.lab import DEFAULT_LAB, Lab, LabFileError, load_lab
from labsim.runtime import Command
from labsim.wsman import WSManService
from tests.labsim.hosts_helpers import WAP, cmd, run, session
from tests.labsim.protocol_doubles import EchoRuntime, in_memory_wsman

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _lab(**by_host: dict[str, Any]) -> Lab:
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    for host in data["hosts"]:
        host.update(by_host.get(host["name"], {}))
    return Lab.model_validate(data)


@pytest.fixture
def lab() -> Lab:  # the `rt` fixture's lab: wapcomputer1 on 2012 R2 (4.0), wapcomputer2 on 2012 R2 with WMF 5.1
    return _lab(wapcomputer2={"windows": "2012 R2", "powershell": "5.1"})


def version_table(release: windows.WindowsRelease) -> tuple[dict[str, Any], str | None, list[str]]:
    """(PSVersionTable, the protocol version the server announced, information records) seen by pypsrp."""
    service = WSManService("WAP01", "wap01.contoso.com", EchoRuntime(), operation_timeout=1.0, release=release)
    try:
        with RunspacePool(in_memory_wsman(service, operation_timeout=1)) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Write-Streams")
            ps.invoke()
            assert pool.application_private_data is not None
            table = dict(pool.application_private_data.data["PSVersionTable"])
            return table, pool.protocol_version, [str(r.message_data) for r in ps.streams.information]
    finally:
        service.close()


def test_a_powershell_4_host_has_no_edition_protocol_2_2_and_no_information_stream() -> None:
    table, protocol, information = version_table(windows.WS2012R2)
    assert "PSEdition" not in table
    assert str(table["PSVersion"]) == "4.0" and str(table["BuildVersion"]).startswith("6.3.9600.")
    assert [str(v) for v in table["PSCompatibleVersions"]] == ["1.0", "2.0", "3.0", "4.0"]
    assert str(table["PSRemotingProtocolVersion"]) == "2.2" and protocol == "2.2"
    assert information == []


@pytest.mark.parametrize("release, ps, build", [(windows.WS2012R2_WMF51, "5.1.14409.1005", "10.0.14409.1005"),
                                                (windows.WS2016, "5.1.14393.0", "10.0.14393.0")])
def test_a_powershell_5_1_host(release: windows.WindowsRelease, ps: str, build: str) -> None:
    table, protocol, information = version_table(release)
    assert table["PSEdition"] == "Desktop" and str(table["PSVersion"]) == ps and str(table["BuildVersion"]) == build
    assert [str(v) for v in table["PSCompatibleVersions"]] == ["1.0", "2.0", "3.0", "4.0", "5.0", ps]
    assert str(table["PSRemotingProtocolVersion"]) == "2.3" and protocol == "2.3"
    assert information == ["information text"]


def test_a_cmdlet_the_release_lacks_is_not_recognized(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Get-Package", Name="Windows Azure Pack*"))
    assert r.error is not None and r.failed().error_id == "CommandNotFoundException"
    assert r.failed().exception_type == "System.Management.Automation.CommandNotFoundException"
    assert r.failed().message.startswith("The term 'Get-Package' is not recognized as the name of a cmdlet")
    # WMF 5.1 on the same Windows has PackageManagement.
    names = [o.properties["Name"] for o in run(rt, session("wapcomputer2"), cmd("Get-Package")).ok().outputs]
    assert "Windows Azure Pack - Tenant API - 2013" in names


@pytest.mark.parametrize("command, parameter", [
    (cmd("Set-Content", Path="C:\\Windows\\Temp\\x.txt", Value="y", NoNewline=True), "NoNewline"),
    (cmd("Get-ChildItem", Path="C:\\Windows", InformationAction="Continue"), "InformationAction"),
])
def test_a_parameter_the_release_lacks_is_not_found_as_windows_says(rt: LabRuntime, command: Command,
                                                                     parameter: str) -> None:
    r = run(rt, session(), command)
    assert r.error is not None
    assert r.failed().message == f"A parameter cannot be found that matches parameter name '{parameter}'."
    error = r.failed()
    assert error.error_id == f"NamedParameterNotFound,Microsoft.PowerShell.Commands.{command.name.replace('-', '')}" \
                             f"Command"
    assert (error.category, error.exception_type) == (5, "System.Management.Automation.ParameterBindingException")
    invocation = r.failed().invocation
    assert invocation is not None and invocation.name == command.name
    run(rt, session("wapcomputer2"), command).ok()  # 5.1 has both


def test_the_registry_says_which_windows_and_powershell(rt: LabRuntime) -> None:
    def values(host: str, path: str) -> dict[str, Any]:
        return run(rt, session(host), cmd("Get-ItemProperty", Path=path)).ok().outputs[0].properties

    nt, engine = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion", \
        r"HKLM:\SOFTWARE\Microsoft\PowerShell\3\PowerShellEngine"
    assert (values(WAP, nt)["ProductName"], values(WAP, nt)["CurrentBuildNumber"]) == \
        ("Windows Server 2012 R2 Datacenter", "9600")
    assert values(WAP, engine)["PowerShellVersion"] == "4.0"
    assert values("wapcomputer2", engine)["PowerShellVersion"] == "5.1.14409.1005"
    assert values("AzS-WASP01", nt)["CurrentBuildNumber"] == "14393"
    assert rt.snapshot("wapcomputer2")["windows"] == "Windows Server 2012 R2 / Windows PowerShell 5.1"  # labsim show


@pytest.mark.parametrize("settings, words", [
    ({"windows": "2019"}, "host wapcomputer1: windows '2019' is not a release labsim models; use one of '2012 R2', "
                          "'2016'"),
    ({"windows": "2016", "powershell": "4.0"}, "host wapcomputer1: powershell '4.0' does not run on Windows Server "
                                               "2016; use one of '5.1'"),
    ({"windows": "2012 R2", "powershell": 3}, "host wapcomputer1: powershell '3.0' does not run on Windows Server "
                                              "2012 R2; use one of '4.0', '5.1'"),
])
def test_a_bad_windows_setting_names_the_host_and_the_setting(tmp_path: Path, settings: dict[str, object],
                                                              words: str) -> None:
    text = DEFAULT_LAB.read_text().replace("    roles: [wap_express]\n    windows: 2012 R2\n    cloud: AzurePack_1",
                                           "    roles: [wap_express]\n    cloud: AzurePack_1\n" + "".join(
                                               f"    {k}: {v}\n" for k, v in settings.items()).rstrip("\n"), 1)
    assert text != DEFAULT_LAB.read_text()
    (tmp_path / "lab.yaml").write_text(text)
    with pytest.raises(LabFileError) as info:
        load_lab(tmp_path / "lab.yaml")
    assert words in str(info.value)


def test_azure_stack_hosts_run_windows_server_2016() -> None:
    with pytest.raises(ValueError, match="host AzS-WASP01: windows '2012 R2' with powershell 4.0 is not supported "
                                         "for its roles; use Windows Server 2016 / Windows PowerShell 5.1"):
        _lab(**{"AzS-WASP01": {"windows": "2012 R2"}})
