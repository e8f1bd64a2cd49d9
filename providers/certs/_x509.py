"""Certificates as ``cryptography`` reads them: loading, the facts Windows names them by, and the adapter to
:class:`CertificateInfo`."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ._description import CertificateInfo, KeyKind

_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
#: The KeyUsage flags, as cryptography names them (encipher_only and decipher_only qualify key_agreement).
KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
              "key_cert_sign", "crl_sign")


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """The first PEM certificate in ``pem``; ValueError ``is not a readable PEM certificate`` (an input's validator
    puts the input's name before it)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ValueError("is not a readable PEM certificate") from None


def load_certificate_file(data: bytes) -> x509.Certificate:
    """Exactly one certificate, PEM or DER (a .cer file is either). ValueError saying what the file holds."""
    if _PEM_CERT in data:
        if data.count(_PEM_CERT) != 1:
            raise ValueError(f"holds {data.count(_PEM_CERT)} PEM certificates; give the issuing CA's certificate "
                             f"alone")
        return load_certificate(data)
    if b"PRIVATE KEY-----" in data:
        raise ValueError("holds a private key, not a certificate; give the CA's certificate (.cer) only")
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError("is neither a PEM nor a DER certificate (export it as .cer, Base-64 or DER)") from None


def key_usage(*names: str) -> x509.KeyUsage:
    """The KeyUsage extension with the flags ``names`` set (of :data:`KEY_USAGES`) and every other one clear."""
    unknown = set(names) - set(KEY_USAGES)
    if unknown:
        raise ValueError(f"not key usages: {sorted(unknown)}")
    return x509.KeyUsage(**{u: u in names for u in KEY_USAGES}, encipher_only=False, decipher_only=False)


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 thumbprint, upper-case hex: how Windows names a certificate in its stores."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' identifier, not a signature


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    return signed_by(cert, cert)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # noqa: BLE001 - any verification failure means "not issued by it"
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def key_matches(cert: x509.Certificate, key: Any) -> bool:
    """``key`` (a private key object) is the one of ``cert``'s public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki))


def public_key_matches(cert: x509.Certificate, key_pem: str | bytes) -> bool:
    key = serialization.load_pem_private_key(key_pem.encode() if isinstance(key_pem, str) else key_pem, None)
    return key_matches(cert, key)


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def _key_kind(cert: x509.Certificate) -> KeyKind:
    key = cert.public_key()
    return "rsa" if isinstance(key, rsa.RSAPublicKey) else "ec" if isinstance(key, ec.EllipticCurvePublicKey) \
        else "other"


def _key_usage(cert: x509.Certificate) -> frozenset[str] | None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return frozenset(name for name in KEY_USAGES if getattr(ku, name))


def _extended_key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(oid.dotted_string for oid in eku)


def describe(cert: x509.Certificate, *, has_private_key: bool | None = None) -> CertificateInfo:
    """The plain description of an X.509 certificate."""
    return CertificateInfo(
        thumbprint=thumbprint(cert), subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        dns_names=tuple(dns_names(cert)), not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        key_kind=_key_kind(cert), key_usage=_key_usage(cert), extended_key_usage=_extended_key_usage(cert),
        is_ca=is_ca(cert), self_signed=is_self_signed(cert), has_private_key=has_private_key)
