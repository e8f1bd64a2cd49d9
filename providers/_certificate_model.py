"""The Certificate resource's model, pure (no host is touched here): its inputs and ``check``'s rules, what a read
of the stores observes, :func:`compare` and the steps for its differences, and the reasoning over a PFX's chain.

providers/certificate.py runs it against the hosts (the template's hooks) and keeps every public name importable.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import AfterValidator, Field, field_validator

from providers import certs, names, ownership
from providers.base import is_unknown
from providers.facts import certstore
from providers.hostops import windows_path
from providers.remote import RemoteInputs, Thumbprint
from providers.transport import Pipeline

Store = Literal["My", "CA", "Root"]

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — everything this resource takes for granted about the hosts, in one place.
# [doc] AzS-WASP01 is told to `certutil -addstore "CA" cert.cer`, i.e. Cert:\LocalMachine\CA.
# [inf, docs/domain.md] a self-made root belongs in Root; a certificate declared for CA or Root counts as installed
#       when it is in either of the two (read looks in both, preferred store first).
ACCEPTED_STORES: dict[str, tuple[str, ...]] = {"My": ("My",), "CA": ("CA", "Root"), "Root": ("Root", "CA")}
# [pub] Import-PfxCertificate puts the PFX's chain certificates into CA/Root itself. The ones that were not there
#       before the import are recorded (``chain_added``) and removed again by delete, so that destroy leaves the
#       host as it found it; chain certificates that were already there are never touched.
# [inf] where the PFX/CER is staged before the import: the system temp folder, which every Windows host has
#       (so nothing is left behind); the file is removed right after the import.
DEFAULT_STAGING_DIR = r"C:\Windows\Temp"
# [doc] the seed: certificates must be CA-issued, never self-signed (the rules: providers/certs).
# A certificate that was already in the store when this resource was created is adopted, not owned:
# delete leaves it (it may be the lab CA every host trusts). [project choice] Ownership (providers/ownership.py):
# the marker is keyed by store and thumbprint; "differs" means a My certificate found without its private key.
OWNERSHIP_RESOURCE = "Certificate"
# ---------------------------------------------------------------------------------------------------------------

_PEM_CERT = "-----BEGIN CERTIFICATE-----"


# ---------------------------------------------------------------------------------------------------------------
# Inputs


class CertificateInputs(RemoteInputs):
    store: Store = "My"
    cert_pem: str | None = Field(None, description="the certificate to install (PEM, one certificate)")
    existing: bool = Field(False, description="the operator's certificate, already in the store: verify, never "
                                              "import or remove")
    thumbprint: Thumbprint | None = Field(None, description="existing: the certificate's thumbprint")
    issuer_pem: str | None = Field(None, description="existing: the CA certificate (PEM) that must have issued it")
    # repr=False: str(), repr() and f-strings of the inputs never show the PFX or its password.
    pfx_base64: str | None = Field(None, repr=False, description="store My: the PFX with the private key (secret)")
    pfx_password: str | None = Field(None, repr=False, description="store My: the PFX password (secret)")
    serves_fqdns: list[Annotated[str, AfterValidator(lambda v: names.fqdn(v, lower=False))]] = Field(
        default_factory=list, description="DNS names the certificate must cover")
    expiry_threshold_days: Annotated[int, Field(ge=0, le=3650)] = certs.RENEWAL_MARGIN_DAYS
    staging_dir: str = DEFAULT_STAGING_DIR

    @field_validator("cert_pem", "issuer_pem")
    @classmethod
    def _pem(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.count(_PEM_CERT) != 1:
            raise ValueError("give exactly one PEM certificate (-----BEGIN CERTIFICATE-----), not a chain or a key")
        certs.load_certificate(v)
        return v

    @field_validator("staging_dir")
    @classmethod
    def _staging(cls, v: str) -> str:
        return windows_path(v)

    def cert_thumbprint(self) -> str:
        """The thumbprint of the certificate this resource is about: the existing one's, or ``cert_pem``'s."""
        if self.existing:
            assert self.thumbprint is not None, "check requires a thumbprint for an existing certificate"
            return self.thumbprint
        return certs.thumbprint(certs.load_certificate(self.cert_pem or ""))


def problems(args: CertificateInputs, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """check's rules that relate several inputs: (property, what is wrong and what to do), one per problem."""
    now = now or certs.now_utc()
    if args.existing:
        return existing_problems(args)
    if args.cert_pem is None:
        return [("cert_pem", "required: the certificate to install (or existing with a thumbprint)")]
    if args.thumbprint is not None or (args.issuer_pem is not None and args.store != "My"):
        return [(p, "only for existing certificates" if p == "thumbprint" else "only for store My")
                for p in ("issuer_pem", "thumbprint") if getattr(args, p) is not None]
    out: list[tuple[str, str]] = []
    cert = certs.load_certificate(args.cert_pem)
    info = certs.describe(cert)
    thumb = info.thumbprint

    if info.self_signed and not (info.is_ca and args.store in ("CA", "Root")):
        out.append(("cert_pem", f"certificate {thumb} ({info.subject}) is self-signed; the connector needs a "
                                f"certificate issued by a trusted certification authority"))
    if args.store == "My" and info.is_ca:
        out.append(("store", f"certificate {thumb} is a CA certificate: install it in CA or Root, not My"))
    out += [("cert_pem", p) for p in certs.validity_problems(info, now, args.expiry_threshold_days,
                                                             threshold_name="expiry_threshold_days")]
    for fqdn in args.serves_fqdns:
        if not info.names(fqdn):
            sans = ", ".join(info.dns_names) or "none"
            out.append(("serves_fqdns", f"certificate {thumb} does not cover {fqdn} (its DNS SANs: {sans}): "
                                        f"issue it with {fqdn} as a subject alternative name"))

    if args.store == "My":
        if args.pfx_base64 is None:
            out.append(("pfx_base64", "required for store My: the private key travels in the PFX"))
        if args.pfx_password is None:
            out.append(("pfx_password", "required for store My (the PFX's password; may be empty)"))
        if args.pfx_base64 is not None and args.pfx_password is not None:
            out.extend(pfx_input_problems(cert, args.pfx_base64, args.pfx_password))
        if args.issuer_pem is not None:  # an operator's certificate: the rest of the connector's rules
            out.extend(issued_problems(cert, args))
    else:
        for prop in ("pfx_base64", "pfx_password"):
            if getattr(args, prop) is not None:
                out.append((prop, f"only for store My; a {args.store} certificate is imported without a key"))
    return out


