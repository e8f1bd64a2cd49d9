"""The aspects of the wire on which labsim is compared with recorded Windows exchanges: one named comparison each,
with the recording that backs it.

Structural comparisons look at element names and attributes, object type names, member names and their CLIXML
types, dictionary keys; values are compared only where the value is the behaviour (fault codes and texts,
ExitCode, timeouts, the refused script's message). ``differs`` names an aspect labsim does not match yet and why:
its test expects the comparison to fail, so the day labsim matches, the list must be updated.

``python -m pytest tests/conformance`` prints how many aspects match (and writes it to .state/conformance/).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from .clixml_shape import (
    UTF8_BOM,
    clixml_shape,
    element_paths,
    fragments,
    members,
    messages,
    part,
    recording,
    values,
)
from .wire import (
    APPLICATION_PRIVATE_DATA,
    REFUSED_SCRIPT,
    RUNSPACEPOOL_STATE,
    SESSION_CAPABILITY,
    Exchange,
    Wire,
)

S = "{http://www.w3.org/2003/05/soap-envelope}"
A = "{http://schemas.xmlsoap.org/ws/2004/08/addressing}"
P = "{http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd}"
RSP = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
F = "{http://schemas.microsoft.com/wbem/wsman/1/wsmanfault}"
ADDRESSING_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
WSMAN_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"


@dataclass(frozen=True)
class Aspect:
    name: str
    recording: str  # file under recordings/ (several: comma-separated)
    check: Callable[[Wire], None]
    differs: str | None = None  # why labsim does not match yet


ASPECTS: list[Aspect] = []


def aspect(name: str, recording: str, *,
           differs: str | None = None) -> Callable[[Callable[[Wire], None]], Callable[[Wire], None]]:
    def register(fn: Callable[[Wire], None]) -> Callable[[Wire], None]:
        ASPECTS.append(Aspect(name, recording, fn, differs))
        return fn
    return register


# -- helpers ----------------------------------------------------------------------------------------------------
def windows_envelope(name: str) -> ET.Element:
    return ET.fromstring(recording(name).split("-->", 1)[1].strip())


def windows_shape(name: str) -> tuple:
    return clixml_shape(recording(name))


def body(root: ET.Element) -> ET.Element:
    found = root.find(f"{S}Body")
    assert found is not None
    return found


def header_tags(root: ET.Element) -> list[str]:
    header = root.find(f"{S}Header")
    assert header is not None
    return [child.tag for child in header]


def same_body(ours: Exchange, windows: str) -> None:
    assert element_paths(body(ours.root)) == element_paths(body(windows_envelope(windows)))


def text(root: ET.Element, path: str) -> str:
    el = root.find(path)
    assert el is not None, path
    return el.text or ""


def fault_parts(root: ET.Element) -> dict[str, str]:
    """What a client reads from a fault: action, code/subcode, reason, WSManFault code and message."""
    detail = root.find(f".//{S}Detail/{F}WSManFault")
    assert detail is not None
    message = detail.find(f"{F}Message")
    assert message is not None
    inner = message.find(f".//{F}WSManFault/{F}Message")
    return {"action": text(root, f"{S}Header/{A}Action"), "code": text(root, f".//{S}Code/{S}Value"),
            "subcode": text(root, f".//{S}Subcode/{S}Value"), "reason": text(root, f".//{S}Reason/{S}Text"),
            "wsman_code": detail.get("Code", ""), "message": (inner if inner is not None else message).text or "",
            "detail": root.findtext(".//{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}FaultDetail") or ""}


def same_fault(ours: Exchange, windows: str) -> None:
    assert ours.status == 500
    mine, theirs = ours.root, windows_envelope(windows)
    assert element_paths(body(mine)) == element_paths(body(theirs))
    assert fault_parts(mine) == fault_parts(theirs)


def message_types(exchange: Exchange) -> list[int]:
    return [m.message_type for m in messages([exchange.body])]


def same_shape(ours: bytes, windows: str) -> None:
    assert clixml_shape(ours) == windows_shape(windows)


def same_members(ours: bytes, windows: str, section: str = "MS") -> None:
    assert list(members(clixml_shape(ours), section).items()) == list(members(windows_shape(windows), section).items())


def record(state: bytes) -> tuple:
    """The ErrorRecord a Failed PipelineState carries."""
    return members(clixml_shape(state))["ExceptionAsErrorRecord"]


def body_aspect(name: str, reply: str, recording: str) -> None:
    """An aspect that is one comparison: the body of our ``reply`` with the recording's."""
    ASPECTS.append(Aspect(name, recording, lambda wire: same_body(wire.reply(reply), recording)))


def fault_aspect(name: str, reply: str, recording: str) -> None:
    """An aspect that is one comparison: our fault ``reply`` with the recorded fault."""
    ASPECTS.append(Aspect(name, recording, lambda wire: same_fault(wire.reply(reply), recording)))


def shape_aspect(name: str, message: str, recording: str) -> None:
    """An aspect that is one comparison: the CLIXML shape of our PSRP ``message`` with the recorded message's."""
    ASPECTS.append(Aspect(name, recording, lambda wire: same_shape(wire.message(message), recording)))


