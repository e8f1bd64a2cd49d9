"""Every use of psrpcore's private members, in one place.

labsim drives psrpcore's sans-IO server (``ServerRunspacePool`` / ``ServerPipeline``) mostly through its public
API. A few things Windows does have no public counterpart in psrpcore 0.3.1, so they reach into its internals;
they all live here so that a psrpcore upgrade touches this file only (``tests/labsim/test_psrp_compat.py`` pins the
behaviour each helper relies on and fails first when an upgrade changes it):

* ending a pipeline Failed (a terminating error) or Running/Stopped without the PipelineState message psrpcore's
  ``start()`` / ``stop()`` emit: ``ServerPipeline._change_state``;
* the raw message object of an event (pypsrp names the call id ``CI`` where psrpcore reads ``ci``): ``_ps_object``;
* the pool's runspace limits: ``_min_runspaces`` / ``_max_runspaces``;
* the runspace-availability handlers psrpcore would run itself and fail on (``_process_*``);
* the outgoing message buffer, to begin each server message with the UTF-8 BOM Windows writes: ``_send_buffer``
  and ``PSRPMessage._data``;
* the SESSION_CAPABILITY psrpcore answers by itself, rewritten in Windows' member order (``prepare_message``).
"""

from __future__ import annotations

import uuid
from typing import Any

from psrpcore import ServerPipeline, ServerRunspacePool
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInt,
    PSInvocationState,
    PSObject,
    PSRPMessageType,
    SessionCapability,
    add_note_property,
)

PSRPCORE_VERSION = "0.3.1"  # the version these helpers were written against (pyproject pins it)

# PSRP message layout ([MS-PSRP] 2.2.1): destination (4), type (4), RPID (16), PID (16), then the data.
_MESSAGE_HEADER = 40
UTF8_BOM = b"\xef\xbb\xbf"


class LabRunspacePool(ServerRunspacePool):
    """psrpcore's server pool with two Windows habits: every message it queues starts with a UTF-8 BOM, and the
    runspace-availability requests are left to the caller (psrpcore's own handlers read the call id as ``ci``,
    pypsrp sends ``CI``, and they raise)."""

    def prepare_message(self, message: Any, message_type: Any = None, pipeline_id: uuid.UUID | None = None,
                        stream_type: Any = None, **kwargs: Any) -> None:
        if isinstance(message, SessionCapability):
            message, message_type = windows_capability(message), PSRPMessageType.SessionCapability
        if stream_type is None:
            super().prepare_message(message, message_type, pipeline_id, **kwargs)
        else:
            super().prepare_message(message, message_type, pipeline_id, stream_type, **kwargs)
        queued = self._send_buffer[-1] if self._send_buffer else None
        data = getattr(queued, "_data", None)
        if data is not None and len(data) > _MESSAGE_HEADER and data[_MESSAGE_HEADER:_MESSAGE_HEADER + 3] != UTF8_BOM:
            data[_MESSAGE_HEADER:_MESSAGE_HEADER] = UTF8_BOM

    def _process_SetMaxRunspaces(self, event: Any) -> None:
        pass

    def _process_SetMinRunspaces(self, event: Any) -> None:
        pass

    def _process_ResetRunspaceState(self, event: Any) -> None:
        pass

    def _process_GetAvailableRunspaces(self, event: Any) -> None:
        pass


def windows_capability(capability: SessionCapability) -> PSObject:
    """SESSION_CAPABILITY with Windows' member order: protocolversion, PSVersion, SerializationVersion
    (session_capability.xml; psrpcore writes PSVersion first)."""
    message = PSObject()
    message.PSObject.type_names = []
    for name in ("protocolversion", "PSVersion", "SerializationVersion"):
        add_note_property(message, name, getattr(capability, name))
    return message


def set_state(pipeline: ServerPipeline, state: PSInvocationState, error: ErrorRecord | Any = None, *,
              emit: bool = True) -> None:
    """Move a pipeline to ``state``; with ``emit`` the client gets a PipelineState message (carrying ``error`` as
    ExceptionAsErrorRecord for Failed)."""
    pipeline._change_state(state, error, emit=emit)


def fail(pipeline: ServerPipeline, error_record: PSObject) -> None:
    """End a pipeline Failed with a PipelineState message carrying ``error_record`` (already shaped as Windows
    shapes it) as ExceptionAsErrorRecord; psrpcore's own path would recast it to its ErrorRecord class."""
    message = PSObject()
    message.PSObject.type_names = []
    add_note_property(message, "PipelineState", PSInt(int(PSInvocationState.Failed)))
    add_note_property(message, "ExceptionAsErrorRecord", error_record)
    pipeline.prepare_message(message, message_type=PSRPMessageType.PipelineState)
    pipeline._change_state(PSInvocationState.Failed, emit=False)


def fail_plainly(pipeline: ServerPipeline, message: str) -> None:
    """End a pipeline Failed with psrpcore's own ErrorRecord: the last resort when labsim could not shape one as
    Windows does, so that the client still gets an end rather than waiting for one."""
    record = ErrorRecord(Exception=NETException(Message=message),
                         CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory.NotSpecified),
                         FullyQualifiedErrorId="LabsimInternalError")
    pipeline._change_state(PSInvocationState.Failed, record)


def raw_message(event: Any) -> Any:
    """The deserialized message object behind a psrpcore event."""
    return event._ps_object


def set_runspace_limits(pool: ServerRunspacePool, *, minimum: int | None = None, maximum: int | None = None) -> None:
    if minimum is not None:
        pool._min_runspaces = minimum
    if maximum is not None:
        pool._max_runspaces = maximum


def forget_pipeline(pool: ServerRunspacePool, pipeline_id: uuid.UUID) -> None:
    """Drop a pipeline from the pool's table whatever its state (``ServerPipeline.close`` refuses Running)."""
    pool.pipeline_table.pop(pipeline_id, None)


def forget_all_pipelines(pool: ServerRunspacePool) -> None:
    pool.pipeline_table.clear()
