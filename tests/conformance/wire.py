"""labsim's side of the comparison: the same pypsrp client drives labsim's real host behaviour in memory through
the exchanges the recordings show, and every reply is kept under a name the aspects look up.

One capture per test session: the scenarios are cheap (no sockets, no TLS) and every aspect reads the same
replies, so a reply that changes shows in every aspect that looks at it.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypsrp.complex_objects import RemoteStreamOptions
from pypsrp.exceptions import InvalidPSRPOperation, WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from labsim import envelope as soap
from labsim.envelope import Principal
from labsim.hosts import LabRuntime
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.wsman import WSManService
from tests.labsim.protocol_doubles import EchoRuntime, envelope

from .clixml_shape import Message, messages

NO_INVOCATION_INFO = 0  # RemoteStreamOptions.None
WAP = "wapcomputer1"
PEP = "AzS-ERCS01"
WAP_USER = "CONTOSO\\WapAdmin"
PEP_USER = "AZURESTACK\\CloudAdmin"
# The script text of the recorded JEA refusal (test_psrp_with_jea_configuration.yml), sent the same way here.
REFUSED_SCRIPT = "Set-Item -Path WSMan:\\localhost\\Service\\AllowUnencrypted -Value $false"

# PSRP message types ([MS-PSRP] 2.2.1)
SESSION_CAPABILITY = 0x00010002
ENCRYPTED_SESSION_KEY = 0x00010006
RUNSPACE_AVAILABILITY = 0x00021004
RUNSPACEPOOL_STATE = 0x00021005
APPLICATION_PRIVATE_DATA = 0x00021009
PIPELINE_OUTPUT = 0x00041004
ERROR_RECORD = 0x00041005
PIPELINE_STATE = 0x00041006
VERBOSE_RECORD = 0x00041008
WARNING_RECORD = 0x00041009
INFORMATION_RECORD = 0x00041011


@dataclass
class Exchange:
    action: str  # the request's wsa:Action, last path segment (Create, Receive, ...)
    request: bytes
    status: int
    body: bytes

    @property
    def root(self) -> ET.Element:
        return ET.fromstring(self.body)


class RecordingTransport:
    """pypsrp's transport replaced by a direct call into a WSManService; keeps every exchange."""

    def __init__(self, service: WSManService, principal: Principal, log: list[Exchange]) -> None:
        self.service = service
        self.principal = principal
        self.endpoint = "https://lab.test:5986/wsman"
        self.log = log

    def send(self, message: bytes, **_kwargs: Any) -> bytes:
        reply = self.service.handle(message, self.principal, self.endpoint)
        self.log.append(Exchange(action_of(message), message, reply.status, reply.body))
        if reply.status != 200:
            raise WinRMTransportError("http", reply.status, reply.body.decode())
        return reply.body

    def close(self) -> None:
        pass


def action_of(envelope: bytes) -> str:
    match = re.search(rb"Action[^>]*>([^<]+)<", envelope)
    return match.group(1).decode().rsplit("/", 1)[-1] if match else ""


@dataclass
class Wire:
    """Every labsim reply the aspects compare, by name."""

    exchanges: list[Exchange] = field(default_factory=list)
    named: dict[str, Exchange] = field(default_factory=dict)
    pool_receives: list[Exchange] = field(default_factory=list)
    large_receives: list[Exchange] = field(default_factory=list)  # a 300 kB output: several Receives
    messages: dict[str, Message] = field(default_factory=dict)
    errors: dict[str, list] = field(default_factory=dict)  # pypsrp's view of the error records, by scenario

    def reply(self, name: str) -> Exchange:
        return self.named[name]

    def message(self, name: str) -> bytes:
        return self.messages[name].data


def _client(service: WSManService, user: str, log: list[Exchange], **kwargs: Any) -> WSMan:
    wsman = WSMan("lab.test", ssl=True, auth="basic", username=user, password="unused",
                  operation_timeout=kwargs.pop("operation_timeout", 5))
    # pypsrp types the attribute as its HTTP transport; this stand-in has the send/close it calls.
    wsman.transport = RecordingTransport(service, Principal(user, "basic"), log)  # type: ignore[assignment]
    return wsman




def _raw(service: WSManService, user: str, log: list[Exchange], request: bytes) -> Exchange:
    reply = service.handle(request, Principal(user, "basic"))
    exchange = Exchange(action_of(request), request, reply.status, reply.body)
    log.append(exchange)
    return exchange