def members_aspect(name: str, message: str, recording: str) -> None:
    """An aspect that is one comparison: the members of our PSRP ``message`` with the recorded message's."""
    ASPECTS.append(Aspect(name, recording, lambda wire: same_members(wire.message(message), recording)))


# -- envelope and headers ---------------------------------------------------------------------------------------
@aspect("envelope.no_xml_declaration", "create_response.xml")
def _(wire: Wire) -> None:
    """Windows sends no XML declaration and marks every envelope xml:lang="en-US"."""
    assert recording("create_response.xml").split("-->", 1)[1].strip().startswith('<s:Envelope xml:lang="en-US"')
    for exchange in wire.exchanges:
        assert exchange.body.startswith(b'<s:Envelope xml:lang="en-US"'), exchange.action


@aspect("envelope.namespace_declarations",
        "create_response.xml,pool_open_receive_1.xml,delete_response.xml,shell_get_response.xml,"
        "operation_timeout_fault.xml")
def _(wire: Wire) -> None:
    """The prefixes each kind of reply declares on its envelope, in Windows' order."""
    def declared(envelope: bytes) -> list[str]:
        start = re.match(rb"<s:Envelope[^>]*>", envelope)
        assert start is not None
        return [p.decode() for p in re.findall(rb"xmlns:([a-z]+)=", start.group(0))]

    def windows(name: str) -> list[str]:
        return declared(recording(name).split("-->", 1)[1].strip().encode())

    expected = {"Create": windows("create_response.xml"), "Receive": windows("pool_open_receive_1.xml"),
                "Delete": windows("delete_response.xml"), "Get": windows("shell_get_response.xml"),
                "Command": windows("command_response.xml"), "Send": windows("send_response.xml"),
                "Signal": windows("signal_response.xml")}
    for exchange in wire.exchanges:
        want = windows("operation_timeout_fault.xml") if exchange.status == 500 else expected[exchange.action]
        assert declared(exchange.body) == want, exchange.action


@aspect("header.fields_in_order", "create_response.xml,receive_done_response.xml")
def _(wire: Wire) -> None:
    for ours, windows in ((wire.reply("create"), "create_response.xml"),
                          (wire.reply("receive_done"), "receive_done_response.xml")):
        assert header_tags(ours.root) == header_tags(windows_envelope(windows))


@aspect("header.activity_id_on_every_reply",
        "create_response.xml,command_response.xml,send_response.xml,signal_response.xml,delete_response.xml,"
        "operation_timeout_fault.xml,bad_command_id_fault.xml")
def _(wire: Wire) -> None:
    """The Server 2016 recordings carry p:ActivityId on every reply, faults included (the later builds' recordings
    carry none: a per-host difference, labsim models 2016)."""
    for name in ("create_response.xml", "command_response.xml", "send_response.xml", "signal_response.xml",
                 "delete_response.xml", "operation_timeout_fault.xml", "bad_command_id_fault.xml"):
        assert f"{P}ActivityId" in header_tags(windows_envelope(name)), name
    for exchange in wire.exchanges:
        assert f"{P}ActivityId" in header_tags(exchange.root), exchange.action


@aspect("header.relates_to_the_request", "create_response.xml")
def _(wire: Wire) -> None:
    for exchange in wire.exchanges:
        request_id = text(ET.fromstring(exchange.request), f"{S}Header/{A}MessageID")
        assert text(exchange.root, f"{S}Header/{A}RelatesTo") == request_id


# -- shell lifecycle --------------------------------------------------------------------------------------------
body_aspect("create.body", "create", "create_response.xml")


@aspect("create.shell_id_is_the_clients", "create_response.xml")
def _(wire: Wire) -> None:
    create = wire.reply("create")
    asked = ET.fromstring(create.request).find(f".//{RSP}Shell")
    assert asked is not None
    assert text(create.root, f".//{RSP}Shell/{RSP}ShellId") == asked.get("ShellId", "").upper()


@aspect("create.idle_timeout_default", "create_response.xml")
def _(wire: Wire) -> None:
    """No rsp:IdleTimeOut asked: WinRM's default, 7200 s."""
    windows = text(windows_envelope("create_response.xml"), f".//{RSP}IdleTimeOut")
    assert windows == "PT7200.000S"
    assert text(wire.reply("create").root, f".//{RSP}IdleTimeOut") == windows


@aspect("create.idle_timeout_requested", "shell_create_idle_request.xml,shell_create_idle_response.xml")
def _(wire: Wire) -> None:
    asked = text(windows_envelope("shell_create_idle_request.xml"), f".//{RSP}IdleTimeOut")
    answered = text(windows_envelope("shell_create_idle_response.xml"), f".//{RSP}IdleTimeOut")
    assert (asked, answered) == ("PT60S", "PT60.000S")
    create = wire.reply("create_idle")
    assert text(ET.fromstring(create.request), f".//{RSP}IdleTimeOut") == asked
    assert text(create.root, f".//{RSP}IdleTimeOut") == answered


