"""What crosses pypsrp's boundary, both ways: Python values -> what pypsrp serializes (``to_wire``), commands ->
a pypsrp ``PowerShell`` (``build``, the only place that happens), and a finished ``PowerShell`` -> a ``Result``
(its output objects as plain Python, one list per statement; its error records as ``ErrorRecordInfo``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pypsrp.complex_objects import PSCredential, PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

from ._commands import Command, Credential, Pipeline, Secret
from ._result import ErrorRecordInfo, Result, category_name, to_plain

__all__ = ["build", "error_info", "needs_key_exchange", "read_result", "split_outputs", "to_wire"]

_I32 = range(-(2**31), 2**31)
_I64 = range(-(2**63), 2**63)


def to_wire(value: Any) -> Any:
    """A checked Command parameter value -> what pypsrp's serializer sends as the right CLIXML type."""
    if isinstance(value, Secret):
        return TaggedValue("SS", value.reveal())
    if isinstance(value, Credential):
        return PSCredential(username=value.user, password=value.password.reveal())
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, int):
        if value in _I32:
            return value
        if value in _I64:
            return TaggedValue("I64", value)
        raise ValueError(f"integer {value} does not fit a 64-bit PowerShell integer")
    if isinstance(value, float):
        return TaggedValue("Db", value)  # pypsrp would send a float as Single and lose precision
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if hasattr(value, "items"):
        return {k: to_wire(v) for k, v in value.items()}
    raise TypeError(f"cannot send {type(value).__name__}")


def needs_key_exchange(value: Any) -> bool:
    if isinstance(value, (Secret, Credential)):
        return True
    if isinstance(value, (list, tuple)):
        return any(needs_key_exchange(v) for v in value)
    if hasattr(value, "values") and not isinstance(value, (str, bytes)):
        return any(needs_key_exchange(v) for v in value.values())
    return False


def build(pool: RunspacePool, pipelines: Sequence[Pipeline], boundary: str | None = None) -> PowerShell:
    """The only place commands become a pypsrp PowerShell: cmdlets, parameters and statement breaks. With
    ``boundary``, a ``Write-Output <boundary>`` statement follows every statement but the last, so that each
    statement's output can be told apart (:func:`split_outputs`)."""
    ps = PowerShell(pool)
    marked = list(pipelines)
    if boundary is not None:
        marker = Pipeline((Command("Write-Output", {"InputObject": boundary}),))
        marked = [m for p in pipelines[:-1] for m in (p, marker)] + list(pipelines[-1:])
    for pipeline in marked:
        for command in pipeline.commands:
            ps.add_cmdlet(command.name)
            for name, value in command.parameters.items():
                ps.add_parameter(name, to_wire(value))
            for switch in command.switches:
                ps.add_parameter(switch, True)  # -Switch:$true, unambiguous for any host
        ps.add_statement()
    return ps


def split_outputs(objects: Iterable[Any], count: int, boundary: str | None) -> list[list[Any]]:
    """The output objects of a pipeline built with ``boundary``, one list per statement; statements the pipeline
    never reached (a terminating error) have none."""
    outputs: list[list[Any]] = [[] for _ in range(max(count, 1))]
    index = 0
    for obj in objects:
        if boundary is not None and obj == boundary and index < len(outputs) - 1:
            index += 1
        else:
            outputs[index].append(obj)
    return outputs


def error_info(record: Any) -> ErrorRecordInfo:
    """pypsrp ErrorRecord -> ErrorRecordInfo."""
    exc = getattr(record, "exception", None)
    exc_message = None
    exc_type = None
    if exc is not None and hasattr(exc, "adapted_properties"):
        exc_message = exc.adapted_properties.get("Message") or exc.extended_properties.get("Message")
        exc_type = (exc.types or [None])[0]
        if isinstance(exc_type, str) and exc_type.startswith("Deserialized."):
            exc_type = exc_type[len("Deserialized."):]
    message = (getattr(record, "details_message", None) or exc_message or str(record or "")
               or getattr(record, "message", None) or "unknown error")
    # Windows fills ErrorCategory_TargetName from TargetObject and CommandInfo_Name / Activity with the cmdlet.
    target = getattr(record, "target_name", None) or None
    if target is None and isinstance(getattr(record, "target_object", None), (str, int)):
        target = str(record.target_object) or None
    return ErrorRecordInfo(
        message=str(message), error_id=getattr(record, "fq_error", None) or "",
        category=category_name(getattr(record, "category", None)), target=target,
        command=(getattr(record, "command_name", None) or getattr(record, "activity", None)
                 or getattr(record, "invocation_name", None) or None),
        exception_type=exc_type)


def _informational(records: Iterable[Any]) -> list[str]:
    return [str(getattr(r, "message", r)) for r in records]


def _information(records: Iterable[Any]) -> list[str]:
    return [str(to_plain(getattr(r, "message_data", r))) for r in records]


def read_result(ps: PowerShell, statements: int, boundary: str | None, *, verbose_upto: int | None = None) -> Result:
    """The Result of a pipeline pypsrp has finished with (or stopped): ``statements`` and ``boundary`` as it was
    built; with ``verbose_upto``, the verbose stream ends at that record (the one ``run_until`` waited for) and the
    result says whether the pipeline was stopped there."""
    verbose = _informational(ps.streams.verbose)
    if verbose_upto is not None:
        verbose = verbose[:verbose_upto + 1]
    return Result(outputs=split_outputs([to_plain(o) for o in ps.output], statements, boundary),
                  errors=[error_info(e) for e in ps.streams.error],
                  verbose=verbose, warnings=_informational(ps.streams.warning),
                  information=_information(ps.streams.information),
                  stopped=verbose_upto is not None and ps.state == PSInvocationState.STOPPED)
