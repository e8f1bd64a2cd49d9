"""Is a certificate an operator brings fit for the connector endpoint? The rules, worded for the operator.

The rules are the seed's and those of Microsoft's readiness checker for Azure Stack certificates: issued by a CA
(never self-signed) and by the CA the operator names, a subject alternative name for the endpoint FQDN,
server-authentication usage, valid now and not about to expire. Every message says what to fix.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from ._description import RENEWAL_MARGIN_DAYS, SERVER_AUTH_OID, CertificateInfo
from ._parse import now_utc
from ._x509 import describe, is_ca, signed_by, thumbprint


def validity_problems(info: CertificateInfo, now: dt.datetime, expiry_threshold_days: int,
                      threshold_name: str | None = None) -> list[str]:
    """Expired, expiring within the threshold (named ``threshold_name`` when the caller's setting has a name), or
    not valid yet."""
    out: list[str] = []
    thumb, not_after, not_before = info.thumbprint, info.not_after, info.not_before
    within = (f"{threshold_name} ({expiry_threshold_days})" if threshold_name
              else f"{expiry_threshold_days} days")
    if info.expired(now):
        out.append(f"certificate {thumb} expired on {not_after:%Y-%m-%d}: issue a new one")
    elif info.expires_within(expiry_threshold_days, now):
        out.append(f"certificate {thumb} expires on {not_after:%Y-%m-%d}, within {within}: renew it first")
    if info.not_yet_valid(now):
        out.append(f"certificate {thumb} is not valid before {not_before:%Y-%m-%d %H:%M} UTC: check the issuing "
                   f"machine's clock")
    return out


def info_problems(info: CertificateInfo, *, fqdn: str | None, now: dt.datetime | None = None,
                  expiry_threshold_days: int = RENEWAL_MARGIN_DAYS) -> list[str]:
    """Everything wrong with the described certificate as the connector endpoint's TLS certificate at ``fqdn``
    (None: any name), one message each; empty when fit."""
    now = now or now_utc()
    thumb = info.thumbprint
    out: list[str] = []
    if info.self_signed:
        out.append(f"certificate {thumb} is self-signed; the connector needs a certificate issued by your "
                   f"organization's certification authority")
    if info.is_ca:
        out.append(f"certificate {thumb} is a CA certificate; give the connector endpoint's own certificate")
    out += validity_problems(info, now, expiry_threshold_days)
    if fqdn is not None and not info.names(fqdn):
        out.append(f"certificate {thumb} does not name {fqdn} (its DNS subject alternative names: "
                   f"{', '.join(info.dns_names) or 'none'}): issue it with {fqdn} as a subject alternative name")
    out += info_usage_problems(info)
    return out


def info_usage_problems(info: CertificateInfo) -> list[str]:
    """TLS server use: the server-authentication EKU, and a key usage that allows the handshake."""
    thumb, out = info.thumbprint, []
    if info.extended_key_usage is not None and not info.extended_key_usage:
        out.append(f"certificate {thumb} has no enhanced key usage; it needs server authentication "
                   f"({SERVER_AUTH_OID}): issue it from a web server template")
    elif info.extended_key_usage and not info.for_server_auth:
        out.append(f"certificate {thumb} is not for server authentication (its enhanced key usage lacks "
                   f"{SERVER_AUTH_OID}): issue it from a web server template")
    if not info.tls_key_usage:
        out.append(f"certificate {thumb}'s key usage allows neither digital signature nor key encipherment: "
                   f"TLS cannot use it")
    return out


def certificate_problems(cert: x509.Certificate, *, fqdn: str | None, issuer: x509.Certificate | None = None,
                         now: dt.datetime | None = None,
                         expiry_threshold_days: int = RENEWAL_MARGIN_DAYS) -> list[str]:
    """:func:`info_problems` of an X.509 certificate, and with ``issuer`` (the CA certificate that must have
    signed it) :func:`issuer_problems`."""
    out = info_problems(describe(cert), fqdn=fqdn, now=now, expiry_threshold_days=expiry_threshold_days)
    if issuer is not None:
        out.extend(issuer_problems(cert, issuer))
    return out


def usage_problems(cert: x509.Certificate) -> list[str]:
    return info_usage_problems(describe(cert))


def issuer_problems(cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
    """``issuer`` is a CA and signed ``cert``."""
    thumb, ca_thumb = thumbprint(cert), thumbprint(issuer)
    if not is_ca(issuer):
        return [f"certificate {ca_thumb} ({issuer.subject.rfc4514_string()}) is not a CA certificate; give the CA "
                f"that issued certificate {thumb}"]
    if not signed_by(cert, issuer):
        return [f"certificate {thumb} was not issued by CA {ca_thumb} ({issuer.subject.rfc4514_string()}); its "
                f"issuer is {cert.issuer.rfc4514_string()}: give that CA's certificate"]
    return []
