"""What a host gives back: output objects as plain Python, and the other streams as text."""

from __future__ import annotations

import json as _json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ERROR_CATEGORIES", "ErrorRecordInfo", "Output", "Result", "category_name", "to_plain"]

# System.Management.Automation.ErrorCategory, by value.
ERROR_CATEGORIES = (
    "NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
    "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError", "NotImplemented",
    "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout", "SyntaxError", "ParserError",
    "PermissionDenied", "ResourceBusy", "ResourceExists", "ResourceUnavailable", "ReadError", "WriteError",
    "FromStdErr", "SecurityError", "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded",
    "QuotaExceeded", "NotEnabled",
)


def category_name(value: int | str | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and 0 <= value < len(ERROR_CATEGORIES):
        return ERROR_CATEGORIES[value]
    return "NotSpecified" if value is None else str(value)


@dataclass(frozen=True)
class ErrorRecordInfo:
    """One PowerShell ErrorRecord, reduced to what a provider can act on."""

    message: str
    """The exception message (what PowerShell prints in red)."""
    error_id: str = ""
    """FullyQualifiedErrorId, e.g. ``NoWebsiteFound,Microsoft.IIs.PowerShell...``: match on its first part."""
    category: str = "NotSpecified"
    """ErrorCategory name, e.g. ObjectNotFound, PermissionDenied."""
    target: str | None = None
    """The object the error is about, as text, when the host said."""
    command: str | None = None
    """The command that wrote it, when the host said."""
    exception_type: str | None = None
    """.NET exception type name, when known."""

    @property
    def error_code(self) -> str:
        """The first part of error_id (``NoWebsiteFound``), the stable thing to match on."""
        return self.error_id.split(",", 1)[0]


class Output(list[Any]):
    """The output objects of one statement, as plain Python: objects become dicts of their properties, enums
    their names."""

    def json(self) -> Any:
        """Parse output produced by ``ConvertTo-Json``: None when there was no output (nothing found)."""
        strings = [o for o in self if o is not None]
        if not strings:
            return None
        if not all(isinstance(o, str) for o in strings):
            raise ValueError("output is not text; pipe the command through ConvertTo-Json to use json()")
        # ConvertTo-Json writes one string; Windows PowerShell without -Compress may split it over lines.
        return _json.loads("\n".join(strings))

    def single(self) -> Any:
        """The one output object, None when there is none; more than one is an error in the caller's query."""
        if len(self) > 1:
            raise ValueError(f"expected at most one output object, got {len(self)}")
        return self[0] if self else None


@dataclass(frozen=True, init=False)
class Result:
    """The outcome of a pipeline that did not fail (or whose errors the caller accepted): each statement's
    output apart (``outputs[i]``), and the pipeline's other streams."""

    outputs: tuple[Output, ...]
    """One Output per statement sent, in order; a statement the pipeline never reached has an empty one."""
    errors: list[ErrorRecordInfo] = field(default_factory=list)
    """Non-terminating error records (only when the caller accepted them)."""
    verbose: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    information: list[str] = field(default_factory=list)
    stopped: bool = False
    """True when run_until stopped the pipeline after seeing what it waited for."""

    def __init__(self, output: Sequence[Any] | None = None, *, outputs: Sequence[Sequence[Any]] | None = None,
                 errors: Sequence[ErrorRecordInfo] = (), verbose: Sequence[str] = (),
                 warnings: Sequence[str] = (), information: Sequence[str] = (), stopped: bool = False) -> None:
        if output is not None and outputs is not None:
            raise TypeError("give output (one statement) or outputs (one per statement), not both")
        per_statement = [output or []] if outputs is None else list(outputs)
        object.__setattr__(self, "outputs", tuple(Output(o) for o in per_statement))
        object.__setattr__(self, "errors", list(errors))
        object.__setattr__(self, "verbose", list(verbose))
        object.__setattr__(self, "warnings", list(warnings))
        object.__setattr__(self, "information", list(information))
        object.__setattr__(self, "stopped", stopped)

    @property
    def output(self) -> Output:
        """The output of a one-statement pipeline. A pipeline of several statements has no single output: each
        statement's is ``outputs[i]``."""
        if len(self.outputs) != 1:
            raise ValueError(f"the pipeline ran {len(self.outputs)} statements: read each one's output from "
                             f"outputs[i]")
        return self.outputs[0]

    def json(self) -> Any:
        """``output.json()`` of a one-statement pipeline."""
        return self.output.json()

    def single(self) -> Any:
        """``output.single()`` of a one-statement pipeline."""
        return self.output.single()


def to_plain(value: Any) -> Any:
    """Convert a value deserialized by pypsrp to plain Python (str, int, float, bool, bytes, None, list,
    dict). Objects (GenericComplexObject) become a dict of their properties (adapted, then extended/note
    properties); enums become their name; property-less objects their ToString."""
    # Imported lazily: FakeTransport users need no pypsrp.
    from pypsrp.complex_objects import ComplexObject, GenericComplexObject

    if value is None or isinstance(value, (str, bool, int, float, bytes)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else str(to_plain(k))): to_plain(v) for k, v in value.items()}
    if isinstance(value, GenericComplexObject):
        types = value.types or []
        if "System.Enum" in types and value.to_string is not None:
            return value.to_string
        props: dict[str, Any] = {}
        props.update(value.adapted_properties)
        props.update(value.extended_properties)
        if props:
            return {k: to_plain(v) for k, v in props.items()}
        if value.property_sets:  # a primitive wrapped with type names, e.g. a deserialized value type
            return to_plain(value.property_sets[0]) if len(value.property_sets) == 1 else to_plain(value.property_sets)
        return value.to_string
    if isinstance(value, ComplexObject):
        return str(value)
    return str(value)
