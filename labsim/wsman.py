"""labsim's sans-IO protocol core: a WSMan envelope in, a WSMan envelope out, and the shell/pipeline table.

One :class:`WSManService` per lab host. It knows nothing of sockets, TLS or HTTP authentication: the transport
(``labsim.transport``) hands it the decrypted request body and the authenticated :class:`Principal` and sends back
the :class:`Reply`. Tests drive it in memory with envelopes built by pypsrp's own message builders.

Mapping (MS-WSMV / MS-PSRP):
    one shell (ShellId = the runspace pool GUID, upper case) = one psrpcore ``ServerRunspacePool``;
    one command (CommandId = the pipeline GUID) = one ``ServerPipeline`` whose statements run on a worker thread
    through :meth:`labsim.runtime.HostRuntime.run_pipeline`.

Outgoing PSRP data is fragmented as soon as it is produced and queued per target (the pool itself, or one queue
per pipeline), so a Receive for one pipeline never returns another pipeline's fragments. A Receive waits (long
poll) until its queue has data or the operation timeout expires, which answers the fault pypsrp's ``poll_invoke``
expects (code 2150858793) and retries on.

Every exception becomes a WSMan fault (HTTP 500); nothing a client sends can stop the service.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import psrpcore as ev  # the event classes (CreatePipelineEvent, ...) are psrpcore's public API
from psrpcore import PSRPPayload, ServerPipeline, StreamType
from psrpcore.types import (
    PSCustomObject,
    PSInvocationState,
    PSRPMessageType,
    PSVersion,
    RunspaceAvailability,
    RunspacePoolState,
    SessionCapability,
)

from labsim import convert, records
from labsim import psrp_compat as compat
from labsim.runtime import Command, HostRuntime, Invocation, PipelineStopped, Session, TerminatingError
from labsim.windows import DEFAULT_RELEASE, WindowsRelease

log = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

_ACTION = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL_ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE = _ACTION + "Create"
ACTION_DELETE = _ACTION + "Delete"
ACTION_GET = _ACTION + "Get"
ACTION_COMMAND = _SHELL_ACTION + "Command"
ACTION_SEND = _SHELL_ACTION + "Send"
ACTION_RECEIVE = _SHELL_ACTION + "Receive"
ACTION_SIGNAL = _SHELL_ACTION + "Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
# The action of a fault about the message's addressing headers (invalid_timeout_fault.xml).
ACTION_ADDRESSING_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
COMMAND_STATE_DONE = SHELL_URI + "/CommandState/Done"

# Windows error codes carried in WSManFault@Code (winerror.h, ERROR_WSMAN_*).
CODE_SHELL_NOT_FOUND = 2150858843  # 0x8033805B, also what pypsrp's is_alive treats as "pool gone"
CODE_OPERATION_TIMEOUT = 2150858793  # 0x80338029, swallowed and retried by pypsrp's poll_invoke
CODE_INVALID_XML = 2150858817  # the request is not well-formed XML or not a SOAP envelope
CODE_ACTION_NOT_SUPPORTED = 2150858753  # wsa:Action is not one this service implements
CODE_INVALID_SELECTORS = 2150858842  # the request names no ShellId at all
CODE_INVALID_HEADER = 2150858767  # 0x8033800F ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER (e.g. a negative timeout)
CODE_CONFIG_NOT_FOUND = 2150858752  # no session configuration behind the ResourceURI
CODE_ACCESS_DENIED = 5  # ERROR_ACCESS_DENIED
CODE_ALREADY_EXISTS = 2150858795  # a shell with that ShellId exists already
CODE_ENVELOPE_TOO_LARGE = 2150858846  # body larger than the service's MaxEnvelopeSize
CODE_INTERNAL_ERROR = 2150858883  # the service failed while handling a valid request
CODE_INVALID_REQUEST = 2150858819  # the request parses but misses something the action needs

# The service's own MaxEnvelopeSizekb (Windows default 500); also what the transport caps a request at.
MAX_ENVELOPE_KB = 500
# WinRM's default shell idle timeout (Winrs IdleTimeout 7200000 ms), reported when the client asks none.
DEFAULT_SHELL_IDLE_SECONDS = 7200.0
# The largest PSRP fragment Windows sends (header included).
MAX_FRAGMENT_SIZE = 32768
# Room left in a Receive reply for the envelope around the base64 streams.
_ENVELOPE_OVERHEAD = 4096
# How long a Receive waits for a running pipeline to finish once it has some output.
_COALESCE_SECONDS = 0.005
_CTRL_C_SIGNALS = ("powershell/signal/crtl_c", "powershell/signal/ctrl_c", SHELL_URI + "/signal/ctrl_c")
_TERMINATE_SIGNAL = SHELL_URI + "/signal/terminate"
_DURATION = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)S)?$")


class WSManFault(Exception):
    """A request that ends in a SOAP fault (HTTP 500) shaped like Windows' WinRM service answers it.

    ``reason`` is the s:Reason text when Windows words it apart from the f:Message; ``detail`` the
    w:FaultDetail URI; ``provider`` (name, DLL path) nests the message in that WinRM provider's f:ProviderFault;
    ``action`` the reply's wsa:Action."""

    def __init__(self, code: int, message: str, *, subcode: str = "w:InternalError", sender: bool = False,
                 reason: str | None = None, detail: str | None = None, provider: tuple[str, str] | None = None,
                 action: str = ACTION_FAULT) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.sender = sender
        self.reason = reason
        self.detail = detail
        self.provider = provider
        self.action = action
        self.relates_to = ""  # the request's MessageID, when the fault is raised before handle() knows it


