"""The simulated lab's certification authority: issues the WinRM listener certificates and the WAP sites'
baseline certificates, and exports its certificate so clients can verify TLS (never self-signed leaves)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labsim.lab import Lab


def thumbprint(cert_pem_or_der: bytes) -> str:
    """SHA-1 thumbprint, upper-case hex, as Windows shows it."""
    cert = _load(cert_pem_or_der)
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows identifies certs by SHA-1


def _load(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def lab_ca(state_dir: str | Path, lab: Lab) -> LabCA:
    """The lab's CA (``<state_dir>/pki``): shared by labsim's listeners, its hosts' baseline certificates and
    anything else issuing lab certs."""
    return LabCA.load_or_create(Path(state_dir) / "pki", lab.name)


class LabCA:
    """A root CA kept in ``directory`` (ca.pem, ca.key); created on first use, reused afterwards."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, directory: Path) -> None:
        self._cert = cert
        self._key = key
        self.directory = directory
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, directory: str | Path, name: str) -> LabCA:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / "ca.pem", directory / "ca.key"
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            return cls(cert, key, directory)  # type: ignore[arg-type]
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"labsim {name} Root CA"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "labsim")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        os.replace(tmp, key_path)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, directory)

    @property
    def ca_file(self) -> Path:
        """PEM file clients pass as their CA bundle."""
        return self.directory / "ca.pem"

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, dns_names: list[str], ip_addresses: list[str] = (),  # type: ignore[assignment]
              days: int = 825, not_after: dt.datetime | None = None,
              not_before: dt.datetime | None = None) -> tuple[bytes, bytes]:
        """A TLS server certificate signed by this CA: (cert PEM, unencrypted key PEM). ``not_before`` /
        ``not_after`` override the validity (tests: an expired certificate)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        with self._lock:
            cert = builder.sign(self._key, hashes.SHA256())
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
