"""One preflight run over a stack: which hosts are asked what (from the stack's roles), that only reads reach them,
the privileged endpoint's one statement per call, the bundle measured on this machine, and the mode a run is in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.preflight import FAIL, MODE_ENV, PASS, READ_COMMANDS, STEP, preflight_mode, run_preflight
from providers.errors import ConfigurationError
from tests.preflight.fake_lab import healthy, project, row, stack

pytestmark = pytest.mark.unit


def test_only_reads_reach_the_hosts_each_marked_as_preflight_and_safe_to_retry(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.run(tmp_path)
    sent = {c.name for call in lab.transport.calls for p in call.statements for c in p.commands}
    assert sent <= READ_COMMANDS and "Get-Website" in sent
    assert all(call.step == STEP and call.idempotent for call in lab.transport.calls)
    assert {call.host for call in lab.transport.calls} == {f"{h}.contoso.com" for h in lab.hosts}


def test_the_privileged_endpoint_gets_one_statement_a_call_in_its_own_session(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.run(tmp_path)
    pep = [c for c in lab.transport.calls if c.host == "pep.contoso.com"]
    assert pep and all(len(c.statements) == 1 for c in pep)
    assert all(c.conn is not None and c.conn.configuration_name == "PrivilegedEndpoint" for c in pep)
    others = [c for c in lab.transport.calls if c.host != "pep.contoso.com"]
    assert all(c.conn is not None and c.conn.configuration_name == "Microsoft.PowerShell" for c in others)


def test_each_host_is_asked_once_while_every_read_answers(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    seen: list[str] = []
    run_preflight(lab.config, transport=lab.transport, project_dir=project(tmp_path), on_host=seen.append)
    assert sorted(seen) == sorted(lab.hosts)
    assert sorted(c.host for c in lab.transport.calls) == sorted(f"{h}.contoso.com" for h in lab.hosts)


def test_a_read_that_fails_on_a_host_costs_only_its_own_row(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts["portal1"].failing = {"Get-WebBinding": "Cannot find drive. A drive with the name 'IIS' does not exist."}
    lab.hosts["portal1"].url_rewrite = None
    report = lab.run(tmp_path)
    assert [(r.host, r.check) for r in report.failures] == [("portal1", "URL Rewrite")]
    assert row(report, "portal1", "WAP sites").status == PASS
    assert row(report, "portal1", "Windows / PowerShell").status == PASS


def test_hosts_with_several_roles_get_the_checks_of_each(tmp_path: Path) -> None:
    def shared(raw: dict[str, Any]) -> None:
        raw["azureStack"]["shareHost"] = "wasp"
        del raw["hosts"]["host"]

    lab = healthy(stack(shared, sqlServer="sql01"))
    lab.hosts["wasp"].share = True
    report = lab.run(tmp_path)
    assert [r.check for r in report.rows if r.host == "wasp"] == [
        "reachable", "TLS", "authentication", "Windows / PowerShell", "infrastructure share", "reaches portal1",
        "reaches portal2"]
    assert report.ok


def test_the_connector_endpoints_name_is_the_one_its_certificate_must_carry(tmp_path: Path) -> None:
    report = healthy(stack(sqlServer="sql01", connectorFqdn="connector.contoso.com")).run(tmp_path)
    assert row(report, "portal1", "connector certificate").result == (
        "issued by the stack's lab CA for connector.contoso.com (server auth, with key) at deploy")


def test_the_bundle_is_measured_on_this_machine_with_everything_below_it(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "Scripts").mkdir(parents=True)
    (bundle / "Connector.msi").write_bytes(b"x" * 300 * 1024)
    (bundle / "Scripts" / "Install-Connector.ps1").write_bytes(b"x" * 2047)
    report = healthy(stack(sqlServer="sql01")).run(tmp_path)
    assert (row(report, "(this machine)", "bundle").status, row(report, "(this machine)", "bundle").result) == \
        (PASS, "bundle: 301 KiB")
    (tmp_path / "elsewhere").mkdir()
    report = healthy(stack(sqlServer="sql01")).run(tmp_path / "elsewhere")
    assert row(report, "(this machine)", "bundle").status == PASS  # a fresh project gets its own folder
    (tmp_path / "file-project").mkdir()
    (tmp_path / "file-project" / "bundle").write_text("not a folder")
    lab = healthy(stack(sqlServer="sql01"))
    r = row(lab.run(tmp_path / "file-project"), "(this machine)", "bundle")
    assert (r.status, r.result) == (FAIL, "bundle is not a folder")


def test_the_mode_is_the_stacks_unless_the_environment_names_one_for_this_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = stack()
    monkeypatch.delenv(MODE_ENV, raising=False)
    assert preflight_mode(config) == "enforce"
    assert preflight_mode(config.model_copy(update={"preflight": "warn"})) == "warn"
    monkeypatch.setenv(MODE_ENV, " Warn ")
    assert preflight_mode(config) == "warn"
    monkeypatch.setenv(MODE_ENV, "ENFORCE")
    assert preflight_mode(config.model_copy(update={"preflight": "warn"})) == "enforce"
    monkeypatch.setenv(MODE_ENV, "  ")
    assert preflight_mode(config.model_copy(update={"preflight": "warn"})) == "warn"
    monkeypatch.setenv(MODE_ENV, "off")
    with pytest.raises(ConfigurationError) as refused:
        preflight_mode(config)
    assert refused.value.problems == ["WAPCONNECTOR_PREFLIGHT='off': use enforce or warn"]
    assert str(refused.value).startswith("invalid preflight mode:")


READS_OF = {
    "pep": {"Get-Command"},
    "wasp": {"Get-ItemProperty", "Select-Object", "Get-ChildItem", "Test-Connection"},
    "host": {"Get-ItemProperty", "Select-Object", "Test-Path"},
    "portal1": {"Get-PSDrive", "Get-ItemProperty", "Select-Object", "Get-ChildItem", "Get-Website", "Get-WebBinding"},
    "api1": {"Get-PSDrive", "Get-ItemProperty", "Select-Object", "Get-ChildItem", "Get-Website",
             "Get-MgmtSvcSetting", "Invoke-Sqlcmd"},
}


def test_each_host_is_asked_only_what_its_role_needs(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.run(tmp_path)
    for host, reads in READS_OF.items():
        sent = {c.name for call in lab.transport.calls if call.host == f"{host}.contoso.com"
                for p in call.statements for c in p.commands}
        assert sent == reads, host
    registry = {str(c.parameters.get("Path")) for call in lab.transport.calls if call.host == "wasp.contoso.com"
                for p in call.statements for c in p.commands if c.name == "Get-ChildItem"}
    assert registry == {"Cert:\\LocalMachine\\Root", "Cert:\\LocalMachine\\CA"}  # trust, not its own certificates


def test_an_unreadable_uninstall_entry_hides_no_product_and_costs_no_second_call(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    lab.hosts["api1"].broken_uninstall_entries = 2
    report = lab.run(tmp_path)
    assert row(report, "api1", "WAP Update Rollup").status == PASS and report.ok
    assert len([c for c in lab.transport.calls if c.host == "api1.contoso.com"]) == 1
    # ... nor when another read of the same host fails and each read is asked again on its own
    lab.hosts["api1"].failing = {"Get-MgmtSvcSetting": "Namespace 'TenantAPI' is not configured."}
    report = lab.run(tmp_path)
    assert row(report, "api1", "WAP Update Rollup").status == PASS
    assert [(r.host, r.check) for r in report.failures] == [("api1", "ManagementStore")]


def test_a_run_without_a_project_folder_uses_the_working_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    monkeypatch.chdir(project(tmp_path))
    report = run_preflight(lab.config, transport=lab.transport)
    assert row(report, "(this machine)", "bundle").result == "bundle: 3 KiB"


def test_every_problem_of_a_hosts_connection_settings_is_named_in_its_row(tmp_path: Path) -> None:
    lab = healthy(stack(sqlServer="sql01"))
    # Settings that stopped working after the stack was read: a CA file gone, on a host no longer on https.
    portal1 = lab.config.hosts["portal1"].model_copy(update={"ca_file": "gone-ca.pem", "https": False})
    lab.config = lab.config.model_copy(update={"hosts": {**lab.config.hosts, "portal1": portal1}})
    r = row(lab.run(tmp_path), "portal1", "connection settings")
    assert (r.status, r.result) == (FAIL, f"ca_file is only used with https: true; ca_file '{tmp_path / 'gone-ca.pem'}'"
                                          f" does not exist or is not a file")
    assert "portal1.contoso.com" not in {c.host for c in lab.transport.calls}


def test_without_a_transport_given_preflight_uses_powershell_remoting(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import providers.transport

    lab = healthy(stack(sqlServer="sql01"))
    made: list[object] = []

    def remoting() -> object:
        made.append(lab.transport)
        return lab.transport

    monkeypatch.setattr(providers.transport, "PsrpTransport", remoting)
    report = run_preflight(lab.config, project_dir=project(tmp_path))
    assert made == [lab.transport] and report.ok
    assert {c.host for c in lab.transport.calls} == {f"{h}.contoso.com" for h in lab.hosts}
