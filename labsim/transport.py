"""labsim's thin I/O shell: TCP listeners, TLS, HTTP/1.1 keep-alive, WinRM authentication and message encryption
around the sans-IO :class:`labsim.wsman.WSManService`, plus the plain HTTPS listeners behind IIS site bindings.

Threads: one accept thread per listener (accept with a short timeout so it can be suspended and stopped), one
thread per TCP connection (TLS handshake there, never in the accept loop). A Receive long-poll only holds its own
connection's thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from pypsrp.encryption import WinRMEncryption

from labsim.auth import ConnectionAuth, HostAuth
from labsim.envelope import (
    CODE_ENVELOPE_TOO_LARGE,
    CODE_INTERNAL_ERROR,
    MAX_ENVELOPE_KB,
    Principal,
    Reply,
    WSManFault,
    build_fault,
)
from labsim.runtime import Fault
from labsim.wsman import WSManService

log = logging.getLogger(__name__)

# Largest request body accepted: the service's MaxEnvelopeSize plus room for message-encryption framing.
MAX_BODY = MAX_ENVELOPE_KB * 1024 * 2
MAX_HEADER_BYTES = 64 * 1024
IDLE_KEEPALIVE_SECONDS = 120.0
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


class ListenerError(OSError):
    """A listener could not bind its address (usually: the port is taken)."""


class _Closed(Exception):
    """The peer closed the connection (or it timed out while idle)."""


@dataclass
class HttpRequest:
    method: str
    path: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    too_large: bool = False


class _Connection:
    """Buffered reads over a (TLS) socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed()
        self._buf += chunk

    def read_request(self) -> HttpRequest:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > MAX_HEADER_BYTES:
                raise ValueError("request header too large")
            self._fill()
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ValueError("malformed request line")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError("malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported by WinRM")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ValueError("malformed Content-Length") from None
        if length < 0:
            raise ValueError("negative Content-Length")
        req = HttpRequest(parts[0], parts[1], parts[2], headers, b"")
        if length > MAX_BODY:
            req.too_large = True  # answered without reading the body, then the connection is closed
            return req
        while len(self._buf) < length:
            self._fill()
        req.body = bytes(self._buf[:length])
        del self._buf[:length]
        return req

    def send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
             close: bool = False) -> None:
        out = [f"HTTP/1.1 {status} {reason}", "Server: Microsoft-HTTPAPI/2.0",
               f"Content-Length: {len(body)}"]
        out += [f"{k}: {v}" for k, v in headers]
        if close:
            out.append("Connection: close")
        self.sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)


