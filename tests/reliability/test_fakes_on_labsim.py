"""Behaviours the provider tests first proved against the in-memory fake (``FakeWindowsHost`` in
tests/fake_windows_host.py), proven again against labsim over real PSRP: a fake only
shows that the provider reacts to what the fake was written to do, labsim shows it reacts to a host that really
behaves that way.

Where a host has to misbehave, labsim's command faults do it (docs/labsim.md): ``command_noop`` (a command that
reports success and does nothing), ``command_corrupt`` (an upload that arrives with a byte lost). Each test then
clears the fault and shows the rerun converges, and the invocation log shows what was (not) done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labsim.runtime import Fault
from labsim.server import LabServer
from providers import bundle as B
from providers import connector_site as cs
from providers.errors import ConnectorError
from providers.transport import PsrpTransport
from tests.lab_state import lab_state
from tests.outs import outs_of
from tests.providers.conftest import host_connection, stage_bundle
from tests.reliability.corpus import DEFAULT_POLLING, valid_resource_inputs

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": DEFAULT_POLLING}


@pytest.fixture
def server(labsim: LabServer, sim: PsrpTransport) -> Iterator[LabServer]:
    lab_state(labsim).reset()  # every host back to its baseline, faults cleared
    yield labsim
    lab_state(labsim).clear_faults()


def fault(server: LabServer, host: str, kind: str, command: str) -> None:
    lab_state(server).set_fault(Fault(host=server.lab.host(host).name, kind=kind, command=command))


def clear(server: LabServer) -> None:
    lab_state(server).clear_faults()


def file_on(server: LabServer, host: str, path: str) -> bytes | None:
    with lab_state(server).tx() as tx:
        return tx.read_file(server.lab.host(host).name, path)


def invoked(server: LabServer, host: str, command: str) -> list[dict[str, Any]]:
    return lab_state(server).invocations(server.lab.host(host).name, command)


# -- Certificate -------------------------------------------------------------------------------------------------
def test_a_certificate_import_that_does_not_land_is_reported_and_the_rerun_converges(server: LabServer,
                                                                                     sim: PsrpTransport,
                                                                                     tmp_path: Path) -> None:
    provider, props, _ = valid_resource_inputs(server, "Certificate", tmp_path, sim)
    fault(server, "wapcomputer1", "command_noop", "Import-PfxCertificate")
    with pytest.raises(ConnectorError, match=r"was imported but is not in Cert:\\LocalMachine\\My") as err:
        provider.create(props)
    assert "wapcomputer1.contoso.com" in str(err.value) and "retry" in str(err.value)
    (imp,) = invoked(server, "wapcomputer1", "Import-PfxCertificate")
    assert imp["outcome"] == "ok"  # the host said it worked
    clear(server)
    created = provider.create(props)
    assert outs_of(created)["has_private_key"] is True
    provider.delete(created.id, outs_of(created))


# -- ConnectorBundle ---------------------------------------------------------------------------------------------
def _bundle_props(server: LabServer, root: Path, destination: str = "C:\\temp\\WAPConnector") -> dict[str, Any]:
    return {"connection": host_connection(server, "wapcomputer2"), "source_dir": str(root),
            "destination": destination, "chunk_size": 4096, "files": B.hash_tree(root)}


def test_a_corrupted_upload_is_caught_by_the_hash_check_and_the_rerun_converges(server: LabServer, sim: PsrpTransport,
                                                                                tmp_path: Path) -> None:
    from labsim.hosts.wapconnector import make_bundle

    root = make_bundle(tmp_path / "bundle")
    props = _bundle_props(server, root)
    p = B.ConnectorBundleProvider(sim)
    for command in ("Set-Content", "Add-Content"):
        fault(server, "wapcomputer2", "command_corrupt", command)
    with pytest.raises(ConnectorError, match="do not have the expected SHA-256") as err:
        p.create(props)
    assert "wapcomputer2.contoso.com" in str(err.value)
    clear(server)
    created = p.create(props)
    assert outs_of(p.read(created.id, outs_of(created)))["files"] == props["files"]
    for rel in props["files"]:
        assert file_on(server, "wapcomputer2", B.join(props["destination"], rel)) == (root / rel).read_bytes(), rel
    p.delete(created.id, outs_of(created))


def test_files_dropped_from_the_bundle_are_removed_on_update(server: LabServer, sim: PsrpTransport,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "Setup").mkdir(parents=True)
    (root / "Setup" / "keep.txt").write_bytes(b"keep")
    (root / "Setup" / "drop.txt").write_bytes(b"drop")
    props = _bundle_props(server, root)
    p = B.ConnectorBundleProvider(sim)
    created = p.create(props)
    dropped = B.join(props["destination"], "Setup/drop.txt")
    assert file_on(server, "wapcomputer2", dropped) == b"drop"
    (root / "Setup" / "drop.txt").unlink()
    news = _bundle_props(server, root)
    updated = p.update(created.id, outs_of(created), news)
    assert file_on(server, "wapcomputer2", dropped) is None
    assert file_on(server, "wapcomputer2", B.join(props["destination"], "Setup/keep.txt")) == b"keep"
    assert outs_of(p.read(created.id, outs_of(updated)))["files"] == news["files"]
    p.delete(created.id, outs_of(updated))


# -- ConnectorSite -----------------------------------------------------------------------------------------------
def test_a_host_that_does_not_converge_is_reported_and_the_rerun_converges(server: LabServer,
                                                                           sim: PsrpTransport) -> None:
    stage_bundle(server, "wapcomputer1")
    fqdn = server.lab.host("wapcomputer1").fqdn
    result = cs.check({"connection": host_connection(server, "wapcomputer1"), "tenant_portal_fqdn": fqdn,
                       "tenant_api_fqdn": fqdn, "azure_stack_portal_fqdn": "portal.local.azurestack.external"})
    assert result.failures == []
    p = cs.ConnectorSiteProvider(sim)
    fault(server, "wapcomputer1", "command_noop", "Configure-WapConnector.ps1")
    with pytest.raises(ConnectorError, match="still differs") as err:
        p.create(result.inputs)
    assert fqdn in str(err.value)
    configured = invoked(server, "wapcomputer1", "Configure-WapConnector.ps1")
    assert configured and all(i["outcome"] == "ok" for i in configured), configured  # the script said it worked
    clear(server)
    created = p.create(result.inputs)
    assert not p.diff(created.id, outs_of(p.read(created.id, outs_of(created))), result.inputs).changes


# -- TenantApiTrust ----------------------------------------------------------------------------------------------
def _trust(server: LabServer, sim: Any, tmp_path: Path, realm_tag: str = "", name: str = "AzurePack-06-27-15-50.txt",
           **over: Any) -> tuple[Any, dict[str, Any]]:
    from tests.providers.test_tenant_api_trust import REALM, data_file

    provider, props, _ = valid_resource_inputs(server, "TenantApiTrust", tmp_path, sim)
    props["data_file_content"] = data_file(realm=REALM.replace("6c1a0f4e-1111", f"6c1a0f4e-{realm_tag or '1111'}"))
    props["data_file_name"] = name
    props.update(over)
    result = provider.check({}, props)
    assert result.failures == [], result.failures
    return provider, result.inputs


def test_sql_discovery_failing_is_a_clear_error_and_nothing_is_written(server: LabServer, sim: PsrpTransport,
                                                                       tmp_path: Path) -> None:
    stage_bundle(server, "wapcomputer1")
    provider, props = _trust(server, sim, tmp_path)
    fault(server, "wapcomputer1", "command_noop", "Get-MgmtSvcSetting")  # the setting reads back empty
    with pytest.raises(ConnectorError, match="names no SQL server; set sql_server explicitly"):
        provider.create(props)
    assert invoked(server, "wapcomputer1", "Configure-TrustAzureStack.ps1") == []
    assert invoked(server, "wapcomputer1", "Set-MgmtSvcDatabaseSetting") == []
    clear(server)
    created = provider.create(props)
    provider.delete(created.id, outs_of(created))


def test_delete_leaves_a_trust_row_of_another_realm(server: LabServer, sim: PsrpTransport, tmp_path: Path) -> None:
    stage_bundle(server, "wapcomputer1")
    first, props = _trust(server, sim, tmp_path)
    created = first.create(props)
    # Another cloud's trust (another realm) replaced the row since: this resource's delete must leave it.
    other, other_props = _trust(server, sim, tmp_path, realm_tag="2222", name="AzurePack-07-01-09-00.txt")
    other_created = other.create(other_props)
    assert outs_of(other_created)["realm"] != outs_of(created)["realm"]
    writes = len(invoked(server, "wapcomputer1", "Set-MgmtSvcDatabaseSetting"))
    first.delete(created.id, outs_of(created))
    assert len(invoked(server, "wapcomputer1", "Set-MgmtSvcDatabaseSetting")) == writes  # no write to the row
    assert outs_of(other.read(other_created.id, outs_of(other_created)))["realm"] == outs_of(other_created)["realm"]
    other.delete(other_created.id, outs_of(other_created))


# -- AzurePackConnector ------------------------------------------------------------------------------------------
def test_pep_success_without_output_files_is_refused(server: LabServer, sim: PsrpTransport, tmp_path: Path) -> None:
    provider, props, _ = valid_resource_inputs(server, "AzurePackConnector", tmp_path, sim)
    result = provider.check({}, props)
    assert result.failures == []
    # The PEP runs and reports success; the share's listing of the output folder comes back empty.
    fault(server, "AzS-HOST", "command_noop", "Get-ChildItem")
    with pytest.raises(ConnectorError, match="does not show the configuration") as err:
        provider.create(result.inputs)
    (enable,) = invoked(server, "AzS-ERCS01", "Add-AzurePackConnector")
    assert enable["outcome"] in ("ok", "stopped"), enable
    assert "azs-ercs01" in str(err.value).lower()
    clear(server)
    created = provider.create(result.inputs)
    assert outs_of(created)["multi_cloud_enabled"] is True
    provider.delete(created.id, outs_of(created))


def test_files_left_by_the_pep_at_delete_are_reported_and_the_rerun_converges(server: LabServer, sim: PsrpTransport,
                                                                              tmp_path: Path) -> None:
    provider, props, _ = valid_resource_inputs(server, "AzurePackConnector", tmp_path, sim)
    inputs = provider.check({}, props).inputs
    created = provider.create(inputs)
    # -DisableMultiCloud reports success but leaves the per-cloud files on the share.
    fault(server, "AzS-ERCS01", "command_noop", "Add-AzurePackConnector")
    with pytest.raises(ConnectorError, match=r"output file\(s\) remain") as err:
        provider.delete(created.id, outs_of(created))
    assert "azs-ercs01" in str(err.value).lower() and "run the delete again" in str(err.value)
    assert provider.read(created.id, outs_of(created)).id == created.id  # still there: Pulumi keeps the resource
    clear(server)
    provider.delete(created.id, outs_of(created))
    assert provider.read(created.id, outs_of(created)).id == ""