@aspect("create.fixed_values", "create_response.xml")
def _(wire: Wire) -> None:
    """The values WinRM fills the same for every PowerShell shell."""
    fixed = ("InputStreams", "OutputStreams", "MaxIdleTimeOut", "Locale", "DataLocale", "CompressionMode",
             "ProfileLoaded", "Encoding", "BufferMode", "State", "ShellRunTime", "ShellInactivity")
    windows, ours = windows_envelope("create_response.xml"), wire.reply("create").root
    assert {k: text(ours, f".//{RSP}{k}") for k in fixed} == {k: text(windows, f".//{RSP}{k}") for k in fixed}


body_aspect("get.shell_body", "get_shell", "shell_get_response.xml")
body_aspect("get.wsman_config", "wsman_config", "wsman_config_response.xml")


@aspect("command.body", "command_response.xml")
def _(wire: Wire) -> None:
    command = wire.reply("command")
    same_body(command, "command_response.xml")
    asked = ET.fromstring(command.request).find(f".//{RSP}CommandLine")
    assert asked is not None
    assert text(command.root, f".//{RSP}CommandId") == asked.get("CommandId", "").upper()


body_aspect("send.body", "send", "send_response.xml")
body_aspect("signal.body", "signal", "signal_response.xml")
body_aspect("delete.body", "delete", "delete_response.xml")


# -- Receive ----------------------------------------------------------------------------------------------------
@aspect("receive.pool_streams", "pool_open_receive_1.xml")
def _(wire: Wire) -> None:
    """Pool-level data: rsp:Stream Name="stdout" without CommandId, no CommandState."""
    for exchange in wire.pool_receives:
        assert set(element_paths(body(exchange.root))) == set(element_paths(body(
            windows_envelope("pool_open_receive_1.xml"))))


@aspect("receive.command_done", "receive_done_response.xml")
def _(wire: Wire) -> None:
    ours, windows = wire.reply("receive_done").root, windows_envelope("receive_done_response.xml")
    assert set(element_paths(body(ours))) == set(element_paths(body(windows)))
    assert text(ours, f".//{RSP}ExitCode") == text(windows, f".//{RSP}ExitCode") == "0"


@aspect("receive.running_command_has_no_command_state", "partial_receive_response.xml")
def _(wire: Wire) -> None:
    """A Receive that returns part of a running command's output carries no rsp:CommandState."""
    windows = windows_envelope("partial_receive_response.xml")
    assert windows.find(f".//{RSP}CommandState") is None
    partial = [e for e in wire.large_receives if b"CommandState/Done" not in e.body]
    assert partial, "the large output fitted one Receive"
    for exchange in partial:
        assert set(element_paths(body(exchange.root))) == set(element_paths(body(windows)))


@aspect("receive.one_fragment_per_stream", "receive_done_response.xml,partial_receive_response.xml")
def _(wire: Wire) -> None:
    from .clixml_shape import stream_blobs

    for name in ("receive_done_response.xml", "partial_receive_response.xml"):
        blobs = stream_blobs(recording(name).split("-->", 1)[1].strip().encode())
        assert blobs and all(len(fragments(b)) == 1 for b in blobs)
    for exchange in wire.exchanges:
        if exchange.action == "Receive" and exchange.status == 200:
            assert all(len(fragments(b)) == 1 for b in stream_blobs(exchange.body))


@aspect("receive.fragments_at_most_32_kib", "partial_receive_response.xml")
def _(wire: Wire) -> None:
    from .clixml_shape import stream_blobs

    windows = [fragments(b)[0].size for b in stream_blobs(recording("partial_receive_response.xml")
                                                          .split("-->", 1)[1].strip().encode())]
    ours = [fragments(b)[0].size for e in wire.large_receives for b in stream_blobs(e.body)]
    assert max(ours) == max(windows) == 32768
    assert wire.errors["large_output"] == [100_000] * 6


@aspect("message.utf8_bom", "session_capability.xml")
def _(wire: Wire) -> None:
    assert "data begins with the UTF-8 BOM: True" in recording("session_capability.xml")
    datas = [m.data for m in messages([e.body for e in wire.exchanges
                                        if e.action == "Receive" and e.status == 200])]
    assert datas and all(d.startswith(UTF8_BOM) for d in datas)


# -- faults -----------------------------------------------------------------------------------------------------
fault_aspect("fault.operation_timeout", "operation_timeout_fault", "operation_timeout_fault.xml")
fault_aspect("fault.unknown_command_id", "bad_command_id_fault", "bad_command_id_fault.xml")


@aspect("fault.get_of_a_deleted_shell", "deleted_shell_get_fault.xml")
def _(wire: Wire) -> None:
    same_fault(wire.reply("deleted_shell_get_fault"), "deleted_shell_get_fault.xml")
    provider = wire.reply("deleted_shell_get_fault").root.find(f".//{F}ProviderFault")
    windows = windows_envelope("deleted_shell_get_fault.xml").find(f".//{F}ProviderFault")
    assert provider is not None and windows is not None and provider.attrib == windows.attrib


