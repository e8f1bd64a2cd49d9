"""Judging certificates: the connector certificate as a host's store shows it, the lab CA's validity, and what this
machine can check of an operator's certificate (its file, password, chain, names, expiry, key and usage)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, StackConfig, operator_certificate
from components.preflight.report import FAIL, PASS, Row

SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1"
CERT_WARN_DAYS = 30


def _names(value: Any) -> list[str]:
    """DnsNameList / EnhancedKeyUsageList entries as text, whether they arrive as objects or strings."""
    out = []
    for v in value if isinstance(value, list) else ([value] if value else []):
        if isinstance(v, Mapping):
            out.append(str(v.get("Unicode") or v.get("Punycode") or v.get("ObjectId") or v.get("FriendlyName") or ""))
            if v.get("ObjectId"):
                out.append(str(v["ObjectId"]))
        else:
            out.append(str(v))
    return [x for x in out if x]


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        m = re.fullmatch(r"/Date\((-?\d+)\)/", value.replace("\\/", "/"))
        if m:
            return dt.datetime.fromtimestamp(int(m.group(1)) / 1000, dt.UTC)
        try:
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return None


def name_matches(pattern: str, fqdn: str) -> bool:
    """A certificate DNS name (possibly a left-most wildcard) names ``fqdn``."""
    pattern, fqdn = pattern.lower().rstrip("."), fqdn.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = fqdn.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == fqdn


def certificate_problems(cert: Mapping[str, Any], fqdn: str, trusted_subjects: Iterable[str],
                         now: dt.datetime) -> tuple[list[str], str]:
    """(problems, summary) of a connector certificate as a host's certificate store shows it: chain (issued by a
    CA the host trusts, not self-signed), SAN naming ``fqdn``, validity, private key, server-auth usage."""
    problems = []
    subject, issuer = str(cert.get("Subject", "")), str(cert.get("Issuer", ""))
    if subject and subject == issuer:
        problems.append("self-signed (Configure-Certificates.ps1 refuses it): use a certificate issued by a CA")
    elif issuer and issuer not in set(trusted_subjects):
        problems.append(f"its issuer '{issuer}' is not in the host's Root or CA store: import the issuing CA chain")
    names = _names(cert.get("DnsNameList"))
    if not any(name_matches(n, fqdn) for n in names):
        problems.append(f"its names ({', '.join(names) or 'none'}) do not include {fqdn}")
    not_after, not_before = _when(cert.get("NotAfter")), _when(cert.get("NotBefore"))
    if not_after is not None and not_after <= now:
        problems.append(f"expired on {not_after.date()}")
    elif not_before is not None and not_before > now:
        problems.append(f"not valid before {not_before.date()}")
    if not cert.get("HasPrivateKey"):
        problems.append("no private key on this host")
    usages = _names(cert.get("EnhancedKeyUsageList"))
    if usages and not any(SERVER_AUTH_OID in u for u in usages):
        problems.append(f"not for server authentication (its usages: {', '.join(usages)})")
    summary = f"{cert.get('Thumbprint', '?')}, expires {not_after.date() if not_after else '?'}"
    if not problems and not_after is not None and not_after - now < dt.timedelta(days=CERT_WARN_DAYS):
        problems.append(f"expires in {(not_after - now).days} day(s)")
    return problems, summary


# ---------------------------------------------------------------------------------------------------------------
# Judging (pure): facts -> rows


def lab_ca_problem(config: StackConfig, fqdn: str) -> str | None:
    """Local check of a certificate the stack will mint from its lab CA."""
    for i, c in enumerate(config.clouds):
        if c.endpoint_fqdn == fqdn and c.certificate_validity_days > config.ca.validity_days:
            return (f"{NAMESPACE}:clouds[{i}].certificateValidityDays ({c.certificate_validity_days}) exceeds the "
                    f"lab CA's validityDays ({config.ca.validity_days})")
    return None


def operator_certificate_rows(config: StackConfig, project_dir: Path, now: dt.datetime | None = None) -> list[Row]:
    """What this machine can check of each operator certificate (pfx: the file, its password, chain, names,
    expiry, key, usage; store: the issuing CA file), one row per cloud that brings its own."""
    rows = []
    for i, cloud in enumerate(config.clouds):
        cc = cloud.connector_certificate
        if cc.source == "labCa":
            continue
        key = f"{NAMESPACE}:clouds[{i}].connectorCertificate"
        own, problems = operator_certificate(cloud, key, project_dir, now)
        check = f"connector certificate ({cloud.name})"
        if problems or own is None:
            rows.append(Row("(this machine)", check, FAIL, "; ".join(problems) or "unusable", f"fix {key}"))
        elif cc.source == "pfx":
            expires = own.expires_at[:10] if own.expires_at else "?"
            rows.append(Row("(this machine)", check, PASS, f"PFX {own.thumbprint}, expires {expires}:"
                                                           f" chain to the issuing CA, names {cloud.endpoint_fqdn}, "
                                                           f"server auth, key"))
        else:
            rows.append(Row("(this machine)", check, PASS,
                            f"store {cc.thumbprint}, issuing CA {own.issuer_thumbprint} "
                            f"(the certificate itself is checked on each tenant portal VM)"))
    return rows

