"""labsim against recorded Windows exchanges (Windows PowerShell 5.1 over WinRM, driven by pypsrp; the recordings
pypsrp's own test suite replays). The same pypsrp client drives labsim's real host behaviour in memory; every
reply is captured and compared with the recording structurally: element names and attributes, object type names,
member names and their CLIXML types, dictionary keys. Values (ids, times, texts) are not compared unless the
behaviour is the value (fault codes, ExitCode).

Each recording under ``recordings/`` names its source file; docs/labsim.md says which behaviour each one backs.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from labsim import wsman as core
from labsim.hosts import LabRuntime
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.wsman import Principal, WSManService
from tests.labsim.protocol_doubles import EchoRuntime, InMemoryTransport

from .clixml_shape import (
    UTF8_BOM,
    clixml_shape,
    element_paths,
    fragments,
    members,
    messages,
    part,
    recording,
    stream_blobs,
)

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(120)]

# PSRP message types ([MS-PSRP] 2.2.1)
APPLICATION_PRIVATE_DATA = 0x00021009
ERROR_RECORD = 0x00041005
VERBOSE_RECORD = 0x00041008
WARNING_RECORD = 0x00041009
INFORMATION_RECORD = 0x00041011
PIPELINE_STATE = 0x00041006

WAP = "wapcomputer1"
PEP = "AzS-ERCS01"


class RecordingTransport(InMemoryTransport):
    """The in-memory transport, keeping every (request, reply status, reply body)."""

    def __init__(self, service: WSManService, principal: Principal) -> None:
        super().__init__(service, principal)
        self.exchanges: list[tuple[bytes, int, bytes]] = []

    def send(self, message: bytes, **kwargs) -> bytes:
        reply = self.service.handle(message, self.principal, self.endpoint)
        self.exchanges.append((message, reply.status, reply.body))
        return super().send(message, **kwargs) if reply.status != 200 else reply.body

    def replies(self, action: str) -> list[bytes]:
        return [body for request, status, body in self.exchanges
                if status == 200 and f"/{action}</".encode() in request]


def _wsman(service: WSManService, user: str) -> tuple[WSMan, RecordingTransport]:
    wsman = WSMan("lab.test", ssl=True, auth="basic", username=user, password="unused", operation_timeout=5)
    transport = RecordingTransport(service, Principal(user, "basic"))
    wsman.transport = transport  # type: ignore[assignment]
    return wsman, transport


@pytest.fixture(scope="module")
def lab_runtime(tmp_path_factory) -> LabRuntime:
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    data["settings"]["pep_polling_seconds"] = 0
    return LabRuntime.open(Lab.model_validate(data), tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="module")
def wap(lab_runtime):
    service = WSManService(WAP, WAP + ".contoso.local", lab_runtime, operation_timeout=2.0)
    yield service
    service.close()


def _run(pool: RunspacePool, cmdlet: str, **params) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for k, v in params.items():
        ps.add_parameter(k, v)
    ps.invoke()
    return ps


def _command_messages(transport: RecordingTransport, message_type: int) -> list[bytes]:
    return [m.data for m in messages(transport.replies("Receive")) if m.message_type == message_type]


# -- error records ----------------------------------------------------------------------------------------------
def test_cmdlet_error_record_has_windows_shape(wap):
    """error_record.xml: Write-Error's record with invocation info. labsim's Get-Item error must carry the same
    members in the same order with the same CLIXML types; only TargetObject (filled here, Nil in the recording)
    and the exception (another .NET type) may differ, and the exception must still end with System.Exception's
    members in Windows' order."""
    wsman, transport = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman) as pool:
        ps = _run(pool, "Get-Item", Path="C:\\missing")
    [data] = _command_messages(transport, ERROR_RECORD)
    assert data.startswith(UTF8_BOM)
    ours, windows = clixml_shape(data), clixml_shape(recording("error_record.xml"))

    assert part(ours, "TN") == part(windows, "TN") == ("System.Management.Automation.ErrorRecord", "System.Object")
    assert part(ours, "ToString") and part(windows, "ToString")
    our_members, win_members = members(ours), members(windows)
    assert list(our_members) == list(win_members)
    for name, shape in win_members.items():
        if name not in ("TargetObject", "Exception"):
            assert our_members[name] == shape, name
    assert our_members["TargetObject"] == ("S",)

    our_exc, win_exc = our_members["Exception"], win_members["Exception"]
    assert part(our_exc, "TN")[-3:] == part(win_exc, "TN")[-3:] == ("System.SystemException", "System.Exception",
                                                                    "System.Object")
    base_members = list(members(win_exc, "Props").items())
    assert list(members(our_exc, "Props").items())[-len(base_members):] == base_members

    # The values a client acts on, as Windows fills them for Get-Item on a missing path.
    [err] = ps.streams.error
    assert err.activity == "Get-Item"
    assert (err.target_name, err.target_type) == ("C:\\missing", "String")
    assert err.message == "ObjectNotFound: (C:\\missing:String) [Get-Item], ItemNotFoundException"
    assert err.command_name == "Get-Item"
    assert err.fq_error == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    assert err.exception.types[:4] == ["System.Management.Automation.ItemNotFoundException",
                                       "System.Management.Automation.SessionStateException",
                                       "System.Management.Automation.RuntimeException",
                                       "System.SystemException"]
    assert err.exception.adapted_properties["ItemName"] == "C:\\missing"
    assert err.exception.adapted_properties["WasThrownFromThrowStatement"] is False