fault_aspect("fault.invalid_operation_timeout", "invalid_timeout_fault", "invalid_timeout_fault.xml")


# -- the pool ---------------------------------------------------------------------------------------------------
@aspect("pool.opening_receives", "pool_open_receive_1.xml,pool_open_receive_2.xml")
def _(wire: Wire) -> None:
    """SESSION_CAPABILITY and APPLICATION_PRIVATE_DATA in one Receive, RUNSPACEPOOL_STATE in the next."""
    windows = [[m.message_type for m in messages([recording(n).split("-->", 1)[1].strip().encode()])]
               for n in ("pool_open_receive_1.xml", "pool_open_receive_2.xml")]
    assert windows == [[SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA], [RUNSPACEPOOL_STATE]]
    assert [message_types(e) for e in wire.pool_receives] == windows


members_aspect("pool.session_capability", "session_capability", "session_capability.xml")


shape_aspect("pool.application_private_data", "application_private_data", "application_private_data.xml")


@aspect("pool.state_opened", "runspace_pool_state.xml")
def _(wire: Wire) -> None:
    same_shape(wire.message("runspace_pool_state"), "runspace_pool_state.xml")
    assert wire.message("runspace_pool_state").endswith(b'<I32 N="RunspaceState">2</I32></MS></Obj>')


members_aspect("pool.get_available_runspaces", "get_available_runspaces", "get_available_runspaces_response.xml")


@aspect("pool.set_max_runspaces", "set_max_runspaces_response.xml")
def _(wire: Wire) -> None:
    same_members(wire.message("set_max_runspaces"), "set_max_runspaces_response.xml")
    assert b">true</B>" in wire.message("set_max_runspaces")


@aspect("pool.set_invalid_runspaces_refused", "set_invalid_runspaces_response.xml")
def _(wire: Wire) -> None:
    same_members(wire.message("set_invalid_runspaces"), "set_invalid_runspaces_response.xml")
    assert b">false</B>" in wire.message("set_invalid_runspaces")


members_aspect("pool.reset_runspace_state", "reset_runspace_state", "reset_runspace_state_response.xml")
members_aspect("pool.encrypted_session_key", "encrypted_session_key", "encrypted_session_key.xml")


# -- pipelines --------------------------------------------------------------------------------------------------
shape_aspect("pipeline.state_completed", "completed_state", "completed_pipeline_state.xml")


@aspect("pipeline.state_failed", "failed_pipeline_state.xml")
def _(wire: Wire) -> None:
    assert list(members(clixml_shape(wire.message("command_not_found_state")))) == list(
        members(windows_shape("failed_pipeline_state.xml")))


@aspect("pipeline.only_the_final_state", "receive_done_response.xml")
def _(wire: Wire) -> None:
    """Windows sends one PIPELINE_STATE per command, the final one (never Running)."""
    windows = messages([recording("receive_done_response.xml").split("-->", 1)[1].strip().encode()])
    assert [m.message_type for m in windows].count(0x00041006) == 1
    done = messages([e.body for e in wire.exchanges if e.action == "Receive" and e.status == 200])
    states = [clixml_shape(m.data) for m in done if m.message_type == 0x00041006]
    assert states and all(members(s)["PipelineState"] == ("I32",) for s in states)
    assert not any(b'"PipelineState">3<' in m.data for m in done if m.message_type == 0x00041006)


@aspect("pipeline.string_output", "string_output.xml")
def _(wire: Wire) -> None:
    assert clixml_shape(wire.message("string_output")) == windows_shape("string_output.xml") == ("S",)


# -- error records ----------------------------------------------------------------------------------------------
@aspect("error.cmdlet.members", "cmdlet_error_record.xml")
def _(wire: Wire) -> None:
    """A cmdlet's record, invocation info asked: Windows' members, order and types (no ScriptStackTrace: no script
    ran); the exception is another type, TargetObject filled the same way."""
    ours, windows = members(clixml_shape(wire.message("cmdlet_error"))), members(windows_shape(
        "cmdlet_error_record.xml"))
    assert list(ours) == list(windows)
    for name, shape in windows.items():
        if name not in ("Exception", "CommandInfo_Definition"):
            assert ours[name] == shape, name


@aspect("error.cmdlet.exception_base_members", "cmdlet_error_record.xml,error_record.xml")
def _(wire: Wire) -> None:
    """Every exception ends with System.Exception's members in .NET's order, typed as Windows types them."""
    base = ["Message", "Data", "InnerException", "TargetSite", "StackTrace", "HelpLink", "Source", "HResult"]
    for shape in (members(windows_shape("cmdlet_error_record.xml"))["Exception"],
                  members(clixml_shape(wire.message("cmdlet_error")))["Exception"]):
        assert list(members(shape, "Props"))[-len(base):] == base
    assert part(members(clixml_shape(wire.message("cmdlet_error")))["Exception"], "TN")[-3:] == (
        "System.SystemException", "System.Exception", "System.Object")


