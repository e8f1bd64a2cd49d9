"""The lab's local PKI as dynamic resources: a certification authority and certificates it issues.

The seed requires the connector's TLS certificates to be issued by a CA, never self-signed, and trusted by
AzS-WASP01 and the portal's clients. These resources make that chain on the operator's machine with
``cryptography``; the ``Certificate`` resource (a later module) installs the results on hosts.

Private keys and PFX files exist only as Pulumi secrets (``additional_secret_outputs``); nothing is written
to disk. Keys are generated, so any change of an input replaces the resource. The rules that judge certificates
(these and the operators') are in :mod:`providers.certs`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.base import FieldDiff, LabProvider, LabResource, check_with, diff_fields
from providers.certs import (
    RENEWAL_MARGIN_DAYS,
    is_ca,
    key_usage,
    load_certificate,
    now_utc,
    parse_time,
    public_key_matches,
    thumbprint,
    to_pem,
)

_Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
KEY_TYPES: tuple[str, ...] = KeyType.__args__  # type: ignore[attr-defined]

_DNS_NAME = re.compile(
    r"^(\*\.)?(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _generate_key(key_type: str) -> _Key:
    kind, _, size = key_type.partition("-")
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1() if size == "p256" else ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(size))


def _key_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _validity(validity_days: int | None, not_after: str | None) -> tuple[dt.datetime, dt.datetime]:
    start = now_utc() - dt.timedelta(minutes=5)  # tolerate small clock skew between hosts
    end = parse_time(not_after) if not_after else now_utc() + dt.timedelta(days=validity_days or 0)
    return start, end


def _cert_outputs(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "cert_pem": to_pem(cert),
        "thumbprint": thumbprint(cert),
        "serial_number": format(cert.serial_number, "X"),
        "valid_from": cert.not_valid_before_utc.isoformat(),
        "expires_at": cert.not_valid_after_utc.isoformat(),
    }


def _renewal_due(olds: dict[str, Any], renew_before_days: int) -> bool:
    expires_at = olds.get("expires_at")
    if not expires_at:
        return False
    return parse_time(expires_at) - dt.timedelta(days=renew_before_days) <= now_utc()


# ---------------------------------------------------------------------------------------------------------------
# Inputs, validated by check() before anything is generated


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _future(v: str) -> str:
    try:
        when = parse_time(v)
    except ValueError as exc:
        raise ValueError(f"{v!r} is not an ISO 8601 date-time such as 2027-06-30T00:00:00Z") from exc
    if when <= now_utc():
        raise ValueError(f"{v} is in the past: a certificate must be valid from now on")
    return v


class _Validity(_Inputs):
    validity_days: Annotated[int, Field(gt=0, le=36500)] | None = None
    not_after: Annotated[str, AfterValidator(_future)] | None = None
    # Within this many days of expiry the next `pulumi up` replaces (renews) the certificate.
    renew_before_days: Annotated[int, Field(ge=0, le=3650)] = RENEWAL_MARGIN_DAYS

    @model_validator(mode="after")
    def _one_validity(self) -> _Validity:
        if (self.validity_days is None) == (self.not_after is None):
            raise ValueError("validity_days: give exactly one of validity_days and not_after")
        end = _validity(self.validity_days, self.not_after)[1]
        if end - dt.timedelta(days=self.renew_before_days) <= now_utc():
            raise ValueError(
                f"renew_before_days: the certificate would be due for renewal at once "
                f"(valid until {end:%Y-%m-%d}, renew {self.renew_before_days} days before)"
            )
        return self


class CertificateAuthorityInputs(_Validity):
    common_name: Annotated[str, Field(min_length=1, max_length=64)]
    organization: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    key_type: KeyType = "ecdsa-p256"


class IssuedCertificateInputs(_Validity):
    ca_cert_pem: str
    ca_private_key_pem: str
    common_name: Annotated[str, Field(min_length=1, max_length=64)]
    dns_names: list[str] = Field(default_factory=list)
    ip_addresses: list[str] = Field(default_factory=list)
    key_type: KeyType = "ecdsa-p256"

    @field_validator("dns_names")
    @classmethod
    def _dns(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _DNS_NAME.match(name):
                raise ValueError(f"{name!r} is not a DNS name (letters, digits, hyphens; labels of 1-63 characters)")
        if len({n.lower() for n in names}) != len(names):
            raise ValueError("a DNS name is listed twice")
        return names

    @field_validator("ip_addresses")
    @classmethod
    def _ips(cls, addresses: list[str]) -> list[str]:
        for a in addresses:
            try:
                ipaddress.ip_address(a)
            except ValueError as exc:
                raise ValueError(f"{a!r} is not an IPv4 or IPv6 address") from exc
        return addresses

    @field_validator("ca_cert_pem")
    @classmethod
    def _ca(cls, pem: str) -> str:
        cert = load_certificate(pem)
        if not is_ca(cert):
            raise ValueError(f"{cert.subject.rfc4514_string()} is not a CA certificate (BasicConstraints CA:TRUE)")
        if cert.not_valid_after_utc <= now_utc():
            raise ValueError(f"the CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        return pem

    @model_validator(mode="after")
    def _coherent(self) -> IssuedCertificateInputs:
        if not self.dns_names and not self.ip_addresses:
            raise ValueError("dns_names: a TLS certificate needs at least one DNS name or IP address SAN")
        try:
            ca = load_certificate(self.ca_cert_pem)
            matches = public_key_matches(ca, self.ca_private_key_pem)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"ca_private_key_pem: is not an unencrypted PEM private key ({exc})") from exc
        if not matches:
            raise ValueError("ca_private_key_pem: does not belong to ca_cert_pem")
        end = _validity(self.validity_days, self.not_after)[1]
        if end > ca.not_valid_after_utc:
            raise ValueError(
                "validity_days: the certificate would outlive its CA "
                f"(CA valid until {ca.not_valid_after_utc:%Y-%m-%d})"
            )
        return self


def _certificate(subject: x509.Name, issuer: x509.Name, key: _Key, signer: _Key, validity: _Validity, *, ca: bool,
                 usages: Sequence[str], extensions: Sequence[x509.ExtensionType] = ()) -> x509.Certificate:
    """``key``'s certificate signed by ``signer`` (SHA-256): a CA or not (BasicConstraints, critical), the key
    usages named (critical), then ``extensions`` and the subject key identifier."""
    start, end = _validity(validity.validity_days, validity.not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(key_usage(*usages), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                 critical=False).sign(signer, hashes.SHA256())


# ---------------------------------------------------------------------------------------------------------------
# Providers


class _LocalPkiProvider(LabProvider):
    """Generated on this machine: any input change replaces (new keys), as does nearing expiry; read returns
    what is stored, since nothing remote can drift."""

    INPUTS: tuple[str, ...] = ()
    ARGS: type[_Validity] = _Validity

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return check_with(self.ARGS, olds, news)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = diff_fields(olds, news, fields=self.INPUTS, replace_on=self.INPUTS)
        if _renewal_due(olds, int(news.get("renew_before_days") or 0)):
            result = FieldDiff([*result.changed, "expires_at"], [*(result.replaces or []), "expires_at"])
        return result

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class CertificateAuthorityProvider(_LocalPkiProvider):
    """A root CA generated locally."""

    ARGS = CertificateAuthorityInputs
    INPUTS = ("common_name", "organization", "key_type", "validity_days", "not_after")


    def create(self, props: dict[str, Any]) -> CreateResult:
        args = CertificateAuthorityInputs.model_validate(props)
        key = _generate_key(args.key_type)
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, args.common_name)]
        if args.organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, args.organization))
        name = x509.Name(attrs)
        cert = _certificate(name, name, key, key, args, ca=True,
                            usages=("digital_signature", "key_cert_sign", "crl_sign"))
        outs = {**props, **_cert_outputs(cert), "private_key_pem": _key_pem(key)}
        return CreateResult(id_=thumbprint(cert), outs=outs)


class IssuedCertificateProvider(_LocalPkiProvider):
    """A TLS server certificate signed by a CertificateAuthority, with its key and a password-protected PFX."""

    ARGS = IssuedCertificateInputs
    INPUTS = (
        "ca_cert_pem", "ca_private_key_pem", "common_name", "dns_names", "ip_addresses", "key_type",
        "validity_days", "not_after",
    )


    def create(self, props: dict[str, Any]) -> CreateResult:
        args = IssuedCertificateInputs.model_validate(props)
        ca = load_certificate(args.ca_cert_pem)
        ca_key = serialization.load_pem_private_key(args.ca_private_key_pem.encode(), None)
        if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise ValueError("ca_private_key_pem: not an ECDSA or RSA private key (the kinds CertificateAuthority "
                             "makes)")
        key = _generate_key(args.key_type)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in args.dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in args.ip_addresses]
        usages = ("digital_signature", *(["key_encipherment"] if args.key_type.startswith("rsa") else []))
        cert = _certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.common_name)]), ca.subject, key, ca_key, args,
            ca=False, usages=usages, extensions=(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), x509.SubjectAlternativeName(sans),
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())))
        pfx_password = secrets.token_urlsafe(24)
        pfx = pkcs12.serialize_key_and_certificates(
            args.common_name.encode(), key, cert, [ca],
            serialization.BestAvailableEncryption(pfx_password.encode()),
        )
        outs = {
            **props,
            **_cert_outputs(cert),
            "chain_pem": to_pem(cert) + to_pem(ca),
            "issuer_thumbprint": thumbprint(ca),
            "private_key_pem": _key_pem(key),
            "pfx_base64": base64.b64encode(pfx).decode(),
            "pfx_password": pfx_password,
        }
        return CreateResult(id_=thumbprint(cert), outs=outs)


# ---------------------------------------------------------------------------------------------------------------
# Resources

_SECRET_OUTPUTS = ["private_key_pem", "pfx_base64", "pfx_password", "ca_private_key_pem"]


def _secret_opts(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=_SECRET_OUTPUTS))


def _generated(key_type: Any, validity_days: Any, not_after: Any, renew_before_days: Any) -> dict[str, Any]:
    """What both resources take and make alike: the key and validity inputs (``not_after`` wins over the default
    ``validity_days``), and the outputs of a generated certificate and its key, unknown until create."""
    return {"key_type": key_type, "validity_days": None if not_after is not None else validity_days,
            "not_after": not_after, "renew_before_days": renew_before_days,
            **dict.fromkeys(("cert_pem", "private_key_pem", "thumbprint", "expires_at", "serial_number",
                             "valid_from"))}


class CertificateAuthority(LabResource, name="CertificateAuthority"):
    """A lab root CA (self-signed, as every root is). Its certificate goes to AzS-WASP01's CA/Root store."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    thumbprint: pulumi.Output[str]
    expires_at: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        common_name: pulumi.Input[str],
        organization: pulumi.Input[str] | None = None,
        key_type: pulumi.Input[str] = "ecdsa-p256",
        validity_days: pulumi.Input[int] | None = 3650,
        not_after: pulumi.Input[str] | None = None,
        renew_before_days: pulumi.Input[int] = RENEWAL_MARGIN_DAYS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"common_name": common_name, "organization": organization,
                 **_generated(key_type, validity_days, not_after, renew_before_days)}
        super().__init__(CertificateAuthorityProvider(), name, props, _secret_opts(opts))


