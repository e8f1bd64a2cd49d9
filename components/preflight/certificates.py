"""Judging certificates: the connector certificate as a host's store shows it, the lab CA's validity, and what this
machine can check of an operator's certificate (its file, password, chain, names, expiry, key and usage)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from components.config import NAMESPACE, StackConfig, operator_certificate
from components.preflight.report import FAIL, PASS, Row
from providers import certs

# The rules over a store object (chain, names, validity, key, server-auth usage, the renewal margin) are
# providers/certs', shared with the Certificate resource: preflight words them for its report.
certificate_problems = certs.store_problems
name_matches = certs.name_covers


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

