"""Certificates for tests, made in memory.

An organization's PKI as an operator brings it (``org_ca``, ``web_server_cert``): an issuing CA (optionally under a
root), web server certificates it issues, and the PFX files exported from them, good and bad; used by the unit,
sim and e2e tests of the connector certificate sources. And the plain CA and TLS leaves the certificate
provider's tests install (``make_ca``, ``make_leaf``), with their PFX as the resource input takes it
(``Issued.pfx_base64``)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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

    def pfx_base64(self, password: str, key: ec.EllipticCurvePrivateKey | None = None,
                   chain: tuple[x509.Certificate, ...] = ()) -> str:
        """The ``pfx_base64`` input of a Certificate resource: the key and certificate with only ``chain`` as
        extra certificates; with another ``key``, the "wrong key" PFX."""
        return base64.b64encode(self.pfx(password, chain=list(chain), key=key)).decode()


def private_key(pem: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A PEM private key of the kinds the lab CA issues (RSA or EC), typed for PKCS#12."""
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)), type(key)
    return key


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: Issued | None,
                 not_before: dt.datetime, not_after: dt.datetime,
                 extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    """Signed by ``issuer``, or self-signed when it is None; ``extensions`` as (extension, critical)."""
    issuer_name, signer = (issuer.cert.subject, issuer.key) if issuer else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def org_ca(cn: str = "Contoso Issuing CA", *, parent: Issued | None = None, days: int = 3650,
           not_after: dt.datetime | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)
    cert = _certificate(_name(cn), key, parent, NOW - dt.timedelta(days=2), not_after or NOW + dt.timedelta(days=days),
                        [(x509.BasicConstraints(ca=True, path_length=None), True), (usage, True)])
    return Issued(cert, key, ([parent, *parent.parents] if parent else []))


def web_server_cert(ca: Issued | None, names: tuple[str, ...] = ("wapcomputer1.contoso.com",), *,
                    eku: tuple[x509.ObjectIdentifier, ...] | None = SERVER_AUTH,
                    not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                    key_usage_signature: bool = True) -> Issued:
    """A certificate from a web server template (self-signed when ``ca`` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(digital_signature=key_usage_signature, key_encipherment=False, key_cert_sign=False,
                          crl_sign=False, content_commitment=False, data_encipherment=not key_usage_signature,
                          key_agreement=False, encipher_only=False, decipher_only=False)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False), (usage, True)]
    if eku is not None:
        extensions.append((x509.ExtendedKeyUsage(list(eku)), False))
    cert = _certificate(_name(names[0]), key, ca, not_before or NOW - dt.timedelta(days=1),
                        not_after or NOW + dt.timedelta(days=365), extensions)
    return Issued(cert, key, ([ca, *ca.parents] if ca else []))


def _cn(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "Lab Test CA", days: int = 3650) -> Issued:
    """A plain CA: a common name only, no key usage."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_cn(cn), key, None, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=days),
                        [(x509.BasicConstraints(ca=True, path_length=0), True)])
    return Issued(cert, key)


def make_leaf(ca: Issued | None, names: tuple[str, ...] = ("wapcomputer1.contoso.com",), *,
              not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
              cn: str | None = None) -> Issued:
    """A TLS leaf issued by ``ca`` (self-signed when ca is None): names in the SAN, no key usage."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_cn(cn or names[0]), key, ca, not_before or NOW - dt.timedelta(days=1),
                        not_after or NOW + dt.timedelta(days=365),
                        [(x509.BasicConstraints(ca=False, path_length=None), True),
                         (x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)])
    return Issued(cert, key, [ca, *ca.parents] if ca else [])