@aspect("error.cmdlet.invocation_info", "cmdlet_error_record.xml")
def _(wire: Wire) -> None:
    ours = members(clixml_shape(wire.message("cmdlet_error")))["InvocationInfo"]
    windows = members(windows_shape("cmdlet_error_record.xml"))["InvocationInfo"]
    assert part(ours, "TN") == part(windows, "TN")
    assert [n for n, _ in part(ours, "Props")] == [n for n, _ in part(windows, "Props")]


@aspect("error.cmdlet.category", "cmdlet_error_record.xml")
def _(wire: Wire) -> None:
    """Activity is the cmdlet; the message reads ``Category: (Target:Type) [Cmdlet], Reason``."""
    root = ET.fromstring(recording("cmdlet_error_record.xml").split("-->", 1)[1].strip())
    assert root.findtext("MS/S[@N='ErrorCategory_Message']") == (
        "ObjectNotFound: (FileSystem:String) [Get-Item], ProviderNotFoundException")
    [err] = wire.errors["cmdlet"]
    assert (err.activity, err.message) == (
        "Get-Item", "ObjectNotFound: (C:\\missing:String) [Get-Item], ItemNotFoundException")


@aspect("error.cmdlet.without_invocation_info", "error_record_no_invocation.xml,cmdlet_error_record.xml")
def _(wire: Wire) -> None:
    """No invocation info asked: SerializeExtendedInfo false and no InvocationInfo_* members (the recording's
    ErrorDetails_ScriptStackTrace is a script's: cmdlet_error_record.xml shows a cmdlet has none)."""
    windows = [n for n in members(windows_shape("error_record_no_invocation.xml"))
               if n != "ErrorDetails_ScriptStackTrace"]
    assert list(members(clixml_shape(wire.message("cmdlet_error_no_invocation")))) == windows


@aspect("error.terminating.members", "failed_pipeline_state.xml,command_not_found_state.xml,script_refused_state.xml")
def _(wire: Wire) -> None:
    """A Failed PipelineState's record: no writeErrorStream, SerializeExtendedInfo false, no PSMessageDetails."""
    for name in ("failed_pipeline_state.xml", "command_not_found_state.xml", "script_refused_state.xml"):
        windows = members(record(recording(name).encode()))
        assert "writeErrorStream" not in windows and "PSMessageDetails" not in windows
        assert windows["SerializeExtendedInfo"] == ("B",)
    for state in (wire.message("command_not_found_state"), wire.message("script_refused_state")):
        ours = members(record(state))
        assert "writeErrorStream" not in ours and "PSMessageDetails" not in ours
        assert b'<B N="SerializeExtendedInfo">false</B>' in state


@aspect("error.command_not_found.record", "command_not_found_state.xml,script_refused_state.xml")
def _(wire: Wire) -> None:
    """An unknown command's record. Windows' recording ran it through Invoke-Expression, which added its own
    InvocationInfo and a script stack trace; a command sent directly has neither, like the JEA refusal of a
    command that never ran (script_refused_state.xml): InvocationInfo Nil, ending at SerializeExtendedInfo."""
    windows = [n for n in members(record(recording("command_not_found_state.xml").encode()))
               if n != "ErrorDetails_ScriptStackTrace"]
    ours = members(record(wire.message("command_not_found_state")))
    assert list(ours) == windows
    assert ours["InvocationInfo"] == ("Nil",)


@aspect("error.command_not_found.exception", "command_not_found_state.xml")
def _(wire: Wire) -> None:
    ours = members(record(wire.message("command_not_found_state")))["Exception"]
    windows = members(record(recording("command_not_found_state.xml").encode()))["Exception"]
    assert part(ours, "TN") == part(windows, "TN")
    assert [n for n, _ in part(ours, "Props")] == [n for n, _ in part(windows, "Props")]


@aspect("error.command_not_found.category", "command_not_found_state.xml")
def _(wire: Wire) -> None:
    """ObjectNotFound on the command name as a String; no command ran, so no Activity (the recording's
    ``[Invoke-Expression]`` is the wrapper's): the record does not name the failing command."""
    root = ET.fromstring(recording("command_not_found_state.xml").split("-->", 1)[1].strip())
    rec = root.find("MS/Obj[@N='ExceptionAsErrorRecord']/MS")
    assert rec is not None
    assert rec.findtext("S[@N='ErrorCategory_Message']") == (
        "ObjectNotFound: (Get-ServiceTypo:String) [Invoke-Expression], CommandNotFoundException")
    [err] = wire.errors["command_not_found"]
    assert (err.target_name, err.target_type, err.reason, err.activity) == (
        "Get-ServiceTypo", "String", "CommandNotFoundException", "")
    assert err.message == "ObjectNotFound: (Get-ServiceTypo:String) [], CommandNotFoundException"
    assert err.fq_error == "CommandNotFoundException"
    assert err.exception.adapted_properties["CommandName"] == "Get-ServiceTypo"


@aspect("error.script_refused.record", "script_refused_state.xml")
def _(wire: Wire) -> None:
    ours, windows = record(wire.message("script_refused_state")), record(recording("script_refused_state.xml")
                                                                         .encode())
    assert list(members(ours).items())[1:] == list(members(windows).items())[1:]


