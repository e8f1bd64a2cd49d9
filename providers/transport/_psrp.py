"""PsrpTransport: the pypsrp 0.9.1 implementation of the transport, and the per-process session cache.

Sessions (one WSMan connection + one opened RunspacePool) are expensive (an HTTP auth handshake, a pool
negotiation) and the dynamic provider serves up to 4 calls at once, so they live in a module-level cache
(never on provider objects, which are pickled into the state). A session is used by one thread at a time:
threads check one out, and put it back when their pipeline is over; a thread finding the host's sessions busy
waits for one rather than paying for another (``READ_WAIT`` while a read holds it, ``REUSE_WAIT`` otherwise).

pypsrp sessions die quietly: WinRM drops a pool idle for about two minutes, and a read timeout leaves the
pool unusable (pypsrp issues #203, #21). Hence: sessions idle longer than ``IDLE_LIMIT`` are discarded
before use, a session that saw a transport error is never reused, a command refused because the shell is
gone is re-sent on a fresh session (it never ran), and a connection lost on a reused session is retried on
a fresh one only for idempotent steps (a write might have run).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from pypsrp.complex_objects import PSCredential, PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from urllib3.util.ssl_match_hostname import CertificateError as NameMismatch

from .. import progress
from ..errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    HostUnreachable,
    RemoteCommandFailed,
    StepTimedOut,
    TlsVerificationFailed,
    TransportError,
)
from ._base import VerbosePredicate, check_errors, matcher, scrub, statement_boundary
from ._commands import Command, Credential, Pipeline, Secret, Statements, describe, secrets_in, to_statements
from ._connection import HostConnection
from ._result import ErrorRecordInfo, Result, category_name, to_plain

__all__ = ["PsrpTransport", "SessionCache"]

log = logging.getLogger("providers.transport")


def _quiet_wire_loggers() -> None:
    """pypsrp logs whole WSMan messages at DEBUG: never let a root logger at DEBUG turn that on (called by every
    PsrpTransport, so importing this module changes nothing)."""
    for name in ("pypsrp", "requests_credssp", "spnego"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)

# WinRM closes a pool after ~2 min idle (WinRS IdleTimeout); retire ours well before.
IDLE_LIMIT = 90.0
# Opening a pool costs about a second on Windows (a wsmprovhost.exe, the PSRP negotiation), a read pipeline tens of
# milliseconds. A thread that finds the host's sessions all busy waits for one: as long as READ_WAIT while a read
# holds one (it will be back soon), REUSE_WAIT while only other steps do (an MSI install may take minutes).
REUSE_WAIT = 1.0
READ_WAIT = 30.0
# WSMan fault codes that mean "this shell no longer exists on the server".
SHELL_GONE = {
    0x8033805B,  # ERROR_WSMAN_UNEXPECTED_SELECTORS: "the shell was not found on the server"
    0x80338029,  # ERROR_WSMAN_OPERATION_TIMEDOUT on a shell-level request (pool timed out)
}
ACCESS_DENIED = 5
# "Cannot find the X session configuration": 0x80338000 as Windows reports it, 0x8033801A for a bad URI.
CONFIGURATION_NOT_FOUND = {0x80338000, 0x8033801A}
_KEY_SALT = os.urandom(32)  # per-process: pool keys carry an HMAC of the password, never the password


def _session_key(conn: HostConnection) -> tuple:
    pw = conn.password.get_secret_value() if conn.password else ""
    pw_mac = hmac.new(_KEY_SALT, pw.encode(), hashlib.sha256).hexdigest()[:16]
    return (conn.connect_address.lower(), conn.effective_port, conn.https, conn.verify, conn.ca_bundle,
            conn.tls_name.lower(), conn.auth, (conn.username or "").lower(), conn.configuration_name.lower(), pw_mac)


@dataclass
class _Session:
    wsman: WSMan
    pool: RunspacePool
    key: tuple
    opened_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    reused: bool = False
    read: bool = False  # checked out for an idempotent step (a read, or a write safe to re-send)

    def close(self) -> None:
        """Close quietly: the server may already have dropped the shell."""
        try:
            self.pool.close()
        except Exception:  # noqa: BLE001 - best effort on a possibly dead session
            pass
        try:
            self.wsman.close()
        except Exception:  # noqa: BLE001
            pass


def make_wsman(conn: HostConnection, password: str | None) -> WSMan:
    """The real pypsrp WSMan for a connection."""
    wsman = WSMan(
        conn.connect_address,
        port=conn.effective_port,
        username=conn.username,
        password=password,
        ssl=conn.https,
        auth=conn.auth,
        # pypsrp takes a CA bundle path here too (it becomes requests' verify=); its annotation says bool only.
        cert_validation=conn.ca_bundle if (conn.https and conn.verify and conn.ca_bundle) else conn.verify,  # type: ignore[arg-type]
        connection_timeout=int(math.ceil(conn.connect_timeout)),
        read_timeout=int(math.ceil(conn.read_timeout)),
        operation_timeout=conn.operation_timeout,
        # Basic over http was explicitly allowed (validated); it cannot encrypt messages.
        encryption="never" if (conn.auth == "basic" and not conn.https) else "auto",
        # WinRM to infrastructure hosts never goes through a web proxy from the environment.
        no_proxy=True,
        # Kerberos (alone or inside Negotiate) asks for the ticket of WSMAN/<fqdn>, the host's registered SPN,
        # even when connecting to an IP address or another name.
        negotiate_hostname_override=conn.fqdn if conn.connect_address.lower() != conn.fqdn.lower() else None,
    )
    if conn.https and conn.verify and conn.tls_server_name:
        _check_certificate_against(wsman, conn.tls_server_name)
    return wsman


def _check_certificate_against(wsman: WSMan, name: str) -> None:
    """Verify the host's certificate against ``name`` (and send it as SNI) while connecting to the address.
    pypsrp 0.9.1 builds its requests session on the first send and has no option for this, so the session is
    built here and its HTTPS pool told the name (urllib3's server_hostname and assert_hostname pool settings)."""
    transport = wsman.transport
    session = transport._build_session()
    adapter = session.get_adapter("https://")
    adapter.poolmanager.connection_pool_kw.update(  # type: ignore[attr-defined]  # an HTTPAdapter: it has one
        server_hostname=name, assert_hostname=name)
    transport.session = session


class SessionCache:
    """Idle sessions per connection settings; thread-safe. A PsrpTransport owns one (a provider process has one
    transport, so one pool per host).

    A host's sessions are shared by the threads of the process: a thread that finds them all checked out waits for
    one to come back rather than opening another: up to ``read_wait`` seconds while a read (an idempotent step)
    holds one, up to ``reuse_wait`` while only other steps do. So the reads of a refresh run on one pool per host
    however slow the host answers, while a long step (an MSI install) still lets a second pool open."""

    def __init__(self, max_idle_per_host: int = 4,
                 wsman_factory: Callable[[HostConnection, str | None], WSMan] | None = None,
                 reuse_wait: float = REUSE_WAIT, read_wait: float = READ_WAIT) -> None:
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        # Tests substitute the WSMan (e.g. one whose HTTP layer is in memory); the default is the real one.
        self._wsman_factory = wsman_factory or make_wsman
        self._idle: dict[tuple, list[_Session]] = {}
        # Sessions checked out (or being opened) per key: [for reads, for other steps].
        self._busy: dict[tuple, list[int]] = {}
        self.max_idle_per_host = max_idle_per_host
        self.reuse_wait = reuse_wait
        self.read_wait = read_wait
        self.opened = 0  # counters, for tests and measurements
        self.discarded = 0

    def checkout(self, conn: HostConnection, step: str, *, read: bool = False) -> _Session:
        key = _session_key(conn)
        stale: list[_Session] = []
        session = None
        started = time.monotonic()
        with self._lock:
            while True:
                idle = self._idle.get(key, [])
                now = time.monotonic()
                while idle:
                    candidate = idle.pop()  # most recently used first
                    if now - candidate.last_used < IDLE_LIMIT:
                        session = candidate
                        break
                    stale.append(candidate)
                busy = self._busy.get(key)
                if session is not None or not busy:
                    break
                limit = started + (self.read_wait if busy[0] else self.reuse_wait)
                if now >= limit:
                    break
                self._returned.wait(limit - now)
            self._hold(key, read)
        for s in stale:
            self._discard(s)
        if session is not None:
            session.reused, session.read = True, read
            return session
        return self._open(conn, step, key, read)

    def checkin(self, session: _Session) -> None:
        session.last_used = time.monotonic()
        with self._lock:
            self._release(session.key, session.read)
            idle = self._idle.setdefault(session.key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(session)
                return
        self._discard(session)

    def discard(self, session: _Session) -> None:
        """Drop a checked-out session (it saw an error)."""
        with self._lock:
            self._release(session.key, session.read)
        self._discard(session)

    def _hold(self, key: tuple, read: bool) -> None:
        """One more session of ``key`` checked out (lock held)."""
        self._busy.setdefault(key, [0, 0])[0 if read else 1] += 1

    def _release(self, key: tuple, read: bool) -> None:
        """One checked-out session of ``key`` is back or gone (lock held): wake the waiting threads."""
        busy = self._busy.get(key)
        if busy is not None:
            busy[0 if read else 1] -= 1
            if busy == [0, 0]:
                del self._busy[key]
        self._returned.notify_all()

    def _discard(self, session: _Session) -> None:
        with self._lock:
            self.discarded += 1
        session.close()

    def open_fresh(self, conn: HostConnection, step: str, *, read: bool = False) -> _Session:
        """A new session, bypassing idle ones (after one was found dead, the others likely are too)."""
        key = _session_key(conn)
        with self._lock:
            stale = self._idle.pop(key, [])
            self._hold(key, read)
        for s in stale:
            self._discard(s)
        return self._open(conn, step, key, read)

    def _open(self, conn: HostConnection, step: str, key: tuple, read: bool = False) -> _Session:
        password = conn.password.get_secret_value() if conn.password else None
        try:
            wsman = self._wsman_factory(conn, password)
        except ValueError as exc:  # pypsrp refuses an auth/encryption combination
            with self._lock:
                self._release(key, read)
            raise ConfigurationError([str(exc)], host=conn.fqdn, step=step) from None
        pool = RunspacePool(wsman, configuration_name=conn.configuration_name)
        session = _Session(wsman, pool, key, read=read)
        started = time.monotonic()
        try:
            pool.open()
        except Exception as exc:  # noqa: BLE001 - translated below
            with self._lock:
                self._release(key, read)
            session.close()
            raise translate(exc, conn, step) from exc
        with self._lock:
            self.opened += 1
        log.debug("opened a session to %s (%s, %s) in %.0f ms", conn.fqdn, conn.endpoint, conn.auth,
                  (time.monotonic() - started) * 1000)
        return session

    def close_all(self) -> None:
        with self._lock:
            sessions = [s for idle in self._idle.values() for s in idle]
            self._idle.clear()
        for s in sessions:
            s.close()

    def idle_count(self, conn: HostConnection | None = None) -> int:
        with self._lock:
            if conn is None:
                return sum(len(v) for v in self._idle.values())
            return len(self._idle.get(_session_key(conn), []))


def _close_at_exit(cache: SessionCache, limit: float = 5.0) -> None:
    """Delete our shells on the hosts when the process ends, but never hold the exit up for long (a host that
    went down would otherwise cost a connect timeout per session)."""
    worker = threading.Thread(target=cache.close_all, name="close-winrm-sessions", daemon=True)
    worker.start()
    worker.join(limit)


# -- values ---------------------------------------------------------------------------------------------------
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


def _needs_key_exchange(value: Any) -> bool:
    if isinstance(value, (Secret, Credential)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_needs_key_exchange(v) for v in value)
    if hasattr(value, "values") and not isinstance(value, (str, bytes)):
        return any(_needs_key_exchange(v) for v in value.values())
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


# -- error translation -----------------------------------------------------------------------------------------
def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and what it wraps (__cause__, urllib3's .reason, requests' args[0]), outermost first.
    __context__ is followed last: it may be an unrelated error that was being handled at the time."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        reason = getattr(e, "reason", None)
        wrapped = e.args[0] if e.args and isinstance(e.args[0], BaseException) else None
        todo.extend(x for x in (e.__cause__, reason if isinstance(reason, BaseException) else None, wrapped)
                    if x is not None)
        if e.__context__ is not None and not todo:
            todo.append(e.__context__)


def _low_level(exc: BaseException) -> BaseException:
    """The first socket/TLS-level error in the chain (requests' and urllib3's own exceptions are OSErrors too,
    so they are skipped)."""
    for e in _causes(exc):
        if isinstance(e, OSError) and not isinstance(e, (requests.RequestException, urllib3.exceptions.HTTPError)):
            return e
    return exc


def translate(exc: BaseException, conn: HostConnection, step: str) -> ConnectorError:
    """pypsrp / requests / spnego / socket errors -> the project's errors. Never includes the password."""
    secrets = [conn.password.get_secret_value()] if conn.password else []
    host, endpoint = conn.fqdn, conn.endpoint

    def clean(text: object, limit: int = 300) -> str:
        text = scrub(" ".join(str(text).split()), secrets)
        return text if len(text) <= limit else text[: limit - 3] + "..."

    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(host, step, user=conn.username, auth=conn.auth, detail="HTTP 401")
    if isinstance(exc, WSManFaultError):
        code = exc.code if isinstance(exc.code, int) else None
        reason = clean(exc.reason or str(exc))
        if code == ACCESS_DENIED:
            return AuthenticationFailed(host, step, user=conn.username, auth=conn.auth,
                                        detail=f"access denied to session configuration "
                                               f"'{conn.configuration_name}': {reason}")
        if code in CONFIGURATION_NOT_FOUND:
            return ConfigurationError([f"configuration_name '{conn.configuration_name}' is not a session "
                                       f"configuration of the host ({reason}); check Get-PSSessionConfiguration "
                                       f"on the host"], host=host, step=step)
        return TransportError(host, step, reason, fault_code=code)
    if isinstance(exc, WinRMTransportError):
        return TransportError(host, step, f"HTTP {exc.code} from {endpoint}: {clean(exc.response_text, 200)}")
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text or "hostname" in text:
            cause = _low_level(exc)
            # urllib3 checks a pinned name (tls_server_name) itself and raises its own CertificateError.
            pinned = next((e for e in _causes(exc) if isinstance(e, NameMismatch)), None)
            detail = getattr(cause, "verify_message", None) or (
                clean(pinned, 200) if pinned is not None else "certificate verify failed")
            return TlsVerificationFailed(host, step, f"{detail} at {endpoint}",
                                         ca_file=conn.ca_source, server_name=conn.tls_server_name)
        return TransportError(host, step, f"TLS handshake with {endpoint} failed: {clean(text, 200)}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return HostUnreachable(host, step, f"no answer within {conn.connect_timeout:g} s", endpoint=endpoint)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransportError(host, step, f"no reply from {endpoint} within {conn.read_timeout:g} s "
                                          f"(read_timeout); the session was discarded")
    if isinstance(exc, (requests.exceptions.ConnectionError, OSError)):
        cause = _low_level(exc)
        if isinstance(cause, ConnectionRefusedError):
            return HostUnreachable(host, step, "connection refused", endpoint=endpoint)
        if isinstance(cause, socket.gaierror):
            return HostUnreachable(host, step, f"cannot resolve '{conn.connect_address}'", endpoint=endpoint)
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return HostUnreachable(host, step, "connection timed out", endpoint=endpoint)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TlsVerificationFailed(host, step, f"{cause.verify_message} at {endpoint}",
                                         ca_file=conn.ca_source, server_name=conn.tls_server_name)
        return TransportError(host, step, f"connection to {endpoint} lost: {type(cause).__name__}: "
                                          f"{clean(cause, 200)}")
    if _is_credential_error(exc) and _credssp_answered_without_challenge(exc):
        return TransportError(host, step, "the host completed the CredSSP credential exchange but answered the "
                                          "request with an error instead of a CredSSP token (no WWW-Authenticate "
                                          "header: an HTTP 500 / WSMan fault, not a refused credential)")
    if _is_credential_error(exc):
        return AuthenticationFailed(host, step, user=conn.username, auth=conn.auth,
                                    detail=f"{type(exc).__name__}: {clean(exc, 200)}")
    if isinstance(exc, WinRMError):
        return TransportError(host, step, f"{type(exc).__name__}: {clean(exc)}")
    return TransportError(host, step, f"unexpected {type(exc).__name__}: {clean(exc)}")


def _is_credential_error(exc: BaseException) -> bool:
    """CredSSP and SPNEGO failures raised while authenticating (not HTTP 401s)."""
    mod = type(exc).__module__ or ""
    return mod.startswith(("requests_credssp", "spnego"))


def _credssp_answered_without_challenge(exc: BaseException) -> bool:
    """requests-credssp 2.0.0 treats any non-200 reply to its last step as "no CredSSP token" (``actual ''`` when
    the reply had no WWW-Authenticate header at all). A refusal is a 401, which always carries a challenge; a
    reply without one is the server failing the request itself (a WSMan fault on the first request of the
    session), which is a transient transport error, not a wrong password."""
    text = str(exc)
    return "did not response with a CredSSP token" in text and text.rstrip().endswith("actual ''")


def _rejected_unrun(exc: BaseException) -> bool:
    """The host refused the request without running anything: the shell is gone, or (over http with message
    encryption) the kept-alive TCP connection was dropped and the new one lacks the old auth context, which the
    host answers with 401/400. A fresh session settles it: a real credential problem fails again there."""
    if isinstance(exc, WSManFaultError):
        return exc.code in SHELL_GONE
    if isinstance(exc, AuthenticationError):
        return True
    return isinstance(exc, WinRMTransportError) and exc.code in (400, 401)


def _is_connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout)) and not \
        isinstance(exc, requests.exceptions.SSLError)


