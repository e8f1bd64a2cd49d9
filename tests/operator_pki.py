"""An organization's PKI as an operator brings it: an issuing CA (optionally under a root), web server
certificates it issues, and the PFX files exported from them, good and bad. Shared by the unit, sim and e2e tests
of the connector certificate sources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    parents: list[Issued] = field(default_factory=list)  # the CAs above it, nearest first

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    def pfx(self, password: str, *, chain: list[x509.Certificate] | None = None, with_key: bool = True,
            key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        """The PFX as Windows exports it with 'Include all certificates in the certification path' (``chain``
        None), or with the given extra certificates."""
        extra = [p.cert for p in self.parents] if chain is None else chain
        if key is not None and key is not self.key:  # cryptography refuses a mismatched pair: cert as extra
            return pkcs12.serialize_key_and_certificates(
                b"connector", key, None, [self.cert, *extra], serialization.BestAvailableEncryption(password.encode()))
        enc = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        if not with_key:
            return pkcs12.serialize_key_and_certificates(b"connector", None, None, [self.cert, *extra], enc)
        return pkcs12.serialize_key_and_certificates(b"connector", self.key, self.cert, extra, enc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def org_ca(cn: str = "Contoso Issuing CA", *, parent: Issued | None = None, days: int = 3650,
           not_after: dt.datetime | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer, signer = (parent.cert.subject, parent.key) if parent else (_name(cn), key)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=2))
            .not_valid_after(not_after or NOW + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(signer, hashes.SHA256()))
    return Issued(cert, key, ([parent, *parent.parents] if parent else []))


def web_server_cert(ca: Issued | None, names: tuple[str, ...] = ("wapcomputer1.contoso.com",), *,
                    eku: tuple[x509.ObjectIdentifier, ...] | None = SERVER_AUTH,
                    not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                    key_usage_signature: bool = True) -> Issued:
    """A certificate from a web server template (self-signed when ``ca`` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(names[0])
    issuer, signer = (ca.cert.subject, ca.key) if ca else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - dt.timedelta(days=1))
               .not_valid_after(not_after or NOW + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
               .add_extension(x509.KeyUsage(digital_signature=key_usage_signature, key_encipherment=False,
                                            key_cert_sign=False, crl_sign=False, content_commitment=False,
                                            data_encipherment=not key_usage_signature, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key, ([ca, *ca.parents] if ca else []))