def issued_problems(cert: x509.Certificate, args: CertificateInputs) -> list[tuple[str, str]]:
    """With ``issuer_pem``: server-auth usage, issued by that CA, and the PFX holding its chain and no other."""
    assert args.issuer_pem is not None
    issuer = certs.load_certificate(args.issuer_pem)
    out = [("cert_pem", p) for p in certs.usage_problems(cert)]
    out += [("issuer_pem" if "is not a CA" in p else "cert_pem", p) for p in certs.issuer_problems(cert, issuer)]
    if args.pfx_base64 is not None and args.pfx_password is not None:
        try:
            pfx = certs.open_pfx(base64.b64decode(args.pfx_base64, validate=True), args.pfx_password)
        except ValueError:
            return out  # pfx_input_problems said so
        out += [("pfx_base64", p) for p in certs.chain_problems(cert, pfx.chain, issuer)]
    return out


def existing_problems(args: CertificateInputs) -> list[tuple[str, str]]:
    """An existing certificate is named by thumbprint in My; nothing is installed, so no PFX or PEM."""
    out = []
    if args.thumbprint is None:
        out.append(("thumbprint", "required for an existing certificate: the thumbprint in Cert:\\LocalMachine\\My"))
    if args.store != "My":
        out.append(("store", "an existing certificate is the connector's: store My"))
    out += [(p, "not for an existing certificate: it is already on the host and is never imported")
            for p in ("cert_pem", "pfx_base64", "pfx_password") if getattr(args, p) is not None]
    return out


def pfx_input_problems(cert: x509.Certificate, pfx_base64: str, password: str) -> list[tuple[str, str]]:
    """The PFX inputs must open with the password, hold a private key matching ``cert`` and hold ``cert`` itself.
    Messages never quote the password or the PFX."""
    try:
        data = base64.b64decode(pfx_base64, validate=True)
    except (ValueError, TypeError):
        return [("pfx_base64", "is not base64 text")]
    try:
        pfx = certs.open_pfx(data, password)
    except ValueError:
        return [("pfx_password", "does not open pfx_base64 (wrong password, or not a PKCS#12 file)")]
    thumb = certs.thumbprint(cert)
    out = []
    if pfx.key is None:
        return [("pfx_base64", "holds no private key; export the certificate with its key")]
    if not certs.key_matches(cert, pfx.key):
        out.append(("pfx_base64", f"its private key does not belong to certificate {thumb} (cert_pem): export the "
                                  f"PFX of that certificate"))
    if pfx.certificate is not None and certs.thumbprint(pfx.certificate) != thumb:
        out.append(("pfx_base64", f"holds certificate {certs.thumbprint(pfx.certificate)}, not {thumb} (cert_pem)"))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Read


#: Where the certificate was found (for CA/Root the preferred store first), its key, expiry and (when asked) DER.
CertificateObserved = certstore.StoreCertificate


def read_facts(store: str, thumbprint: str, raw_data: bool = False) -> list[certstore.InstalledCertificate]:
    """One fact per accepted store, the preferred store first."""
    return [certstore.InstalledCertificate(s, thumbprint, raw_data) for s in ACCEPTED_STORES[store]]


