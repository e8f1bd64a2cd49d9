"""Reach, TLS and authentication: what each way of not getting an answer from a host reads like, what the operator
is told to fix, and that the other hosts are checked all the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, PASS, SKIP, STEP, WARN, Report
from providers import errors
from tests.cert_factory import org_ca
from tests.preflight.fake_lab import healthy, row, stack

pytestmark = pytest.mark.unit

NOT_CHECKED = "not checked: the host did not get that far"
ROLE_CHECKS_SKIPPED = ("role checks", SKIP, "not run: the host did not answer (see above)", "")


def rows_for(report: Report, host: str) -> list[tuple[str, str, str, str]]:
    return [(r.check, r.status, r.result, r.todo) for r in report.rows if r.host == host]


def down(tmp_path: Path, host: str, error: errors.ConnectorError) -> Report:
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts[host].down = error
    return lab.run(tmp_path)


def test_a_host_that_does_not_answer_fails_reach_and_nothing_after_it_is_judged(tmp_path: Path) -> None:
    error = errors.HostUnreachable("portal1.contoso.com", STEP, "connection refused", endpoint="10.0.0.9:5986")
    report = down(tmp_path, "portal1", error)
    assert rows_for(report, "portal1") == [
        ("reachable", FAIL, "no answer from portal1.contoso.com:5986: connection refused",
         "start the host / its WinRM listener, or fix address and port in the stack config"),
        ("TLS", SKIP, NOT_CHECKED, ""), ("authentication", SKIP, NOT_CHECKED, ""), ROLE_CHECKS_SKIPPED]
    assert [(r.host, r.check) for r in report.failures] == [("portal1", "reachable")]
    assert row(report, "portal2", "URL Rewrite").status == PASS  # the others are still checked


def test_an_untrusted_winrm_certificate_names_the_name_checked_and_the_settings_to_fix(tmp_path: Path) -> None:
    report = down(tmp_path, "api1", errors.TlsVerificationFailed("api1.contoso.com", STEP, "hostname mismatch"))
    assert rows_for(report, "api1") == [
        ("reachable", PASS, "WinRM answered on api1.contoso.com:5986", ""),
        ("TLS", FAIL, "not trusted, checked as api1.contoso.com: hostname mismatch",
         "give wapconnector:hosts.api1.caFile the CA that issued the WinRM certificate, or set tlsServerName to "
         "the name it carries"),
        ("authentication", SKIP, NOT_CHECKED, ""), ROLE_CHECKS_SKIPPED]


def test_a_refused_credential_names_the_user_and_the_credentials_to_check(tmp_path: Path) -> None:
    refused = errors.AuthenticationFailed("portal2.contoso.com", STEP, user="CONTOSO\\admin", auth="negotiate")
    assert rows_for(down(tmp_path, "portal2", refused), "portal2") == [
        ("reachable", PASS, "WinRM answered on portal2.contoso.com:5986", ""),
        ("TLS", PASS, "certificate trusted for portal2.contoso.com (system CAs)", ""),
        ("authentication", FAIL, "CONTOSO\\admin refused (negotiate)", "check wapconnector:credentials of portal2"),
        ROLE_CHECKS_SKIPPED]


def test_a_refused_credential_on_the_privileged_endpoint_also_points_at_credssp(tmp_path: Path) -> None:
    refused = errors.AuthenticationFailed("pep.contoso.com", STEP, user="CONTOSO\\admin", auth="credssp")
    auth = row(down(tmp_path, "pep", refused), "pep", "authentication (CredSSP)")
    assert (auth.status, auth.result) == (FAIL, "CONTOSO\\admin refused (credssp)")
    assert auth.todo == ("check wapconnector:credentials of pep and that CredSSP is enabled for the privileged "
                         "endpoint (Enable-WSManCredSSP)")


def test_a_privileged_endpoint_without_its_session_configuration(tmp_path: Path) -> None:
    error = errors.TransportError("pep.contoso.com", STEP, "no such configuration", fault_code=0x80338000)
    assert rows_for(down(tmp_path, "pep", error), "pep") == [
        ("reachable", PASS, "WinRM answered on pep.contoso.com:5986", ""),
        ("TLS", PASS, "certificate trusted for pep.contoso.com (system CAs)", ""),
        ("authentication (CredSSP)", PASS, "CONTOSO\\admin accepted", ""),
        ("PrivilegedEndpoint", FAIL, "no PrivilegedEndpoint session: no such configuration",
         "connect to an ERCS VM that has the PrivilegedEndpoint session configuration"),
        ROLE_CHECKS_SKIPPED]


@pytest.mark.parametrize(("error", "what"), [
    (errors.TransportError("wasp.contoso.com", STEP, "the shell is gone", fault_code=0x803381A6), "failed"),
    (errors.StepTimedOut("wasp.contoso.com", STEP, seconds=60, waiting_for="finish"), "timed out"),
])
def test_remoting_that_breaks_after_the_connection_on_an_ordinary_host(tmp_path: Path, error: errors.ConnectorError,
                                                                     what: str) -> None:
    assert rows_for(down(tmp_path, "wasp", error), "wasp") == [
        ("reachable", PASS, "WinRM answered on wasp.contoso.com:5986", ""),
        ("remoting", FAIL, f"PowerShell remoting {what}: {error}", "check the WinRM service on the host"),
        ROLE_CHECKS_SKIPPED]


def test_connection_settings_that_cannot_work_are_a_failure_of_their_own(tmp_path: Path) -> None:
    def missing_ca(raw: dict[str, Any]) -> None:
        raw["hosts"]["portal1"]["caFile"] = "missing-ca.pem"

    lab = healthy(stack(missing_ca, sqlServer="sql01"))
    assert rows_for(lab.run(tmp_path), "portal1") == [
        ("connection settings", FAIL, f"ca_file '{tmp_path / 'missing-ca.pem'}' does not exist or is not a file",
         "fix wapconnector:hosts.portal1 (and the CA file it names)"), ROLE_CHECKS_SKIPPED]
    assert "portal1.contoso.com" not in {c.host for c in lab.transport.calls}  # never asked


def test_how_the_winrm_certificate_was_verified_is_said_and_anything_less_than_verified_https_warns(
        tmp_path: Path) -> None:
    ca = org_ca("Fabrikam Root CA")
    (tmp_path / "winrm-ca.pem").write_text(ca.pem)

    def edit(raw: dict[str, Any]) -> None:
        raw["hosts"]["portal2"]["caFile"] = "winrm-ca.pem"
        raw["hosts"]["api1"]["verify"] = False
        raw["hosts"]["wasp"]["https"] = False

    report = healthy(stack(edit, sqlServer="sql01")).run(tmp_path)
    tls = {h: (r.status, r.result, r.todo) for h in ("portal1", "portal2", "api1", "wasp")
           for r in [row(report, h, "TLS")]}
    assert tls == {
        "portal1": (PASS, "certificate trusted for portal1.contoso.com (system CAs)", ""),
        "portal2": (PASS, "certificate trusted for portal2.contoso.com (CA CN=Fabrikam Root CA,O=Contoso)", ""),
        "api1": (WARN, "not verified (verify: false)", "use https with verification for wapconnector:hosts.api1"),
        "wasp": (WARN, "http: no TLS", "use https with verification for wapconnector:hosts.wasp"),
    }
    assert row(report, "wasp", "reachable").result == "WinRM answered on wasp.contoso.com:5985"
    assert report.ok  # a warning is said, never a reason to stop


def test_a_failed_connection_keeps_its_tls_warning(tmp_path: Path) -> None:
    def no_verify(raw: dict[str, Any]) -> None:
        raw["hosts"]["api1"]["verify"] = False

    lab = healthy(stack(no_verify, sqlServer="sql01"))
    lab.hosts["api1"].down = errors.AuthenticationFailed("api1.contoso.com", STEP, user="CONTOSO\\admin",
                                                         auth="negotiate")
    tls = row(lab.run(tmp_path), "api1", "TLS")
    assert (tls.status, tls.result) == (WARN, "not verified (verify: false)")


def test_a_kerberos_host_is_entered_with_the_operators_own_ticket(tmp_path: Path) -> None:
    def kerberos(raw: dict[str, Any]) -> None:
        raw["hosts"]["host"] = {"fqdn": "host.contoso.com", "auth": "kerberos"}

    auth = row(healthy(stack(kerberos, sqlServer="sql01")).run(tmp_path), "host", "authentication")
    assert (auth.status, auth.result) == (PASS, "Kerberos ticket accepted (kerberos)")
