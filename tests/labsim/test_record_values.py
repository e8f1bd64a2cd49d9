"""The values in labsim's records that a client reads or prints (labsim/records.py), as Windows PowerShell fills
them: the category line, target names and types, which members a written and a terminating record carry, the
exception's HResult, and what never goes into a record (secrets, byte arrays). Pure functions, no sockets."""

from __future__ import annotations

import pytest
from psrpcore.types import CommandTypes, ErrorCategory, PSObject

from labsim import records as R
from labsim.runtime import Invocation, SecretStr
from labsim.runtime import PSObject as LabObject

pytestmark = pytest.mark.unit

GET_ITEM = Invocation("Get-Item", parameters=(("Path", "C:\\missing"),))


def members(obj: PSObject) -> dict:
    return {p.name: p.get_value(obj) for p in obj.PSObject.extended_properties}


def adapted(obj: PSObject) -> dict:
    return {p.name: p.get_value(obj) for p in obj.PSObject.adapted_properties}


@pytest.mark.parametrize("target, name, type_name", [
    (None, "", ""), (True, "True", "Boolean"), (5, "5", "Int32"), ({"a": 1}, "System.Collections.Hashtable",
                                                                   "Hashtable"),
    (["a", "b"], "a b", "Object[]"), ("C:\\missing", "C:\\missing", "String"),
    (LabObject({}, ["Microsoft.IIs.PowerShell.Framework.ConfigurationElement"], to_string="site"), "site",
     "ConfigurationElement"),
    (LabObject({}, ["System.IO.FileInfo"]), "System.IO.FileInfo", "FileInfo"),
])
def test_a_targets_name_and_type_are_as_powershell_shows_them(target: object, name: str, type_name: str) -> None:
    assert R.target_name_and_type(target) == (name, type_name)


def test_category_fields_over_40_characters_are_shortened_in_the_middle() -> None:
    assert R.ellipsize("x" * 40) == "x" * 40
    assert R.ellipsize("a" * 15 + "b" * 11 + "c" * 15) == "a" * 15 + "..." + "c" * 15
    assert R.category_message(ErrorCategory.ObjectNotFound, "Get-Item", "ItemNotFoundException", "C:\\missing",
                              "String") == "ObjectNotFound: (C:\\missing:String) [Get-Item], ItemNotFoundException"


def test_a_written_record_as_windows_sends_it_for_get_item_on_a_missing_path() -> None:
    record = R.error_record("Cannot find path 'C:\\missing' because it does not exist.",
                            error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
                            category=int(ErrorCategory.ObjectNotFound), target="C:\\missing",
                            exception_type="System.Management.Automation.ItemNotFoundException", invocation=GET_ITEM)
    m = members(record)
    assert m["writeErrorStream"] is True and m["SerializeExtendedInfo"] is True and "PSMessageDetails" in m
    assert m["ErrorCategory_Category"] == int(ErrorCategory.ObjectNotFound)
    assert (m["ErrorCategory_Activity"], m["ErrorCategory_Reason"]) == ("Get-Item", "ItemNotFoundException")
    assert (m["ErrorCategory_TargetName"], m["ErrorCategory_TargetType"]) == ("C:\\missing", "String")
    assert m["ErrorCategory_Message"] == "ObjectNotFound: (C:\\missing:String) [Get-Item], ItemNotFoundException"
    assert m["InvocationInfo_InvocationName"] == "Get-Item" and m["CommandInfo_Name"] == "Get-Item"
    assert (m["CommandInfo_CommandType"], m["CommandInfo_Definition"]) == (CommandTypes.Cmdlet, "Get-Item")
    assert (m["InvocationInfo_PipelineLength"], m["InvocationInfo_PipelinePosition"]) == (1, 1)
    assert m["InvocationInfo_HistoryId"] == 1 and m["InvocationInfo_ExpectingInput"] is False
    assert "ErrorDetails_ScriptStackTrace" not in m  # a cmdlet has no script stack
    exc = adapted(m["Exception"])
    assert exc["ItemName"] == "C:\\missing" and exc["SessionStateCategory"] == "Drive"
    assert exc["HResult"] == -2146233087 and exc["WasThrownFromThrowStatement"] is False
    assert list(exc)[-8:] == ["Message", "Data", "InnerException", "TargetSite", "StackTrace", "HelpLink", "Source",
                              "HResult"]
    assert dict(m["InvocationInfo_BoundParameters"]) == {"Path": "C:\\missing"}


