"""labsim's sans-IO protocol core: a WSMan envelope in, a WSMan envelope out, and the shell table.

One :class:`WSManService` per lab host. It knows nothing of sockets, TLS or HTTP authentication: the transport
(``labsim.transport``) hands it the decrypted request body and the authenticated :class:`Principal` and sends back
the :class:`Reply`. Tests drive it in memory with envelopes built by pypsrp's own message builders.

The protocol in three modules, by job: :mod:`labsim.envelope` (WSMan messages: parsing requests, building
replies and Windows' faults), :mod:`labsim.shell` (one shell's runspace pool, pipelines and outgoing fragments),
and this one (the actions on the shell table).

Mapping (MS-WSMV / MS-PSRP):
    one shell (ShellId = the runspace pool GUID, upper case) = one psrpcore ``ServerRunspacePool``;
    one command (CommandId = the pipeline GUID) = one ``ServerPipeline`` whose statements run on a worker thread
    through :meth:`labsim.runtime.HostRuntime.run_pipeline`.

A Receive waits (long poll) until its queue has data or the operation timeout expires, which answers the fault
pypsrp's ``poll_invoke`` expects (code 2150858793) and retries on.

Every exception becomes a WSMan fault (HTTP 500); nothing a client sends can stop the service.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from xml.sax.saxutils import escape

from psrpcore import ServerPipeline, StreamType
from psrpcore.types import PSRPMessageType, RunspacePoolState

from labsim import records
from labsim.envelope import (
    ACTION_COMMAND,
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_GET,
    ACTION_RECEIVE,
    ACTION_SEND,
    ACTION_SIGNAL,
    CODE_ACTION_NOT_SUPPORTED,
    CODE_ALREADY_EXISTS,
    CODE_CONFIG_NOT_FOUND,
    CODE_INTERNAL_ERROR,
    CODE_INVALID_REQUEST,
    CODE_INVALID_SELECTORS,
    CODE_OPERATION_TIMEOUT,
    COMMAND_STATE_DONE,
    CONFIG_URI,
    NS,
    POWERSHELL_URI,
    SHELL_URI,
    WSMAN_CONFIG,
    Principal,
    Reply,
    Request,
    WSManFault,
    build_fault,
    build_reply,
    command_not_found,
    duration,
    operation_timeout,
    parse_request,
    shell_get_not_found,
    shell_not_found,
    stream_data,
    xs_duration,
)
from labsim.runtime import HostRuntime, Session
from labsim.shell import ENVELOPE_OVERHEAD, PipelineRun, Shell, starts_message
from labsim.windows import DEFAULT_RELEASE, WindowsRelease

__all__ = ["Principal", "Reply", "Request", "Shell", "WSManService", "session_configurations"]

log = logging.getLogger(__name__)

# How long a Receive waits for a running pipeline to finish once it has some output.
_COALESCE_SECONDS = 0.005
_CTRL_C_SIGNALS = ("powershell/signal/crtl_c", "powershell/signal/ctrl_c", SHELL_URI + "/signal/ctrl_c")
_TERMINATE_SIGNAL = SHELL_URI + "/signal/terminate"


def session_configurations(is_privileged_endpoint: bool) -> tuple[str, ...]:
    """The PowerShell session configurations a host registers. A privileged endpoint (an ERCS VM) exposes the
    JEA configuration only; every other lab host the default one."""
    return ("PrivilegedEndpoint",) if is_privileged_endpoint else ("Microsoft.PowerShell",)


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
            return WSMAN_CONFIG
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
        shell = Shell(shell_id, session, principal, req.max_envelope_size, runtime=self.runtime,
                      release=self.release, clock=self._clock)
        asked = duration((body.findtext("rsp:IdleTimeOut", "", NS) or "").strip())
        if asked:
            shell.idle_timeout = asked
        with shell.lock:
            shell.feed(stream_data(creation_xml))
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
                f'<rsp:ShellRunTime>{xs_duration(now - shell.created_clock)}</rsp:ShellRunTime>'
                f'<rsp:ShellInactivity>{xs_duration(now - shell.last_activity)}</rsp:ShellInactivity>'
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
                shell.feed(stream_data(arguments))
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
                shell.feed(stream_data(stream.text or ""), kind)
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
        budget = (req.max_envelope_size - ENVELOPE_OVERHEAD) * 3 // 4
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
                if parts and run is None and starts_message(queue[0], PSRPMessageType.RunspacePoolState):
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
