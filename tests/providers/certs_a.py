"""Certificates for the certificate provider's tests: a CA, leaves issued by it, and the bad kinds check refuses."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.timezone.utc)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    def pfx(self, password: str, key: ec.EllipticCurvePrivateKey | None = None, chain=()) -> str:
        # cryptography refuses a mismatched key+cert pair; a PFX holding another key (with the certificate only
        # among the extra certificates) is how a "wrong key" PFX is made here.
        mismatched = key is not None and key is not self.key
        data = pkcs12.serialize_key_and_certificates(
            b"leaf", key or self.key, None if mismatched else self.cert,
            ([self.cert] if mismatched else []) + list(chain),
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption())
        return base64.b64encode(data).decode()


def make_ca(cn: str = "Lab Test CA", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def make_leaf(ca: Issued | None, names=("wapcomputer1.contoso.com",), *, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None, cn: str | None = None) -> Issued:
    """A TLS leaf issued by ``ca`` (self-signed when ca is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])])
    issuer_name, signer = (ca.cert.subject, ca.key) if ca else (subject, key)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - dt.timedelta(days=1))
            .not_valid_after(not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(signer, hashes.SHA256()))
    return Issued(cert, key)
