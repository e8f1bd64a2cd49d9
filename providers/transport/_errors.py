"""Error translation at the boundary: what pypsrp, requests, urllib3, spnego and the socket layer raise -> the
project's errors (``providers.errors``), each naming the host, the step and what to do, never a password.

    WSManFaultError        access denied -> AuthenticationFailed; unknown session configuration ->
                           ConfigurationError; any other fault -> TransportError (with its code)
    AuthenticationError    HTTP 401 -> AuthenticationFailed
    WinRMTransportError    another HTTP status -> TransportError
    SSLError / OSError     certificate not trusted or not for that name -> TlsVerificationFailed; refused,
                           unresolvable, timed out -> HostUnreachable; anything else -> TransportError
    spnego / CredSSP       the credential refused -> AuthenticationFailed; a CredSSP exchange answered with a
                           server error -> TransportError
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable

import requests
import urllib3
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from urllib3.util.ssl_match_hostname import CertificateError as NameMismatch

from ..errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    HostUnreachable,
    TlsVerificationFailed,
    TransportError,
)
from ._base import scrub
from ._connection import HostConnection

__all__ = ["translate"]

ACCESS_DENIED = 5
# "Cannot find the X session configuration": 0x80338000 as Windows reports it, 0x8033801A for a bad URI.
CONFIGURATION_NOT_FOUND = {0x80338000, 0x8033801A}
_Clean = Callable[..., str]


def translate(exc: BaseException, conn: HostConnection, step: str) -> ConnectorError:
    """pypsrp / requests / spnego / socket errors -> the project's errors. Never includes the password."""
    secrets = [conn.password.get_secret_value()] if conn.password else []

    def clean(text: object, limit: int = 300) -> str:
        text = scrub(" ".join(str(text).split()), secrets)
        return text if len(text) <= limit else text[: limit - 3] + "..."

    host, endpoint = conn.fqdn, conn.endpoint
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(host, step, user=conn.username, auth=conn.auth, detail="HTTP 401")
    if isinstance(exc, WSManFaultError):
        return _wsman_fault(exc, conn, step, clean)
    if isinstance(exc, WinRMTransportError):
        return TransportError(host, step, f"HTTP {exc.code} from {endpoint}: {clean(exc.response_text, 200)}")
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_failure(exc, conn, step, clean)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return HostUnreachable(host, step, f"no answer within {conn.connect_timeout:g} s", endpoint=endpoint)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransportError(host, step, f"no reply from {endpoint} within {conn.read_timeout:g} s "
                                          f"(read_timeout); the session was discarded")
    if isinstance(exc, (requests.exceptions.ConnectionError, OSError)):
        return _connection_failure(exc, conn, step, clean)
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


def _wsman_fault(exc: WSManFaultError, conn: HostConnection, step: str, clean: _Clean) -> ConnectorError:
    code = exc.code if isinstance(exc.code, int) else None
    reason = clean(exc.reason or str(exc))
    if code == ACCESS_DENIED:
        return AuthenticationFailed(conn.fqdn, step, user=conn.username, auth=conn.auth,
                                    detail=f"access denied to session configuration "
                                           f"'{conn.configuration_name}': {reason}")
    if code in CONFIGURATION_NOT_FOUND:
        return ConfigurationError([f"configuration_name '{conn.configuration_name}' is not a session "
                                   f"configuration of the host ({reason}); check Get-PSSessionConfiguration "
                                   f"on the host"], host=conn.fqdn, step=step)
    return TransportError(conn.fqdn, step, reason, fault_code=code)


def _tls_failure(exc: requests.exceptions.SSLError, conn: HostConnection, step: str,
                 clean: _Clean) -> ConnectorError:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text or "hostname" in text:
        cause = _low_level(exc)
        # urllib3 checks a pinned name (tls_server_name) itself and raises its own CertificateError.
        pinned = next((e for e in _causes(exc) if isinstance(e, NameMismatch)), None)
        detail = getattr(cause, "verify_message", None) or (
            clean(pinned, 200) if pinned is not None else "certificate verify failed")
        return TlsVerificationFailed(conn.fqdn, step, f"{detail} at {conn.endpoint}",
                                     ca_file=conn.ca_source, server_name=conn.tls_server_name)
    return TransportError(conn.fqdn, step, f"TLS handshake with {conn.endpoint} failed: {clean(text, 200)}")


def _connection_failure(exc: BaseException, conn: HostConnection, step: str, clean: _Clean) -> ConnectorError:
    host, endpoint = conn.fqdn, conn.endpoint
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
