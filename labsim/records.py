"""The records a Windows PowerShell 5.1 server sends, shaped as Windows shapes them: error records, verbose /
warning records, information records and the pool's PSVersionTable.

Every shape here is derived from recorded Windows exchanges (pypsrp's test suite replays them; the parts labsim
compares against live in ``tests/conformance/recordings/``, each naming its source file) and from PowerShell's
documented types ([MS-PSRP] 2.2.3.15 ErrorRecord, 2.2.3.16 InformationalRecord, 2.2.2.26 InformationRecord,
2.2.3.15.1 InvocationInfo). docs/labsim.md lists which recording backs which behaviour and which values are
inferred. psrpcore's own record classes are not used: they omit members Windows sends (``writeErrorStream``,
``PSMessageDetails``), write ``ErrorCategory_Message`` without the colon and send information records without
Windows' typed Tags.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

from psrpcore.types import (
    CommandOrigin,
    CommandTypes,
    ErrorCategory,
    PSDateTime,
    PSDict,
    PSInt,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSPrimitiveDictionary,
    PSString,
    PSUInt,
    PSVersion,
    SessionStateEntryVisibility,
    add_note_property,
)

from labsim import convert
from labsim.runtime import Invocation, SecretStr
from labsim.runtime import PSObject as LabObject
from labsim.windows import DEFAULT_RELEASE, WindowsRelease

_MSCORLIB = "mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
_OBJECT = "System.Object"
RUNTIME_EXCEPTION = "System.Management.Automation.RuntimeException"

# -- exceptions -----------------------------------------------------------------------------------------------
# .NET base types of every exception labsim raises (most specific first, without the type itself), and the
# type-specific members each carries on top of System.Exception's. Only RuntimeException descendants carry
# ErrorRecord / WasThrownFromThrowStatement: Win32Exception, IOException and friends do not (the recording's
# WriteErrorException is a SystemException with no RuntimeException in its chain).
_EXCEPTION_BASES: dict[str, tuple[str, ...]] = {
    RUNTIME_EXCEPTION: ("System.SystemException", "System.Exception"),
    "System.Management.Automation.ItemNotFoundException": (
        "System.Management.Automation.SessionStateException", RUNTIME_EXCEPTION, "System.SystemException",
        "System.Exception"),
    "System.Management.Automation.CommandNotFoundException": (RUNTIME_EXCEPTION, "System.SystemException",
                                                              "System.Exception"),
    "System.Management.Automation.ParameterBindingException": (RUNTIME_EXCEPTION, "System.SystemException",
                                                               "System.Exception"),
    "System.Management.Automation.ParseException": (RUNTIME_EXCEPTION, "System.SystemException",
                                                    "System.Exception"),
    "System.Management.Automation.PSArgumentException": ("System.ArgumentException", "System.SystemException",
                                                         "System.Exception"),
    "System.IO.IOException": ("System.SystemException", "System.Exception"),
    "System.IO.FileNotFoundException": ("System.IO.IOException", "System.SystemException", "System.Exception"),
    "System.IO.DirectoryNotFoundException": ("System.IO.IOException", "System.SystemException",
                                             "System.Exception"),
    "System.UnauthorizedAccessException": ("System.SystemException", "System.Exception"),
    "System.ComponentModel.Win32Exception": ("System.Runtime.InteropServices.ExternalException",
                                             "System.SystemException", "System.Exception"),
    "System.Security.Cryptography.CryptographicException": ("System.SystemException", "System.Exception"),
    "System.Data.SqlClient.SqlException": ("System.Data.Common.DbException",
                                           "System.Runtime.InteropServices.ExternalException",
                                           "System.SystemException", "System.Exception"),
    "Microsoft.PowerShell.Commands.WriteErrorException": ("System.SystemException", "System.Exception"),
}
# HResult per type (COR_E_* from corerror.h); the default is COR_E_SYSTEM (-2146233087), the recording's value.
_HRESULTS = {
    "System.IO.IOException": -2146232800, "System.IO.FileNotFoundException": -2147024894,
    "System.IO.DirectoryNotFoundException": -2147024893, "System.UnauthorizedAccessException": -2147024891,
    "System.Management.Automation.PSArgumentException": -2147024809,
    "System.ComponentModel.Win32Exception": -2147467259, "System.Data.SqlClient.SqlException": -2146232060,
}


# Where PowerShell throws the exceptions whose frames a recording shows (TargetSite, StackTrace); every other
# exception goes with Nil frames, as the recording's WriteErrorException (labsim invents no .NET stack).
_THROWN_AT: dict[str, tuple[str, str]] = {
    # A NoLanguage session refusing script text (script_refused_state.xml).
    "System.Management.Automation.ParseException": (
        "System.Management.Automation.CommandProcessorBase CreateCommandProcessor(System.Management.Automation."
        "ExecutionContext, System.Management.Automation.CommandFactory, Boolean, System.Management.Automation."
        "CommandOrigin)",
        "   at System.Management.Automation.Runspaces.Command.CreateCommandProcessor(ExecutionContext "
        "executionContext, CommandFactory commandFactory, Boolean addToHistory, CommandOrigin origin)\r\n"
        "   at System.Management.Automation.Runspaces.LocalPipeline.CreatePipelineProcessor()\r\n"
        "   at System.Management.Automation.Runspaces.LocalPipeline.InvokeHelper()\r\n"
        "   at System.Management.Automation.Runspaces.LocalPipeline.InvokeThreadProc()"),
}


def exception_types(exception_type: str) -> list[str]:
    """The type-name chain Windows serializes for an exception (unknown types are taken as RuntimeExceptions)."""
    bases = _EXCEPTION_BASES.get(exception_type, (RUNTIME_EXCEPTION, "System.SystemException", "System.Exception"))
    return list(dict.fromkeys([exception_type, *bases, _OBJECT]))


def _exception(message: str, exception_type: str, *, target: Any, error_record: Any) -> PSObject:
    chain = exception_types(exception_type)
    exc = PSObject()
    exc.PSObject.type_names = chain
    thrown_at = _THROWN_AT.get(exception_type)
    exc.PSObject.to_string = f"{exception_type}: {message}" + (f"\r\n{thrown_at[1]}" if thrown_at else "")
    data = PSDict()
    data.PSObject.type_names = ["System.Collections.ListDictionaryInternal", _OBJECT]
    props: list[tuple[str, Any]] = []
    message_member = ("Message", PSString(message))
    # Type-specific members first, as .NET's reflection lists a derived type's properties before its base's.
    if exception_type == "System.Management.Automation.ParseException":
        # ParseException overrides Message, which moves it ahead of RuntimeException's members
        # (script_refused_state.xml); Errors is Nil when the parser did not run (a NoLanguage refusal).
        props += [("Errors", None), message_member, ("ErrorRecord", error_record),
                  ("WasThrownFromThrowStatement", False)]
    elif RUNTIME_EXCEPTION in chain:
        props.append(("ErrorRecord", error_record))
        if exception_type == "System.Management.Automation.CommandNotFoundException":
            props.append(("CommandName", PSString(str(target or ""))))
        if exception_type == "System.Management.Automation.ItemNotFoundException":
            props += [("ItemName", PSString(str(target or ""))), ("SessionStateCategory", PSString("Drive"))]
        props.append(("WasThrownFromThrowStatement", False))
    if exception_type == "System.Management.Automation.PSArgumentException":
        props.append(("ParamName", None))
    if exception_type in ("System.IO.FileNotFoundException",):
        props += [("FileName", PSString(str(target or ""))), ("FusionLog", None)]
    if message_member not in props:
        props.append(message_member)
    props += [("Data", data), ("InnerException", None),
              ("TargetSite", PSString(thrown_at[0]) if thrown_at else None),
              ("StackTrace", PSString(thrown_at[1]) if thrown_at else None), ("HelpLink", None),
              ("Source", PSString("System.Management.Automation") if thrown_at else None),
              ("HResult", PSInt(_HRESULTS.get(exception_type, -2146233087)))]
    for name, value in props:
        exc.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    return exc


# -- invocation info -----------------------------------------------------------------------------------------
_COMMAND_TYPES = {"Cmdlet": CommandTypes.Cmdlet, "ExternalScript": CommandTypes.ExternalScript,
                  "Function": CommandTypes.Function, "Script": CommandTypes.Script}


def _typed(type_name: str, value: PSList | PSDict) -> Any:
    value.PSObject.type_names = [type_name, _OBJECT]
    return value


def _int_array(values: list[int]) -> PSList:
    arr = PSList(PSInt(v) for v in values)
    arr.PSObject.type_names = ["System.Int32[]", "System.Array", _OBJECT]
    return arr


def _bound_parameters(invocation: Invocation, dictionary_type: str) -> PSDict:
    """The bound parameters with scalar values. Windows also sends SecureStrings, credentials and byte arrays;
    labsim leaves those out (no secret in any record, no megabyte upload echoed back): docs/labsim.md."""
    bound = PSDict()
    for name, value in invocation.parameters:
        if isinstance(value, SecretStr) or not isinstance(value, (str, int, float, bool)):
            continue
        bound[PSString(name)] = convert.to_psrp(value)
    bound.PSObject.type_names = ([dictionary_type] if dictionary_type != _DICTIONARY else []) + [_DICTIONARY, _OBJECT]
    return bound


_DICTIONARY = f"System.Collections.Generic.Dictionary`2[[System.String, {_MSCORLIB}],[System.Object, {_MSCORLIB}]]"
_BOUND_DICTIONARY = "System.Management.Automation.PSBoundParametersDictionary"
_UNBOUND_LIST = f"System.Collections.Generic.List`1[[System.Object, {_MSCORLIB}]]"
_ITERATION_COLLECTION = f"System.Collections.ObjectModel.ReadOnlyCollection`1[[System.Int32, {_MSCORLIB}]]"


def _iteration_info(invocation: Invocation) -> list[int]:
    # One counter per pipeline position plus one (inferred values: Windows counts objects processed).
    return [0] * (invocation.length + 1)


def _add_invocation_members(obj: PSObject, invocation: Invocation, bound: PSDict, unbound: PSList) -> None:
    """The flattened InvocationInfo_* / CommandInfo_* members ([MS-PSRP] 2.2.3.15.1), in Windows' order."""
    add_note_property(obj, "InvocationInfo_BoundParameters", bound)
    add_note_property(obj, "InvocationInfo_CommandOrigin", CommandOrigin.Runspace)
    add_note_property(obj, "InvocationInfo_ExpectingInput", False)
    add_note_property(obj, "InvocationInfo_InvocationName", PSString(invocation.name))
    add_note_property(obj, "InvocationInfo_Line", PSString(""))
    add_note_property(obj, "InvocationInfo_OffsetInLine", PSInt(0))
    add_note_property(obj, "InvocationInfo_HistoryId", PSInt64(1))
    add_note_property(obj, "InvocationInfo_PipelineIterationInfo", _int_array(_iteration_info(invocation)))
    add_note_property(obj, "InvocationInfo_PipelineLength", PSInt(invocation.length))
    add_note_property(obj, "InvocationInfo_PipelinePosition", PSInt(invocation.position))
    add_note_property(obj, "InvocationInfo_PSScriptRoot", PSString(""))
    add_note_property(obj, "InvocationInfo_PSCommandPath", None)
    add_note_property(obj, "InvocationInfo_PositionMessage", PSString(""))
    add_note_property(obj, "InvocationInfo_ScriptLineNumber", PSInt(0))
    add_note_property(obj, "InvocationInfo_ScriptName", PSString(""))
    add_note_property(obj, "InvocationInfo_UnboundArguments", unbound)
    add_note_property(obj, "SerializeExtent", False)
    add_note_property(obj, "CommandInfo_CommandType", _COMMAND_TYPES.get(invocation.kind, CommandTypes.Cmdlet))
    add_note_property(obj, "CommandInfo_Definition", PSString(invocation.name))
    add_note_property(obj, "CommandInfo_Name", PSString(invocation.display_name))
    add_note_property(obj, "CommandInfo_Visibility", SessionStateEntryVisibility.Public)