@aspect("error.script_refused.exception", "script_refused_state.xml")
def _(wire: Wire) -> None:
    ours = members(record(wire.message("script_refused_state")))["Exception"]
    windows = members(record(recording("script_refused_state.xml").encode()))["Exception"]
    assert part(ours, "TN") == part(windows, "TN")
    assert list(members(ours, "Props").items()) == list(members(windows, "Props").items())


@aspect("error.script_refused.category", "script_refused_state.xml")
def _(wire: Wire) -> None:
    """The same script text refused the same way: the message shortens a target over 40 characters in the
    middle (15 characters, "...", 15 characters)."""
    root = ET.fromstring(recording("script_refused_state.xml").split("-->", 1)[1].strip())
    rec = root.find("MS/Obj[@N='ExceptionAsErrorRecord']/MS")
    assert rec is not None and rec.findtext("S[@N='TargetObject']") == REFUSED_SCRIPT
    [err] = wire.errors["script_refused"]
    assert (err.fq_error, err.activity, err.target_name, err.message) == (
        rec.findtext("S[@N='FullyQualifiedErrorId']"), rec.findtext("S[@N='ErrorCategory_Activity']"),
        rec.findtext("S[@N='ErrorCategory_TargetName']"), rec.findtext("S[@N='ErrorCategory_Message']"))


@aspect("error.long_target_shortened", "script_refused_state.xml,failed_pipeline_state.xml")
def _(wire: Wire) -> None:
    [err] = wire.errors["long_target"]
    target = err.target_name
    assert len(target) > 40
    assert err.message == f"ObjectNotFound: ({target[:15]}...{target[-15:]}:String) [Get-Item], ItemNotFoundException"


# -- informational records --------------------------------------------------------------------------------------
@aspect("verbose.with_invocation_info", "verbose_record.xml")
def _(wire: Wire) -> None:
    ours, windows = clixml_shape(wire.message("verbose")), windows_shape("verbose_record.xml")
    assert part(ours, "TN") == part(windows, "TN")
    bound = "InvocationInfo_BoundParameters"  # the recorded script bound none; this call binds one
    a, b = members(ours), members(windows)
    assert list(a) == list(b)
    assert {k: v for k, v in a.items() if k != bound} == {k: v for k, v in b.items() if k != bound}


@aspect("verbose.without_invocation_info", "verbose_record_no_invocation.xml")
def _(wire: Wire) -> None:
    assert clixml_shape(wire.message("verbose_no_invocation")) == windows_shape("verbose_record_no_invocation.xml")


@aspect("warning.with_invocation_info", "warning_record.xml")
def _(wire: Wire) -> None:
    ours, windows = clixml_shape(wire.message("warning")), windows_shape("warning_record.xml")
    assert part(ours, "TN") == part(windows, "TN")
    assert members(ours) == members(windows)


@aspect("information.record", "information_record.xml")
def _(wire: Wire) -> None:
    assert clixml_shape(wire.message("information")) == windows_shape("information_record.xml")
    root = ET.fromstring(wire.message("information").decode("utf-8-sig"))
    assert (root.findtext("MS/DT[@N='TimeGenerated']") or "").endswith("+00:00")


@aspect("information.source_user_computer", "information_record.xml")
def _(wire: Wire) -> None:
    """Source is the command that wrote it, User the session's user, Computer the host (never the simulator's)."""
    windows = ET.fromstring(recording("information_record.xml").split("-->", 1)[1].strip())
    assert windows.findtext("MS/S[@N='Source']") == "Write-Information"
    ours = ET.fromstring(wire.message("information").decode("utf-8-sig"))
    assert (ours.findtext("MS/S[@N='Source']"), ours.findtext("MS/S[@N='User']"),
            ours.findtext("MS/S[@N='Computer']")) == ("Write-Streams", "CONTOSO\\WapAdmin", "WAP01")


@aspect("warning.without_invocation_info", "warning_record_no_invocation.xml")
def _(wire: Wire) -> None:
    assert clixml_shape(wire.message("warning_no_invocation")) == windows_shape("warning_record_no_invocation.xml")


# -- counters: the length of PipelineIterationInfo, not only its presence ------------------------------------------
def counters(xml: bytes | str, member: str) -> list[str]:
    """The CLIXML tags of a record's ``member`` list (one per counter)."""
    text = xml.decode("utf-8-sig") if isinstance(xml, bytes) else xml.split("-->", 1)[1]
    lst = ET.fromstring(text.strip()).find(f"MS/Obj[@N='{member}']/LST")
    assert lst is not None, f"{member} has no list"
    return [el.tag for el in lst]


@aspect("verbose.iteration_counters", "verbose_record.xml")
def _(wire: Wire) -> None:
    """A one-command pipeline's verbose record counts like Windows': one counter per position plus one."""
    ours, windows = wire.message("verbose"), recording("verbose_record.xml")
    for member in ("InvocationInfo_PipelineIterationInfo", "InformationalRecord_PipelineIterationInfo"):
        assert counters(ours, member) == counters(windows, member) == ["I32", "I32"], member


