"""The exceptions inside labsim's error records (labsim/records.py) as .NET defines them: each type's base types
in order (what a client's ``-is`` and catch blocks test), its HResult (corerror.h / winerror.h), and the members
only its own type carries. Pure functions, no sockets."""

from __future__ import annotations

from typing import Any

import pytest
from psrpcore.types import ErrorCategory

from labsim import records as R
from labsim.runtime import Invocation

pytestmark = pytest.mark.unit

SMA = "System.Management.Automation"
RUNTIME = [f"{SMA}.RuntimeException", "System.SystemException", "System.Exception"]

# Each type's base types, most specific first, as .NET's documentation lists its inheritance.
BASES = {
    f"{SMA}.RuntimeException": ["System.SystemException", "System.Exception"],
    f"{SMA}.ItemNotFoundException": [f"{SMA}.SessionStateException", *RUNTIME],
    f"{SMA}.CommandNotFoundException": RUNTIME,
    f"{SMA}.ParameterBindingException": RUNTIME,
    f"{SMA}.ParseException": RUNTIME,
    f"{SMA}.PSArgumentException": ["System.ArgumentException", "System.SystemException", "System.Exception"],
    "System.IO.IOException": ["System.SystemException", "System.Exception"],
    "System.IO.FileNotFoundException": ["System.IO.IOException", "System.SystemException", "System.Exception"],
    "System.IO.DirectoryNotFoundException": ["System.IO.IOException", "System.SystemException", "System.Exception"],
    "System.UnauthorizedAccessException": ["System.SystemException", "System.Exception"],
    "System.ComponentModel.Win32Exception": ["System.Runtime.InteropServices.ExternalException",
                                             "System.SystemException", "System.Exception"],
    "System.Security.Cryptography.CryptographicException": ["System.SystemException", "System.Exception"],
    "System.Data.SqlClient.SqlException": ["System.Data.Common.DbException",
                                           "System.Runtime.InteropServices.ExternalException",
                                           "System.SystemException", "System.Exception"],
    "Microsoft.PowerShell.Commands.WriteErrorException": ["System.SystemException", "System.Exception"],
}

# HRESULTs as the 32-bit values Windows serializes (signed): COR_E_* from corerror.h, E_* from winerror.h.
HRESULTS = {
    "System.IO.IOException": 0x80131620,  # COR_E_IO
    "System.IO.FileNotFoundException": 0x80070002,  # COR_E_FILENOTFOUND (ERROR_FILE_NOT_FOUND)
    "System.IO.DirectoryNotFoundException": 0x80070003,  # COR_E_DIRECTORYNOTFOUND (ERROR_PATH_NOT_FOUND)
    "System.UnauthorizedAccessException": 0x80070005,  # COR_E_UNAUTHORIZEDACCESS (E_ACCESSDENIED)
    f"{SMA}.PSArgumentException": 0x80070057,  # COR_E_ARGUMENT (E_INVALIDARG)
    "System.ComponentModel.Win32Exception": 0x80004005,  # E_FAIL
    "System.Data.SqlClient.SqlException": 0x80131904,  # SqlException's HResult
    f"{SMA}.RuntimeException": 0x80131501,  # COR_E_SYSTEM, as recorded (cmdlet_error_record.xml)
    f"{SMA}.ItemNotFoundException": 0x80131501,
    "System.Security.Cryptography.CryptographicException": 0x80131501,
}


def signed(hresult: int) -> int:
    return hresult - (1 << 32) if hresult & 0x80000000 else hresult


def exception_members(exception_type: str, target: Any = "C:\\temp\\x") -> dict[str, Any]:
    record = R.error_record("it failed", error_id="X", category=int(ErrorCategory.NotSpecified), target=target,
                            exception_type=exception_type, invocation=Invocation("Get-Item"))
    exc = next(p.get_value(record) for p in record.PSObject.extended_properties if p.name == "Exception")
    return {p.name: p.get_value(exc) for p in exc.PSObject.adapted_properties}


@pytest.mark.parametrize("exception_type", sorted(BASES))
def test_each_exception_carries_its_dotnet_base_types_in_order(exception_type: str) -> None:
    assert R.exception_types(exception_type) == [exception_type, *BASES[exception_type], "System.Object"]


def test_a_type_labsim_does_not_know_is_taken_as_a_runtime_exception() -> None:
    assert R.exception_types("Contoso.WapException") == ["Contoso.WapException", *RUNTIME, "System.Object"]
    assert R.exception_types(f"{SMA}.RuntimeException").count(f"{SMA}.RuntimeException") == 1


@pytest.mark.parametrize("exception_type", sorted(HRESULTS))
def test_each_exception_has_the_hresult_windows_gives_its_type(exception_type: str) -> None:
    assert exception_members(exception_type)["HResult"] == signed(HRESULTS[exception_type])


def test_only_runtime_exceptions_point_back_at_their_record() -> None:
    for exception_type in BASES:
        members = exception_members(exception_type)
        runtime = f"{SMA}.RuntimeException" in R.exception_types(exception_type)
        assert ("ErrorRecord" in members) is runtime, exception_type
        assert ("WasThrownFromThrowStatement" in members) is runtime, exception_type
        if runtime:
            assert members["ErrorRecord"] == "it failed" and members["WasThrownFromThrowStatement"] is False


def test_the_members_of_each_type_come_before_system_exceptions() -> None:
    base = ["Message", "Data", "InnerException", "TargetSite", "StackTrace", "HelpLink", "Source", "HResult"]
    own = {
        "System.IO.FileNotFoundException": ["FileName", "FusionLog"],
        f"{SMA}.PSArgumentException": ["ParamName"],
        f"{SMA}.CommandNotFoundException": ["ErrorRecord", "CommandName", "WasThrownFromThrowStatement"],
        f"{SMA}.ItemNotFoundException": ["ErrorRecord", "ItemName", "SessionStateCategory",
                                         "WasThrownFromThrowStatement"],
        # ParseException overrides Message: it moves ahead of RuntimeException's members (script_refused_state.xml).
        f"{SMA}.ParseException": ["Errors", "Message", "ErrorRecord", "WasThrownFromThrowStatement"],
        "System.IO.IOException": [],
    }
    for exception_type, members in own.items():
        names = list(exception_members(exception_type))
        assert names == members + [m for m in base if m not in members], exception_type
    found = exception_members("System.IO.FileNotFoundException", target="C:\\temp\\WAPConnector.zip")
    assert (found["FileName"], found["FusionLog"]) == ("C:\\temp\\WAPConnector.zip", None)
    assert exception_members(f"{SMA}.PSArgumentException")["ParamName"] is None
    # No target: each type's name member is empty, never absent.
    assert exception_members(f"{SMA}.CommandNotFoundException", target=None)["CommandName"] == ""
    assert exception_members(f"{SMA}.ItemNotFoundException", target=None)["ItemName"] == ""
    assert exception_members("System.IO.FileNotFoundException", target=None)["FileName"] == ""


def test_an_exception_without_recorded_frames_has_none() -> None:
    members = exception_members("System.IO.IOException")
    assert (members["TargetSite"], members["StackTrace"], members["Source"], members["HelpLink"],
            members["InnerException"]) == (None, None, None, None, None)
    assert members["Message"] == "it failed"
    assert members["Data"].PSObject.type_names == ["System.Collections.ListDictionaryInternal", "System.Object"]
