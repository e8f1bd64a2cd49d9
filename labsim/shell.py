"""One shell = one runspace pool (a psrpcore ``ServerRunspacePool``): the PSRP messages it receives, the pipelines it
runs on worker threads through :meth:`labsim.runtime.HostRuntime.run_pipeline`, and the fragments it queues for the
client, per target (the pool itself, or one queue per pipeline), so a Receive for one pipeline never returns
another pipeline's fragments. Records are shaped by :mod:`labsim.records` (Windows' shapes).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psrpcore as ev  # the event classes (CreatePipelineEvent, ...) are psrpcore's public API
from psrpcore import PSRPPayload, ServerPipeline, StreamType
from psrpcore.types import (
    PSCustomObject,
    PSInvocationState,
    PSRPMessageType,
    PSVersion,
    RunspaceAvailability,
    SessionCapability,
)

from labsim import convert, records
from labsim import psrp_compat as compat
from labsim.envelope import Principal
from labsim.runtime import Command, HostRuntime, Invocation, PipelineStopped, Session, TerminatingError
from labsim.windows import WindowsRelease

log = logging.getLogger("labsim.wsman")

# WinRM's default shell idle timeout (Winrs IdleTimeout 7200000 ms), reported when the client asks none.
DEFAULT_SHELL_IDLE_SECONDS = 7200.0
# The largest PSRP fragment Windows sends (header included).
MAX_FRAGMENT_SIZE = 32768
# Room left in a Receive reply for the envelope around the base64 streams.
ENVELOPE_OVERHEAD = 4096

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
        if not self._run.shell.release.has_information_stream:
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

    def __init__(self, shell_id: str, session: Session, owner: Principal, max_envelope_size: int, *,
                 runtime: HostRuntime, release: WindowsRelease, clock: Callable[[], float]) -> None:
        self.runtime = runtime  # runs the pipelines
        self.release = release  # the host's Windows: its PSVersionTable, protocol version and streams
        self.id = shell_id
        self.session = session
        self.owner = owner
        self.lock = threading.RLock()
        self.data_ready = threading.Condition(self.lock)
        self.pool = compat.LabRunspacePool(application_private_data=records.application_private_data(release))
        self.pool.our_capability = SessionCapability(  # what psrpcore sends as the server's SESSION_CAPABILITY
            PSVersion=self.pool.our_capability.PSVersion, protocolversion=PSVersion(release.protocol_version),
            SerializationVersion=self.pool.our_capability.SerializationVersion)
        self.outgoing: deque[PSRPPayload] = deque()  # pool-level messages
        self.runs: dict[uuid.UUID, PipelineRun] = {}
        self.closed = False
        self.created = time.monotonic()
        self.idle_timeout = DEFAULT_SHELL_IDLE_SECONDS  # what the client asked in its Create, or WinRM's default
        self.created_clock = clock()
        self.last_activity = self.created
        # Windows fragments at 32 KiB; every fragment must also fit the smallest envelope the client accepts
        # (pypsrp starts at 150 KiB and only grows it).
        self.fragment_size = max(1024, min(MAX_FRAGMENT_SIZE, (max_envelope_size - ENVELOPE_OVERHEAD) * 3 // 4))

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
            self.runtime.run_pipeline(self.session, statements, list(run.input), _PipelineSink(run))
        except Exception as exc:  # noqa: BLE001 - every outcome is reported to the client below
            outcome = exc
        with self.lock:
            if run.pipeline.state == PSInvocationState.Running:
                try:
                    self._end(run, outcome)
                except Exception as exc:  # noqa: BLE001 - labsim's own fault: the client still gets an end
                    log.error("host %s: ending a pipeline raised %s", self.session.host, type(exc).__name__,
                              exc_info=exc)
                    compat.fail_plainly(run.pipeline, f"labsim internal error: {type(exc).__name__}: {exc}")
            self.pump()

    def _end(self, run: PipelineRun, outcome: Exception | None) -> None:
        pipeline = run.pipeline
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


def _fragments(payload: PSRPPayload) -> list[PSRPPayload]:
    """Split a payload psrpcore packed with several fragments into one payload per fragment ([MS-PSRP] 2.2.4:
    object id 8, fragment id 8, flags 1, length 4, then the data)."""
    out, data, offset = [], payload.data, 0
    while offset < len(data):
        end = offset + 21 + int.from_bytes(data[offset + 17:offset + 21], "big")
        out.append(PSRPPayload(data[offset:end], payload.stream_type, payload.pipeline_id))
        offset = end
    return out


def starts_message(payload: PSRPPayload, message_type: PSRPMessageType) -> bool:
    """Whether this fragment (header: object id 8, fragment id 8, flags 1, length 4) starts a message of that type
    (message header: destination 4, type 4 little-endian)."""
    data = payload.data
    return bool(len(data) >= 29 and data[16] & 1 and int.from_bytes(data[25:29], "little") == message_type.value)
