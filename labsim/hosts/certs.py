"""Certificate stores (Cert:\\LocalMachine\\<Store>) and the PKI module's import cmdlets.

A host document keeps ``certs[store][thumbprint] = {"der": base64, "key": PEM or None, "friendly_name": str}``.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from labsim.hosts import paths
from labsim.hosts.base import INVALID_DATA, NOT_SPECIFIED, OBJECT_NOT_FOUND, CommandSpec, Ctx, Param, table
from labsim.runtime import PSObject, TerminatingError

CERT_TYPE = "System.Security.Cryptography.X509Certificates.X509Certificate2"
_PFX_IMPL = "Microsoft.CertificateServices.Commands.ImportPfxCertificate"
_CER_IMPL = "Microsoft.CertificateServices.Commands.ImportCertificateCommand"


def load(der_b64: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(der_b64))


def thumbprint_of(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows identifies certs by SHA-1


def windows_name(name: x509.Name) -> str:
    """Subject/Issuer as Windows shows them: most specific RDN first, ', ' between."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        names = [str(cn[0].value)] if cn else []
    return list(names)


def enhanced_key_usages(cert: x509.Certificate) -> list[PSObject]:
    """The EnhancedKeyUsageList the certificate provider adds (empty: no EKU extension, any purpose)."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = {"1.3.6.1.5.5.7.3.1": "Server Authentication", "1.3.6.1.5.5.7.3.2": "Client Authentication"}
    out = []
    for oid in usages:
        friendly = names.get(oid.dotted_string, "")
        out.append(PSObject({"FriendlyName": friendly, "ObjectId": oid.dotted_string},
                            ["Microsoft.PowerShell.Commands.EnhancedKeyUsageRepresentation"],
                            f"{friendly} ({oid.dotted_string})" if friendly else oid.dotted_string))
    return out


def cert_object(store: str, entry: dict[str, Any]) -> PSObject:
    cert = load(entry["der"])
    thumb = thumbprint_of(cert)
    parent = f"Microsoft.PowerShell.Security\\Certificate::LocalMachine\\{store}"
    return PSObject({
        "Thumbprint": thumb,
        "Subject": windows_name(cert.subject),
        "Issuer": windows_name(cert.issuer),
        "NotBefore": cert.not_valid_before_utc,
        "NotAfter": cert.not_valid_after_utc,
        "HasPrivateKey": bool(entry.get("key")),
        "SerialNumber": format(cert.serial_number, "X"),
        "FriendlyName": entry.get("friendly_name", ""),
        "DnsNameList": [PSObject({"Punycode": n, "Unicode": n},
                                 ["System.Security.Cryptography.X509Certificates.DnsNameRepresentation"], n)
                        for n in dns_names(cert)],
        "RawData": base64.b64decode(entry["der"]),  # byte[]: the DER encoding
        "EnhancedKeyUsageList": enhanced_key_usages(cert),
        "PSPath": f"{parent}\\{thumb}",
        "PSParentPath": parent,
        "PSChildName": thumb,
    }, [CERT_TYPE, "System.Security.Cryptography.X509Certificates.X509Certificate", "System.Object"],
        f"[Subject]\r\n  {windows_name(cert.subject)}\r\n\r\n[Thumbprint]\r\n  {thumb}\r\n")


def store_of(doc: dict[str, Any], store: str) -> dict[str, Any]:
    return doc.setdefault("certs", {}).setdefault(store, {})


def add(doc: dict[str, Any], store: str, cert: x509.Certificate, key_pem: str | None = None,
        friendly_name: str = "") -> str:
    thumb = thumbprint_of(cert)
    entries = store_of(doc, store)
    old = entries.get(thumb, {})
    entries[thumb] = {"der": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
                      "key": key_pem or old.get("key"), "friendly_name": friendly_name or old.get("friendly_name", "")}
    return thumb


def find(doc: dict[str, Any], store: str, thumb: str) -> dict[str, Any] | None:
    return doc.get("certs", {}).get(store, {}).get(thumb.upper())


def _store_param(ctx: Ctx, location: str) -> str:
    p = paths.parse(location, ctx.host.name)
    if p.kind != "cert" or not p.store or p.thumbprint:
        raise TerminatingError(f"Cannot find path '{location}' because it does not exist.",
                               error_id=ctx.fqid("PathNotFound"), category=OBJECT_NOT_FOUND,
                               exception_type="System.Management.Automation.ItemNotFoundException")
    return p.store


def _read_source(ctx: Ctx, file_path: str, impl: str) -> bytes:
    p = paths.parse(file_path, ctx.host.name)
    data = None
    if p.kind == "fs":
        data = ctx.state.read().read_file(p.fs_host, p.path) if ctx.runtime.can_see(ctx.host, p.fs_host) else None
    if data is None:
        raise TerminatingError("The system cannot find the file specified. 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)",
                               error_id=f"System.IO.FileNotFoundException,{impl}", category=OBJECT_NOT_FOUND,
                               exception_type="System.IO.FileNotFoundException")
    return data


def import_pfx(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    store = _store_param(ctx, args["CertStoreLocation"])
    data = _read_source(ctx, args["FilePath"], _PFX_IMPL)
    password = args.get("Password")
    try:
        key, leaf, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        wrong_password = "password" in str(exc).lower() or "mac" in str(exc).lower()
        if wrong_password:
            raise TerminatingError(
                "The PFX file you are trying to import requires either a different password or membership in an "
                "Active Directory principal to which it is protected.",
                error_id=f"System.ComponentModel.Win32Exception,{_PFX_IMPL}", category=NOT_SPECIFIED,
                exception_type="System.ComponentModel.Win32Exception") from None
        raise TerminatingError(f"The PFX file could not be read. {exc}",
                               error_id=f"System.Security.Cryptography.CryptographicException,{_PFX_IMPL}",
                               category=INVALID_DATA,
                               exception_type="System.Security.Cryptography.CryptographicException") from None
    if leaf is None:
        raise TerminatingError("The PFX file could not be read. It holds no certificate.",
                               error_id=f"System.Security.Cryptography.CryptographicException,{_PFX_IMPL}",
                               category=INVALID_DATA)
    ctx.latency("Import-PfxCertificate")
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode() if key is not None else None
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        thumb = add(doc, store, leaf, key_pem)
        for c in extra or []:  # Windows files chain certificates by kind
            add(doc, "Root" if is_self_signed(c) else "CA", c)
        entry = dict(find(doc, store, thumb) or {})
    return [cert_object(store, entry)]


def import_cer(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    store = _store_param(ctx, args["CertStoreLocation"])
    data = _read_source(ctx, args["FilePath"], _CER_IMPL)
    try:
        if data.lstrip().startswith(b"-----"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            try:
                cert = x509.load_der_x509_certificate(data)
            except ValueError:  # a base64 .cer without PEM armour
                cert = x509.load_der_x509_certificate(base64.b64decode(data, validate=False))
    except ValueError:
        raise TerminatingError("Cannot find the requested object. 0x80092004 (-2146885628 CRYPT_E_NOT_FOUND)",
                               error_id=f"System.Security.Cryptography.CryptographicException,{_CER_IMPL}",
                               category=INVALID_DATA,
                               exception_type="System.Security.Cryptography.CryptographicException") from None
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        thumb = add(doc, store, cert)
        entry = dict(find(doc, store, thumb) or {})
    return [cert_object(store, entry)]


def expired(cert: x509.Certificate, now: dt.datetime | None = None) -> bool:
    return cert.not_valid_after_utc < (now or dt.datetime.now(dt.UTC))


COMMANDS = table(
    CommandSpec("Import-PfxCertificate", import_pfx, (
        Param("FilePath", mandatory=True, position=0), Param("CertStoreLocation", mandatory=True),
        Param("Password", "secure"), Param("Exportable", "switch")), impl=_PFX_IMPL, module="PKI"),
    CommandSpec("Import-Certificate", import_cer, (
        Param("FilePath", mandatory=True, position=0), Param("CertStoreLocation", mandatory=True)),
        impl=_CER_IMPL, module="PKI"),
)