def _new(log: list[Exchange], start: int, action: str) -> list[Exchange]:
    return [e for e in log[start:] if e.action == action]


def _message(wire: Wire, name: str, exchanges: list[Exchange], message_type: int, nth: int = 0) -> None:
    found = [m for m in messages([e.body for e in exchanges if e.status == 200]) if m.message_type == message_type]
    if len(found) > nth:
        wire.messages[name] = found[nth]


def _run(pool: RunspacePool, cmdlet: str, *, options: int = RemoteStreamOptions.ADD_INVOCATION_INFO,
         input: list | None = None, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for k, v in params.items():
        ps.add_parameter(k, v)
    # pypsrp sends any value that is not a generator as the input (a list: one object each); its hint says bytes.
    ps.invoke(input=input, remote_stream_options=options)  # type: ignore[arg-type]
    return ps


def capture(state_dir: Path) -> Wire:
    wire = Wire()
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    data["settings"]["pep_polling_seconds"] = 0
    runtime = LabRuntime.open(Lab.model_validate(data), state_dir)
    wap = WSManService(WAP, WAP + ".contoso.local", runtime, operation_timeout=2.0)
    pep = WSManService(PEP, PEP + ".azurestack.local", runtime, privileged_endpoint=True, operation_timeout=2.0)
    echo = WSManService("WAP01", "wap01.contoso.local", EchoRuntime(), operation_timeout=2.0)
    try:
        _wap(wire, wap)
        _pep(wire, pep)
        _echo(wire, echo)
    finally:
        for service in (wap, pep, echo):
            service.close()
    return wire


def _wap(wire: Wire, service: WSManService) -> None:
    log = wire.exchanges
    pool = RunspacePool(_client(service, WAP_USER, log))
    pool.open()
    shell_id = str(pool.id).upper()
    wire.named["create"] = _new(log, 0, "Create")[0]
    wire.pool_receives = _new(log, 0, "Receive")
    _message(wire, "session_capability", wire.pool_receives, SESSION_CAPABILITY)
    _message(wire, "application_private_data", wire.pool_receives, APPLICATION_PRIVATE_DATA)
    _message(wire, "runspace_pool_state", wire.pool_receives, RUNSPACEPOOL_STATE)

    start = len(log)
    pool.get_available_runspaces()
    _message(wire, "get_available_runspaces", _new(log, start, "Receive"), RUNSPACE_AVAILABILITY)
    start = len(log)
    pool.max_runspaces = 5
    _message(wire, "set_max_runspaces", _new(log, start, "Receive"), RUNSPACE_AVAILABILITY)
    start = len(log)
    try:
        pool.min_runspaces = -1
    except InvalidPSRPOperation:
        pass
    _message(wire, "set_invalid_runspaces", _new(log, start, "Receive"), RUNSPACE_AVAILABILITY)
    start = len(log)
    pool.reset_runspace_state()
    _message(wire, "reset_runspace_state", _new(log, start, "Receive"), RUNSPACE_AVAILABILITY)
    start = len(log)
    pool.exchange_keys()
    _message(wire, "encrypted_session_key", _new(log, start, "Receive"), ENCRYPTED_SESSION_KEY)

    start = len(log)
    ps = _run(pool, "Get-Item", Path="C:\\missing")
    wire.errors["cmdlet"] = ps.streams.error
    wire.named["command"] = _new(log, start, "Command")[0]
    wire.named["receive_done"] = _new(log, start, "Receive")[-1]
    _message(wire, "cmdlet_error", _new(log, start, "Receive"), ERROR_RECORD)
    _message(wire, "completed_state", _new(log, start, "Receive"), PIPELINE_STATE)

    start = len(log)
    ps = _run(pool, "Get-Item", options=NO_INVOCATION_INFO, Path="C:\\missing")
    _message(wire, "cmdlet_error_no_invocation", _new(log, start, "Receive"), ERROR_RECORD)

    long_path = "C:\\inetpub\\MgmtSvc-TenantPublicAPI\\bin\\missing\\Microsoft.WindowsAzure.dll"
    start = len(log)
    ps = _run(pool, "Get-Item", Path=long_path)
    wire.errors["long_target"] = ps.streams.error
    _message(wire, "long_target_error", _new(log, start, "Receive"), ERROR_RECORD)

    start = len(log)
    ps = _run(pool, "Get-ServiceTypo")
    wire.errors["command_not_found"] = ps.streams.error
    _message(wire, "command_not_found_state", _new(log, start, "Receive"), PIPELINE_STATE)

    start = len(log)
    _run(pool, "Write-Output", input=["hi"])
    sends = _new(log, start, "Send")
    if sends:
        wire.named["send"] = sends[0]
    _message(wire, "string_output", _new(log, start, "Receive"), PIPELINE_OUTPUT)

    pool.is_alive()
    wire.named["get_shell"] = [e for e in log if e.action == "Get"][-1]
    wire.named["wsman_config"] = _config_get(service, log)

    # Faults, with envelopes built by pypsrp's header builder.
    receive = ET.Element(f"{{{soap.NS['rsp']}}}Receive")
    ET.SubElement(receive, f"{{{soap.NS['rsp']}}}DesiredStream").text = "stdout"
    wire.named["operation_timeout_fault"] = _raw(service, WAP_USER, log, envelope(
        soap.ACTION_RECEIVE, shell_id=shell_id, body=receive, timeout="PT0.200S"))
    unknown = ET.Element(f"{{{soap.NS['rsp']}}}Receive")
    ET.SubElement(unknown, f"{{{soap.NS['rsp']}}}DesiredStream",
                  CommandId=str(uuid.uuid4()).upper()).text = "stdout"
    wire.named["bad_command_id_fault"] = _raw(service, WAP_USER, log, envelope(soap.ACTION_RECEIVE, shell_id=shell_id,
                                                                                body=unknown))
    wire.named["invalid_timeout_fault"] = _raw(service, WAP_USER, log, envelope(
        soap.ACTION_GET, shell_id=shell_id, resource_uri=soap.SHELL_URI, timeout="PT-1S"))

    start = len(log)
    pool.close()
    wire.named["delete"] = _new(log, start, "Delete")[0]
    wire.named["deleted_shell_get_fault"] = _raw(service, WAP_USER, log, envelope(
        soap.ACTION_GET, shell_id=shell_id, resource_uri=soap.SHELL_URI))

    # A second shell whose client asks an idle timeout.
    start = len(log)
    with RunspacePool(_client(service, WAP_USER, log), idle_timeout=60):
        pass
    wire.named["create_idle"] = _new(log, start, "Create")[0]


def _config_get(service: WSManService, log: list[Exchange]) -> Exchange:
    wsman = _client(service, WAP_USER, log)
    wsman.update_max_payload_size()
    return log[-1]


def _pep(wire: Wire, service: WSManService) -> None:
    log = wire.exchanges
    with RunspacePool(_client(service, PEP_USER, log), configuration_name="PrivilegedEndpoint") as pool:
        start = len(log)
        ps = _run(pool, "Add-AzurePackConnector", DisableMultiCloud=True)
        assert not ps.had_errors, ps.streams.error
        _message(wire, "verbose", _new(log, start, "Receive"), VERBOSE_RECORD)
        start = len(log)
        _run(pool, "Add-AzurePackConnector", options=NO_INVOCATION_INFO, DisableMultiCloud=True)
        _message(wire, "verbose_no_invocation", _new(log, start, "Receive"), VERBOSE_RECORD)
        start = len(log)
        ps = PowerShell(pool)
        ps.add_script(REFUSED_SCRIPT)
        ps.invoke()
        wire.errors["script_refused"] = ps.streams.error
        _message(wire, "script_refused_state", _new(log, start, "Receive"), PIPELINE_STATE)


def _echo(wire: Wire, service: WSManService) -> None:
    log = wire.exchanges
    with RunspacePool(_client(service, WAP_USER, log)) as pool:
        start = len(log)
        _run(pool, "Write-Streams")
        receives = _new(log, start, "Receive")
        _message(wire, "information", receives, INFORMATION_RECORD)
        _message(wire, "warning", receives, WARNING_RECORD)
        start = len(log)
        _run(pool, "Write-Streams", options=NO_INVOCATION_INFO)
        _message(wire, "warning_no_invocation", _new(log, start, "Receive"), WARNING_RECORD)
        start = len(log)
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Large").add_parameter("Bytes", 100_000).add_parameter("Count", 6)
        ps.invoke()
        wire.large_receives = _new(log, start, "Receive")
        wire.errors["large_output"] = [len(o) for o in ps.output]
        start = len(log)
        ps = PowerShell(pool)
        ps.add_cmdlet("Sleep-Until-Stopped")
        ps.begin_invoke()
        ps.stop()
        wire.named["signal"] = _new(log, start, "Signal")[0]
