"""A certificate as a host's store shows it: the object ``Get-ChildItem Cert:\\LocalMachine\\My`` returns
(Subject, Issuer, DnsNameList, NotBefore, NotAfter, HasPrivateKey, EnhancedKeyUsageList, Thumbprint), and the
rules worded for the preflight's report of that host."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ._description import RENEWAL_MARGIN_DAYS, CertificateInfo
from ._parse import when


def _names(value: Any) -> list[str]:
    """DnsNameList / EnhancedKeyUsageList entries as text, whether they arrive as objects or strings."""
    out = []
    for v in value if isinstance(value, list) else ([value] if value else []):
        if isinstance(v, Mapping):  # a DNS name's text, or a usage's name and then its OID
            out.append(str(v.get("Unicode") or v.get("Punycode") or v.get("FriendlyName") or ""))
            if v.get("ObjectId"):
                out.append(str(v["ObjectId"]))
        else:
            out.append(str(v))
    return [x for x in out if x]


def from_store_object(obj: Mapping[str, Any]) -> CertificateInfo:
    """The plain description of a store object. An empty EnhancedKeyUsageList is a certificate without the
    extension, which Windows allows for any purpose (not judged); key usage and basic constraints are not shown."""
    subject, issuer = str(obj.get("Subject", "")), str(obj.get("Issuer", ""))
    usages = _names(obj.get("EnhancedKeyUsageList"))
    return CertificateInfo(
        thumbprint=str(obj.get("Thumbprint", "?")), subject=subject, issuer=issuer,
        dns_names=tuple(_names(obj.get("DnsNameList"))), not_before=when(obj.get("NotBefore")),
        not_after=when(obj.get("NotAfter")), extended_key_usage=tuple(usages) or None,
        self_signed=bool(subject) and subject == issuer, has_private_key=bool(obj.get("HasPrivateKey")))


def store_problems(obj: Mapping[str, Any], fqdn: str, trusted_subjects: Iterable[str],
                   now: dt.datetime) -> tuple[list[str], str]:
    """(problems, summary) of a connector certificate as a host's certificate store shows it: chain (issued by a
    CA the host trusts, not self-signed), SAN naming ``fqdn``, validity, private key, server-auth usage; and, when
    nothing else is wrong, expiry within the renewal margin."""
    info = from_store_object(obj)
    problems = []
    if info.self_signed:
        problems.append("self-signed (Configure-Certificates.ps1 refuses it): use a certificate issued by a CA")
    elif info.issuer and info.issuer not in set(trusted_subjects):
        problems.append(f"its issuer '{info.issuer}' is not in the host's Root or CA store: import the issuing CA "
                        f"chain")
    if not info.names(fqdn):
        problems.append(f"its names ({', '.join(info.dns_names) or 'none'}) do not include {fqdn}")
    not_after, not_before = info.not_after, info.not_before
    if info.expired(now):
        problems.append(f"expired on {not_after.date() if not_after else '?'}")
    elif info.not_yet_valid(now, skew=dt.timedelta(0)):
        problems.append(f"not valid before {not_before.date() if not_before else '?'}")
    if not info.has_private_key:
        problems.append("no private key on this host")
    if info.extended_key_usage and not info.for_server_auth:
        problems.append(f"not for server authentication (its usages: {', '.join(info.extended_key_usage)})")
    summary = f"{info.thumbprint}, expires {not_after.date() if not_after else '?'}"
    # Strictly within the margin: a certificate with exactly the margin left is not yet reported.
    if not problems and not_after is not None and not_after - now < dt.timedelta(days=RENEWAL_MARGIN_DAYS):
        problems.append(f"expires in {(not_after - now).days} day(s)")
    return problems, summary
