"""A PFX (PKCS#12) an operator brings: it opens with its password, holds the private key of its certificate and
the chain, and nothing unrelated (Import-PfxCertificate would add any extra CA certificate to the host's stores).
Messages never quote a password, a key or the PFX bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from ._description import RENEWAL_MARGIN_DAYS
from ._rules import certificate_problems
from ._x509 import is_ca, is_self_signed, key_matches, signed_by, thumbprint


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
        cert = next((c for c in chain if not is_ca(c)), None)
        chain = [c for c in chain if c is not cert]
    return Pfx(key, cert, chain)


def pfx_problems(pfx: Pfx, *, fqdn: str, issuer: x509.Certificate | None, now: dt.datetime | None = None,
                 expiry_threshold_days: int = RENEWAL_MARGIN_DAYS) -> list[str]:
    """Everything wrong with an opened PFX as the connector's certificate (the certificate's own problems
    included), one message each."""
    if pfx.certificate is None:
        return ["holds no certificate"]
    cert = pfx.certificate
    thumb = thumbprint(cert)
    out: list[str] = []
    if pfx.key is None:
        out.append(f"holds certificate {thumb} without its private key: export it with the private key")
    elif not key_matches(cert, pfx.key):
        out.append(f"its private key does not belong to certificate {thumb}")
    out.extend(certificate_problems(cert, fqdn=fqdn, issuer=issuer, now=now,
                                    expiry_threshold_days=expiry_threshold_days))
    if issuer is not None:
        out.extend(chain_problems(cert, pfx.chain, issuer))
    return out


def chain_problems(cert: x509.Certificate, chain: Sequence[x509.Certificate], issuer: x509.Certificate) -> list[str]:
    """The extra certificates of a PFX: the issuing CA must be among them, and nothing outside its path."""
    thumb, out = thumbprint(cert), []
    if thumbprint(issuer) not in {thumbprint(c) for c in chain}:
        out.append(f"does not hold the chain of certificate {thumb} (issuing CA {thumbprint(issuer)} is "
                   f"missing): export it with 'Include all certificates in the certification path'")
    path = {thumbprint(c) for c in chain_path(issuer, chain)}
    unrelated = [thumbprint(c) for c in chain if thumbprint(c) not in path]
    if unrelated:
        out.append(f"also holds certificates outside the chain of {thumb} ({', '.join(unrelated)}); importing "
                   f"it would add them to the host's certificate stores: export only this certificate's path")
    return out


def chain_path(issuer: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``issuer`` and the CAs above it that ``pool`` holds, walking up by signature."""
    path = [issuer]
    while not is_self_signed(path[-1]):
        parent = issuer_in(pool, path[-1])
        if parent is None or any(thumbprint(parent) == thumbprint(c) for c in path):
            break
        path.append(parent)
    return path


def issuer_in(chain: Sequence[x509.Certificate], cert: x509.Certificate) -> x509.Certificate | None:
    """The certificate of ``chain`` that signed ``cert``, if any."""
    return next((c for c in chain if c.subject == cert.issuer and signed_by(cert, c)), None)
