"""The project's errors: one root, a few children with explicit fields.

Every provider raises these and only these; lower layers (pypsrp, requests, spnego) are translated at the
transport boundary (``providers.transport``) with ``raise ... from exc`` so the cause stays in the traceback.

    ConnectorError                  root: anything this project reports about a host or a step
    ├── ConfigurationError          the settings cannot work (malformed FQDN, CredSSP not allowed, ...)
    ├── HostDidNotConverge          the steps succeeded, but the host read again still differs
    ├── TransportError              WinRM/PSRP talk with the host failed (WSMan fault, HTTP error)   [transient]
    │   ├── HostUnreachable         no connection at all: refused, unknown name, connect timeout    [transient]
    │   ├── TlsVerificationFailed   the host's certificate is not trusted with the configured CA file
    │   └── AuthenticationFailed    the host refused the credential (HTTP 401, CredSSP rejected)
    ├── RemoteCommandFailed         the command ran and reported an error (Failed pipeline or error record)
    └── StepTimedOut                the step did not finish in time; its pipeline was stopped        [transient]

*Transient* errors may go away by themselves: a step that is idempotent (a read, or a write that converges)
may be retried; anything else must be reported. ``is_transient(exc)`` is the one place that decides.

Messages name the host and the step and say what to do. They never contain a secret: passwords are not
fields of any error, and remote messages are scrubbed of the secrets that were sent (see the transport).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "ConnectorError",
    "HostDidNotConverge",
    "HostUnreachable",
    "RemoteCommandFailed",
    "StepTimedOut",
    "TlsVerificationFailed",
    "TransportError",
    "is_transient",
    "setting",
    "settings_keys",
]

# The stack config key of each host's connection settings (``wapconnector:hosts.wapcomputer1``), by lower-case
# FQDN, for the provider operation this thread serves (providers.base.LabProvider sets it from the inputs). Messages
# then name the key the operator wrote (``wapconnector:hosts.wapcomputer1.tlsServerName``), not our field name.
_SETTINGS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("settings_keys",
                                                                              default=MappingProxyType({}))


@contextlib.contextmanager
def settings_keys(keys: Mapping[str, str]) -> Iterator[None]:
    token = _SETTINGS.set({k.lower(): v for k, v in keys.items()})
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def setting(host: str | None, field: str) -> str:
    """How the operator names one connection setting of ``host``: its stack config key when known, else the
    connection field (``tls_server_name``)."""
    key = _SETTINGS.get().get((host or "").lower().rstrip("."))
    if not key:
        return field
    head, *rest = field.split("_")
    return f"{key}.{head}{''.join(w.capitalize() for w in rest)}"


class ConnectorError(Exception):
    """Root of every error the project reports. ``host`` and ``step`` say where; ``str()`` says what to do."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, host: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.step = step

    @property
    def message(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return self.message


def _where(host: str | None, step: str | None) -> str:
    if host and step:
        return f"{host}, step '{step}'"
    return host or (f"step '{step}'" if step else "?")


class HostDidNotConverge(ConnectorError):
    """The steps ran without an error, yet the host, read again, still differs from the desired state.
    ``differs`` says what still differs, ``hint`` what to check; a rerun converges once that is fixed."""

    def __init__(self, host: str, step: str, differs: str, *, hint: str) -> None:
        self.differs = differs
        self.hint = hint
        super().__init__(f"{_where(host, step)}: {differs}; {hint}", host=host, step=step)


class ConfigurationError(ConnectorError):
    """The settings cannot work. ``problems`` lists each one on its own, each saying what to change."""

    def __init__(self, problems: Sequence[str], *, host: str | None = None, step: str | None = None,
                 subject: str = "connection settings") -> None:
        self.problems = list(problems)
        where = f" for {_where(host, step)}" if (host or step) else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {subject}{where}:\n{lines}", host=host, step=step)


class TransportError(ConnectorError):
    """Talking WinRM/PSRP to the host failed after a connection was made: a WSMan fault, an unexpected HTTP
    status, a broken session, a reply that never came. ``fault_code`` is the WSMan fault code when there was one
    (e.g. 2150858843 = the shell is gone on the server)."""

    transient = True

    def __init__(self, host: str, step: str, detail: str, *, fault_code: int | None = None,
                 message: str | None = None) -> None:
        self.detail = detail
        self.fault_code = fault_code
        if message is None:
            code = f" (WSMan fault {fault_code:#x})" if fault_code is not None else ""
            message = (f"{_where(host, step)}: WinRM/PowerShell remoting failed{code}: {detail}; check the WinRM "
                       f"service on the host (Get-Service WinRM; winrm get winrm/config) and retry")
        super().__init__(message, host=host, step=step)


class HostUnreachable(TransportError):
    """No connection could be made: connection refused or reset, unknown name, connect timeout.
    ``endpoint`` is the address:port connected to."""

    def __init__(self, host: str, step: str, detail: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        on = f" on {endpoint}" if endpoint else ""
        where = setting(host, "address")
        where = f" ({where} and {setting(host, 'port')})" if where != "address" else ""
        super().__init__(host, step, detail, message=(
            f"{_where(host, step)}: cannot reach the host ({detail}); check WinRM is listening{on}{where} "
            f"and the host is up"))


class TlsVerificationFailed(TransportError):
    """The host's TLS certificate did not verify. Retrying does not help; trusting the right CA does."""

    transient = False

    def __init__(self, host: str, step: str, detail: str, *, ca_file: str | None = None,
                 server_name: str | None = None) -> None:
        self.ca_file = ca_file
        name, ca, verify = (setting(host, f) for f in ("tls_server_name", "ca_file", "verify"))
        low = detail.lower()
        mismatch = "mismatch" in low or "doesn't match" in low or "not valid for" in low
        if "expired" in low or "not yet valid" in low:
            todo = ("the host's WinRM HTTPS certificate is outside its validity period: renew it on the host (or "
                    f"check the clocks of both machines); another {ca} will not help")
        elif mismatch and server_name:
            todo = (f"the certificate does not name {server_name} ({name}): set {name} to a name "
                    f"listed in its subject alternative names, or reissue it with that name")
        elif mismatch:
            todo = (f"the certificate does not name the address connected to: connect by a name or IP address listed "
                    f"in its subject alternative names ({setting(host, 'address')}), set {name} to the DNS "
                    f"name it carries (the host's fqdn, when connecting by IP), or reissue it with that name")
        elif ca_file:
            todo = (f"either the certificate is not issued by the CA in {ca} {ca_file!r} or it does not name "
                    f"the address connected to: set {ca} to the CA that issued the host's WinRM certificate")
        else:
            todo = (f"set {ca} to the CA certificate (PEM) that issued the host's WinRM HTTPS certificate; "
                    f"turning verification off ({verify}: false) is possible but must be explicit")
        checked = f", checked as {server_name}" if server_name else ""
        super().__init__(host, step, detail, message=(
            f"{_where(host, step)}: the host's TLS certificate was not trusted ({detail}{checked}); {todo}"))


class AuthenticationFailed(TransportError):
    """The host refused the credential. Retrying with the same credential does not help."""

    transient = False

    def __init__(self, host: str, step: str, *, user: str | None, auth: str, detail: str = "") -> None:
        self.user = user
        self.auth = auth
        extra = f" ({detail})" if detail else ""
        super().__init__(host, step, detail or "credential refused", message=(
            f"{_where(host, step)}: the host refused user '{user}' with {auth} authentication{extra}; check the "
            f"user name (DOMAIN\\user), the password{_credential(host)}, and that {auth} is enabled in the host's "
            f"WinRM service"))


def _credential(host: str) -> str:
    key = setting(host, "credential")
    return f" (the credential {key} names)" if key != "credential" else ""


class RemoteCommandFailed(ConnectorError):
    """The command ran on the host and reported an error: the pipeline ended Failed (a terminating error) or
    wrote error records (non-terminating errors). ``command`` is a display form with secrets masked;
    ``error_id`` is PowerShell's FullyQualifiedErrorId; ``category`` its ErrorCategory name."""

    def __init__(self, host: str, step: str, *, command: str, message: str, error_id: str | None = None,
                 category: str | None = None, terminating: bool = True, more_errors: int = 0,
                 target: str | None = None, failed_command: str | None = None, advice: str | None = None) -> None:
        if advice is not None:  # what to do, when the caller knows better than the general ADVICE
            self.ADVICE = advice
        self.command = command
        self.remote_message = message
        self.error_id = error_id
        self.category = category
        self.terminating = terminating
        self.more_errors = more_errors
        self.target = target  # the record's TargetObject as text (the path, site, key the error is about)
        self.failed_command = failed_command  # the cmdlet of the pipeline that wrote the record
        # Name the failing cmdlet only when the pipeline shown holds more than that one command.
        in_command = failed_command if failed_command and not command.startswith(failed_command + " ") \
            and command != failed_command else None
        ident = ", ".join(x for x in (error_id and f"ErrorId {error_id}", category and f"category {category}",
                                      in_command and f"in {in_command}", target and f"target {target}") if x)
        more = f" (+{more_errors} more error record(s))" if more_errors else ""
        super().__init__(f"{_where(host, step)}: `{command}` failed: {message}"
                         f"{' [' + ident + ']' if ident else ''}{more}; {self.ADVICE}", host=host, step=step)

    #: What to do, at the end of every message: the remote error says what went wrong; a rerun starts over from
    #: what is on the host (tests/reliability/test_fault_matrix.py proves it converges for every resource).
    ADVICE = "fix what the error says on the host, then run the Pulumi operation again"


class StepTimedOut(ConnectorError):
    """The step did not finish (or did not print what it was waiting for) within ``seconds``; its pipeline
    was stopped on the host."""

    transient = True

    def __init__(self, host: str, step: str, *, seconds: float, waiting_for: str, command: str | None = None) -> None:
        self.seconds = seconds
        self.waiting_for = waiting_for
        self.command = command
        cmd = f" `{command}`" if command else ""
        super().__init__(f"{_where(host, step)}:{cmd} did not {waiting_for} within {seconds:g} s and was stopped; "
                         f"check the host's state, then retry with a larger timeout for step '{step}' "
                         f"({_step_timeouts(host)})", host=host, step=step)


def _step_timeouts(host: str) -> str:
    key = setting(host, "step_timeouts")
    if key == "step_timeouts":
        return "step_timeouts in the host's connection settings"
    return f"{key}, seconds by step name"


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same idempotent step may succeed."""
    return isinstance(exc, ConnectorError) and exc.transient
