"""Command tables, parameter binding and the per-command context: the PowerShell-shaped part of host behaviour.

A command is a :class:`CommandSpec` (name, parameters, handler). Binding follows PowerShell's rules closely
enough for structured clients: case-insensitive names, unique prefixes, positional slots, mandatory parameters,
ValidateSet, type conversion, and the common parameters (-ErrorAction ...). Errors carry the message and
FullyQualifiedErrorId PowerShell 5.1 would give (docs/host-contract.md §1).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from labsim.hosts.latency import duration
from labsim.lab import Host, Lab
from labsim.runtime import (
    HttpsBinding,
    Invocation,
    PipelineSink,
    PipelineStopped,
    PSObject,
    SecretStr,
    Session,
    TerminatingError,
)
from labsim.state import LabState

# System.Management.Automation.ErrorCategory
NOT_SPECIFIED, INVALID_ARGUMENT, INVALID_DATA, INVALID_OPERATION = 0, 5, 6, 7
NOT_IMPLEMENTED, OBJECT_NOT_FOUND, OPERATION_STOPPED, PARSER_ERROR = 11, 13, 14, 17
PERMISSION_DENIED, RESOURCE_EXISTS, RESOURCE_UNAVAILABLE, CONNECTION_ERROR = 18, 20, 21, 27

COMMON_PARAMETERS = ("ErrorAction", "Verbose", "WarningAction", "InformationAction", "ErrorVariable",
                     "OutVariable", "Debug")
_ERROR_ACTIONS = ("Stop", "Continue", "SilentlyContinue", "Ignore")
_SECRET_NAME = re.compile(r"password|pfx|credential|secret", re.IGNORECASE)
_CS_PASSWORD = re.compile(r"((?:password|pwd)\s*=\s*)[^;]*", re.IGNORECASE)


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "str"  # str | str[] | int | switch | bytes | any | hashtable[] | secure | credential | value
    mandatory: bool = False
    position: int | None = None
    choices: tuple[str, ...] | None = None  # ValidateSet (case-insensitive; the canonical spelling is kept)
    sets: tuple[str, ...] = ()  # parameter sets it belongs to; () = all


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Callable[[Ctx, dict[str, Any]], Iterable[Any] | None]
    params: tuple[Param, ...] = ()
    impl: str = ""  # implementing class, second half of FullyQualifiedErrorIds
    # "none": run once, input ignored; "each": run once per input object, bound to `pipeline_param`;
    # "all": run once with ctx.input holding every input object.
    input_mode: str = "none"
    pipeline_param: str | None = None
    kind: str = "Cmdlet"  # Cmdlet | ExternalScript | Function
    module: str = ""

    @property
    def fq_suffix(self) -> str:
        return self.impl or self.name


def table(*specs: CommandSpec) -> dict[str, CommandSpec]:
    return {s.name.lower(): s for s in specs}


class LabView(Protocol):
    """What a handler may ask of the lab it runs in (``labsim.hosts.LabRuntime`` is the one implementation)."""

    lab: Lab
    state: LabState

    def can_see(self, host: Host, fs_host: str) -> bool: ...
    def commands_for(self, host: Host, session: Session) -> dict[str, CommandSpec]: ...
    def https_bindings(self) -> list[HttpsBinding]: ...


class Ctx:
    """What a handler sees: who runs it, where, its input, and how to write to the streams."""

    def __init__(self, runtime: LabView, session: Session, host: Host, sink: PipelineSink,
                 spec: CommandSpec, command_name: str, input: list[Any], error_action: str, last: bool,
                 invocation: Invocation | None = None) -> None:
        self.runtime = runtime
        self.session = session
        self.host = host
        self.sink = sink
        self.spec = spec
        self.command_name = command_name  # as invoked (a script's full path)
        # What every record this command writes names as its InvocationInfo (Activity, CommandInfo_Name).
        self.invocation = invocation or Invocation(name=command_name, kind=spec.kind)
        self.input = input
        self.error_action = error_action
        self._last = last
        self.outputs: list[Any] = []
        self.had_error = False

    @property
    def lab(self) -> Lab:
        return self.runtime.lab

    @property
    def state(self) -> LabState:
        return self.runtime.state

    def emit(self, value: Any) -> None:
        if self._last:
            self.sink.output(value)
        else:
            self.outputs.append(value)

    def verbose(self, message: str) -> None:
        self.sink.verbose(message, invocation=self.invocation)

    def warning(self, message: str) -> None:
        self.sink.warning(message, invocation=self.invocation)

    def information(self, message: str) -> None:
        self.sink.information(message, invocation=self.invocation)

    def error(self, message: str, *, error_id: str, category: int, target: Any = None,
              exception_type: str = "System.Management.Automation.RuntimeException") -> None:
        """A non-terminating error, subject to -ErrorAction."""
        self.had_error = True
        if self.error_action == "Stop":
            raise TerminatingError(message, error_id=error_id, category=category, exception_type=exception_type,
                                   target=target, invocation=self.invocation)
        if self.error_action in ("SilentlyContinue", "Ignore"):
            return
        self.sink.error(message, error_id=error_id, category=category, target=target, exception_type=exception_type,
                        invocation=self.invocation)

    def fqid(self, short: str) -> str:
        return f"{short},{self.spec.fq_suffix}"

    def throw(self, message: str) -> TerminatingError:
        """What `throw "message"` in a script gives (FullyQualifiedErrorId = the message)."""
        return TerminatingError(message, error_id=message, category=OPERATION_STOPPED, invocation=self.invocation)

    def check_stop(self) -> None:
        if self.sink.stop_requested.is_set():
            raise PipelineStopped()

    def sleep(self, seconds: float) -> None:
        """Wait, ending early with PipelineStopped when the client stops the pipeline."""
        if seconds > 0 and self.sink.stop_requested.wait(seconds):
            raise PipelineStopped()
        self.check_stop()

    def latency(self, step: str) -> None:
        self.sleep(duration(step, self.lab.settings.latency_factor))

    def is_stopping(self) -> threading.Event:
        return self.sink.stop_requested


# -- binding ------------------------------------------------------------------------------------------------
def _binding_error(spec: CommandSpec, message: str, short: str) -> TerminatingError:
    return TerminatingError(message, error_id=f"{short},{spec.fq_suffix}", category=INVALID_ARGUMENT,
                            exception_type="System.Management.Automation.ParameterBindingException")


def _transform_error(spec: CommandSpec, p: Param, value: Any, type_name: str) -> TerminatingError:
    shown = value if isinstance(value, (str, int, float)) else type(value).__name__
    return _binding_error(spec, f"Cannot process argument transformation on parameter '{p.name}'. "
                                f"Cannot convert value \"{shown}\" to type \"{type_name}\".",
                          "ParameterArgumentTransformationError")


def _convert(spec: CommandSpec, p: Param, value: Any) -> Any:
    t = p.type
    if t in ("any", "value"):
        return value
    if t == "switch":
        if value is None or isinstance(value, bool):
            return bool(value) if value is not None else True
        raise _transform_error(spec, p, value, "System.Management.Automation.SwitchParameter")
    if t == "str":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        raise _transform_error(spec, p, value, "System.String")
    if t == "str[]":
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        if isinstance(value, (str, int)):
            return [str(value)]
        raise _transform_error(spec, p, value, "System.String[]")
    if t == "int":
        if isinstance(value, bool):
            raise _transform_error(spec, p, value, "System.Int32")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise _transform_error(spec, p, value, "System.Int32")
    if t == "bytes":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, list) and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
            return bytes(value)
        raise _transform_error(spec, p, value, "System.Byte[]")
    if t == "secure":
        if isinstance(value, SecretStr):
            return value
        raise _transform_error(spec, p, value, "System.Security.SecureString")
    if t == "hashtable[]":
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, dict) for v in items):
            return items
        raise _transform_error(spec, p, value, "System.Collections.Hashtable[]")
    if t == "credential":
        props = value.properties if isinstance(value, PSObject) else value
        if isinstance(props, dict):
            lowered = {str(k).lower(): v for k, v in props.items()}
            if "username" in lowered and "password" in lowered:
                return {"UserName": str(lowered["username"]), "Password": str(lowered["password"])}
        raise _transform_error(spec, p, value, "System.Management.Automation.PSCredential")
    raise AssertionError(f"unknown parameter type {t}")


def bind(spec: CommandSpec, parameters: list[tuple[str | None, Any]],
         common_parameters: tuple[str, ...] = COMMON_PARAMETERS) -> tuple[dict[str, Any], dict[str, Any]]:
    """(bound parameters by canonical name, common parameters). ``common_parameters``: those the host's
    PowerShell has."""
    names = {p.name.lower(): p for p in spec.params}
    all_names = list(names) + [c.lower() for c in common_parameters]
    bound: dict[str, Any] = {}
    common: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in parameters:
        if name is None:
            positional.append(value)
            continue
        key = name.lstrip("-").rstrip(":").lower()
        if key in all_names:
            matches = [key]
        else:
            matches = [n for n in all_names if n.startswith(key)] if key else []
        if not matches:
            raise _binding_error(spec, f"A parameter cannot be found that matches parameter name '{name.lstrip('-')}'.",
                                 "NamedParameterNotFound")
        if len(matches) > 1:
            shown = " ".join("-" + (names[m].name if m in names else _common_name(m)) for m in matches)
            raise _binding_error(spec, f"Parameter cannot be processed because the parameter name '{name.lstrip('-')}' "
                                       f"is ambiguous. Possible matches include: {shown}.", "AmbiguousParameter")
        match = matches[0]
        if match not in names:
            common[_common_name(match)] = value
            continue
        p = names[match]
        if p.name in bound:
            raise _binding_error(spec, f"Cannot bind parameter because parameter '{p.name}' is specified more than "
                                       f"once.", "ParameterAlreadyBound")
        bound[p.name] = value
    slots = sorted((p for p in spec.params if p.position is not None), key=lambda p: p.position or 0)
    for value in positional:
        free = [p for p in slots if p.name not in bound]
        if not free:
            argument = value if isinstance(value, (str, int)) else type(value).__name__
            raise _binding_error(spec, f"A positional parameter cannot be found that accepts argument '{argument}'.",
                                 "PositionalParameterNotFound")
        bound[free[0].name] = value
    for pname in list(bound):
        p = names[pname.lower()]
        value = _convert(spec, p, bound[pname])
        if p.choices is not None:
            values = value if isinstance(value, list) else [value]
            canon = []
            for v in values:
                hit = [c for c in p.choices if c.lower() == str(v).lower()]
                if not hit:
                    raise _binding_error(
                        spec, f"Cannot validate argument on parameter '{p.name}'. The argument \"{v}\" does not belong "
                              f"to the set \"{','.join(p.choices)}\" specified by the ValidateSet attribute. Supply an "
                              f"argument that is in the set and then try the command again.",
                        "ParameterArgumentValidationError")
                canon.append(hit[0])
            value = canon if isinstance(value, list) else canon[0]
        bound[pname] = value
    # Parameter sets: the bound parameters must fit at least one set.
    set_names = list(dict.fromkeys(s for p in spec.params for s in p.sets))  # in declaration order
    active_sets = set_names
    if set_names:
        used = [names[n.lower()] for n in bound]
        active_sets = [s for s in set_names if all(not p.sets or s in p.sets for p in used)]
        if not active_sets:
            raise _binding_error(spec, "Parameter set cannot be resolved using the specified named parameters.",
                                 "AmbiguousParameterSet")
    return bound, common | {"_sets": active_sets}


def check_mandatory(spec: CommandSpec, bound: dict[str, Any], sets: list[str]) -> None:
    def missing_in(s: str | None) -> list[str]:
        return [p.name for p in spec.params if p.mandatory and p.name not in bound
                and (s is None or not p.sets or s in p.sets)]

    if sets:
        options = [missing_in(s) for s in sets]
        if any(not m for m in options):
            return
        missing = options[0]  # like PowerShell, name what the first (default) set lacks
    else:
        missing = missing_in(None)
    if missing:
        raise _binding_error(spec, "Cannot process command because of one or more missing mandatory parameters: "
                                   f"{' '.join(missing)}.", "MissingMandatoryParameter")


def _common_name(lower: str) -> str:
    return next(c for c in COMMON_PARAMETERS if c.lower() == lower)


def error_action_of(spec: CommandSpec, common: dict[str, Any]) -> str:
    value = common.get("ErrorAction", "Continue")
    hit = [a for a in _ERROR_ACTIONS + ("Inquire", "Suspend") if a.lower() == str(value).lower()]
    if not hit:
        raise _binding_error(spec, f"Cannot bind parameter 'ErrorAction'. Cannot convert value \"{value}\" to type "
                                   f"\"System.Management.Automation.ActionPreference\".",
                             "CannotConvertArgumentNoMessage")
    return hit[0]


# -- helpers shared by command modules ------------------------------------------------------------------------
def redact(name: str | None, value: Any) -> Any:
    """A JSON-able copy of a parameter value for the invocation log, secrets replaced by ****."""
    if isinstance(value, SecretStr) or (name and _SECRET_NAME.search(name)):
        return "****"
    if isinstance(value, str) and _CS_PASSWORD.search(value):  # a connection string's password
        return _CS_PASSWORD.sub(lambda m: m.group(1) + "****", value)
    if isinstance(value, (bytes, bytearray)):
        return f"<byte[{len(value)}] sha256={hashlib.sha256(value).hexdigest()[:16]}>"
    if isinstance(value, dict):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    if isinstance(value, PSObject):
        return {str(k): redact(str(k), v) for k, v in value.properties.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value) and len(value) > 16:
            return f"<int[{len(value)}]>"
        return [redact(None, v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def wildcard(pattern: str, value: str) -> bool:
    """PowerShell -like: case-insensitive, * ? [..]."""
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def has_wildcard(s: str) -> bool:
    return any(c in s for c in "*?[")


def prop(obj: Any, name: str, default: Any = None) -> Any:
    """A property of a PSObject or a key of a dict, case-insensitively."""
    props = obj.properties if isinstance(obj, PSObject) else obj if isinstance(obj, dict) else None
    if props is None:
        return default
    for k, v in props.items():
        if k.lower() == name.lower():
            return v
    return default


@dataclass
class Recorded:
    """A small PipelineSink that keeps everything (used by tests and by in-process callers)."""

    stop_requested: threading.Event = field(default_factory=threading.Event)
    outputs: list[Any] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    verboses: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    informations: list[str] = field(default_factory=list)

    def output(self, value: Any) -> None:
        self.outputs.append(value)

    def error(self, message: str, *, error_id: str, category: int, target: Any = None,
              exception_type: str = "System.Management.Automation.RuntimeException",
              invocation: Invocation | None = None) -> None:
        self.errors.append({"message": message, "error_id": error_id, "category": category, "target": target,
                            "exception_type": exception_type})

    def verbose(self, message: str, *, invocation: Invocation | None = None) -> None:
        self.verboses.append(message)

    def warning(self, message: str, *, invocation: Invocation | None = None) -> None:
        self.warnings.append(message)

    def information(self, message: str, *, invocation: Invocation | None = None) -> None:
        self.informations.append(message)