_FAULT_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
_INVALID_SELECTORS_REASON = ("The WS-Management service cannot process the request because the request contained "
                             "invalid selectors for the resource. ")


def shell_not_found(shell_id: str) -> WSManFault:
    """Windows' answer for a ShellId it does not know (Windows' text)."""
    return WSManFault(
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        subcode="w:InvalidSelectors", sender=True, reason=_INVALID_SELECTORS_REASON,
        detail=_FAULT_DETAIL + "UnexpectedSelectors")


def shell_get_not_found() -> WSManFault:
    """A Get of a shell that is gone: the WinRM shell provider's fault (deleted_shell_get_fault.xml)."""
    return WSManFault(CODE_SHELL_NOT_FOUND, _INVALID_SELECTORS_REASON, subcode="w:InvalidSelectors", sender=True,
                      reason=_INVALID_SELECTORS_REASON, detail=_FAULT_DETAIL + "UnexpectedSelectors",
                      provider=("Shell provider", "%systemroot%\\system32\\WsmSvc.dll"))


def command_not_found(command_id: str) -> WSManFault:
    """A CommandId the shell does not have (test_winrs_bad_cmd_id.yml)."""
    return WSManFault(
        CODE_SHELL_NOT_FOUND,
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does "
        "not exist. Either the command has completed execution or the client specified an invalid command "
        "identifier. ", subcode="w:InvalidSelectors", sender=True, reason=_INVALID_SELECTORS_REASON,
        detail=_FAULT_DETAIL + "UnexpectedSelectors")


def operation_timeout() -> WSManFault:
    return WSManFault(CODE_OPERATION_TIMEOUT,  # Windows' text, two trailing spaces included
                      "The WS-Management service cannot complete the operation within the time specified in "
                      "OperationTimeout.  ", subcode="w:TimedOut")


def invalid_timeout(value: str) -> WSManFault:
    """An OperationTimeout header that is not a positive duration (invalid_timeout_fault.xml)."""
    return WSManFault(CODE_INVALID_HEADER, "The WS-Management service cannot process the request. The XML contains "
                      f"an invalid timeout field in the SOAP header: {value}. ",
                      subcode="a:InvalidMessageInformationHeader", sender=True, action=ACTION_ADDRESSING_FAULT,
                      reason="The WS-Management service cannot process the request. The request contains one or "
                      "more invalid SOAP headers. ")


@dataclass(frozen=True)
class Principal:
    """Who sent a request, as the transport authenticated them."""

    user: str  # DOMAIN\\user or user, as the lab file spells it
    auth: str  # "basic" | "negotiate" | "credssp"
    client_ip: str = "127.0.0.1"


@dataclass
class Reply:
    status: int  # 200, or 500 for a fault
    body: bytes
    # Set on faults so the transport can log the code without parsing XML.
    fault_code: int | None = None


@dataclass
class Request:
    action: str
    resource_uri: str
    message_id: str
    selectors: dict[str, str]
    options: dict[str, str]
    max_envelope_size: int
    operation_timeout: float | None
    body: ET.Element | None


def parse_request(data: bytes) -> Request:
    """Parse a WSMan request envelope. Raises :class:`WSManFault` for anything that is not one."""
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        # No DTDs in SOAP 1.2; refusing them also closes the entity-expansion door.
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request because the XML "
                         "contains a DTD, which SOAP does not allow.", subcode="w:SchemaValidationError", sender=True)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WSManFault(CODE_INVALID_XML, f"The WS-Management service cannot process the request because the XML "
                         f"is invalid: {exc}.", subcode="w:SchemaValidationError", sender=True) from None
    if root.tag != f"{{{NS['s']}}}Envelope":
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request: the document is "
                         "not a SOAP 1.2 envelope.", subcode="w:SchemaValidationError", sender=True)
    header = root.find("s:Header", NS)
    if header is None:
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request: the SOAP "
                         "envelope has no Header.", subcode="w:SchemaValidationError", sender=True)

    def text(path: str) -> str:
        el = header.find(path, NS)
        return (el.text or "").strip() if el is not None else ""

    selectors = {s.attrib.get("Name", ""): (s.text or "").strip()
                 for s in header.findall("wsman:SelectorSet/wsman:Selector", NS)}
    options = {o.attrib.get("Name", ""): (o.text or "").strip()
               for o in header.findall("wsman:OptionSet/wsman:Option", NS)}
    try:
        max_env = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_env = 153600
    timeout_text = text("wsman:OperationTimeout")
    if timeout_text.startswith("-") or "-" in timeout_text[:3]:
        fault = invalid_timeout(timeout_text)
        fault.relates_to = text("wsa:MessageID")
        raise fault
    body = root.find("s:Body", NS)
    child = body[0] if body is not None and len(body) else None
    return Request(action=text("wsa:Action"), resource_uri=text("wsman:ResourceURI"),
                   message_id=text("wsa:MessageID"), selectors=selectors, options=options,
                   max_envelope_size=max(8192, min(max_env, MAX_ENVELOPE_KB * 1024)),
                   operation_timeout=_duration(timeout_text), body=child)


def _duration(value: str) -> float | None:
    m = _DURATION.match(value)
    if not m or m.group(1) is None:
        return None
    return float(m.group(1))


_PREFIXES = {"s": NS["s"], "a": NS["wsa"], "x": NS["wst"], "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing",
             "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration", "w": NS["wsman"], "rsp": NS["rsp"],
             "p": NS["wsmv"]}
# The namespaces Windows declares on the envelope, by reply (the recordings' envelopes).
_DECLARED = {"ReceiveResponse": ("s", "a", "w", "rsp", "p"), "DeleteResponse": ("s", "a", "w", "p"),
             "GetResponse": ("s", "a", "x", "w", "p"), "fault": ("s", "a", "x", "e", "n", "w", "p")}