def test_exceptions_outside_powershell_have_no_runtime_exception_in_their_chain(lab_runtime, tmp_path):
    from labsim.records import exception_types

    # As the recording's WriteErrorException: a plain SystemException.
    assert "System.Management.Automation.RuntimeException" not in exception_types("System.IO.IOException")
    assert "System.Management.Automation.RuntimeException" not in exception_types(
        "System.ComponentModel.Win32Exception")
    assert exception_types("Microsoft.PowerShell.Commands.WriteErrorException") == [
        "Microsoft.PowerShell.Commands.WriteErrorException", "System.SystemException", "System.Exception",
        "System.Object"]


def test_command_not_found_names_the_command(wap):
    wsman, transport = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman) as pool:
        ps = _run(pool, "Get-Nothing", Name="x")
    assert ps.had_errors
    [err] = ps.streams.error
    assert err.target_object == "Get-Nothing"
    assert (err.target_name, err.target_type, err.activity) == ("Get-Nothing", "String", "Get-Nothing")
    assert err.message == "ObjectNotFound: (Get-Nothing:String) [Get-Nothing], CommandNotFoundException"
    props = err.exception.adapted_properties
    assert props["CommandName"] == "Get-Nothing"
    assert "ErrorRecord" in props and props["WasThrownFromThrowStatement"] is False
    # The terminating record travels in the Failed PipelineState, shaped like a written one minus writeErrorStream.
    [state] = _command_messages(transport, PIPELINE_STATE)
    record = members(clixml_shape(state))["ExceptionAsErrorRecord"]
    win = members(clixml_shape(recording("error_record.xml")))
    assert list(members(record)) == [n for n in win if n != "writeErrorStream"]


def test_privileged_endpoint_refusal_of_script_text_targets_the_script(lab_runtime):
    service = WSManService(PEP, PEP + ".azurestack.local", lab_runtime, privileged_endpoint=True,
                           operation_timeout=2.0)
    try:
        wsman, _ = _wsman(service, "AZURESTACK\\CloudAdmin")
        with RunspacePool(wsman, configuration_name="PrivilegedEndpoint") as pool:
            ps = PowerShell(pool)
            ps.add_script("Get-ChildItem C:\\")
            ps.invoke()
    finally:
        service.close()
    [err] = ps.streams.error
    assert err.fq_error == "ScriptsNotAllowed"
    assert err.target_object == "Get-ChildItem C:\\"
    assert (err.target_name, err.target_type) == ("Get-ChildItem C:\\", "String")
    assert err.message == "ParserError: (Get-ChildItem C:\\:String) [], ParseException"
    props = err.exception.adapted_properties
    assert "Errors" in props and "ErrorRecord" in props and props["WasThrownFromThrowStatement"] is False


# -- verbose, warning and information records -----------------------------------------------------------------
def test_verbose_record_has_windows_shape(lab_runtime):
    """verbose_record.xml: the PEP's verbose lines carry the same members with invocation info."""
    service = WSManService(PEP, PEP + ".azurestack.local", lab_runtime, privileged_endpoint=True,
                           operation_timeout=2.0)
    try:
        wsman, transport = _wsman(service, "AZURESTACK\\CloudAdmin")
        with RunspacePool(wsman, configuration_name="PrivilegedEndpoint") as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Add-AzurePackConnector").add_parameter("DisableMultiCloud", True)
            ps.invoke()
    finally:
        service.close()
    assert not ps.had_errors, ps.streams.error
    [data, *_] = _command_messages(transport, VERBOSE_RECORD)
    assert data.startswith(UTF8_BOM)
    ours, windows = clixml_shape(data), clixml_shape(recording("verbose_record.xml"))
    assert part(ours, "TN") == part(windows, "TN")
    our_members, win_members = members(ours), members(windows)
    assert list(our_members) == list(win_members)
    bound = "InvocationInfo_BoundParameters"  # the recorded script had no parameters; this call binds one
    assert {k: v for k, v in our_members.items() if k != bound} == {k: v for k, v in win_members.items() if k != bound}
    assert part(our_members[bound], "TN") == part(win_members[bound], "TN")
    assert [k for k, _ in part(our_members[bound], "DCT")] == ["DisableMultiCloud"]
    [verbose, *_] = ps.streams.verbose
    assert verbose.invocation_name == "Add-AzurePackConnector"
    assert verbose.command_name == "Add-AzurePackConnector"