# -- the transport ---------------------------------------------------------------------------------------------
class PsrpTransport:
    """The Transport over pypsrp; its sessions live in ``cache``. Without one it makes its own and deletes those
    shells when the process exits; a caller that passes a cache closes it itself."""

    def __init__(self, cache: SessionCache | None = None, *, retries: int = 2, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        _quiet_wire_loggers()
        if cache is None:
            cache = SessionCache()
            atexit.register(_close_at_exit, cache)
        self.cache = cache
        self.retries = retries  # extra attempts for idempotent steps
        self.backoff = backoff
        self._sleep = sleep

    def run(self, conn: HostConnection, step: str, statements: Statements, *, input: Sequence[Any] | None = None,
            timeout: float | None = None, idempotent: bool = False, accept_errors: bool = False) -> Result:
        pipelines = to_statements(statements)
        budget = conn.timeout_for(step, timeout)
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            try:
                return self._run_once(conn, step, pipelines, input, deadline, budget, accept_errors,
                                      reopen_on_lost=idempotent)
            except ConnectorError as exc:
                attempt += 1
                delay = self.backoff * 2 ** (attempt - 1)
                if not (idempotent and exc.transient and attempt <= self.retries
                        and time.monotonic() + delay < deadline):
                    raise
                log.info("%s, step '%s': %s; retry %d of %d in %.1f s", conn.fqdn, step,
                         type(exc).__name__, attempt, self.retries, delay)
                self._sleep(delay)

    def run_until(self, conn: HostConnection, step: str, statements: Statements,
                  verbose_predicate: VerbosePredicate, timeout: float | None = None, *,
                  accept_errors: bool = False) -> Result:
        pipelines = to_statements(statements)
        budget = conn.timeout_for(step, timeout)
        return self._run_once(conn, step, pipelines, None, time.monotonic() + budget, budget, accept_errors,
                              reopen_on_lost=False, until=matcher(verbose_predicate))

    # -- one attempt -----------------------------------------------------------------------------------------
    def _run_once(self, conn: HostConnection, step: str, pipelines: tuple[Pipeline, ...], input: Any,
                  deadline: float, budget: float, accept_errors: bool, *, reopen_on_lost: bool,
                  until: Callable[[str], bool] | None = None) -> Result:
        secrets = secrets_in(pipelines) + ([conn.password.get_secret_value()] if conn.password else [])
        command_text = scrub(describe(pipelines), secrets)
        started = time.monotonic()
        report = progress.Step(conn.fqdn, step)  # live in `pulumi up` (a no-op outside the provider process)
        boundary = statement_boundary(conn, pipelines)
        session = self.cache.checkout(conn, step, read=reopen_on_lost)
        live: _Session | None = session  # the session to discard if this attempt fails
        try:
            try:
                ps = self._start(session, pipelines, input, boundary)
            except Exception as exc:  # noqa: BLE001
                # A reused session found dead before the command ran: resend on a fresh session. A refused
                # request proves the command never started; a lost connection only may, so reads only.
                if not session.reused or not (_rejected_unrun(exc) or (reopen_on_lost and _is_connection_lost(exc))):
                    raise
                log.info("%s: session gone (%s); reopening", conn.fqdn, type(exc).__name__)
                self.cache.discard(session)
                live = None
                session = live = self.cache.open_fresh(conn, step, read=reopen_on_lost)
                ps = self._start(session, pipelines, input, boundary)
            result, matched = self._collect(conn, step, session, ps, deadline, budget, command_text, until,
                                            report=report, secrets=secrets,
                                            split=(len(pipelines), boundary))
        except ConnectorError:
            if live is not None:
                self.cache.discard(live)
            raise
        except Exception as exc:  # noqa: BLE001 - translated: the session is no longer trustworthy
            if live is not None:
                self.cache.discard(live)
            raise translate(exc, conn, step) from exc
        self.cache.checkin(session)
        log.debug("%s, step '%s': %s in %.0f ms", conn.fqdn, step, command_text,
                  (time.monotonic() - started) * 1000)
        report.done()

        failed = ps.had_errors or ps.state == PSInvocationState.FAILED
        check_errors(conn, step, pipelines, result.errors, failed=failed and not matched,
                     accept_errors=accept_errors, secrets=secrets)
        if ps.state == PSInvocationState.STOPPED and not matched:
            raise RemoteCommandFailed(conn.fqdn, step, command=command_text,
                                      message="the pipeline was stopped on the host before it finished")
        if until is not None and not matched:
            raise RemoteCommandFailed(conn.fqdn, step, command=command_text,
                                      message="the command finished without printing the expected verbose line")
        return result

    def _start(self, session: _Session, pipelines: Sequence[Pipeline], input: Any, boundary: str | None) -> PowerShell:
        if any(_needs_key_exchange(v) for p in pipelines for c in p.commands for v in c.parameters.values()):
            session.pool.exchange_keys()  # SecureStrings need the session key; once per pool
        ps = build(session.pool, pipelines, boundary)
        wire_input = None if input is None else [to_wire(v) for v in input]
        # pypsrp sends a list (not a generator) as one batch of input objects; its annotation omits lists.
        ps.begin_invoke(input=wire_input if wire_input else None)  # type: ignore[arg-type]
        return ps

    def _collect(self, conn: HostConnection, step: str, session: _Session, ps: PowerShell, deadline: float,
                 budget: float, command_text: str, until: Callable[[str], bool] | None, *,
                 report: progress.Step | None = None, secrets: Sequence[str] = (),
                 split: tuple[int, str | None] = (1, None)) -> tuple[Result, bool]:
        matched = False
        seen_verbose = 0
        reported = 0

        def show_progress() -> None:  # the host's new verbose lines and the elapsed time, scrubbed
            nonlocal reported
            if report is None or not report.enabled:
                return
            for record in ps.streams.verbose[reported:]:
                report.verbose(scrub(str(getattr(record, "message", "")), secrets))
            reported = len(ps.streams.verbose)
            report.tick()

        try:
            while ps.state == PSInvocationState.RUNNING:
                show_progress()
                if until is not None:
                    records = ps.streams.verbose
                    while seen_verbose < len(records):
                        if until(str(getattr(records[seen_verbose], "message", ""))):
                            matched = True
                            break
                        seen_verbose += 1
                    if matched:
                        ps.stop()  # the step is done; the command would keep polling for minutes
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    try:
                        ps.stop()
                    except Exception:  # noqa: BLE001 - the timeout is what the caller must hear about
                        log.info("%s: could not stop the timed-out pipeline cleanly", conn.fqdn)
                    raise StepTimedOut(conn.fqdn, step, seconds=budget, command=command_text,
                                       waiting_for="print the expected verbose line" if until else "finish")
                # Short polls while watching the verbose stream, so the success line is seen promptly.
                poll = min(conn.operation_timeout, 5 if until else conn.operation_timeout, math.ceil(remaining))
                if report is not None and report.enabled:
                    poll = min(poll, math.ceil(progress.TICK))  # progress at least every TICK seconds
                ps.poll_invoke(timeout=max(1, int(poll)))
            if until is not None and not matched:
                # The pipeline ended; the line may have come with the final batch.
                for record in ps.streams.verbose[seen_verbose:]:
                    if until(str(getattr(record, "message", ""))):
                        matched = True
                        break
                    seen_verbose += 1
            show_progress()
        finally:
            session.pool.pipelines.pop(ps.id, None)  # pypsrp never forgets a pipeline; keep the pool lean
        verbose = _informational(ps.streams.verbose)
        if matched:
            verbose = verbose[:seen_verbose + 1]
        result = Result(outputs=split_outputs([to_plain(o) for o in ps.output], *split),
                        errors=[error_info(e) for e in ps.streams.error],
                        verbose=verbose, warnings=_informational(ps.streams.warning),
                        information=_information(ps.streams.information),
                        stopped=matched and ps.state == PSInvocationState.STOPPED)
        return result, matched