def _invocation_info_object(invocation: Invocation, bound: PSDict, unbound: PSList) -> PSObject:
    """ErrorRecord.InvocationInfo as Windows serializes it at depth 1 (Props, members as plain values)."""
    info = PSObject()
    info.PSObject.type_names = ["System.Management.Automation.InvocationInfo", _OBJECT]
    info.PSObject.to_string = "System.Management.Automation.InvocationInfo"
    for name, value in (("MyCommand", PSString(invocation.display_name)), ("BoundParameters", bound),
                        ("UnboundArguments", unbound), ("ScriptLineNumber", PSInt(0)), ("OffsetInLine", PSInt(0)),
                        ("HistoryId", PSInt64(1)), ("ScriptName", PSString("")), ("Line", PSString("")),
                        ("PositionMessage", PSString("")), ("PSScriptRoot", PSString("")), ("PSCommandPath", None),
                        ("InvocationName", PSString(invocation.name)), ("PipelineLength", PSInt(invocation.length)),
                        ("PipelinePosition", PSInt(invocation.position)), ("ExpectingInput", False),
                        ("CommandOrigin", PSString("Runspace")), ("DisplayScriptPosition", None)):
        info.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    return info


# -- error records --------------------------------------------------------------------------------------------
def target_name_and_type(target: Any) -> tuple[str, str]:
    """ErrorCategoryInfo.TargetName / TargetType for a target object: its string form and .NET type name."""
    if target is None:
        return "", ""
    if isinstance(target, LabObject):
        shown = target.to_string if target.to_string is not None else target.type_names[0]
        return shown, target.type_names[0].rsplit(".", 1)[-1]
    if isinstance(target, bool):
        return str(target), "Boolean"
    if isinstance(target, int):
        return str(target), "Int32"
    if isinstance(target, dict):
        return "System.Collections.Hashtable", "Hashtable"
    if isinstance(target, (list, tuple)):
        return " ".join(str(t) for t in target), "Object[]"
    return str(target), "String"


