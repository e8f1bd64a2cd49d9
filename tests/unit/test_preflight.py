"""Preflight's pure parts: parsers, the certificate fitness rules, and judging host answers into rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from components import preflight as P
from components.config import StackConfig, parse_stack_config
from providers.errors import AuthenticationFailed, HostUnreachable, TlsVerificationFailed, TransportError
from providers.transport import Call, Command, Failure, FakeTransport, HostConnection, Result

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CA = "CN=Contoso Issuing CA"
GOOD = {"Thumbprint": "AB" * 20, "Subject": "CN=tenant.contoso.com", "Issuer": CA,
        "NotBefore": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "NotAfter": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        "HasPrivateKey": True, "DnsNameList": [{"Punycode": "tenant.contoso.com", "Unicode": "tenant.contoso.com"}],
        "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication", "ObjectId": "1.3.6.1.5.5.7.3.1"}]}


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"Issuer": "CN=tenant.contoso.com"}, "self-signed"),
    ({"Issuer": "CN=Someone Else"}, "is not in the host's Root or CA store"),
    ({"DnsNameList": ["other.contoso.com"]}, "do not include tenant.contoso.com"),
    ({"DnsNameList": ["*.contoso.com"]}, None),
    ({"DnsNameList": ["*.tenant.contoso.com"]}, "do not include"),
    ({"NotAfter": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)}, "expired on 2026-05-01"),
    ({"NotAfter": "/Date(1775001600000)/"}, None),  # ConvertTo-Json's date form (2026-04-01 would be expired)
    ({"NotBefore": dt.datetime(2026, 7, 1, tzinfo=dt.UTC)}, "not valid before"),
    ({"HasPrivateKey": False}, "no private key"),
    ({"EnhancedKeyUsageList": ["Client Authentication (1.3.6.1.5.5.7.3.2)"]}, "not for server authentication"),
    ({"EnhancedKeyUsageList": []}, None),  # no EKU extension: any purpose
    ({"NotAfter": dt.datetime(2026, 6, 11, tzinfo=dt.UTC)}, "expires in 10 day(s)"),
])
def test_certificate_problems(change: dict[str, Any], problem: str | None) -> None:
    cert = {**GOOD, **change}
    if change.get("NotAfter") == "/Date(1775001600000)/":
        cert["NotAfter"] = "/Date(1798761600000)/"  # 2027-01-01
    problems, summary = P.certificate_problems(cert, "tenant.contoso.com", {CA}, NOW)
    assert summary.startswith("AB" * 20)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_certificate_problems_lists_every_problem_at_once() -> None:
    bad = {**GOOD, "Issuer": "CN=x", "DnsNameList": [], "HasPrivateKey": False,
           "EnhancedKeyUsageList": ["1.3.6.1.5.5.7.3.2"], "NotAfter": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}
    problems, _ = P.certificate_problems(bad, "tenant.contoso.com", {CA}, NOW)
    assert len(problems) == 5, problems


@pytest.mark.parametrize(("text", "expected"), [
    ("3.50.48.0", (3, 50, 48, 0)), ("7.2.1034.0 ", (7, 2, 1034, 0)), ("4.0.2244.0 (UR5)", (4, 0, 2244, 0)),
    ("", None), (None, None), ("v3", None),
])
def test_version_tuple(text: str | None, expected: tuple[int, ...] | None) -> None:
    assert P.version_tuple(text) == expected


def test_sections_keep_each_probe_apart_even_when_one_says_nothing() -> None:
    one = P.Pipeline((P.Command("Get-Website"),))
    plan = [("a", [one, one]), ("b", [one]), ("c", [one])]
    out: list[list[Any]] = [[{"x": 1}], [{"x": 2}], [], [True]]
    assert P.sections_of(plan, out) == {"a": [{"x": 1}, {"x": 2}], "b": [], "c": [True]}


def _config(**cloud_extra: Any) -> StackConfig:
    raw = {
        "azureStack": {"privilegedEndpoint": "pep", "userPortalHost": "wasp", "shareHost": "host"},
        "hosts": {n: {"fqdn": f"{n}.contoso.com", "credential": "c", **({"auth": "credssp"} if n == "pep" else {})}
                  for n in ("pep", "wasp", "host", "portal1", "portal2", "api1")},
        "credentials": {"c": {"username": "CONTOSO\\admin", "password": "pw-not-real"},
                        "sql": {"username": "sa-trust", "password": "pw-not-real"}},
        "bundle": {"sourceDir": "bundle"},
        "clouds": [{"name": "C1", "tenantPortalFqdn": "tenant.contoso.com", "tenantApiFqdn": "api.contoso.com",
                    "tenantPortalHosts": ["portal1", "portal2"], "tenantApiHosts": ["api1"], **cloud_extra}],
    }
    return parse_stack_config(raw)


def test_targets_say_what_each_host_is_asked() -> None:
    t = P.targets(_config(sqlServer="sql01", sqlCredential="sql"))
    assert t["pep"].pep and not t["pep"].bundle
    assert t["wasp"].portals_to_reach == {"portal1": "portal1.contoso.com", "portal2": "portal2.contoso.com"}
    assert t["portal1"].tenant_portal and t["portal1"].bundle
    assert t["portal1"].endpoint_fqdns(_config()) == ["tenant.contoso.com"]
    assert t["api1"].trusts == [(0, "sql01", "sql")]
    keys = [k for k, _ in P.probes(t["api1"], _config(sqlServer="sql01", sqlCredential="sql"))]
    assert keys == ["disk", "windows", "packages", "sites", "store", "sysadmin:0"]


def test_probes_are_structured_reads_and_the_sql_credential_travels_as_a_credential() -> None:
    config = _config(sqlServer="sql01", sqlCredential="sql")
    for t in P.targets(config).values():
        for _, statements in P.probes(t, config):
            for pipeline in statements:
                for command in pipeline.commands:
                    assert command.name in P.READ_COMMANDS, command.name
    sysadmin = dict(P.probes(P.targets(config)["api1"], config))["sysadmin:0"]
    text = " ".join(str(p) for p in sysadmin)
    assert "pw-not-real" not in text and "'****'" in text and P.SYSADMIN_QUERY.replace("'", "''") in text


WS2012R2 = [{"ProductName": "Windows Server 2012 R2 Datacenter", "CurrentBuildNumber": "9600"},
            {"PowerShellVersion": "4.0"}]
WS2016 = [{"ProductName": "Windows Server 2016 Datacenter", "CurrentBuildNumber": "14393"},
          {"PowerShellVersion": "5.1.14393.0"}]


def test_each_host_shows_its_windows_and_one_below_what_the_providers_need_fails() -> None:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    facts["wasp"].sections["windows"] = WS2012R2  # an Azure Stack host needs 5.1
    rows = {(r.host, r.check): r for r in P.evaluate(config, P.targets(config), facts, bundle_bytes=1000, now=NOW)}
    portal = rows[("portal1", "Windows / PowerShell")]
    assert (portal.status, portal.result) == (P.PASS, "Windows Server 2012 R2 Datacenter (build 9600), "
                                                      "Windows PowerShell 4.0")
    assert rows[("host", "Windows / PowerShell")].status == P.PASS
    wasp = rows[("wasp", "Windows / PowerShell")]
    assert wasp.status == P.FAIL and "below 5.1" in wasp.result and "Windows Management Framework 5.1" in wasp.todo
    assert rows[("pep", "Windows / PowerShell")].status == P.SKIP
    facts["portal1"].sections["windows"] = [WS2012R2[0]]  # no PowerShell engine key: said, not guessed
    rows = {(r.host, r.check): r for r in P.evaluate(config, P.targets(config), facts, bundle_bytes=1000, now=NOW)}
    assert rows[("portal1", "Windows / PowerShell")].status == P.WARN


def _facts(name: str, **kw: Any) -> P.HostFacts:
    conn = HostConnection(fqdn=f"{name}.contoso.com", address="10.0.0.9", auth="credssp" if name == "pep" else "ntlm",
                          username="CONTOSO\\admin", password="pw-not-real", tls_server_name=f"{name}.contoso.com",
                          configuration_name="PrivilegedEndpoint" if name == "pep" else "Microsoft.PowerShell")
    return P.HostFacts(name, conn=conn, **kw)


def _healthy(config: StackConfig) -> dict[str, P.HostFacts]:
    started = [{"name": s, "state": "Started"} for s in ("MgmtSvc-TenantSite", "MgmtSvc-AuthSite", "MgmtSvc-TenantAPI")]
    wap = {"disk": [{"Name": "C", "Free": 50 * 2**30}],
           "packages": [{"DisplayName": "Windows Azure Pack - Tenant Site - 2013", "DisplayVersion": "3.50.48.0"}],
           "windows": WS2012R2,
           "sites": started, "urlrewrite": [{"Version": "7.2.1952"}], "binding": [], "my": [], "trusted": [],
           "store": [{"Name": "ManagementStore",
                      "Value": "Data Source=sql01;Initial Catalog=x;Integrated Security=True"}],
           "sysadmin:0": [{"IsSysadmin": 1}]}
    return {
        "pep": _facts("pep", sections={"pep": [{"Name": "Add-AzurePackConnector"}]}),
        "wasp": _facts("wasp", sections={"ping:portal1": [True], "ping:portal2": [True], "trusted": [],
                                         "windows": WS2016}),
        "host": _facts("host", sections={"share": [True], "windows": WS2016}),
        "portal1": _facts("portal1", sections=dict(wap)), "portal2": _facts("portal2", sections=dict(wap)),
        "api1": _facts("api1", sections=dict(wap)),
    }


def test_a_healthy_lab_passes_every_check() -> None:
    config = _config(sqlServer="sql01")
    rows = P.evaluate(config, P.targets(config), _healthy(config), bundle_bytes=1000, now=NOW)
    assert [r for r in rows if r.status == P.FAIL] == []
    checks = {(r.host, r.check) for r in rows}
    for expected in [("pep", "PrivilegedEndpoint"), ("pep", "authentication (CredSSP)"), ("wasp", "reaches portal2"),
                     ("host", "infrastructure share"), ("portal1", "URL Rewrite"), ("portal1", "connector certificate"),
                     ("api1", "ManagementStore"), ("api1", "sysadmin (C1)"), ("api1", "room for the bundle"),
                     ("api1", "WAP Update Rollup"), ("portal2", "TLS")]:
        assert expected in checks, expected
    tls = next(r for r in rows if r.host == "portal1" and r.check == "TLS")
    assert "portal1.contoso.com" in tls.result  # the name that was checked


@pytest.mark.parametrize(("error", "check", "words"), [
    (HostUnreachable("portal1.contoso.com", P.STEP, "connection refused", endpoint="10.0.0.9:5986"), "reachable",
     "no answer from 10.0.0.9:5986"),
    (TlsVerificationFailed("portal1.contoso.com", P.STEP, "hostname mismatch"), "TLS",
     "checked as portal1.contoso.com"),
    (AuthenticationFailed("portal1.contoso.com", P.STEP, user="CONTOSO\\admin", auth="ntlm"), "authentication",
     "CONTOSO\\admin refused"),
])
def test_a_host_that_does_not_answer_fails_its_connection_check_and_the_others_still_run(
        error: TransportError, check: str, words: str) -> None:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    facts["portal1"] = _facts("portal1", error=error)
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1000, now=NOW)
    fails = [r for r in rows if r.status == P.FAIL]
    assert [(r.host, r.check) for r in fails] == [("portal1", check)]
    assert words in fails[0].result and fails[0].todo
    assert any(r.host == "portal1" and r.check == "role checks" and r.status == P.SKIP for r in rows)
    assert any(r.host == "portal2" and r.check == "URL Rewrite" and r.status == P.PASS for r in rows)


def test_pep_without_the_session_configuration_or_the_cmdlet() -> None:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    facts["pep"] = _facts("pep", error=TransportError("pep.contoso.com", P.STEP, "no such configuration",
                                                     fault_code=0x80338000))
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    assert [(r.check, r.status) for r in rows if r.host == "pep"][-2:] == [("PrivilegedEndpoint", P.FAIL),
                                                                           ("role checks", P.SKIP)]
    facts["pep"] = _facts("pep", sections={"pep": []})
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    pep = next(r for r in rows if r.host == "pep" and r.check == "PrivilegedEndpoint")
    assert pep.status == P.FAIL and "Add-AzurePackConnector is not available" in pep.result


@pytest.mark.parametrize(("section", "value", "check", "words"), [
    ("urlrewrite", [], "URL Rewrite", "not installed"),
    ("sites", [{"name": "MgmtSvc-TenantSite", "state": "Stopped"}, {"name": "MgmtSvc-TenantAPI", "state": "Started"}],
     "WAP sites", "missing: MgmtSvc-AuthSite; not started: MgmtSvc-TenantSite"),
    ("disk", [{"Name": "C", "Free": 10 * 2**20}], "room for the bundle", "10 MiB free on C:"),
    ("packages", [{"DisplayName": "Windows Azure Pack - Tenant Site - 2013", "DisplayVersion": "3.30.0.0"}],
     "WAP Update Rollup", "older than UR9.1"),
    ("packages", [{"DisplayName": "Something else", "DisplayVersion": "9.0"}], "WAP Update Rollup",
     "no Windows Azure Pack product"),
    ("windows", [{"ProductName": "Windows Server 2012 Datacenter", "CurrentBuildNumber": "9200"},
                 {"PowerShellVersion": "3.0"}], "Windows / PowerShell",
     "Windows Server 2012 Datacenter (build 9200), Windows PowerShell 3.0: below 4.0"),
    ("store", [], "ManagementStore", "no TenantAPI ManagementStore"),
    ("sysadmin:0", [{"IsSysadmin": 0}], "sysadmin (C1)", "is not sysadmin on sql01"),
])
def test_each_prerequisite_fails_on_its_own(section: str, value: list[Any], check: str, words: str) -> None:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    facts["portal1"].sections = {**facts["portal1"].sections, section: value}
    facts["api1"].sections = {**facts["api1"].sections, section: value}
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1000, now=NOW)
    fails = [r for r in rows if r.status == P.FAIL]
    assert fails and all(r.check == check and words in r.result and r.todo for r in fails), fails


def test_a_section_that_failed_on_the_host_is_reported_with_its_message() -> None:
    config = _config(sqlServer="sql01", sqlCredential="sql")
    facts = _healthy(config)
    facts["api1"].section_errors["sysadmin:0"] = "Login failed for user 'sa-trust'."
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    row = next(r for r in rows if r.check == "sysadmin (C1)")
    assert row.status == P.FAIL and "Login failed" in row.result and "sa-trust" in row.result
    assert "sqlCredential" in row.todo


def test_bound_connector_certificate_is_judged_and_wasp_must_trust_its_issuer() -> None:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    for p in ("portal1", "portal2"):
        facts[p].sections.update(binding=[{"certificateHash": GOOD["Thumbprint"]}],
                                 my=[{**GOOD, "DnsNameList": ["tenant.contoso.com"]}], trusted=[{"Subject": CA}])
    facts["wasp"].sections.update({"port:portal1": [True], "port:portal2": [False]})
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    certs = [r for r in rows if r.check == "connector certificate"]
    # The stack's own certificate (lab CA): drift it heals is a warning, never a reason to refuse the healing run.
    assert certs and all(r.status == P.WARN and "AzS-WASP01 does not trust" in r.result and r.todo for r in certs)
    ports = {r.check: r.status for r in rows if r.host == "wasp" and ":40005" in r.check}
    assert ports == {"reaches portal1:40005": P.PASS, "reaches portal2:40005": P.WARN}  # the connector site: not listed
    for p in ("portal1", "portal2"):
        facts[p].sections["sites"] = [*facts[p].sections["sites"], {"name": "MgmtSvc-Connector", "state": "Started"}]
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    port2 = next(r for r in rows if r.check == "reaches portal2:40005")
    assert port2.status == P.FAIL and "firewall" in port2.todo  # served, yet closed from AzS-WASP01: the network
    facts["wasp"].sections["trusted"] = [{"Subject": CA}]
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    assert all(r.status == P.PASS for r in rows if r.check == "connector certificate")
    facts["portal1"].sections["my"] = []
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    gone = next(r for r in rows if r.host == "portal1" and r.check == "connector certificate")
    assert gone.status == P.WARN and "is not in Cert:\\LocalMachine\\My" in gone.result
    # Its site then serves nothing: the closed port is that same drift (up heals it), not the network.
    facts["wasp"].sections["port:portal1"] = [False]
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1, now=NOW)
    port1 = next(r for r in rows if r.check == "reaches portal1:40005")
    assert port1.status == P.WARN and "certificate is gone" in port1.result and "`up`" in port1.todo


def test_run_preflight_asks_each_host_once_and_falls_back_per_section(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "x.msi").write_bytes(b"x" * 2048)
    config = _config(sqlServer="sql01")
    calls = []

    def answer(call: Call) -> Result | Failure:
        calls.append(call)
        if any(c.name == "Get-MgmtSvcSetting" for p in call.statements for c in p.commands):
            return Failure("Namespace 'TenantAPI' is not configured on this computer.", error_id="InvalidNamespace")
        return Result(output=[])

    report = P.run_preflight(config, transport=FakeTransport(answer), project_dir=tmp_path, now=NOW)
    by_host: dict[str, list[Call]] = {}
    for c in calls:
        by_host.setdefault(c.host, []).append(c)
    counts = {h: len(v) for h, v in by_host.items()}
    assert all(n == 1 for h, n in counts.items() if h != "api1.contoso.com"), counts
    assert len(by_host["api1.contoso.com"]) == 1 + len(P.probes(P.targets(config)["api1"], config))
    store = next(r for r in report.rows if r.check == "ManagementStore")
    assert store.status == P.FAIL and "not configured" in store.result
    assert not report.ok and "HOST" in report.table() and "failed" in report.summary()
    assert all(c.idempotent for c in calls)
    assert {c.step for c in calls} == {P.STEP}
    assert isinstance(calls[0].statements[0].commands[0], Command)


def test_the_mode_is_the_stacks_unless_the_environment_overrides_it_for_one_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.errors import ConfigurationError

    config = _config()
    monkeypatch.delenv(P.MODE_ENV, raising=False)
    assert P.preflight_mode(config) == "enforce"
    assert P.preflight_mode(config.model_copy(update={"preflight": "warn"})) == "warn"
    monkeypatch.setenv(P.MODE_ENV, "WARN")
    assert P.preflight_mode(config) == "warn"
    monkeypatch.setenv(P.MODE_ENV, "off")
    with pytest.raises(ConfigurationError, match="use enforce or warn"):
        P.preflight_mode(config)