def read_statements(store: str, thumbprint: str, raw_data: bool = False) -> list[Pipeline]:
    return [p for fact in read_facts(store, thumbprint, raw_data) for p in fact.statements()]


def parse_read(store: str, thumbprint: str, outputs: Sequence[Sequence[Any]]) -> CertificateObserved | None:
    """The answers of :func:`read_statements`, one per accepted store (preferred store first) -> where the
    certificate is installed, or None."""
    facts = read_facts(store, thumbprint)
    found = (fact.parse(output) for fact, output in zip(facts, outputs, strict=True))
    return next((f for f in found if f is not None), None)


# ---------------------------------------------------------------------------------------------------------------
# Compare and steps (pure)


def desired_thumbprint(props: Mapping[str, Any]) -> str | None:
    """The thumbprint of the certificate the inputs ask for; None while unknown or unreadable."""
    if props.get("existing"):
        given = props.get("thumbprint")
        try:
            return certs.normalize_thumbprint(given) if isinstance(given, str) and not is_unknown(given) else None
        except ValueError:
            return None
    pem = props.get("cert_pem")
    if not isinstance(pem, str) or is_unknown(pem):
        return None
    try:
        return certs.thumbprint(certs.load_certificate(pem))
    except ValueError:
        return None


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """``cert_pem`` when the certificate installed (the output ``thumbprint``; None: not there) is not the one
    asked for; ``has_private_key`` when a My certificate is there without its key (re-imported from a .cer, or the
    key deleted). ``desired`` as the inputs, ``observed`` as the outputs."""
    out = []
    want = desired_thumbprint(desired)
    if want is None or want != observed.get("thumbprint"):
        out.append(ownership.Difference("cert_pem", observed.get("thumbprint"), want))
    if desired.get("store") == "My" and observed.get("has_private_key") is False:
        out.append(ownership.Difference("has_private_key", False, True))
    return out


@dataclass(frozen=True)
class CertificateStep:
    """``remove`` (a My certificate present without its key: re-imported from the PFX) or ``import``."""

    kind: Literal["remove", "import"]


REMOVE, IMPORT = CertificateStep("remove"), CertificateStep("import")


def steps_for(differences: Sequence[ownership.Difference], observed: CertificateObserved | None) -> list[
        CertificateStep]:
    """Import what is not there; remove and import again a certificate that lost its key. [] when nothing."""
    if observed is None:
        return [IMPORT]
    return [REMOVE, IMPORT] if any(d.field == "has_private_key" for d in differences) else []


def pfx_chain_thumbprints(pfx_base64: str, password: str) -> list[str]:
    """Thumbprints of the CA certificates a PFX carries besides its leaf (they land in CA/Root on import)."""
    _key, _leaf, chain = pkcs12.load_key_and_certificates(base64.b64decode(pfx_base64), password.encode())
    return [certs.thumbprint(c) for c in chain or []]


def still_needed(remaining: Sequence[x509.Certificate],
                 chain: Mapping[tuple[str, str], x509.Certificate]) -> set[tuple[str, str]]:
    """The ``chain`` certificates (by (store, thumbprint)) that a ``remaining`` certificate chains to, directly or
    through another of them, by issuer and subject name (keeping one too many is the safe side)."""
    issuers = {c.issuer for c in remaining}
    needed: set[tuple[str, str]] = set()
    grew = True
    while grew:
        grew = False
        for key, ca in chain.items():
            if key not in needed and ca.subject in issuers:
                needed.add(key)
                issuers.add(ca.issuer)
                grew = True
    return needed

def chain_store_facts(chain: Sequence[tuple[str, str]]) -> list[certstore.StoreCertificates]:
    return [certstore.StoreCertificates("My"), *(certstore.StoreCertificates(s, thumb) for s, thumb in chain)]


def parse_chain(thumbprint: str, my: Sequence[Any], chain: Sequence[tuple[str, str]],
                chain_outputs: Sequence[Sequence[Any]]) -> tuple[list[x509.Certificate],
                                                                 dict[tuple[str, str], x509.Certificate]]:
    """chain_still_needed's statements, each parsed apart: the certificates in My other than ``thumbprint``, and
    each ``chain`` certificate (store, thumbprint) that its Get-Item found."""
    my_fact, *chain_facts = chain_store_facts(chain)
    remaining = [c for c in my_fact.parse(my) if certs.thumbprint(c) != thumbprint.upper()]
    found: dict[tuple[str, str], x509.Certificate] = {}
    for (store, thumb), fact, output in zip(chain, chain_facts, chain_outputs, strict=True):
        for cert in fact.parse(output):
            if certs.thumbprint(cert) == thumb.upper():
                found[(store, thumb)] = cert
    return remaining, found
