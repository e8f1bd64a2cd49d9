"""Is a connector certificate an operator brings fit for the connector endpoint? Pure functions, no I/O.

One place for the rules, used by the stack configuration (the PFX and CA files on this machine, before anything
is registered), by :mod:`providers.certificate` (a certificate already in a tenant portal VM's store, read back
by thumbprint) and by the preflight (the same certificate seen remotely). The rules are the seed's and those of
Microsoft's readiness checker for Azure Stack certificates: issued by a CA (never self-signed) and by the CA the
operator names, a subject alternative name for the endpoint FQDN, server-authentication usage, valid now and not
about to expire, and for a PFX: it opens with its password, holds the private key of its certificate and the
chain, and nothing unrelated (Import-PfxCertificate would add any extra CA certificate to the host's stores).

Every message says what to fix and never quotes a password, a key or the PFX bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from providers import pki

DEFAULT_EXPIRY_THRESHOLD_DAYS = 30  # the same renewal margin as Certificate's check
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
# Copying a thumbprint from the Windows certificate dialog brings spaces and an invisible left-to-right mark.
_THUMBPRINT_NOISE = re.compile(r"[\s:\u200e\u200f\ufeff]")


def normalize_thumbprint(value: str) -> str:
    """Upper-case hex without separators; ValueError unless 40 hex digits (a SHA-1 thumbprint) remain."""
    cleaned = _THUMBPRINT_NOISE.sub("", value).upper()
    if not re.fullmatch(r"[0-9A-F]{40}", cleaned):
        raise ValueError("is not a certificate thumbprint (40 hexadecimal digits, as Get-ChildItem "
                         "Cert:\\LocalMachine\\My shows it)")
    return cleaned


def load_certificate_file(data: bytes) -> x509.Certificate:
    """Exactly one certificate, PEM or DER (a .cer file is either). ValueError saying what the file holds."""
    if _PEM_CERT in data:
        if data.count(_PEM_CERT) != 1:
            raise ValueError(f"holds {data.count(_PEM_CERT)} PEM certificates; give the issuing CA's certificate "
                             f"alone")
        try:
            return x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ValueError("is not a readable PEM certificate") from None
    if b"PRIVATE KEY-----" in data:
        raise ValueError("holds a private key, not a certificate; give the CA's certificate (.cer) only")
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError("is neither a PEM nor a DER certificate (export it as .cer, Base-64 or DER)") from None


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Pfx:
    """What a PKCS#12 file holds."""

    key: Any
    certificate: x509.Certificate | None
    chain: list[x509.Certificate] = field(default_factory=list)


def open_pfx(data: bytes, password: str) -> Pfx:
    """ValueError (never quoting the password) when the password does not open it or it is not PKCS#12."""
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, password.encode())
    except (ValueError, TypeError):
        raise ValueError("does not open the PFX (a wrong password, or the file is not PKCS#12)") from None
    chain = list(chain or [])
    if cert is None:  # no key, or a key that is not this certificate's: the leaf is among the extra certificates
        cert = next((c for c in chain if not pki.is_ca(c)), None)
        chain = [c for c in chain if c is not cert]
    return Pfx(key, cert, chain)


def certificate_problems(cert: x509.Certificate, *, fqdn: str | None, issuer: x509.Certificate | None = None,
                         now: dt.datetime | None = None,
                         expiry_threshold_days: int = DEFAULT_EXPIRY_THRESHOLD_DAYS) -> list[str]:
    """Everything wrong with ``cert`` as the TLS certificate of the connector endpoint at ``fqdn``, one message
    each (empty when fit). ``issuer``: the CA certificate that must have signed it. ``fqdn`` None: any name."""
    now = now or pki.now_utc()
    thumb = pki.thumbprint(cert)
    out: list[str] = []
    if pki.is_self_signed(cert):
        out.append(f"certificate {thumb} is self-signed; the connector needs a certificate issued by your "
                   f"organization's certification authority")
    if pki.is_ca(cert):
        out.append(f"certificate {thumb} is a CA certificate; give the connector endpoint's own certificate")
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if not_after <= now:
        out.append(f"certificate {thumb} expired on {not_after:%Y-%m-%d}: issue a new one")
    elif not_after - dt.timedelta(days=expiry_threshold_days) <= now:
        out.append(f"certificate {thumb} expires on {not_after:%Y-%m-%d}, within {expiry_threshold_days} days: "
                   f"renew it first")
    if not_before > now + dt.timedelta(minutes=5):
        out.append(f"certificate {thumb} is not valid before {not_before:%Y-%m-%d %H:%M} UTC: check the issuing "
                   f"machine's clock")
    if fqdn is not None and not pki.san_covers(cert, fqdn):
        names = ", ".join(pki.dns_names(cert)) or "none"
        out.append(f"certificate {thumb} does not name {fqdn} (its DNS subject alternative names: {names}): "
                   f"issue it with {fqdn} as a subject alternative name")
    out.extend(usage_problems(cert))
    if issuer is not None:
        out.extend(issuer_problems(cert, issuer))
    return out


