"""Rows judged straight from the hosts' answers (``evaluate``), for the connections and answers a stack's own
settings cannot produce through the fake lab: a connection given its CA as a file, facts gathered once and judged
again after one answer changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, PASS, STEP, WARN, HostFacts, HostTargets, Row, evaluate, probe_host, targets
from providers.errors import AuthenticationFailed, ConnectorError, TransportError
from tests.cert_factory import org_ca
from tests.preflight.fake_lab import NOW, FakeLab, healthy, project, row, stack

pytestmark = pytest.mark.unit


def gathered(lab: FakeLab, tmp_path: Path) -> tuple[dict[str, HostTargets], dict[str, HostFacts]]:
    """What every host of the lab answered, ready to be judged (and changed) again."""
    tgts = targets(lab.config)
    return tgts, {name: probe_host(lab.transport, lab.config, t, project(tmp_path)) for name, t in tgts.items()}


def judged(lab: FakeLab, tgts: dict[str, HostTargets], facts: dict[str, HostFacts], host: str, check: str) -> Row:
    found = [r for r in evaluate(lab.config, tgts, facts, bundle_bytes=3 * 1024, now=NOW)
             if (r.host, r.check) == (host, check)]
    assert len(found) == 1, (host, check)
    return found[0]


def test_a_winrm_certificate_verified_with_a_ca_file_names_the_file(tmp_path: Path) -> None:
    ca_file = tmp_path / "pki" / "winrm-root.pem"
    ca_file.parent.mkdir()
    ca_file.write_text(org_ca("Fabrikam Root CA").pem)
    lab = healthy(stack(sqlServer="sql01"))
    tgts, facts = gathered(lab, tmp_path)
    conn = facts["portal1"].conn
    assert conn is not None
    facts["portal1"].conn = conn.model_copy(update={"ca_file": str(ca_file), "ca_pem": None})
    tls = judged(lab, tgts, facts, "portal1", "TLS")
    assert (tls.status, tls.result, tls.todo) == (
        PASS, "certificate trusted for portal1.contoso.com (CA file winrm-root.pem)", "")


@pytest.mark.parametrize(("host", "error", "failed"), [
    ("api1", AuthenticationFailed("api1.contoso.com", STEP, user="CONTOSO\\admin", auth="negotiate"),
     "authentication"),
    ("pep", TransportError("pep.contoso.com", STEP, "no such configuration", fault_code=0x80338000),
     "PrivilegedEndpoint"),
])
def test_a_connection_that_fails_after_tls_still_says_what_to_do_about_unverified_tls(
        tmp_path: Path, host: str, error: ConnectorError, failed: str) -> None:
    def no_verify(raw: dict[str, Any]) -> None:
        raw["hosts"][host]["verify"] = False

    lab = healthy(stack(no_verify, sqlServer="sql01"))
    lab.hosts[host].down = error
    report = lab.run(tmp_path)
    tls = row(report, host, "TLS")
    assert (tls.status, tls.result, tls.todo) == (
        WARN, "not verified (verify: false)", f"use https with verification for wapconnector:hosts.{host}")
    assert row(report, host, failed).status == FAIL
