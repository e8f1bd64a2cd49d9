"""The session pool: one WSMan connection + one opened RunspacePool per session, kept per connection settings.

Sessions are expensive (an HTTP auth handshake, a pool negotiation) and the dynamic provider serves up to 4 calls
at once. A ``PsrpTransport`` keeps its sessions in a ``SessionCache`` (its own, unless the caller passes one to
share: a provider process's providers share ``process_sessions()``), never on a provider object: those are pickled
into the state. A session is used by one thread at a time:
threads check one out and put it back when their pipeline is over; a thread finding the host's sessions busy
waits for one rather than paying for another (``READ_WAIT`` while a read holds it, ``REUSE_WAIT`` otherwise).

pypsrp sessions die quietly: WinRM drops a pool idle for about two minutes, and a read timeout leaves the pool
unusable (pypsrp issues #203, #21). Hence sessions idle longer than ``IDLE_LIMIT`` are discarded before use, and
a session that saw an error is discarded rather than checked in (the transport decides which).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from ..errors import ConfigurationError
from ._connection import HostConnection
from ._errors import translate

__all__ = ["IDLE_LIMIT", "READ_WAIT", "REUSE_WAIT", "Session", "SessionCache", "close_at_exit", "make_wsman"]

log = logging.getLogger("providers.transport")

# WinRM closes a pool after ~2 min idle (WinRS IdleTimeout); retire ours well before.
IDLE_LIMIT = 90.0
# Opening a pool costs about a second on Windows (a wsmprovhost.exe, the PSRP negotiation), a read pipeline tens of
# milliseconds. A thread that finds the host's sessions all busy waits for one: as long as READ_WAIT while a read
# holds one (it will be back soon), REUSE_WAIT while only other steps do (an MSI install may take minutes).
REUSE_WAIT = 1.0
READ_WAIT = 30.0
_KEY_SALT = os.urandom(32)  # per-process: pool keys carry an HMAC of the password, never the password


def _session_key(conn: HostConnection) -> tuple:
    pw = conn.password.get_secret_value() if conn.password else ""
    pw_mac = hmac.new(_KEY_SALT, pw.encode(), hashlib.sha256).hexdigest()[:16]
    return (conn.connect_address.lower(), conn.effective_port, conn.https, conn.verify, conn.ca_bundle,
            conn.tls_name.lower(), conn.auth, (conn.username or "").lower(), conn.configuration_name.lower(), pw_mac)


@dataclass
class Session:
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
    """Idle sessions per connection settings; thread-safe. Every call through a transport that uses it draws on
    the same sessions.

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
        self._idle: dict[tuple, list[Session]] = {}
        # Sessions checked out (or being opened) per key: [for reads, for other steps].
        self._busy: dict[tuple, list[int]] = {}
        self.max_idle_per_host = max_idle_per_host
        self.reuse_wait = reuse_wait
        self.read_wait = read_wait
        self.opened = 0  # counters, for tests and measurements
        self.discarded = 0

    def checkout(self, conn: HostConnection, step: str, *, read: bool = False) -> Session:
        key = _session_key(conn)
        stale: list[Session] = []
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

    def checkin(self, session: Session) -> None:
        session.last_used = time.monotonic()
        with self._lock:
            self._release(session.key, session.read)
            idle = self._idle.setdefault(session.key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(session)
                return
        self._discard(session)

    def discard(self, session: Session) -> None:
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

    def _discard(self, session: Session) -> None:
        with self._lock:
            self.discarded += 1
        session.close()

    def open_fresh(self, conn: HostConnection, step: str, *, read: bool = False) -> Session:
        """A new session, bypassing idle ones (after one was found dead, the others likely are too)."""
        key = _session_key(conn)
        with self._lock:
            stale = self._idle.pop(key, [])
            self._hold(key, read)
        for s in stale:
            self._discard(s)
        return self._open(conn, step, key, read)

    def _open(self, conn: HostConnection, step: str, key: tuple, read: bool = False) -> Session:
        password = conn.password.get_secret_value() if conn.password else None
        try:
            wsman = self._wsman_factory(conn, password)
        except ValueError as exc:  # pypsrp refuses an auth/encryption combination
            with self._lock:
                self._release(key, read)
            raise ConfigurationError([str(exc)], host=conn.fqdn, step=step) from None
        pool = RunspacePool(wsman, configuration_name=conn.configuration_name)
        session = Session(wsman, pool, key, read=read)
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


def close_at_exit(cache: SessionCache, limit: float = 5.0) -> None:
    """Delete our shells on the hosts when the process ends, but never hold the exit up for long (a host that
    went down would otherwise cost a connect timeout per session)."""
    worker = threading.Thread(target=cache.close_all, name="close-winrm-sessions", daemon=True)
    worker.start()
    worker.join(limit)


_process_sessions: SessionCache | None = None
_process_sessions_lock = threading.Lock()


def process_sessions() -> SessionCache:
    """The sessions of this process, made on first use and closed when it exits: every provider's transport in a
    provider process uses them, so each host has one runspace pool whichever resource reaches it."""
    global _process_sessions
    with _process_sessions_lock:
        if _process_sessions is None:
            _process_sessions = SessionCache()
            atexit.register(close_at_exit, _process_sessions)
        return _process_sessions