def ellipsize(text: str) -> str:
    """PowerShell shortens a category field over 40 characters in the middle: 15 characters, "...", 15."""
    return text if len(text) <= 40 else f"{text[:15]}...{text[-15:]}"


def category_message(category: ErrorCategory, activity: str, reason: str, target_name: str, target_type: str) -> str:
    """ErrorCategoryInfo.GetMessage(): ``ObjectNotFound: (C:\\missing:String) [Get-Item], ItemNotFoundException``;
    activity, target name and type shortened as PowerShell does (the reason, an exception type name, is not)."""
    return f"{category.name}: ({ellipsize(target_name)}:{ellipsize(target_type)}) [{ellipsize(activity)}], {reason}"


# Errors raised before any command ran: no command, so no InvocationInfo and an empty Activity.
_BEFORE_ANY_COMMAND = ("System.Management.Automation.ParseException",
                       "System.Management.Automation.CommandNotFoundException")


def error_record(message: str, *, error_id: str, category: int, target: Any, exception_type: str,
                 invocation: Invocation | None, written: bool = True, extended: bool | None = None) -> PSObject:
    """An ErrorRecord as Windows serializes it. ``written``: it went to the error stream (WriteError), as opposed
    to the record of a terminating error carried by the Failed PipelineState. ``extended``: the InvocationInfo_* /
    CommandInfo_* members are serialized (SerializeExtendedInfo); the client asks for them on the error stream
    (RemoteStreamOptions), and Windows never sends them in a Failed PipelineState. Default: ``written``."""
    try:
        cat = ErrorCategory(category)
    except ValueError:
        cat = ErrorCategory.NotSpecified
    if exception_type in _BEFORE_ANY_COMMAND:
        invocation = None
    serialize_extended = (written if extended is None else extended) and invocation is not None
    reason = exception_type.rsplit(".", 1)[-1]
    activity = invocation.display_name if invocation is not None else ""
    target_name, target_type = target_name_and_type(target)

    record = PSObject()
    record.PSObject.type_names = ["System.Management.Automation.ErrorRecord", _OBJECT]
    record.PSObject.to_string = message
    if written:
        add_note_property(record, "writeErrorStream", True)
    # The exception's ErrorRecord member points back at a record with the same identity; Windows serializes it
    # at depth 1 as the record's string form.
    add_note_property(record, "Exception", _exception(message, exception_type, target=target,
                                                      error_record=PSString(message)))
    add_note_property(record, "TargetObject", convert.to_psrp(target))
    add_note_property(record, "FullyQualifiedErrorId", PSString(error_id))
    members: tuple[Invocation, PSDict, PSList] | None = None
    if invocation is not None:
        bound = _bound_parameters(invocation, _DICTIONARY)
        unbound = _typed(_UNBOUND_LIST, PSList())
        members = (invocation, bound, unbound)
        add_note_property(record, "InvocationInfo", _invocation_info_object(invocation, bound, unbound))
    else:
        add_note_property(record, "InvocationInfo", None)
    add_note_property(record, "ErrorCategory_Category", PSInt(int(cat.value)))
    add_note_property(record, "ErrorCategory_Activity", PSString(activity))
    add_note_property(record, "ErrorCategory_Reason", PSString(reason))
    add_note_property(record, "ErrorCategory_TargetName", PSString(target_name))
    add_note_property(record, "ErrorCategory_TargetType", PSString(target_type))
    add_note_property(record, "ErrorCategory_Message", PSString(category_message(cat, activity, reason, target_name,
                                                                                 target_type)))
    add_note_property(record, "SerializeExtendedInfo", serialize_extended)
    if members is not None and serialize_extended:
        _add_invocation_members(record, *members)
        iteration = PSList(PSInt(v) for v in _iteration_info(members[0]))
        add_note_property(record, "PipelineIterationInfo", _typed(_ITERATION_COLLECTION, iteration))
    if invocation is not None and invocation.kind != "Cmdlet":
        # Only script code has a script stack (a cmdlet's record has none: cmdlet_error_record.xml); the frame
        # text of a function or .ps1 is inferred.
        add_note_property(record, "ErrorDetails_ScriptStackTrace", PSString("at <ScriptBlock>, <No file>: line 1"))
    if written:  # the Failed PipelineState's record has no PSMessageDetails
        add_note_property(record, "PSMessageDetails", None)
    return record