def test_information_record_has_windows_shape():
    """information_record.xml: Source is the command, TimeGenerated carries its offset, Tags is a List<String>,
    User and Computer are the session's user and the lab host (never the simulator's own)."""
    service = WSManService("WAP01", "wap01.contoso.local", EchoRuntime(), operation_timeout=2.0)
    try:
        wsman, transport = _wsman(service, "CONTOSO\\WapAdmin")
        with RunspacePool(wsman) as pool:
            ps = _run(pool, "Write-Streams")
    finally:
        service.close()
    [data] = _command_messages(transport, INFORMATION_RECORD)
    assert data.startswith(UTF8_BOM)
    assert clixml_shape(data) == clixml_shape(recording("information_record.xml"))
    [info] = ps.streams.information
    assert (info.source, info.user, info.computer) == ("Write-Streams", "CONTOSO\\WapAdmin", "WAP01")
    # The warning record of the same pipeline: the verbose recording's shape under the WarningRecord type.
    [warning] = _command_messages(transport, WARNING_RECORD)
    windows = clixml_shape(recording("verbose_record.xml"))
    assert part(clixml_shape(warning), "TN") == ("System.Management.Automation.WarningRecord",
                                                 *part(windows, "TN")[1:])
    assert members(clixml_shape(warning)) == members(windows)
    root = ET.fromstring(data.decode("utf-8-sig"))
    assert root.find("MS/DT[@N='TimeGenerated']").text.endswith("+00:00")


# -- pool data ------------------------------------------------------------------------------------------------
def test_application_private_data_is_windows_ps_version_table(wap):
    wsman, transport = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman):
        pass
    [data] = [m.data for m in messages(transport.replies("Receive") + transport.replies("Create"))
              if m.message_type == APPLICATION_PRIVATE_DATA] or [None]
    assert data is not None and data.startswith(UTF8_BOM)
    assert clixml_shape(data) == clixml_shape(recording("application_private_data.xml"))
    assert all(m.data.startswith(UTF8_BOM) for m in messages(transport.replies("Receive")) if m.data)


# -- WSMan framing -------------------------------------------------------------------------------------------
def test_create_reply_has_windows_fields(wap):
    wsman, transport = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman):
        pass
    [ours] = transport.replies("Create")
    windows = ET.fromstring(recording("create_response.xml").split("-->", 1)[1])
    mine = ET.fromstring(ours)
    body = "{http://www.w3.org/2003/05/soap-envelope}Body"
    assert element_paths(mine.find(body)) == element_paths(windows.find(body))
    idle = mine.find(f"{body}/{{{core.NS['rsp']}}}Shell/{{{core.NS['rsp']}}}IdleTimeOut").text
    assert idle == "PT240.000S"
    header = "{http://www.w3.org/2003/05/soap-envelope}Header"
    assert set(element_paths(windows.find(header))) <= set(element_paths(mine.find(header)))


def test_every_reply_is_windows_framed(wap):
    wsman, transport = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman) as pool:
        _run(pool, "Get-Item", Path="C:\\missing")
    activity = f"{{{core.NS['wsmv']}}}ActivityId"
    for _request, _status, body in transport.exchanges:
        assert body.startswith(b"<s:Envelope")  # no XML declaration
        assert ET.fromstring(body).find(f"{{{core.NS['s']}}}Header/{activity}") is not None
    done = [r for r in transport.replies("Receive") if b"CommandState/Done" in r]
    windows = ET.fromstring(recording("receive_done_response.xml").split("-->", 1)[1])
    state_paths = [p for p in element_paths(windows) if "CommandState" in p]
    assert [p for p in element_paths(ET.fromstring(done[-1])) if "CommandState" in p] == state_paths
    assert ET.fromstring(done[-1]).find(f".//{{{core.NS['rsp']}}}ExitCode").text == "0"