def usage_problems(cert: x509.Certificate) -> list[str]:
    """TLS server use: the server-authentication EKU, and a key usage that allows the handshake."""
    thumb = pki.thumbprint(cert)
    out = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            out.append(f"certificate {thumb} is not for server authentication (its enhanced key usage lacks "
                       f"1.3.6.1.5.5.7.3.1): issue it from a web server template")
    except x509.ExtensionNotFound:
        out.append(f"certificate {thumb} has no enhanced key usage; it needs server authentication "
                   f"(1.3.6.1.5.5.7.3.1): issue it from a web server template")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        rsa_key = isinstance(cert.public_key(), rsa.RSAPublicKey)
        if not (ku.digital_signature or (rsa_key and ku.key_encipherment)):
            out.append(f"certificate {thumb}'s key usage allows neither digital signature nor key encipherment: "
                       f"TLS cannot use it")
    except x509.ExtensionNotFound:
        pass  # no restriction
    return out


def issuer_problems(cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
    """``issuer`` is a CA and signed ``cert``."""
    thumb, ca_thumb = pki.thumbprint(cert), pki.thumbprint(issuer)
    if not pki.is_ca(issuer):
        return [f"certificate {ca_thumb} ({issuer.subject.rfc4514_string()}) is not a CA certificate; give the CA "
                f"that issued certificate {thumb}"]
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not issued by it"
        return [f"certificate {thumb} was not issued by CA {ca_thumb} ({issuer.subject.rfc4514_string()}); its "
                f"issuer is {cert.issuer.rfc4514_string()}: give that CA's certificate"]
    return []


def pfx_problems(pfx: Pfx, *, fqdn: str, issuer: x509.Certificate | None, now: dt.datetime | None = None,
                 expiry_threshold_days: int = DEFAULT_EXPIRY_THRESHOLD_DAYS) -> list[str]:
    """Everything wrong with an opened PFX as the connector's certificate (the certificate's own problems
    included), one message each."""
    if pfx.certificate is None:
        return ["holds no certificate"]
    cert = pfx.certificate
    thumb = pki.thumbprint(cert)
    out: list[str] = []
    if pfx.key is None:
        out.append(f"holds certificate {thumb} without its private key: export it with the private key")
    else:
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if pfx.key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            out.append(f"its private key does not belong to certificate {thumb}")
    out.extend(certificate_problems(cert, fqdn=fqdn, issuer=issuer, now=now,
                                    expiry_threshold_days=expiry_threshold_days))
    if issuer is not None:
        out.extend(chain_problems(cert, pfx.chain, issuer))
    return out


def chain_problems(cert: x509.Certificate, chain: Sequence[x509.Certificate], issuer: x509.Certificate) -> list[str]:
    """The extra certificates of a PFX: the issuing CA must be among them, and nothing outside its path."""
    thumb, out = pki.thumbprint(cert), []
    if pki.thumbprint(issuer) not in {pki.thumbprint(c) for c in chain}:
        out.append(f"does not hold the chain of certificate {thumb} (issuing CA {pki.thumbprint(issuer)} is "
                   f"missing): export it with 'Include all certificates in the certification path'")
    path = {pki.thumbprint(c) for c in chain_path(issuer, chain)}
    unrelated = [pki.thumbprint(c) for c in chain if pki.thumbprint(c) not in path]
    if unrelated:
        out.append(f"also holds certificates outside the chain of {thumb} ({', '.join(unrelated)}); importing "
                   f"it would add them to the host's certificate stores: export only this certificate's path")
    return out


def chain_path(issuer: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``issuer`` and the CAs above it that ``pool`` holds, walking up by signature."""
    path = [issuer]
    while not pki.is_self_signed(path[-1]):
        parent = issuer_in(pool, path[-1])
        if parent is None or any(pki.thumbprint(parent) == pki.thumbprint(c) for c in path):
            break
        path.append(parent)
    return path


def issuer_in(chain: Sequence[x509.Certificate], cert: x509.Certificate) -> x509.Certificate | None:
    """The certificate of ``chain`` that signed ``cert``, if any."""
    for c in chain:
        if c.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(c)
                return c
            except Exception:  # noqa: BLE001
                continue
    return None
