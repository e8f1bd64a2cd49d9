"""WinRM HTTP authentication for labsim hosts: Basic, Negotiate (NTLM, raw or in SPNEGO) and CredSSP, with the
per-host user lists of the lab file. Authentication state lives on the TCP connection (:class:`ConnectionAuth`),
as with Windows' HTTP.sys: NTLM and CredSSP authenticate a connection, not a request.

NTLM credentials: pyspnego's NTLM acceptor reads users from the file named by the process-wide ``NTLM_USER_FILE``
environment variable. Mutating the environment per request is not thread-safe, so labsim writes one user file per
host and points pyspnego's lookup at it through a thread-local override of ``spnego._ntlm._get_credential_file``
(installed once; threads without an override keep pyspnego's behaviour). The acceptor step runs on the calling
thread, so the override is exactly "this acceptor's user file".
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego
import spnego._ntlm
import spnego.tls
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

from labsim.envelope import Principal
from labsim.lab import Auth, Host

log = logging.getLogger(__name__)

_ntlm_override = threading.local()
_patch_lock = threading.Lock()
_patched = False


def _install_ntlm_user_file_override() -> None:
    global _patched
    with _patch_lock:
        if _patched:
            return
        original = spnego._ntlm._get_credential_file

        def credential_file() -> str | None:
            path = getattr(_ntlm_override, "path", None)
            return path if path is not None else original()

        spnego._ntlm._get_credential_file = credential_file
        _patched = True


@contextlib.contextmanager
def ntlm_user_file(path: Path) -> Iterator[None]:
    """Make pyspnego's NTLM acceptor on this thread read its users from ``path``."""
    _install_ntlm_user_file_override()
    previous = getattr(_ntlm_override, "path", None)
    _ntlm_override.path = str(path)
    try:
        yield
    finally:
        _ntlm_override.path = previous


def write_ntlm_user_file(path: Path, host: Host) -> None:
    """One ``DOMAIN:USER:PASSWORD`` line per lab user of ``host`` (mode 0600: it holds passwords)."""
    lines = []
    for user in host.users:
        domain, _, name = user.name.rpartition("\\")
        if ":" in user.password or ":" in user.name or "\n" in user.password:
            log.warning("host %s: user %s cannot use NTLM/CredSSP in labsim (':' or newline in name or "
                        "password)", host.name, user.name)
            continue
        lines.append(f"{domain}:{name}:{user.password}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


_credssp_tls: spnego.tls.CredSSPTLSContext | None = None
_credssp_lock = threading.Lock()


def credssp_tls_context() -> spnego.tls.CredSSPTLSContext:
    """The acceptor TLS context for CredSSP's inner TLS channel, built once (RSA key generation is slow)."""
    global _credssp_tls
    with _credssp_lock:
        if _credssp_tls is None:
            import tempfile

            cert_pem, key_pem, public_key = spnego.tls.generate_tls_certificate()
            ctx = spnego.tls.default_tls_context(usage="accept")
            with tempfile.TemporaryDirectory() as tmp:
                chain = Path(tmp) / "credssp.pem"
                chain.write_bytes(cert_pem + key_pem)
                ctx.context.load_cert_chain(str(chain))
            ctx.public_key = public_key
            _credssp_tls = ctx
        return _credssp_tls


def channel_bindings_for(cert_der: bytes) -> GssChannelBindings:
    """RFC 5929 tls-server-end-point bindings for a certificate signed with SHA-256 (the lab CA's choice)."""
    return GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(cert_der).digest())


@dataclass
class HostAuth:
    """What one lab host accepts: methods in the order offered, its users and its NTLM user file."""

    host: Host
    ntlm_file: Path
    allow_unencrypted: bool
    auth_broken: Callable[[], bool]

    @property
    def methods(self) -> list[Auth]:
        return list(self.host.winrm.auth)

    def challenge_headers(self) -> list[str]:
        """WWW-Authenticate values of a bare 401, as Windows lists them."""
        headers = []
        if Auth.NEGOTIATE in self.methods:
            headers.append("Negotiate")
        if Auth.BASIC in self.methods:
            headers.append('Basic realm="WSMAN"')
        if Auth.CREDSSP in self.methods:
            headers.append("CredSSP")
        return headers

    def lab_user(self, name: str) -> str | None:
        """The lab file's spelling of a user name (DOMAIN\\user), matched case-insensitively."""
        key = name.lower()
        for user in self.host.users:
            if user.name.lower() == key:
                return user.name
        return None

    def check_password(self, name: str, password: str) -> str | None:
        key = name.lower()
        for user in self.host.users:
            if user.name.lower() == key and user.password == password:
                return user.name
        return None


@dataclass
class AuthResult:
    """``principal`` set: go on with the request. Otherwise answer 401 with ``www_authenticate``."""

    principal: Principal | None
    www_authenticate: list[str]