@aspect("error.cmdlet.iteration_counters", "cmdlet_error_record.xml,error_record.xml")
def _(wire: Wire) -> None:
    """A one-statement pipeline's error record carries two counters in PipelineIterationInfo, as both recordings."""
    ours = counters(wire.message("cmdlet_error"), "PipelineIterationInfo")
    assert ours == counters(recording("cmdlet_error_record.xml"), "PipelineIterationInfo") == \
        counters(recording("error_record.xml"), "PipelineIterationInfo") == ["I32", "I32"]


# -- values: every value labsim sends is Windows', but for what the scenario sets ----------------------------------
ABSENT = "<absent>"
_THE_ERROR = "another error: the recording's Get-Item found no FileSystem provider, labsim's no C:\\missing"
_NO_FRAMES = "[inf] labsim invents no .NET stack: frames only where a recording shows them (records._THROWN_AT)"
_JEA = "the recorded Get-Item ran inside a JEA proxy function: origin Internal, no pipeline of its own"
_SCRIPT = "the recorded writer was a script block; labsim's is a command, named"


def same_values_but(ours: bytes, windows: str, scenario: dict[str, str]) -> None:
    """Every member value of ``ours`` equals the recording's, but the members in ``scenario`` (path: why it
    differs), and each of those does differ: a list that names a member now equal is out of date."""
    a, b = values(ours), values(recording(windows).split("-->", 1)[1])
    differing = {k: (b.get(k, ABSENT), a.get(k, ABSENT)) for k in sorted(a.keys() | b.keys())
                 if a.get(k, ABSENT) != b.get(k, ABSENT)}
    unlike_windows = {k: v for k, v in differing.items() if k not in scenario}  # path: (Windows', labsim's)
    assert not unlike_windows, unlike_windows
    equal_now = [k for k in scenario if k not in differing]
    assert not equal_now, f"listed as differing, but equal now: {equal_now}"


@aspect("error.cmdlet.values", "cmdlet_error_record.xml")
def _(wire: Wire) -> None:
    same_values_but(wire.message("cmdlet_error"), "cmdlet_error_record.xml", {
        "#ToString": _THE_ERROR, "Exception#ToString": _THE_ERROR, "Exception#types": _THE_ERROR,
        "Exception.ErrorRecord": _THE_ERROR,
        "Exception.ItemName": _THE_ERROR, "Exception.Message": _THE_ERROR, "TargetObject": _THE_ERROR,
        "Exception.SessionStateCategory": _THE_ERROR, "FullyQualifiedErrorId": _THE_ERROR,
        "ErrorCategory_Reason": _THE_ERROR, "ErrorCategory_TargetName": _THE_ERROR,
        "ErrorCategory_Message": _THE_ERROR,
        "Exception.Source": _NO_FRAMES, "Exception.StackTrace": _NO_FRAMES, "Exception.TargetSite": _NO_FRAMES,
        "CommandInfo_Definition": "[inf] labsim keeps no cmdlet syntax: the definition is the command's name",
        "InvocationInfo.CommandOrigin": _JEA, "InvocationInfo_CommandOrigin#ToString": _JEA,
        "InvocationInfo.PipelineLength": _JEA, "InvocationInfo.PipelinePosition": _JEA,
        "InvocationInfo_PipelineLength": _JEA, "InvocationInfo_PipelinePosition": _JEA,
        "InvocationInfo_PipelineIterationInfo#items": _JEA,
        "PipelineIterationInfo#items": "[inf] labsim counts no objects processed (the lengths match: "
                                       "error.cmdlet.iteration_counters)",
    })
    # The origin differs with the scenario, but the record says it once: its InvocationInfo and its flattened
    # InvocationInfo_CommandOrigin agree, as in the recording (Internal there; Runspace for a command the client
    # invoked, as verbose_record.xml shows).
    for record in (values(wire.message("cmdlet_error")), values(recording("cmdlet_error_record.xml").split("-->")[1])):
        assert record["InvocationInfo.CommandOrigin"] == ("S", record["InvocationInfo_CommandOrigin#ToString"])
    assert values(wire.message("cmdlet_error"))["InvocationInfo.CommandOrigin"] == ("S", "Runspace")


@aspect("error.cmdlet.values_without_invocation_info", "error_record_no_invocation.xml")
def _(wire: Wire) -> None:
    write_error = "another error: the recording's Write-Error in a script block, labsim's Get-Item"
    same_values_but(wire.message("cmdlet_error_no_invocation"), "error_record_no_invocation.xml", {
        **{k: write_error for k in (
            "#ToString", "Exception#ToString", "Exception#types", "Exception.Message", "TargetObject",
            "FullyQualifiedErrorId",
            "ErrorCategory_Category", "ErrorCategory_Activity", "ErrorCategory_Reason", "ErrorCategory_TargetName",
            "ErrorCategory_TargetType", "ErrorCategory_Message", "ErrorDetails_ScriptStackTrace",
            "InvocationInfo.InvocationName", "InvocationInfo.MyCommand")},
        **{k: "an ItemNotFoundException is a RuntimeException (a WriteErrorException is not): these are its own"
           for k in ("Exception.ErrorRecord", "Exception.ItemName", "Exception.SessionStateCategory",
                     "Exception.WasThrownFromThrowStatement")},
        "InvocationInfo.CommandOrigin": _JEA, "InvocationInfo.PipelineLength": _JEA,
        "InvocationInfo.PipelinePosition": _JEA,
    })