def _tune(sock: socket.socket) -> None:
    # Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to every small reply.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Listener:
    """A listening socket with an accept thread; ``suspend`` closes the socket (connections are refused) and
    ``resume`` binds it again, which is how the ``down`` fault is played."""

    def __init__(self, name: str, address: str, port: int, serve: Callable[[socket.socket, str], None]) -> None:
        self.name = name
        self.address = address
        self.port = port
        self._serve = serve
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError as exc:
            sock.close()
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise ListenerError(exc.errno, f"{self.name}: {self.address}:{self.port} {why}") from exc
        sock.listen(128)
        sock.settimeout(0.2)
        return sock

    def start(self) -> None:
        self._sock = self._bind()
        self._thread = threading.Thread(target=self._accept_loop, name=f"labsim-accept-{self.name}", daemon=True)
        self._thread.start()

    @property
    def suspended(self) -> bool:
        return self._sock is None

    def suspend(self) -> None:
        """Refuse connections: close the listening socket and drop the open connections."""
        with self._lock:
            sock, self._sock = self._sock, None
            conns = list(self._conns)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the accept thread now, not at its next 0.2 s timeout
            sock.close()
            if not self._stopping.is_set():
                log.info("%s: listener %s:%d down", self.name, self.address, self.port)
        for conn in conns:
            _shutdown(conn)

    def resume(self) -> None:
        with self._lock:
            if self._sock is not None or self._stopping.is_set():
                return
            self._sock = self._bind()
        log.info("%s: listener %s:%d up again", self.name, self.address, self.port)

    def stop(self) -> None:
        self._stopping.set()
        self.suspend()
        if self._thread is not None:
            self._thread.join(2)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            sock = self._sock
            if sock is None:
                time.sleep(0.05)
                continue
            try:
                conn, addr = sock.accept()
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                continue  # closed by suspend()/stop()
            conn.settimeout(None)
            _tune(conn)
            # A duplicate descriptor of the connection, for suspend() to shut it down: serving over TLS wraps
            # ``conn`` into an SSLSocket that takes its descriptor over, leaving ``conn`` itself closed.
            watch = conn.dup()
            with self._lock:
                self._conns.add(watch)
            threading.Thread(target=self._run_connection, args=(conn, watch, addr[0]), daemon=True,
                             name=f"labsim-conn-{self.name}").start()

    def _run_connection(self, conn: socket.socket, watch: socket.socket, client_ip: str) -> None:
        try:
            self._serve(conn, client_ip)
        except Exception:  # noqa: BLE001 - one broken connection must not affect the listener
            log.exception("%s: connection from %s failed", self.name, client_ip)
        finally:
            with self._lock:
                self._conns.discard(watch)
            _shutdown(conn)
            _shutdown(watch)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _tls_wrap(conn: socket.socket, context: ssl.SSLContext, name: str) -> ssl.SSLSocket | None:
    conn.settimeout(10)
    try:
        tls = context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as exc:
        # An untrusting client aborts the handshake; that is its business, not a server error.
        log.info("%s: TLS handshake failed: %s", name, exc)
        return None
    tls.settimeout(None)
    return tls


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@dataclass(eq=False)
class WinRMEndpoint:
    """Serves WinRM (POST /wsman) on one connection: auth, encryption, then the host's WSMan service."""

    service: WSManService
    host_auth: HostAuth
    _: KW_ONLY
    https: bool
    endpoint_url: str
    tls_context: ssl.SSLContext | None = None
    tls_cert_der: bytes | None = None
    latency: Callable[[], float] = lambda: 0.0
    wsman_fault: Callable[[], Fault | None] = lambda: None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.service.host}:{'https' if self.https else 'http'}"

    def serve(self, sock: socket.socket, client_ip: str) -> None:
        if self.https:
            assert self.tls_context is not None
            tls = _tls_wrap(sock, self.tls_context, self.name)
            if tls is None:
                return
            sock = tls
        sock.settimeout(IDLE_KEEPALIVE_SECONDS)
        conn = _Connection(sock)
        auth = ConnectionAuth(self.host_auth, client_ip, tls_cert_der=self.tls_cert_der if self.https else None)
        while True:
            try:
                req = conn.read_request()
            except (TimeoutError, _Closed, ConnectionError, ssl.SSLError, OSError):
                return
            except ValueError as exc:
                log.info("%s: bad HTTP request from %s: %s", self.name, client_ip, exc)
                conn.send(400, "Bad Request", [], b"", close=True)
                return
            if not self._answer(conn, auth, req):
                return
            if req.headers.get("connection", "").lower() == "close":
                return

    def _answer(self, conn: _Connection, auth: ConnectionAuth, req: HttpRequest) -> bool:
        """Answer one request; False closes the connection."""
        delay = self.latency()
        if delay > 0:
            time.sleep(delay)
        if req.too_large:
            fault = WSManFault(CODE_ENVELOPE_TOO_LARGE, f"The WS-Management service cannot process the request "
                               f"because the request body is larger than {MAX_BODY} bytes.",
                               subcode="w:EncodingLimit", sender=True)
            conn.send(500, "Internal Server Error", [("Content-Type", "application/soap+xml;charset=UTF-8")],
                      build_fault(fault, "", self.service.machine), close=True)
            return False
        if req.method != "POST" or req.path.split("?")[0].rstrip("/").lower() != "/wsman":
            status, reason = (405, "Method Not Allowed") if req.path.lower().startswith("/wsman") else \
                (404, "Not Found")
            conn.send(status, reason, [], b"")
            return True
        content_type = req.headers.get("content-type", "")
        encrypted = content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))
        result = auth.authenticate(req.headers.get("authorization"), encrypted=encrypted)
        auth_headers = [("WWW-Authenticate", h) for h in result.www_authenticate]
        if result.principal is None:
            conn.send(401, "Unauthorized", auth_headers, b"")  # body already read: the connection stays usable
            return True
        principal: Principal = result.principal
        if not req.body:
            # The empty POST pypsrp sends to set up message encryption.
            conn.send(200, "OK", auth_headers, b"")
            return True
        encryption: WinRMEncryption | None = None
        body = req.body
        if encrypted:
            if auth.context is None:
                conn.send(400, "Bad Request", auth_headers, b"")
                return True
            m = _BOUNDARY.search(content_type)
            encryption = WinRMEncryption(auth.context, auth.encryption_protocol or WinRMEncryption.SPNEGO)
            try:
                body = encryption.unwrap_message(body, m.group(1) if m else "Encrypted Boundary")
            except Exception as exc:  # noqa: BLE001 - garbage ciphertext is the client's problem
                log.info("%s: cannot decrypt a request from %s: %s", self.name, principal.user, exc)
                conn.send(400, "Bad Request", [], b"", close=True)
                return False
        elif not self.https and not self.host_auth.allow_unencrypted:
            log.info("%s: refused an unencrypted request over HTTP from %s", self.name, principal.user)
            conn.send(401, "Unauthorized", [("WWW-Authenticate", h) for h in self.host_auth.challenge_headers()],
                      b"")
            return True
        injected = self.wsman_fault()
        if injected is not None:  # the wsman_fault switch: the service answers every request with a fault
            fault = WSManFault(CODE_INTERNAL_ERROR, injected.message or "labsim fault: the WS-Management service "
                               "cannot process the request (wsman_fault)")
            reply = Reply(500, build_fault(fault, "", self.service.machine), CODE_INTERNAL_ERROR)
        else:
            reply = self.service.handle(body, principal, self.endpoint_url)
        status, reason = (200, "OK") if reply.status == 200 else (500, "Internal Server Error")
        if encryption is not None:
            content_type_out, payload = encryption.wrap_message(reply.body)
            headers = [("Content-Type", f'{content_type_out};protocol="{encryption.protocol}";'
                                        'boundary="Encrypted Boundary"')]
        else:
            payload = reply.body
            headers = [("Content-Type", "application/soap+xml;charset=UTF-8")]
        conn.send(status, reason, auth_headers + headers, payload)
        return True


class SiteEndpoint:
    """An IIS https binding: TLS with the bound certificate, a small page for any GET."""

    def __init__(self, host: str, site: str, tls_context: ssl.SSLContext) -> None:
        self.host = host
        self.site = site
        self.tls_context = tls_context
        self.name = f"{host}:{site}"

    def serve(self, sock: socket.socket, client_ip: str) -> None:
        tls = _tls_wrap(sock, self.tls_context, self.name)
        if tls is None:
            return
        tls.settimeout(30)
        conn = _Connection(tls)
        page = (f"<html><head><title>{self.site}</title></head><body><h1>{self.site}</h1>"
                f"<p>IIS site {self.site} on {self.host} (labsim)</p></body></html>").encode()
        while True:
            try:
                req = conn.read_request()
            except (TimeoutError, _Closed, ConnectionError, ssl.SSLError, OSError, ValueError):
                return
            if req.method in ("GET", "HEAD"):
                conn.send(200, "OK", [("Content-Type", "text/html; charset=utf-8")],
                          b"" if req.method == "HEAD" else page)
            else:
                conn.send(405, "Method Not Allowed", [("Allow", "GET, HEAD")], b"")
            if req.headers.get("connection", "").lower() == "close":
                return
