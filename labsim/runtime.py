"""The seam between labsim's protocol layer (WSMan/PSRP/HTTP, ``labsim.wsman``) and its host behaviour
(``labsim.hosts``). The protocol layer authenticates a client, opens a runspace pool per shell and, for every
pipeline, calls :meth:`HostRuntime.run_pipeline` on a worker thread. Host behaviour never sees XML; the
protocol layer never sees host state.

Values crossing the seam are plain Python: str, int, float, bool, bytes, None, datetime, list, dict (a
hashtable on the client side) and :class:`PSObject` (an object with named properties, e.g. what Get-Website
returns). Secure strings arrive already decrypted as :class:`SecretStr`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class SecretStr(str):
    """A decrypted SecureString parameter; recorded invocations must redact it."""

    def __repr__(self) -> str:  # never leak through logs or reprs
        return "SecretStr('****')"


@dataclass
class PSObject:
    """An object with named properties (PSCustomObject on the wire). ``type_names`` most specific first."""

    properties: dict[str, Any]
    type_names: list[str] = field(default_factory=lambda: ["System.Management.Automation.PSCustomObject"])
    # What the object prints as in a string context (ToString); None lets the protocol layer choose.
    to_string: str | None = None


@dataclass(frozen=True)
class Session:
    """One authenticated runspace pool."""

    host: str  # the lab host's computer name (Host.name)
    user: str  # as authenticated, DOMAIN\\user or user
    configuration: str  # session configuration: "Microsoft.PowerShell" or "PrivilegedEndpoint"
    auth: str  # "basic" | "negotiate" | "credssp"
    shell_id: str


@dataclass
class Command:
    """One command of a pipeline statement, as the client sent it."""

    name: str  # cmdlet name, or script text when is_script
    is_script: bool
    parameters: list[tuple[str | None, Any]]  # (name or None for positional, value); switches have value True
    end_of_statement: bool = False


@dataclass(frozen=True)
class Invocation:
    """The command that wrote a record, as PowerShell's InvocationInfo describes it to a remote client."""

    name: str  # as invoked: a cmdlet name, or a script's full path
    kind: str = "Cmdlet"  # Cmdlet | ExternalScript | Function | Script
    parameters: tuple[tuple[str, Any], ...] = ()  # the bound parameters, by canonical name
    position: int = 1  # PipelinePosition (1-based)
    length: int = 1  # PipelineLength

    @property
    def display_name(self) -> str:
        """CommandInfo.Name: the cmdlet name, or a script's file name (ErrorCategoryInfo.Activity too)."""
        return self.name.replace("/", "\\").rsplit("\\", 1)[-1] if self.kind == "ExternalScript" else self.name


class PipelineSink(Protocol):
    """Where a running pipeline writes its streams. Thread-safe; every call may be made from the worker.

    ``invocation`` names the command writing the record; without it the protocol layer uses the pipeline's
    first command."""

    stop_requested: threading.Event  # set when the client sends the stop signal or closes the shell

    def output(self, value: Any) -> None: ...
    def error(self, message: str, *, error_id: str, category: int, target: Any = None,
              exception_type: str = "System.Management.Automation.RuntimeException",
              invocation: Invocation | None = None) -> None:
        """A non-terminating error record (goes to the client's error stream; the pipeline goes on)."""
    def verbose(self, message: str, *, invocation: Invocation | None = None) -> None: ...
    def warning(self, message: str, *, invocation: Invocation | None = None) -> None: ...
    def information(self, message: str, *, invocation: Invocation | None = None) -> None: ...


class TerminatingError(Exception):
    """Ends the pipeline Failed, like a PowerShell ``throw`` or a terminating cmdlet error.

    ``category`` is a System.Management.Automation.ErrorCategory value (e.g. 13 ObjectNotFound,
    5 InvalidArgument, 18 PermissionDenied, 7 InvalidOperation)."""

    def __init__(self, message: str, *, error_id: str, category: int = 7,
                 exception_type: str = "System.Management.Automation.RuntimeException", target: Any = None,
                 invocation: Invocation | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category
        self.exception_type = exception_type
        self.target = target  # TargetObject (e.g. the command name of a CommandNotFoundException)
        self.invocation = invocation  # the command that failed, when known


class PipelineStopped(Exception):
    """Raised by host behaviour when it notices ``stop_requested``; the pipeline ends Stopped."""


class HostRuntime(Protocol):
    def run_pipeline(self, session: Session, statements: list[list[Command]], input: list[Any],
                     sink: PipelineSink) -> None:
        """Run every statement in order (each statement is a pipeline of commands, output of one feeding the
        next). Raise TerminatingError to fail the pipeline, PipelineStopped when stopped."""

    def https_bindings(self) -> list[HttpsBinding]:
        """Every IIS https binding of every host right now, so the server can really listen on them."""

    def faults(self, host: str) -> list[Fault]:
        """The fault switches in force for a host (read often: keep it cheap)."""


@dataclass(frozen=True)
class HttpsBinding:
    host: str  # Host.name
    address: str  # loopback address to listen on (the host's)
    port: int
    site: str  # IIS site name
    cert_pem: bytes  # leaf (and chain) PEM
    key_pem: bytes  # private key PEM (unencrypted, in-process only)
    thumbprint: str  # SHA-1, upper-case hex, as Windows shows it


@dataclass(frozen=True)
class Fault:
    """A run-time fault switch for one host; stored in the lab database so `labsim fault` in another process
    can flip it. kind: down | slow | auth_broken | wsman_fault | command_error | command_terminating | command_hang |
    command_noop | command_corrupt.
    ``wsman_fault``: every WinRM request to the host is answered HTTP 500 with a WSMan fault (code
    ``labsim.envelope.CODE_INTERNAL_ERROR``, text ``message`` or a default), as a WinRM service in trouble does.
    ``command_noop``: the command reports success (no error, no output) and changes nothing: an import that does
    not land, a script that does not converge, a listing that comes back empty.
    ``command_corrupt``: the command runs with the last byte of every byte[] parameter lost (a corrupted
    upload: what Add-Content/Set-Content write differs from what was sent)."""

    host: str
    kind: str
    command: str | None = None  # for the command_* kinds: the cmdlet name it applies to
    seconds: float = 0.0  # for slow: added latency per request
    message: str | None = None  # for command_* kinds: the error text