# -- verbose / warning / debug -------------------------------------------------------------------------------
def informational_record(kind: str, message: str, invocation: Invocation | None) -> PSObject:
    """A Verbose/Warning/Debug record ([MS-PSRP] 2.2.3.16) with its invocation info when the client asked."""
    record = PSObject()
    record.PSObject.type_names = [f"System.Management.Automation.{kind}Record",
                                  "System.Management.Automation.InformationalRecord", _OBJECT]
    record.PSObject.to_string = message
    add_note_property(record, "InformationalRecord_Message", PSString(message))
    add_note_property(record, "InformationalRecord_SerializeInvocationInfo", invocation is not None)
    if invocation is not None:
        bound = _bound_parameters(invocation, _BOUND_DICTIONARY)
        _add_invocation_members(record, invocation, bound, _typed(_UNBOUND_LIST, PSList()))
        iteration = PSList(PSInt(v) for v in _iteration_info(invocation))
        add_note_property(record, "InformationalRecord_PipelineIterationInfo",
                          _typed(_ITERATION_COLLECTION, iteration))
    return record


# -- information records -------------------------------------------------------------------------------------
class _UtcOffset(dt.tzinfo):
    """UTC written as ``+00:00`` (as Windows writes TimeGenerated), not ``Z``."""

    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def dst(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, d: dt.datetime | None) -> str:
        return "UTC"