def test_the_record_of_a_terminating_error_has_no_stream_members() -> None:
    record = R.error_record("boom", error_id="X", category=int(ErrorCategory.InvalidOperation), target=None,
                            exception_type=R.RUNTIME_EXCEPTION, invocation=GET_ITEM, written=False)
    m = members(record)
    assert "writeErrorStream" not in m and "PSMessageDetails" not in m and m["SerializeExtendedInfo"] is False
    assert "InvocationInfo_InvocationName" not in m and "PipelineIterationInfo" not in m
    assert m["InvocationInfo"] is not None


def test_errors_before_any_command_ran_have_no_invocation_and_no_activity() -> None:
    record = R.error_record("The term 'Get-Nothing' is not recognized", error_id="CommandNotFoundException",
                            category=int(ErrorCategory.ObjectNotFound), target="Get-Nothing",
                            exception_type="System.Management.Automation.CommandNotFoundException",
                            invocation=Invocation("Get-Nothing"))
    m = members(record)
    assert m["InvocationInfo"] is None and m["ErrorCategory_Activity"] == "" and m["SerializeExtendedInfo"] is False
    assert adapted(m["Exception"])["CommandName"] == "Get-Nothing"


def test_an_unknown_category_is_not_specified_and_a_script_has_a_stack_trace() -> None:
    script = Invocation("C:\\temp\\WAPConnector\\Setup\\Scripts\\Install-Connector.ps1", kind="ExternalScript")
    record = R.error_record("x", error_id="X", category=9999, target=None, exception_type="System.IO.IOException",
                            invocation=script)
    m = members(record)
    assert m["ErrorCategory_Category"] == int(ErrorCategory.NotSpecified)
    assert m["ErrorCategory_Activity"] == "Install-Connector.ps1"
    assert m["ErrorDetails_ScriptStackTrace"] == "at <ScriptBlock>, <No file>: line 1"
    # a script is named as one: its type, and its path as its definition
    assert (m["CommandInfo_CommandType"], m["CommandInfo_Definition"]) == (CommandTypes.ExternalScript, script.name)
    exc = adapted(m["Exception"])
    assert exc["HResult"] == -2146232800 and "ErrorRecord" not in exc  # an IOException is no RuntimeException


def test_no_secret_or_byte_array_is_echoed_in_bound_parameters() -> None:
    invocation = Invocation("Import-PfxCertificate", parameters=(
        ("FilePath", "C:\\temp\\x.pfx"), ("Password", SecretStr("Pfx-Secret-1")), ("Value", b"\x00\x01"),
        ("Exportable", True), ("Count", 3)))
    record = R.informational_record("Verbose", "importing", invocation)
    m = members(record)
    assert dict(m["InvocationInfo_BoundParameters"]) == {"FilePath": "C:\\temp\\x.pfx", "Exportable": True,
                                                         "Count": 3}
    assert m["InformationalRecord_SerializeInvocationInfo"] is True and m["InformationalRecord_Message"] == "importing"
    assert record.PSObject.type_names[:2] == ["System.Management.Automation.VerboseRecord",
                                              "System.Management.Automation.InformationalRecord"]


def test_a_record_without_invocation_info_says_so() -> None:
    m = members(R.informational_record("Warning", "careful", None))
    assert m == {"InformationalRecord_Message": "careful", "InformationalRecord_SerializeInvocationInfo": False}


def test_a_hosts_process_id_is_stable_and_plausible() -> None:
    assert R.host_process_id("wapcomputer1") == R.host_process_id("wapcomputer1")
    assert all(1000 <= R.host_process_id(f"host{i}") < 9000 for i in range(50))
    assert len({R.host_process_id(f"host{i}") for i in range(50)}) > 40