_DECLARED_OTHERWISE = ("s", "a", "x", "w", "rsp", "p")


def _envelope_open(action: str) -> str:
    prefixes = _DECLARED.get(action.rsplit("/", 1)[-1], _DECLARED_OTHERWISE)
    return '<s:Envelope xml:lang="en-US" ' + " ".join(f'xmlns:{p}="{_PREFIXES[p]}"' for p in prefixes) + ">"


def activity_id() -> str:
    """The p:ActivityId header Windows adds to every reply (an ETW activity GUID)."""
    return str(uuid.uuid4()).upper()


def build_reply(action: str, relates_to: str, body: str) -> bytes:
    # Windows sends no XML declaration.
    return (f'{_envelope_open(action)}<s:Header>'
            f'<a:Action>{escape(action)}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>'
            f'<p:ActivityId>{activity_id()}</p:ActivityId><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>'
            f'<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>'
            ).encode()


def build_fault(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    code = "s:Sender" if fault.sender else "s:Receiver"
    message = escape(fault.message)
    reason = escape(fault.reason) if fault.reason is not None else message
    detail = f'<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>' if fault.detail else ""
    inner = message
    if fault.provider:
        name, path = fault.provider
        inner = (f'<f:ProviderFault provider={quoteattr(name)} path={quoteattr(path)}>'
                 f'<f:WSManFault xmlns:f="{NS["wsmanfault"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
                 f'<f:Message>{message}</f:Message></f:WSManFault></f:ProviderFault>')
    body = (f'<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}</s:Value>'
            f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason><s:Detail>'
            f'{detail}<f:WSManFault xmlns:f="{NS["wsmanfault"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
            f'<f:Message>{inner}</f:Message></f:WSManFault></s:Detail></s:Fault>')
    return build_reply(fault.action, relates_to, body)


def session_configurations(is_privileged_endpoint: bool) -> tuple[str, ...]:
    """The PowerShell session configurations a host registers. A privileged endpoint (an ERCS VM) exposes the
    JEA configuration only; every other lab host the default one."""
    return ("PrivilegedEndpoint",) if is_privileged_endpoint else ("Microsoft.PowerShell",)


_STREAM_OPTION = {"Error": 1, "Warning": 2, "Debug": 4, "Verbose": 8}  # RemoteStreamOptions.AddInvocationInfoTo*


class _PipelineSink:
    """The :class:`labsim.runtime.PipelineSink` a worker writes through; forwards to the shell under its lock.
    Records are shaped by :mod:`labsim.records` (Windows' shapes)."""

    def __init__(self, run: PipelineRun) -> None:
        self._run = run
        self.stop_requested = run.stop_requested

    def _write(self, fn: Callable[[ServerPipeline], None]) -> None:
        shell = self._run.shell
        with shell.lock:
            if self._run.pipeline.state != PSInvocationState.Running:
                # Stopped by the client (or the shell closed): tell the behaviour to unwind.
                raise PipelineStopped("the pipeline was stopped")
            fn(self._run.pipeline)
            shell.pump()

    def _invocation(self, stream: str, invocation: Invocation | None) -> Invocation | None:
        """The invocation info to attach, or None when the client did not ask for it on this stream."""
        if not self._run.stream_options & _STREAM_OPTION[stream]:
            return None
        return invocation or self._run.first_invocation

    def output(self, value: Any) -> None:
        psrp_value = convert.to_psrp(value)
        self._write(lambda p: p.write_output(psrp_value))

    def error(self, message: str, *, error_id: str, category: int, target: Any = None,
              exception_type: str = records.RUNTIME_EXCEPTION, invocation: Invocation | None = None) -> None:
        # The record always names its command (InvocationInfo); the flattened members only when asked.
        record = records.error_record(message, error_id=error_id, category=category, target=target,
                                      exception_type=exception_type,
                                      invocation=invocation or self._run.first_invocation,
                                      extended=self._invocation("Error", invocation) is not None)
        self._write(lambda p: p.prepare_message(record, message_type=PSRPMessageType.ErrorRecord))

    def verbose(self, message: str, *, invocation: Invocation | None = None) -> None:
        record = records.informational_record("Verbose", str(message), self._invocation("Verbose", invocation))
        self._write(lambda p: p.prepare_message(record, message_type=PSRPMessageType.VerboseRecord))

    def warning(self, message: str, *, invocation: Invocation | None = None) -> None:
        record = records.informational_record("Warning", str(message), self._invocation("Warning", invocation))
        self._write(lambda p: p.prepare_message(record, message_type=PSRPMessageType.WarningRecord))

    def information(self, message: str, *, invocation: Invocation | None = None) -> None:
        if not self._run.shell.service.release.has_information_stream:
            return  # no information stream before PowerShell 5.0
        source = (invocation or self._run.first_invocation or Invocation(name="")).display_name
        session = self._run.shell.session
        record = records.information_record(str(message), source=source, user=session.user, computer=session.host)
        self._write(lambda p: p.prepare_message(record, message_type=PSRPMessageType.InformationRecord))


def _error_record(err: TerminatingError, default: Invocation | None) -> Any:
    """The ErrorRecord a Failed PipelineState carries (ExceptionAsErrorRecord)."""
    return records.error_record(err.message, error_id=err.error_id, category=err.category, target=err.target,
                                exception_type=err.exception_type, invocation=err.invocation or default,
                                written=False)


@dataclass
class PipelineRun:
    """One client command: a psrpcore pipeline, its input, its worker and its outgoing fragments."""

    shell: Shell
    pipeline: ServerPipeline
    command_id: str
    input: list[Any] = field(default_factory=list)
    outgoing: deque[PSRPPayload] = field(default_factory=deque)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None
    started: bool = False
    stream_options: int = 0  # RemoteStreamOptions the client sent with the pipeline
    first_invocation: Invocation | None = None  # the pipeline's first command, for records that name none

    @property
    def finished(self) -> bool:
        return self.pipeline.state in (PSInvocationState.Completed, PSInvocationState.Failed,
                                       PSInvocationState.Stopped)


class Shell:
    """One runspace pool. ``lock`` guards the psrpcore objects (which are not thread-safe) and the queues."""

    def __init__(self, service: WSManService, shell_id: str, session: Session, owner: Principal,
                 max_envelope_size: int) -> None:
        self.service = service
        self.id = shell_id
        self.session = session
        self.owner = owner
        self.lock = threading.RLock()
        self.data_ready = threading.Condition(self.lock)
        release = service.release
        self.pool = compat.LabRunspacePool(application_private_data=records.application_private_data(release))
        self.pool.our_capability = SessionCapability(  # what psrpcore sends as the server's SESSION_CAPABILITY
            PSVersion=self.pool.our_capability.PSVersion, protocolversion=PSVersion(release.protocol_version),
            SerializationVersion=self.pool.our_capability.SerializationVersion)
        self.outgoing: deque[PSRPPayload] = deque()  # pool-level messages
        self.runs: dict[uuid.UUID, PipelineRun] = {}
        self.closed = False
        self.created = time.monotonic()
        self.idle_timeout = DEFAULT_SHELL_IDLE_SECONDS  # what the client asked in its Create, or WinRM's default
        self.created_clock = service._clock()
        self.last_activity = self.created
        # Windows fragments at 32 KiB; every fragment must also fit the smallest envelope the client accepts
        # (pypsrp starts at 150 KiB and only grows it).
        self.fragment_size = max(1024, min(MAX_FRAGMENT_SIZE, (max_envelope_size - _ENVELOPE_OVERHEAD) * 3 // 4))

    # -- inbound ---------------------------------------------------------------------------------------------
    def feed(self, data: bytes, stream: StreamType = StreamType.default) -> None:
        """Hand client fragments to psrpcore and act on every complete message. Caller holds the lock."""
        self.pool.receive_data(PSRPPayload(data, stream, None))
        while True:
            event = self.pool.next_event()
            if event is None:
                break
            self._on_event(event)
        self.pump()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, (ev.CreatePipelineEvent, ev.GetCommandMetadataEvent)):
            run = self.runs.get(event.pipeline_id)
            if run is None:
                return
            if isinstance(event, ev.GetCommandMetadataEvent):
                self._answer_command_metadata(run)
            elif getattr(run.pipeline.metadata, "no_input", True):
                self._start(run)
        elif isinstance(event, ev.PipelineInputEvent):
            run = self.runs.get(event.pipeline_id)
            if run is not None:
                run.input.append(convert.to_python(event.data))
        elif isinstance(event, ev.EndOfPipelineInputEvent):
            run = self.runs.get(event.pipeline_id)
            if run is not None and not run.started:
                self._start(run)
        elif isinstance(event, (ev.SetMaxRunspacesEvent, ev.SetMinRunspacesEvent, ev.ResetRunspaceStateEvent,
                                ev.GetAvailableRunspacesEvent)):
            self._answer_availability(event)
        # SessionCapability, InitRunspacePool, ConnectRunspacePool and PublicKey are answered by psrpcore itself;
        # host responses are not expected because labsim never makes host calls.

    def _answer_availability(self, event: Any) -> None:
        raw = compat.raw_message(event)
        # pypsrp names the call id "CI" where psrpcore expects "ci": read either.
        ci = None
        for prop in list(raw.PSObject.extended_properties) + list(raw.PSObject.adapted_properties):
            if prop.name.lower() == "ci":
                ci = int(prop.get_value(raw))
        if ci is None:
            log.warning("shell %s: %s without a call id, ignored", self.id, type(event).__name__)
            return
        if isinstance(event, ev.GetAvailableRunspacesEvent):
            response: bool | int = max(self.pool.max_runspaces, 1)
        else:
            response = True
            for prop in list(raw.PSObject.extended_properties) + list(raw.PSObject.adapted_properties):
                # A limit below 1, or a minimum above the maximum, is refused (set_invalid_runspaces_response.xml).
                if prop.name == "MaxRunspaces":
                    maximum = int(prop.get_value(raw))
                    response = 1 <= maximum and self.pool.min_runspaces <= maximum
                    if response:
                        compat.set_runspace_limits(self.pool, maximum=maximum)
                elif prop.name == "MinRunspaces":
                    minimum = int(prop.get_value(raw))
                    response = 1 <= minimum <= max(self.pool.max_runspaces, 1)
                    if response:
                        compat.set_runspace_limits(self.pool, minimum=minimum)
        self.pool.prepare_message(RunspaceAvailability(SetMinMaxRunspacesResponse=response, ci=ci))

    def _answer_command_metadata(self, run: PipelineRun) -> None:
        # labsim publishes no command metadata: the count object pypsrp reads first, then nothing.
        run.started = True
        compat.set_state(run.pipeline, PSInvocationState.Running, emit=False)
        run.pipeline.write_output(PSCustomObject(
            PSTypeName="Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo", Count=0))
        run.pipeline.complete()

    def _start(self, run: PipelineRun) -> None:
        meta = run.pipeline.metadata
        statements: list[list[Command]] = [[]]
        for cmd in getattr(meta, "commands", []):
            params = [(name, True if (value is None and name is not None) else convert.to_python(value))
                      for name, value in cmd.parameters]
            statements[-1].append(Command(name=str(cmd.command_text), is_script=bool(cmd.is_script),
                                          parameters=params, end_of_statement=bool(cmd.end_of_statement)))
            if cmd.end_of_statement:
                statements.append([])
        statements = [s for s in statements if s]
        run.stream_options = int(getattr(meta, "remote_stream_options", 0) or 0)
        if statements:
            first = statements[0][0]
            kind = ("Script" if first.is_script else "ExternalScript" if first.name.lower().endswith(".ps1")
                    else "Cmdlet")
            run.first_invocation = Invocation(name=first.name, kind=kind, length=len(statements[0]),
                                              parameters=tuple((n, v) for n, v in first.parameters if n))
        run.started = True
        # Windows sends no "Running" PipelineState; emitting one (as psrpcore's start() does) would cost every
        # pipeline an extra Receive round trip.
        compat.set_state(run.pipeline, PSInvocationState.Running, emit=False)
        worker = threading.Thread(target=self._work, args=(run, statements), daemon=True,
                                  name=f"labsim-pipeline-{self.session.host}-{run.command_id[:8]}")
        run.worker = worker
        worker.start()

    def _work(self, run: PipelineRun, statements: list[list[Command]]) -> None:
        outcome: Exception | None = None
        try:
            self.service.runtime.run_pipeline(self.session, statements, list(run.input), _PipelineSink(run))
        except Exception as exc:  # noqa: BLE001 - every outcome is reported to the client below
            outcome = exc
        with self.lock:
            pipeline = run.pipeline
            if pipeline.state == PSInvocationState.Running:
                if outcome is None:
                    pipeline.complete()
                elif isinstance(outcome, PipelineStopped):
                    pipeline.stop()
                elif isinstance(outcome, TerminatingError):
                    compat.fail(pipeline, _error_record(outcome, run.first_invocation))
                else:
                    log.error("host %s: run_pipeline raised %s", self.session.host, type(outcome).__name__,
                              exc_info=outcome)
                    internal = TerminatingError(f"labsim internal error: {type(outcome).__name__}: {outcome}",
                                                error_id="LabsimInternalError", category=7)
                    compat.fail(pipeline, _error_record(internal, run.first_invocation))
            self.pump()

    # -- outbound --------------------------------------------------------------------------------------------
    def pump(self) -> None:
        """Move everything psrpcore has queued into the per-target queues. Caller holds the lock."""
        moved = False
        while True:
            payload = self.pool.data_to_send(self.fragment_size)
            if payload is None:
                break
            moved = True
            run = self.runs.get(payload.pipeline_id) if payload.pipeline_id else None
            if payload.pipeline_id is not None and run is None:
                continue  # the client already terminated that pipeline
            # Windows sends one fragment per rsp:Stream: keep fragments apart.
            (run.outgoing if run is not None else self.outgoing).extend(_fragments(payload))
        if moved:
            self.data_ready.notify_all()

    def stop_run(self, run: PipelineRun) -> None:
        """Stop a pipeline now (the client asked): the client sees Stopped at once, the worker is told."""
        run.stop_requested.set()
        if run.pipeline.state == PSInvocationState.Running:
            run.pipeline.stop()
        elif not run.started and run.pipeline.state == PSInvocationState.NotStarted:
            run.started = True
            compat.set_state(run.pipeline, PSInvocationState.Stopped)
        self.pump()

    def drop_run(self, run: PipelineRun) -> None:
        self.runs.pop(run.pipeline.pipeline_id, None)
        compat.forget_pipeline(run.pipeline.runspace_pool, run.pipeline.pipeline_id)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for run in list(self.runs.values()):
                run.stop_requested.set()
                if run.pipeline.state == PSInvocationState.Running:
                    compat.set_state(run.pipeline, PSInvocationState.Stopped, emit=False)
            self.runs.clear()
            compat.forget_all_pipelines(self.pool)
            self.data_ready.notify_all()


class WSManService:
    """The WinRM service of one lab host: the shell table and the WSMan actions on it."""

    def __init__(self, host: str, machine: str, runtime: HostRuntime, *, privileged_endpoint: bool = False,
                 operation_timeout: float = 20.0, idle_shell_timeout: float = 240.0,
                 clock: Callable[[], float] = time.monotonic, release: WindowsRelease = DEFAULT_RELEASE) -> None:
        self.host = host
        self.machine = machine
        self.runtime = runtime
        self.release = release  # the host's Windows: its PSVersionTable, protocol version and streams
        self.configurations = session_configurations(privileged_endpoint)
        self.operation_timeout = operation_timeout
        self.idle_shell_timeout = idle_shell_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}

    # -- public API ------------------------------------------------------------------------------------------
    def handle(self, data: bytes, principal: Principal, endpoint: str = "") -> Reply:
        """Answer one WSMan request. May block up to the operation timeout (Receive long poll)."""
        relates_to = ""
        try:
            request = parse_request(data)
            relates_to = request.message_id
            body = self._dispatch(request, principal, endpoint)
            return Reply(200, build_reply(request.action + "Response", relates_to, body))
        except WSManFault as fault:
            relates_to = relates_to or fault.relates_to
            if fault.code != CODE_OPERATION_TIMEOUT:
                log.info("host %s: WSMan fault %d for %s: %s", self.host, fault.code, principal.user,
                         fault.message.split(". ")[0])
            return Reply(500, build_fault(fault, relates_to, self.machine), fault.code)
        except Exception as exc:  # noqa: BLE001 - a bug must answer a fault, never kill the connection
            log.exception("host %s: internal error handling a WSMan request", self.host)
            internal = WSManFault(CODE_INTERNAL_ERROR, f"The WS-Management service cannot process the request: "
                                  f"internal error ({type(exc).__name__}: {exc}).")
            return Reply(500, build_fault(internal, relates_to, self.machine), internal.code)

    @property
    def shell_ids(self) -> list[str]:
        with self._lock:
            return list(self._shells)

    def reap_idle(self) -> list[str]:
        """Close shells no request touched for their idle timeout, or ``idle_shell_timeout`` seconds when that is
        shorter (labsim's own limit, so that a vanished client does not hold a pool for WinRM's two hours)."""
        now = self._clock()
        with self._lock:
            idle = [s for s in self._shells.values()
                    if now - s.last_activity > min(self.idle_shell_timeout, s.idle_timeout)]
            for shell in idle:
                del self._shells[shell.id]
        for shell in idle:
            log.info("host %s: reaping shell %s idle for %.0f s", self.host, shell.id, now - shell.last_activity)
            shell.close()
        return [s.id for s in idle]

    def close(self) -> None:
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
        for shell in shells:
            shell.close()

    # -- actions ---------------------------------------------------------------------------------------------
    def _dispatch(self, req: Request, principal: Principal, endpoint: str) -> str:
        if req.action == ACTION_CREATE:
            return self._create(req, principal, endpoint)
        if req.action == ACTION_GET and req.resource_uri.rstrip("/").lower() == CONFIG_URI:
            return _WSMAN_CONFIG
        handlers = {ACTION_DELETE: self._delete, ACTION_GET: self._get, ACTION_COMMAND: self._command,
                    ACTION_SEND: self._send, ACTION_RECEIVE: self._receive, ACTION_SIGNAL: self._signal}
        handler = handlers.get(req.action)
        if handler is None:
            raise WSManFault(CODE_ACTION_NOT_SUPPORTED, f"The WS-Management service cannot process the request. "
                             f"The action {req.action or '(none)'!s} is not supported by the service.",
                             subcode="a:ActionNotSupported", sender=True)
        shell = self._shell(req, principal)
        with shell.lock:
            if shell.closed:
                raise shell_get_not_found() if req.action == ACTION_GET else shell_not_found(shell.id)
            shell.last_activity = self._clock()
        try:
            return handler(shell, req)
        finally:
            shell.last_activity = self._clock()

    def _shell(self, req: Request, principal: Principal) -> Shell:
        shell_id = req.selectors.get("ShellId", "").upper()
        if not shell_id:
            raise WSManFault(CODE_INVALID_SELECTORS, "The WS-Management service cannot process the request because "
                             "the request contained invalid selectors for the resource: no ShellId.",
                             subcode="w:InvalidSelectors", sender=True)
        with self._lock:
            shell = self._shells.get(shell_id)
        # Another user's shell is as invisible as a missing one (Windows answers the same way).
        if shell is None or shell.owner.user.lower() != principal.user.lower():
            raise shell_get_not_found() if req.action == ACTION_GET else shell_not_found(shell_id)
        return shell

    def _create(self, req: Request, principal: Principal, endpoint: str) -> str:
        if not req.resource_uri.lower().startswith(POWERSHELL_URI):
            raise WSManFault(CODE_CONFIG_NOT_FOUND, f"The WS-Management service cannot process the request. The "
                             f"resource URI {req.resource_uri} is not supported: labsim hosts serve PowerShell "
                             "session configurations only.", subcode="w:DestinationUnreachable", sender=True)
        wanted = req.resource_uri[len(POWERSHELL_URI):]
        configuration = next((c for c in self.configurations if c.lower() == wanted.lower()), None)
        if configuration is None:
            raise WSManFault(CODE_CONFIG_NOT_FOUND, f"The WS-Management service cannot process the request. Cannot "
                             f"find the {wanted} session configuration in the WSMan: drive on the {self.host} "
                             f"computer. Configurations here: {', '.join(self.configurations)}.",
                             subcode="w:InvalidResourceURI", sender=True)
        body = req.body
        if body is None or body.tag != f"{{{NS['rsp']}}}Shell":
            raise WSManFault(CODE_INVALID_REQUEST, "The WS-Management service cannot process the request: a Create "
                             "for a shell needs an rsp:Shell body.", subcode="w:SchemaValidationError", sender=True)
        creation = body.find("pwsh:creationXml", NS)
        creation_xml = creation.text if creation is not None else None
        if creation_xml is None or not creation_xml.strip():
            raise WSManFault(CODE_INVALID_REQUEST, "The WS-Management service cannot process the request: the "
                             "PowerShell shell has no creationXml.", subcode="w:SchemaValidationError", sender=True)
        shell_id = body.attrib.get("ShellId", "").upper() or str(uuid.uuid4()).upper()
        try:
            uuid.UUID(shell_id)
        except ValueError:
            raise WSManFault(CODE_INVALID_SELECTORS, f"The ShellId {shell_id!r} is not a GUID.",
                             subcode="w:InvalidSelectors", sender=True) from None
        session = Session(host=self.host, user=principal.user, configuration=configuration, auth=principal.auth,
                          shell_id=shell_id)
        shell = Shell(self, shell_id, session, principal, req.max_envelope_size)
        asked = _duration((body.findtext("rsp:IdleTimeOut", "", NS) or "").strip())
        if asked:
            shell.idle_timeout = asked
        with shell.lock:
            shell.feed(_b64(creation_xml))
        with self._lock:
            if shell_id in self._shells:
                raise WSManFault(CODE_ALREADY_EXISTS, f"A shell with ShellId {shell_id} already exists.",
                                 subcode="w:AlreadyExists", sender=True)
            self._shells[shell_id] = shell
        log.info("host %s: shell %s opened by %s (%s) for %s", self.host, shell_id, principal.user,
                 principal.auth, configuration)
        uri = escape(req.resource_uri)
        return (f'<x:ResourceCreated><a:Address>{escape(endpoint)}</a:Address><a:ReferenceParameters>'
                f'<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{shell_id}'
                f'</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
                + self._shell_body(shell, namespace=True))

    def _shell_body(self, shell: Shell, *, namespace: bool = False, usage: bool = False) -> str:
        """The rsp:Shell element of a Create or Get reply, with Windows' fields in Windows' order
        (create_response.xml, shell_get_response.xml; MaxIdleTimeOut is WinRM's default). ``usage``: a Get also
        reports the host process's memory and child processes (the memory figure is inferred: a stable value)."""
        with shell.lock:
            state = "Connected" if shell.pool.state == RunspacePoolState.Opened else shell.pool.state.name
        if shell.pool.state in (RunspacePoolState.BeforeOpen, RunspacePoolState.Opening):
            state = "Connected"  # WinRM reports the shell, not the pool: Connected from its creation
        now = self._clock()
        xmlns = f' xmlns:rsp="{NS["rsp"]}"' if namespace else ""
        return (f'<rsp:Shell{xmlns}><rsp:ShellId>{shell.id}</rsp:ShellId><rsp:ResourceUri>'
                f'{escape(POWERSHELL_URI + shell.session.configuration)}</rsp:ResourceUri><rsp:Owner>'
                f'{escape(shell.owner.user)}</rsp:Owner><rsp:ClientIP>{escape(shell.owner.client_ip)}</rsp:ClientIP>'
                f'<rsp:ProcessId>{records.host_process_id(self.host)}</rsp:ProcessId>'
                f'<rsp:IdleTimeOut>PT{shell.idle_timeout:.3f}S</rsp:IdleTimeOut>'
                '<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>'
                '<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>'
                '<rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>'
                '<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>'
                f'<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>{state}</rsp:State>'
                f'<rsp:ShellRunTime>{_xs_duration(now - shell.created_clock)}</rsp:ShellRunTime>'
                f'<rsp:ShellInactivity>{_xs_duration(now - shell.last_activity)}</rsp:ShellInactivity>'
                + ('<rsp:MemoryUsed>58MB</rsp:MemoryUsed><rsp:ChildProcesses>0</rsp:ChildProcesses>' if usage else "")
                + '</rsp:Shell>')

    def _delete(self, shell: Shell, req: Request) -> str:
        with self._lock:
            self._shells.pop(shell.id, None)
        shell.close()
        log.info("host %s: shell %s deleted", self.host, shell.id)
        return ""

    def _get(self, shell: Shell, req: Request) -> str:
        return self._shell_body(shell, namespace=True, usage=True)

    def _command(self, shell: Shell, req: Request) -> str:
        line = req.body
        if line is None or line.tag != f"{{{NS['rsp']}}}CommandLine":
            raise WSManFault(CODE_INVALID_REQUEST, "The WS-Management service cannot process the request: a "
                             "Command needs an rsp:CommandLine body.", subcode="w:SchemaValidationError", sender=True)
        command_id = line.attrib.get("CommandId", "").upper() or str(uuid.uuid4()).upper()
        try:
            pipeline_id = uuid.UUID(command_id)
        except ValueError:
            raise WSManFault(CODE_INVALID_REQUEST, f"The CommandId {command_id!r} is not a GUID.",
                             subcode="w:SchemaValidationError", sender=True) from None
        arguments = "".join(a.text or "" for a in line.findall("rsp:Arguments", NS))
        with shell.lock:
            if shell.pool.state != RunspacePoolState.Opened:
                raise WSManFault(CODE_INVALID_REQUEST, f"The runspace pool of shell {shell.id} is not open "
                                 f"(state {shell.pool.state.name}).", subcode="w:InvalidState")
            if pipeline_id in shell.runs:
                raise WSManFault(CODE_ALREADY_EXISTS, f"A command with CommandId {command_id} already exists in "
                                 f"shell {shell.id}.", subcode="w:AlreadyExists", sender=True)
            run = PipelineRun(shell, ServerPipeline(shell.pool, pipeline_id), command_id)
            shell.runs[pipeline_id] = run
            try:
                shell.feed(_b64(arguments))
            except Exception:
                shell.drop_run(run)
                raise
        return f'<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>'

    def _send(self, shell: Shell, req: Request) -> str:
        if req.body is None:
            raise WSManFault(CODE_INVALID_REQUEST, "A Send needs an rsp:Send body.",
                             subcode="w:SchemaValidationError", sender=True)
        with shell.lock:
            for stream in req.body.findall("rsp:Stream", NS):
                command_id = stream.attrib.get("CommandId", "").upper()
                if command_id:
                    run = self._run(shell, command_id)
                    if run.finished:
                        continue  # input for a stopped pipeline is dropped, like Windows does
                kind = StreamType.prompt_response if stream.attrib.get("Name") == "pr" else StreamType.default
                shell.feed(_b64(stream.text or ""), kind)
        return "<rsp:SendResponse/>"

    def _run(self, shell: Shell, command_id: str) -> PipelineRun:
        try:
            run = shell.runs.get(uuid.UUID(command_id))
        except ValueError:
            run = None
        if run is None:
            raise command_not_found(command_id)
        return run

    def _receive(self, shell: Shell, req: Request) -> str:
        desired = req.body.find("rsp:DesiredStream", NS) if req.body is not None else None
        command_id = desired.attrib.get("CommandId", "").upper() if desired is not None else ""
        timeout = min(req.operation_timeout or self.operation_timeout, self.operation_timeout)
        deadline = time.monotonic() + timeout
        budget = (req.max_envelope_size - _ENVELOPE_OVERHEAD) * 3 // 4
        with shell.lock:
            run = self._run(shell, command_id) if command_id else None
            queue = run.outgoing if run is not None else shell.outgoing
            while not queue:
                if shell.closed:
                    raise shell_not_found(shell.id)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise operation_timeout()
                shell.data_ready.wait(remaining)
                if run is not None and not shell.closed and shell.runs.get(run.pipeline.pipeline_id) is not run:
                    self._run(shell, command_id)  # terminated meanwhile: answers "command not found"
            if run is not None:
                # Give a pipeline that just produced output a moment to finish, so that a short command is
                # answered in one Receive (output + final state) rather than two round trips.
                grace_end = min(deadline, time.monotonic() + _COALESCE_SECONDS)
                while not run.finished and not shell.closed and sum(len(p.data) for p in queue) < budget:
                    remaining = grace_end - time.monotonic()
                    if remaining <= 0:
                        break
                    shell.data_ready.wait(remaining)
            parts: list[str] = []
            used = 0
            while queue and (not parts or used + len(queue[0].data) <= budget):
                if parts and run is None and _starts_message(queue[0], PSRPMessageType.RunspacePoolState):
                    break  # Windows sends the pool's state in a Receive of its own (pool_open_receive_2.xml)
                payload = queue.popleft()
                used += len(payload.data)
                parts.append(base64.b64encode(payload.data).decode())
            done = False
            if run is not None and run.finished and not queue:
                done = True
                shell.drop_run(run)
        cid = f' CommandId="{command_id}"' if command_id else ""
        streams = "".join(f'<rsp:Stream Name="stdout"{cid}>{p}</rsp:Stream>' for p in parts)
        state = ""
        if done:  # the PowerShell host's exit code (always 0); a running command's Receive has no CommandState
            state = (f'<rsp:CommandState CommandId="{command_id}" State="{COMMAND_STATE_DONE}">'
                     '<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>')
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _signal(self, shell: Shell, req: Request) -> str:
        body = req.body
        code_el = body.find("rsp:Code", NS) if body is not None else None
        code = (code_el.text or "").strip() if code_el is not None else ""
        command_id = body.attrib.get("CommandId", "").upper() if body is not None else ""
        with shell.lock:
            try:
                run = shell.runs.get(uuid.UUID(command_id)) if command_id else None
            except ValueError:
                run = None
            if code.lower() in _CTRL_C_SIGNALS:
                if run is not None:
                    shell.stop_run(run)
            elif code.lower() == _TERMINATE_SIGNAL:
                if run is not None:
                    if not run.finished:
                        shell.stop_run(run)
                    shell.drop_run(run)
            else:
                raise WSManFault(CODE_INVALID_REQUEST, f"The signal code {code!r} is not supported.",
                                 subcode="w:InvalidParameter", sender=True)
            # A signal for a command that already ended (and was collected) is a no-op, as on Windows.
        return "<rsp:SignalResponse/>"


def _fragments(payload: PSRPPayload) -> list[PSRPPayload]:
    """Split a payload psrpcore packed with several fragments into one payload per fragment ([MS-PSRP] 2.2.4:
    object id 8, fragment id 8, flags 1, length 4, then the data)."""
    out, data, offset = [], payload.data, 0
    while offset < len(data):
        end = offset + 21 + int.from_bytes(data[offset + 17:offset + 21], "big")
        out.append(PSRPPayload(data[offset:end], payload.stream_type, payload.pipeline_id))
        offset = end
    return out


# The WSMan service configuration a Get of the config URI returns: Windows' elements in Windows' order with
# WinRM's defaults (wsman_config_response.xml), MaxEnvelopeSizekb being this service's.
_WSMAN_CONFIG = (
    f'<cfg:Config xmlns:cfg="{NS["cfg"]}"><cfg:MaxEnvelopeSizekb>{MAX_ENVELOPE_KB}</cfg:MaxEnvelopeSizekb>'
    '<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>'
    '<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests><cfg:Client><cfg:NetworkDelayms>5000'
    '</cfg:NetworkDelayms><cfg:URLPrefix>wsman</cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted>'
    '<cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos>'
    '<cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP>'
    '</cfg:Auth><cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>'
    '<cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client><cfg:Service><cfg:RootSDDL>'
    'O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL>'
    '<cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>'
    '<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>'
    '<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>'
    '<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>'
    '<cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic>'
    '<cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>false</cfg:Certificate>'
    '<cfg:CredSSP>true</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth>'
    '<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>'
    '<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>'
    '<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>'
    '<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>'
    '<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess>'
    '</cfg:Service><cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess>'
    '<cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers>'
    '<cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime><cfg:MaxProcessesPerShell>2147483647'
    '</cfg:MaxProcessesPerShell><cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB>'
    '<cfg:MaxShellsPerUser>2147483647</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>')


def _starts_message(payload: PSRPPayload, message_type: PSRPMessageType) -> bool:
    """Whether this fragment (header: object id 8, fragment id 8, flags 1, length 4) starts a message of that type
    (message header: destination 4, type 4 little-endian)."""
    data = payload.data
    return bool(len(data) >= 29 and data[16] & 1 and int.from_bytes(data[25:29], "little") == message_type.value)


def _xs_duration(seconds: float) -> str:
    """An xs:duration the way WinRM writes ShellRunTime / ShellInactivity: ``P0DT0H0M0S``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise WSManFault(CODE_INVALID_REQUEST, "The WS-Management service cannot process the request: a stream "
                         "is not valid base64.", subcode="w:SchemaValidationError", sender=True) from None