def test_one_fragment_per_stream_and_at_most_32_kib():
    service = WSManService("WAP01", "wap01.contoso.local", EchoRuntime(), operation_timeout=2.0)
    try:
        wsman, transport = _wsman(service, "CONTOSO\\WapAdmin")
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Large").add_parameter("Bytes", 100_000).add_parameter("Count", 3)
            ps.invoke()
    finally:
        service.close()
    assert [len(o) for o in ps.output] == [100_000] * 3
    blobs = [b for r in transport.replies("Receive") for b in stream_blobs(r)]
    split = [fragments(b) for b in blobs]
    assert all(len(f) == 1 for f in split)
    sizes = [f[0].size for f in split]
    assert max(sizes) == core.MAX_FRAGMENT_SIZE  # the 100 kB outputs were cut at 32 KiB
    assert all(s <= 32768 for s in sizes)


# -- faults --------------------------------------------------------------------------------------------------
def _envelope(action: str, shell_id: str, body: ET.Element | None = None, timeout: str | None = None) -> bytes:
    from pypsrp.wsman import NAMESPACES, SelectorSet

    wsman = WSMan("lab.test", ssl=True, auth="basic", username="u", password="p")
    selectors = SelectorSet()
    selectors.add_option("ShellId", shell_id)
    _, header = wsman._create_header(action, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
                                     selector_set=selectors)
    if timeout is not None:
        header.find(f"{{{NAMESPACES['wsman']}}}OperationTimeout").text = timeout
    env = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
    env.append(header)
    b = ET.SubElement(env, f"{{{NAMESPACES['s']}}}Body")
    if body is not None:
        b.append(body)
    return ET.tostring(env)


def test_unknown_command_id_fault_is_windows_fault(wap):
    """bad_command_id_fault.xml: code 2150858843 with the UnexpectedSelectors detail and Windows' text."""
    wsman, _ = _wsman(wap, "CONTOSO\\WapAdmin")
    with RunspacePool(wsman) as pool:
        receive = ET.Element(f"{{{core.NS['rsp']}}}Receive")
        ET.SubElement(receive, f"{{{core.NS['rsp']}}}DesiredStream",
                      CommandId=str(uuid.uuid4()).upper()).text = "stdout"
        reply = wap.handle(_envelope(core.ACTION_RECEIVE, pool.id.upper() if isinstance(pool.id, str)
                                     else str(pool.id).upper(), receive), Principal("CONTOSO\\WapAdmin", "basic"))
    assert reply.status == 500 and reply.fault_code == 2150858843
    windows = ET.fromstring(recording("bad_command_id_fault.xml").split("-->", 1)[1])
    body = "{http://www.w3.org/2003/05/soap-envelope}Body"
    ours = ET.fromstring(reply.body)
    assert element_paths(ours.find(body)) == element_paths(windows.find(body))
    msg = ".//{http://schemas.microsoft.com/wbem/wsman/1/wsmanfault}Message"
    assert ours.find(msg).text == windows.find(msg).text
    # pypsrp parses it the way the providers' "shell gone" handling expects.
    fault = WSMan._parse_wsman_fault(reply.body.decode())
    assert isinstance(fault, WSManFaultError) and fault.code == 2150858843


def test_get_of_a_deleted_shell_nests_the_plugin_provider_fault(wap):
    # Not in the recordings: the shape a comparison with a live Windows host reported.
    shell_id = str(uuid.uuid4()).upper()
    reply = wap.handle(_envelope(core.ACTION_GET, shell_id), Principal("CONTOSO\\WapAdmin", "basic"))
    assert reply.status == 500 and reply.fault_code == 2150858843
    root = ET.fromstring(reply.body)
    f = "{http://schemas.microsoft.com/wbem/wsman/1/wsmanfault}"
    provider = root.find(f".//{f}Message/{f}ProviderFault")
    assert provider is not None and provider.get("provider") == "microsoft.powershell"
    inner = provider.find(f"{f}WSManFault")
    assert inner.get("Code") == "2150858843" and shell_id in inner.find(f"{f}Message").text
    fault = WSMan._parse_wsman_fault(reply.body.decode())
    assert (fault.code, fault.provider) == (2150858843, "microsoft.powershell")


def test_negative_operation_timeout_is_refused(wap):
    reply = wap.handle(_envelope(core.ACTION_RECEIVE, str(uuid.uuid4()).upper(), timeout="PT-5.000S"),
                       Principal("CONTOSO\\WapAdmin", "basic"))
    assert reply.status == 500 and reply.fault_code == 2150858767
    assert b"InvalidMessageInformationHeader" in reply.body