@aspect("error.script_refused.values", "script_refused_state.xml")
def _(wire: Wire) -> None:
    to_string = "ExceptionAsErrorRecord.Exception#ToString"
    same_values_but(wire.message("script_refused_state"), "script_refused_state.xml", {
        to_string: "labsim writes the CR LF in the exception's ToString as is (Windows: _x000D__x000A_), which "
                   "XML reads back as LF: the text is Windows' but for that",
    })
    windows = values(recording("script_refused_state.xml").split("-->", 1)[1])[to_string]
    assert isinstance(windows, str) and "\r\n" in windows
    assert values(wire.message("script_refused_state"))[to_string] == windows.replace("\r\n", "\n")


@aspect("error.command_not_found.values", "command_not_found_state.xml")
def _(wire: Wire) -> None:
    iex = "the recording ran the typo through Invoke-Expression, which has an invocation; labsim's fails first"
    record = "ExceptionAsErrorRecord."
    windows = values(recording("command_not_found_state.xml").split("-->", 1)[1])
    same_values_but(wire.message("command_not_found_state"), "command_not_found_state.xml", {
        **{k: iex for k in windows if k.startswith(record + "InvocationInfo")},
        record + "InvocationInfo": iex, record + "ErrorCategory_Activity": iex, record + "ErrorCategory_Message": iex,
        record + "FullyQualifiedErrorId": iex, record + "ErrorDetails_ScriptStackTrace": iex,
        record + "Exception#ToString": _NO_FRAMES, record + "Exception.Source": _NO_FRAMES,
        record + "Exception.Data[System.Management.Automation.Interpreter.InterpretedFrameInfo]#ToString": _NO_FRAMES,
        record + "Exception.Data[System.Management.Automation.Interpreter.InterpretedFrameInfo]#items": _NO_FRAMES,
        record + "Exception.Data[System.Management.Automation.Interpreter.InterpretedFrameInfo]#types": _NO_FRAMES,
        record + "Exception.StackTrace": _NO_FRAMES, record + "Exception.TargetSite": _NO_FRAMES,
    })
    # Without frames, the exception's text is Windows' first line: "<type>: <message>".
    text = values(wire.message("command_not_found_state"))[record + "Exception#ToString"]
    windows_text = windows[record + "Exception#ToString"]
    assert isinstance(windows_text, str)
    assert text == windows_text.split("\r\n")[0]


def same_informational_values(wire: Wire, kind: str, scenario: dict[str, str]) -> None:
    """A verbose or warning record, with and without its invocation, as Windows recorded it, but for the message,
    the script that wrote it and what ``scenario`` adds (path: why it differs)."""
    message = {"#ToString": "another message", "InformationalRecord_Message": "another message"}
    same_values_but(wire.message(kind), f"{kind}_record.xml", {
        **message, **scenario,
        "InvocationInfo_InvocationName": _SCRIPT, "CommandInfo_Name": _SCRIPT, "CommandInfo_Definition": _SCRIPT,
        "CommandInfo_CommandType#ToString": _SCRIPT,
    })
    same_values_but(wire.message(f"{kind}_no_invocation"), f"{kind}_record_no_invocation.xml", message)


@aspect("verbose.values", "verbose_record.xml,verbose_record_no_invocation.xml")
def _(wire: Wire) -> None:
    same_informational_values(wire, "verbose", {
        "InvocationInfo_BoundParameters[DisableMultiCloud]": "the recorded script bound no parameter; this call one"})


@aspect("warning.values", "warning_record.xml,warning_record_no_invocation.xml")
def _(wire: Wire) -> None:
    same_informational_values(wire, "warning", {})


@aspect("information.values", "information_record.xml")
def _(wire: Wire) -> None:
    same_values_but(wire.message("information"), "information_record.xml", {
        **{k: "another message, writer, user and host" for k in ("MessageData", "Source", "User", "Computer")},
        "TimeGenerated": "another moment", "ProcessId": "another host process (records.host_process_id)",
        "NativeThreadId": "another thread",
    })


@aspect("pool.application_private_data.values", "application_private_data.xml")
def _(wire: Wire) -> None:
    table = "ApplicationPrivateData[PSVersionTable]"
    patched = "the recorded 2016 host had a cumulative update (build 2248); labsim's release is the base build"
    same_values_but(wire.message("application_private_data"), "application_private_data.xml", {
        f"{table}[PSVersion]": patched, f"{table}[BuildVersion]": patched,
        f"{table}[PSCompatibleVersions]#items": patched,
    })