class ConnectionAuth:
    """Authentication state of one TCP connection."""

    def __init__(self, host_auth: HostAuth, client_ip: str, *, tls_cert_der: bytes | None) -> None:
        self.host_auth = host_auth
        self.client_ip = client_ip
        self.is_https = tls_cert_der is not None
        self._cbt = channel_bindings_for(tls_cert_der) if tls_cert_der is not None else None
        self.principal: Principal | None = None
        self.context: spnego.ContextProxy | None = None  # the completed NTLM/CredSSP context (message encryption)
        self.encryption_protocol: str | None = None
        self._pending: spnego.ContextProxy | None = None
        self._pending_scheme = ""

    def _refuse(self, why: str, user: str | None = None) -> AuthResult:
        log.info("host %s: refused authentication from %s%s: %s", self.host_auth.host.name, self.client_ip,
                 f" for {user}" if user else "", why)
        self._pending = None
        return AuthResult(None, self.host_auth.challenge_headers())

    def authenticate(self, authorization: str | None, *, encrypted: bool) -> AuthResult:
        """Process a request's Authorization header (or its absence)."""
        if self.host_auth.auth_broken():
            self.principal = None
            self.context = None
            return self._refuse("auth_broken fault in force")
        if not authorization:
            if self.principal is not None:
                return AuthResult(self.principal, [])
            return AuthResult(None, self.host_auth.challenge_headers())
        scheme, _, token_b64 = authorization.strip().partition(" ")
        scheme_l = scheme.lower()
        try:
            token = base64.b64decode(token_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._refuse(f"malformed {scheme} token")
        methods = self.host_auth.methods
        if scheme_l == "basic" and Auth.BASIC in methods:
            return self._basic(token, encrypted)
        if scheme_l in ("negotiate", "ntlm") and Auth.NEGOTIATE in methods:
            return self._spnego(scheme, token, "negotiate")
        if scheme_l == "credssp" and Auth.CREDSSP in methods:
            return self._spnego(scheme, token, "credssp")
        return self._refuse(f"{scheme or 'empty'} authentication is not enabled on this listener")

    def _basic(self, token: bytes, encrypted: bool) -> AuthResult:
        name, sep, password = token.decode("utf-8", "replace").partition(":")
        if not sep:
            return self._refuse("malformed Basic credentials")
        if not self.is_https and not self.host_auth.allow_unencrypted:
            # Windows' default AllowUnencrypted=false: Basic over plain HTTP has no message encryption.
            return self._refuse("Basic over unencrypted HTTP is not allowed", name)
        user = self.host_auth.check_password(name, password)
        if user is None:
            return self._refuse("wrong user name or password", name)
        self.principal = Principal(user, "basic", self.client_ip)
        self.context = None
        return AuthResult(self.principal, [])

    def _spnego(self, scheme: str, token: bytes, protocol: str) -> AuthResult:
        host_auth = self.host_auth
        try:
            with ntlm_user_file(host_auth.ntlm_file):
                if self._pending is None or self._pending_scheme != scheme.lower():
                    kwargs: dict[str, Any] = {}
                    if protocol == "credssp":
                        kwargs["credssp_tls_context"] = credssp_tls_context()
                    self._pending = spnego.server(
                        protocol=protocol, channel_bindings=self._cbt if protocol != "credssp" else None,
                        options=(spnego.NegotiateOptions.wrapping_winrm if protocol != "credssp"
                                 else spnego.NegotiateOptions.none), **kwargs)
                    self._pending_scheme = scheme.lower()
                out = self._pending.step(token)
        except SpnegoError as exc:
            return self._refuse(f"{scheme} failed: {exc.message if hasattr(exc, 'message') else exc}")
        except Exception as exc:  # noqa: BLE001 - a hostile token must never escape as a 500 or a dead thread
            return self._refuse(f"{scheme} token rejected ({type(exc).__name__})")
        ctx = self._pending
        header = [f"{scheme} {base64.b64encode(out).decode()}"] if out else []
        if not ctx.complete:
            if not out:
                return self._refuse(f"{scheme} ended without completing")
            return AuthResult(None, header)
        self._pending = None
        if protocol == "credssp":
            user = self._credssp_user(ctx)
            if user is None:
                return AuthResult(None, host_auth.challenge_headers())
            auth_name = "credssp"
        else:
            principal_name = ctx.client_principal or ""
            user = host_auth.lab_user(principal_name)
            if user is None:
                return self._refuse("authenticated name not in the lab user list", principal_name)
            auth_name = "negotiate"
        self.principal = Principal(user, auth_name, self.client_ip)
        self.context = ctx
        self.encryption_protocol = ("application/HTTP-CredSSP-session-encrypted" if protocol == "credssp"
                                    else "application/HTTP-SPNEGO-session-encrypted")
        return AuthResult(self.principal, header)

    def _credssp_user(self, ctx: spnego.ContextProxy) -> str | None:
        # The delegated credential must be the lab user's own: CredSSP hands the password to the server.
        cred = ctx.get_extra_info("client_credential")
        name = getattr(cred, "username", None) or ""
        domain = getattr(cred, "domain_name", None) or ""
        password = getattr(cred, "password", None) or ""
        full = f"{domain}\\{name}" if domain else name
        user = self.host_auth.check_password(full, password)
        if user is None:
            self._refuse("CredSSP delegated credential does not match a lab user", full)
        return user
