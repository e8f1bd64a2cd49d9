"""File system, registry and the PowerShell-shaped binding rules, in memory."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from labsim.hosts import LabRuntime
from labsim.hosts.base import INVALID_ARGUMENT, OBJECT_NOT_FOUND
from labsim.runtime import PSObject
from tests.labsim.hosts_helpers import ASDK, WASP, cmd, run, session

pytestmark = pytest.mark.unit


def test_chunked_byte_staging_round_trips_and_hashes(rt: LabRuntime) -> None:
    data = bytes(range(256)) * 300
    s = session()
    run(rt, s, cmd("New-Item", Path="C:\\temp\\stage", ItemType="Directory", Force=True)).ok()
    run(rt, s, cmd("Set-Content", Path="C:\\temp\\stage\\f.bin", Value=data[:40000], Encoding="Byte")).ok()
    run(rt, s, cmd("Add-Content", Path="C:\\temp\\stage\\f.bin", Value=list(data[40000:]), Encoding="Byte")).ok()
    got = run(rt, s, cmd("Get-Content", Path="C:\\TEMP\\Stage\\F.BIN", Encoding="Byte", Raw=True)).ok().outputs
    assert got == [data]
    h = run(rt, s, cmd("Get-FileHash", Path="C:\\temp\\stage\\f.bin", Algorithm="SHA256")).ok().outputs[0]
    assert h.properties == {"Algorithm": "SHA256", "Hash": hashlib.sha256(data).hexdigest().upper(),
                            "Path": "C:\\temp\\stage\\f.bin"}


def test_text_content_lines_and_raw(rt: LabRuntime) -> None:
    s = session()
    run(rt, s, cmd("Set-Content", "C:\\a.txt", ["one", "two"])).ok()
    assert run(rt, s, cmd("Get-Content", Path="C:\\a.txt")).ok().outputs == ["one", "two"]
    assert run(rt, s, cmd("Get-Content", Path="C:\\a.txt", Raw=True)).ok().outputs == ["one\r\ntwo\r\n"]


def test_set_content_into_missing_directory_fails_like_windows(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Set-Content", Path="C:\\nope\\a.txt", Value="x"))
    assert r.error is None and r.errors[0]["message"] == "Could not find a part of the path 'C:\\nope\\a.txt'."
    assert r.errors[0]["error_id"] == ("GetContentWriterDirectoryNotFoundError,"
                                       "Microsoft.PowerShell.Commands.SetContentCommand")


def test_test_path_and_path_not_found(rt: LabRuntime) -> None:
    s = session()
    assert run(rt, s, cmd("Test-Path", Path=["C:\\Windows", "C:\\temp\\WAPConnector"])).ok().outputs == [True, False]
    assert run(rt, s, cmd("Test-Path", Path="C:\\Windows", PathType="Leaf")).ok().outputs == [False]
    assert run(rt, s, cmd("Test-Path", Path="IIS:\\Sites\\MgmtSvc-TenantSite")).ok().outputs == [True]
    r = run(rt, s, cmd("Get-Item", Path="C:\\missing"))
    assert r.errors == [{"message": "Cannot find path 'C:\\missing' because it does not exist.",
                         "error_id": "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
                         "category": OBJECT_NOT_FOUND, "target": "C:\\missing",
                         "exception_type": "System.Management.Automation.ItemNotFoundException"}]


def test_error_action_stop_makes_it_terminating_and_silently_continue_drops_it(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Get-Item", Path="C:\\missing", ErrorAction="Stop"))
    assert r.error is not None and r.failed().error_id == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    r = run(rt, session(), cmd("Get-Item", Path="C:\\missing", ErrorAction="SilentlyContinue"))
    assert r.error is None and r.errors == []


def test_new_item_existing_without_force(rt: LabRuntime) -> None:
    s = session()
    run(rt, s, cmd("New-Item", Path="C:\\d", ItemType="Directory")).ok()
    r = run(rt, s, cmd("New-Item", Path="C:\\d", ItemType="Directory"))
    assert r.errors[0]["error_id"] == "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand"
    made = run(rt, s, cmd("New-Item", Path="C:\\d", ItemType="Directory", Force=True)).ok()
    assert made.outputs[0].properties["PSIsContainer"]


def test_remove_item_directory_needs_recurse(rt: LabRuntime) -> None:
    s = session()
    run(rt, s, cmd("New-Item", Path="C:\\d\\e\\f.txt", ItemType="File", Force=True)).ok()
    assert run(rt, s, cmd("Remove-Item", Path="C:\\d")).errors[0]["error_id"].startswith("DirectoryNotEmpty,")
    run(rt, s, cmd("Remove-Item", Path="C:\\d", Recurse=True)).ok()
    assert run(rt, s, cmd("Test-Path", Path="C:\\d\\e\\f.txt")).outputs == [False]


def test_get_child_item_files_and_filter(rt: LabRuntime) -> None:
    s = session()
    for name in ("a.txt", "b.log"):
        run(rt, s, cmd("New-Item", Path=f"C:\\x\\{name}", ItemType="File", Value="hi", Force=True)).ok()
    names = [o.properties["Name"] for o in run(rt, s, cmd("Get-ChildItem", Path="C:\\x", Filter="*.txt")).ok().outputs]
    assert names == ["a.txt"]
    f = run(rt, s, cmd("Get-ChildItem", Path="C:\\x")).ok().outputs[0]
    assert f.properties["Length"] == 2 and f.properties["FullName"] == "C:\\x\\a.txt"


def test_share_is_visible_only_from_the_asdk_host(rt: LabRuntime) -> None:
    asdk = session(ASDK, "AZURESTACK\\AzureStackAdmin")
    share = "\\\\su1fileserver\\SU1_Infrastructure_1"
    assert run(rt, asdk, cmd("Test-Path", Path=share)).ok().outputs == [True]
    assert run(rt, session(WASP, "AZURESTACK\\AzureStackAdmin"), cmd("Test-Path", Path=share)).ok().outputs == [False]
    assert run(rt, session(), cmd("Test-Path", Path=share)).ok().outputs == [False]


def test_registry_reads(rt: LabRuntime) -> None:
    s = session()
    r = run(rt, s, cmd("Get-ItemProperty", Path="HKLM:\\SOFTWARE\\Microsoft\\IIS Extensions\\URL Rewrite")).ok()
    assert r.outputs[0].properties["Version"] == "7.2.1952"
    r = run(rt, s, cmd("Get-ItemProperty", Path="HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI", Name="Nope"))
    assert r.errors[0]["message"] == ("Property Nope does not exist at path "
                                      "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI.")
    # the registry Uninstall keys, piped into Get-ItemProperty (never Win32_Product)
    r = run(rt, s, cmd("Get-ChildItem", Path="HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"),
            cmd("Get-ItemProperty")).ok()
    names = {o.properties["PSChildName"]: o.properties["DisplayName"] for o in r.outputs}
    assert names["{CF41308C-9BC3-46C1-8B39-135D00E491E8}"] == "Windows Azure Pack - Tenant API - 2013"


def test_statements_run_in_order_and_pipe_within(rt: LabRuntime) -> None:
    s = session()
    r = run(rt, s, statements=[[cmd("New-Item", Path="C:\\o.txt", ItemType="File", Value="v")],
                               [cmd("Get-Content", Path="C:\\o.txt")]]).ok()
    # every statement writes its last command's output, in order (New-Item's file object, then the content)
    assert [type(o).__name__ for o in r.outputs] == ["PSObject", "str"] and r.outputs[1] == "v"
    r = run(rt, s, cmd("Get-ChildItem", Path="C:\\"), cmd("Measure-Object")).ok()
    assert r.outputs[0].properties["Count"] == 4  # inetpub, o.txt, ProgramData, Windows: piped, not written


def test_unknown_command(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Get-Foo"))
    assert r.failed().message.startswith("The term 'Get-Foo' is not recognized as the name of a cmdlet, function, "
                                      "script file, or operable program.")
    assert (r.failed().error_id, r.failed().category) == ("CommandNotFoundException", OBJECT_NOT_FOUND)
    assert r.failed().exception_type == "System.Management.Automation.CommandNotFoundException"


def test_role_scoping_iis_absent_on_the_user_portal_vm(rt: LabRuntime) -> None:
    r = run(rt, session(WASP, "AZURESTACK\\AzureStackAdmin"), cmd("Get-Website"))
    assert r.failed().error_id == "CommandNotFoundException"


@pytest.mark.parametrize("params, message, short", [
    ({"Nope": 1}, "A parameter cannot be found that matches parameter name 'Nope'.", "NamedParameterNotFound"),
    ({"P": "C:\\"}, "Parameter cannot be processed because the parameter name 'P' is ambiguous. Possible matches "
                    "include: -Path -PathType.", "AmbiguousParameter"),
    ({"PathType": "Dir", "Path": "C:\\"}, 'Cannot validate argument on parameter \'PathType\'. The argument "Dir" does '
     'not belong to the set "Any,Container,Leaf" specified by the ValidateSet attribute. Supply an argument that is in '
     'the set and then try the command again.', "ParameterArgumentValidationError"),
])
def test_binding_errors(rt: LabRuntime, params: dict[str, Any], message: str, short: str) -> None:
    r = run(rt, session(), cmd("Test-Path", **params))
    assert r.failed().message == message
    assert r.failed().error_id == f"{short},Microsoft.PowerShell.Commands.TestPathCommand"
    assert r.failed().category == INVALID_ARGUMENT
    assert r.failed().exception_type == "System.Management.Automation.ParameterBindingException"


def test_missing_mandatory_and_extra_positional(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Set-Content", Value="x"))
    assert r.failed().message == "Cannot process command because of one or more missing mandatory parameters: Path."
    r = run(rt, session(), cmd("Get-Website", "a", "b"))
    assert r.failed().message == "A positional parameter cannot be found that accepts argument 'b'."


def test_prefix_parameters_and_script_text_refused(rt: LabRuntime) -> None:
    assert run(rt, session(), cmd("Test-Path", Pa="C:\\Windows")).error is not None  # ambiguous Path/PathType
    assert run(rt, session(), cmd("Get-Website", Na="MgmtSvc-TenantSite")).ok().outputs
    r = run(rt, session(), cmd("Get-Website | Out-String", script=True))
    assert r.failed().error_id == "ScriptsNotSupportedByLabsim"


def test_get_item_certificate_and_iis_objects(rt: LabRuntime) -> None:
    out = run(rt, session(), cmd("Get-Item", Path="IIS:\\Sites\\MgmtSvc-TenantSite")).ok().outputs
    assert isinstance(out[0], PSObject) and out[0].properties["name"] == "MgmtSvc-TenantSite"


def test_registry_edits_for_drift(rt: LabRuntime) -> None:
    s = session()
    key = "HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI"
    run(rt, s, cmd("Set-ItemProperty", Path=key, Name="productcode", Value="{X}")).ok()
    out = run(rt, s, cmd("Get-ItemProperty", Path=key)).ok().outputs[0].properties
    assert out["ProductCode"] == "{X}" and "productcode" not in out  # the existing name's case is kept
    assert run(rt, s, cmd("New-ItemProperty", Path=key, Name="ProductCode", Value="{Y}")).errors
    run(rt, s, cmd("Remove-ItemProperty", Path=key, Name="ProductCode")).ok()
    assert run(rt, s, cmd("Get-ItemProperty", Path=key, Name="ProductCode")).errors
    assert run(rt, s, cmd("Set-ItemProperty", Path="HKLM:\\SOFTWARE\\Nope", Name="A", Value=1)).errors[0][
        "error_id"].startswith("PathNotFound,")


def test_web_config_edit_for_drift(rt: LabRuntime) -> None:
    s = session()
    run(rt, s, cmd("Set-WebConfigurationProperty", PSPath="IIS:\\Sites\\MgmtSvc-TenantSite",
                   Filter="appSettings/add[@key='Extra']", Name="value", Value="1")).ok()
    out = run(rt, s, cmd("Get-WebConfiguration", PSPath="IIS:\\Sites\\MgmtSvc-TenantSite",
                         Filter="appSettings/add")).ok()
    assert [(o.properties["key"], o.properties["value"]) for o in out.outputs] == [("Extra", "1")]