class IssuedCertificate(LabResource, name="IssuedCertificate"):
    """A TLS server certificate issued by a CertificateAuthority: PEM, key and PFX (key and PFX are secrets)."""

    cert_pem: pulumi.Output[str]
    chain_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    pfx_base64: pulumi.Output[str]
    pfx_password: pulumi.Output[str]
    thumbprint: pulumi.Output[str]
    issuer_thumbprint: pulumi.Output[str]
    expires_at: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        ca: CertificateAuthority,
        common_name: pulumi.Input[str],
        dns_names: pulumi.Input[list[str]] = (),  # type: ignore[assignment]
        ip_addresses: pulumi.Input[list[str]] = (),  # type: ignore[assignment]
        key_type: pulumi.Input[str] = "ecdsa-p256",
        validity_days: pulumi.Input[int] | None = 397,
        not_after: pulumi.Input[str] | None = None,
        renew_before_days: pulumi.Input[int] = RENEWAL_MARGIN_DAYS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "ca_cert_pem": ca.cert_pem, "ca_private_key_pem": ca.private_key_pem,
            "common_name": common_name, "dns_names": list(dns_names) if isinstance(dns_names, tuple) else dns_names,
            "ip_addresses": list(ip_addresses) if isinstance(ip_addresses, tuple) else ip_addresses,
            **_generated(key_type, validity_days, not_after, renew_before_days),
            "chain_pem": None, "pfx_base64": None, "pfx_password": None, "issuer_thumbprint": None,
        }
        super().__init__(IssuedCertificateProvider(), name, props, _secret_opts(opts))
