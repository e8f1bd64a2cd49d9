"""Certificate stores: one certificate by thumbprint, or what a store holds (Cert:\\LocalMachine\\<store>)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from providers import certs
from providers.facts import Fact, quiet
from providers.transport import Command, Pipeline

#: What preflight reads of each certificate in My to judge the connector's.
CERTIFICATE_PROPERTIES = ("Thumbprint", "Subject", "Issuer", "NotBefore", "NotAfter", "HasPrivateKey",
                          "DnsNameList", "EnhancedKeyUsageList")


def store_path(store: str, thumbprint: str | None = None) -> str:
    return f"Cert:\\LocalMachine\\{store}" + (f"\\{thumbprint}" if thumbprint else "")


def raw_bytes(value: Any) -> bytes | None:
    """X509Certificate2.RawData (byte[]): bytes once deserialized; tolerate a base64 string or a list of ints."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value:
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    return None


def iso_date(value: Any) -> str | None:
    """NotAfter as text: a date object or ConvertTo-Json's /Date(ms)/ as ISO 8601, other text as the host gave it."""
    if isinstance(value, str) and not value.replace("\\/", "/").startswith("/Date("):
        return value or None
    parsed = certs.when(value)
    return parsed.isoformat() if parsed else None


@dataclass(frozen=True)
class StoreCertificate:
    store: str
    """The store it was found in."""
    has_private_key: bool
    not_after: str | None
    raw_data: bytes | None = None
    """The certificate itself (DER), when the read asked for it (an existing certificate is checked locally)."""


@dataclass(frozen=True)
class InstalledCertificate(Fact[StoreCertificate | None]):
    """The certificate ``thumbprint`` in ``store``, None when it is not there (Get-Item's PathNotFound)."""

    store: str
    thumbprint: str
    raw_data: bool = False

    def statements(self) -> list[Pipeline]:
        props = ["Thumbprint", "HasPrivateKey", "NotAfter", "PSPath", *(["RawData"] if self.raw_data else [])]
        return [Command("Get-Item", {"Path": store_path(self.store, self.thumbprint)})
                | Command("Select-Object", {"Property": props})]

    def parse(self, objects: Sequence[Any]) -> StoreCertificate | None:
        for obj in objects:
            if isinstance(obj, Mapping) and str(obj.get("Thumbprint", "")).upper() == self.thumbprint.upper():
                return StoreCertificate(self.store, bool(obj.get("HasPrivateKey")), iso_date(obj.get("NotAfter")),
                                        raw_bytes(obj.get("RawData")))
        return None


@dataclass(frozen=True)
class StoreListing(Fact[tuple[Mapping[str, Any], ...]]):
    """Every certificate in ``store``, with ``properties`` (as the store object names them); an empty tuple
    when the store cannot be read."""

    store: str
    properties: tuple[str, ...] = ("Subject", "Thumbprint")

    def statements(self) -> list[Pipeline]:
        return [quiet("Get-ChildItem", {"Path": store_path(self.store)})
                | Command("Select-Object", {"Property": list(self.properties)})]

    def parse(self, objects: Sequence[Any]) -> tuple[Mapping[str, Any], ...]:
        return tuple(o for o in objects if isinstance(o, Mapping))


@dataclass(frozen=True)
class TrustedSubjects(Fact[set[str]]):
    """The subjects of the certificates in the Root and CA stores: the issuers the host trusts."""

    def statements(self) -> list[Pipeline]:
        return [*StoreListing("Root").statements(), *StoreListing("CA").statements()]

    def parse(self, objects: Sequence[Any]) -> set[str]:
        return {str(o.get("Subject")) for o in objects if isinstance(o, Mapping)}


@dataclass(frozen=True)
class StoreCertificates(Fact[tuple[x509.Certificate, ...]]):
    """The certificates themselves (from their RawData): all of ``store``, or the one ``thumbprint`` names (a
    missing one is Get-Item's PathNotFound). Objects without a readable certificate are skipped."""

    store: str
    thumbprint: str | None = None

    def statements(self) -> list[Pipeline]:
        select = Command("Select-Object", {"Property": ["Thumbprint", "PSPath", "RawData"]})
        read = (Command("Get-Item", {"Path": store_path(self.store, self.thumbprint)}) if self.thumbprint
                else Command("Get-ChildItem", {"Path": store_path(self.store)}))
        return [read | select]

    def parse(self, objects: Sequence[Any]) -> tuple[x509.Certificate, ...]:
        out = []
        for obj in objects:
            raw = raw_bytes(obj.get("RawData")) if isinstance(obj, Mapping) else None
            if raw is None:
                continue
            try:
                out.append(x509.load_der_x509_certificate(raw))
            except ValueError:
                continue
        return tuple(out)