_UTC = _UtcOffset()
_THREAD_IDS = threading.local()


def host_process_id(computer: str) -> int:
    """The wsmprovhost.exe process id a host's sessions run in: stable per host, like a real long-lived process."""
    return 1000 + int(hashlib.sha256(computer.encode()).hexdigest()[:4], 16) % 8000


def information_record(message_data: Any, *, source: str, user: str, computer: str,
                       now: dt.datetime | None = None) -> PSObject:
    """An InformationRecord message ([MS-PSRP] 2.2.2.26): an Obj with no type names, as Windows sends it."""
    t = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    generated = PSDateTime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=_UTC,
                           nanosecond=100 * (t.microsecond % 10) or 100)
    record = PSObject()
    record.PSObject.type_names = []
    add_note_property(record, "MessageData", convert.to_psrp(message_data))
    add_note_property(record, "Source", PSString(source))
    add_note_property(record, "TimeGenerated", generated)
    add_note_property(record, "Tags", _typed(f"System.Collections.Generic.List`1[[System.String, {_MSCORLIB}]]",
                                             PSList()))
    add_note_property(record, "User", PSString(user))
    add_note_property(record, "Computer", PSString(computer))
    add_note_property(record, "ProcessId", PSUInt(host_process_id(computer)))
    native = getattr(_THREAD_IDS, "native", None)
    if native is None:
        native = _THREAD_IDS.native = 2000 + threading.get_ident() % 6000
    add_note_property(record, "NativeThreadId", PSUInt(native))
    add_note_property(record, "ManagedThreadId", PSUInt(10))
    return record


# -- pool data ------------------------------------------------------------------------------------------------
# The keys, their order and types are the recording's (a 5.1 host); a release's values are in labsim/windows.py.
PS_VERSION = DEFAULT_RELEASE.ps_version
BUILD_VERSION = DEFAULT_RELEASE.build_version


def ps_version_table(release: WindowsRelease = DEFAULT_RELEASE) -> PSPrimitiveDictionary:
    """$PSVersionTable as a server of ``release`` sends it in ApplicationPrivateData (no PSEdition before 5.1,
    PSCompatibleVersions up to its own version)."""
    table = PSPrimitiveDictionary()
    table["PSVersion"] = PSVersion(release.ps_version)
    if release.has_edition:
        table["PSEdition"] = PSString("Desktop")
    compatible = PSList(PSVersion(v) for v in release.compatible_versions)
    compatible.PSObject.type_names = ["System.Version[]", "System.Array", _OBJECT]
    table["PSCompatibleVersions"] = compatible
    table["CLRVersion"] = PSVersion(release.clr_version)
    table["BuildVersion"] = PSVersion(release.build_version)
    table["WSManStackVersion"] = PSVersion("3.0")
    table["PSRemotingProtocolVersion"] = PSVersion(release.protocol_version)
    table["SerializationVersion"] = PSVersion("1.1.0.1")
    return table


def application_private_data(release: WindowsRelease = DEFAULT_RELEASE) -> dict[str, Any]:
    data = PSPrimitiveDictionary()
    data["PSVersionTable"] = ps_version_table(release)
    return data
