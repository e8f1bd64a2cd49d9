"""TenantApiUpdate provider: parser, plan, diff, and the provider methods against an in-memory host (unit); the
labsim versions are at the end of the module (sim)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi.dynamic
import pytest
from pulumi.dynamic import ResourceProvider

from labsim.server import LabServer
from providers import tenant_api_trust as trust
from providers import tenant_api_update as T
from providers.base import UNKNOWN
from providers.errors import ConfigurationError, ConnectorError, RemoteCommandFailed
from providers.transport import Failure, PsrpTransport
from tests.fake_windows_host import CONNECTOR_TENANT_API, UR91, FakeWindowsHost
from tests.outs import outs_of
from tests.providers.helpers import assert_check_finds, check_failures
from tests.providers.test_tenant_api_trust import CONN, DEST, HOSTILE, host_with, staged, trust_props


def update_props(**kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "bundle_path": DEST, "script_folder": "Packages", "expected_product_code": None}
    props.update(kw)
    return props


def changed(olds: dict[str, Any], news: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changed, replaced) fields of the provider's diff: the state's last read against the inputs."""
    d = T.TenantApiUpdateProvider().diff("id", olds, news)
    return d.changed, list(d.replaces or [])


@pytest.fixture
def host() -> FakeWindowsHost:
    return host_with("Setup\\Packages\\Update-TenantAPI.ps1")


# == pure parser and plan ========================================================================================
@pytest.mark.unit
@pytest.mark.parametrize("registry, site, expected", [
    ([], [], None),
    ([{"ProductCode": UR91, "PSPath": "x"}], [{"name": "MgmtSvc-TenantAPI", "state": "Started"}],
     T.TenantApiUpdateObserved(UR91, "Started")),
    ([], [{"name": "MgmtSvc-TenantAPI", "state": "Stopped"}], T.TenantApiUpdateObserved(None, "Stopped")),
    ([{"ProductCode": CONNECTOR_TENANT_API.lower()}], [], T.TenantApiUpdateObserved(CONNECTOR_TENANT_API, None)),
])
def test_parse_tenant_api(registry: list[Any], site: list[Any], expected: T.TenantApiUpdateObserved | None) -> None:
    assert T.parse_tenant_api(registry, site) == expected


@pytest.mark.unit
@pytest.mark.parametrize("observed, expected_code, steps", [
    (T.TenantApiUpdateObserved(UR91, "Started"), None, ["run_update_script"]),
    (T.TenantApiUpdateObserved(CONNECTOR_TENANT_API, "Started"), None, []),
    (T.TenantApiUpdateObserved(CONNECTOR_TENANT_API, "Stopped"), None, ["start_site"]),
    (T.TenantApiUpdateObserved(None, "Started"), None, ["run_update_script"]),
    (T.TenantApiUpdateObserved("{00000000-0000-0000-0000-000000000000}", "Started"), CONNECTOR_TENANT_API,
     ["run_update_script"]),
    (None, None, ["run_update_script", "start_site"]),
])
def test_plan_update(observed: T.TenantApiUpdateObserved | None, expected_code: str | None, steps: list[str]) -> None:
    inputs = T.TenantApiUpdateInputs.parse(update_props(expected_product_code=expected_code))
    assert [s.kind for s in T.TenantApiUpdateProvider().plan(observed, inputs)] == steps



# == check =====================================================================================================
@pytest.mark.unit
@pytest.mark.parametrize("case, change, prop, words", [
    ("ok", {}, None, None),
    ("scripts folder", {"script_folder": "Scripts"}, None, None),
    ("unknown folder", {"script_folder": "Tools"}, "script_folder", "'Packages' or 'Scripts'"),
    ("hostile bundle path", {"bundle_path": HOSTILE}, "bundle_path", "not an absolute Windows"),
    ("bad product code", {"expected_product_code": HOSTILE}, "expected_product_code", "not a product code"),
    ("port out of range", {"connection": {**CONN, "port": -1}}, "connection", "port"),
    ("missing credential", {"connection": {**CONN, "password": ""}}, "connection", "password is required"),
    ("unknown auth", {"connection": {**CONN, "auth": "oauth"}}, "connection", "unknown auth"),
    ("malformed FQDN", {"connection": {**CONN, "fqdn": "wap..contoso.com"}}, "connection", "not a host name"),
])
def test_update_check(case: str, change: dict[str, Any], prop: str | None, words: str | None) -> None:
    assert_check_finds(check_failures(T.TenantApiUpdateProvider, update_props(**change)), prop, words)


# == TenantApiUpdate methods =====================================================================================
@pytest.mark.unit
def test_update_lifecycle(host: FakeWindowsHost, capsys: pytest.CaptureFixture[str]) -> None:
    p = T.TenantApiUpdateProvider(host.transport)
    created = p.create(update_props())
    assert host.product_code == CONNECTOR_TENANT_API
    assert outs_of(created)["updated"] is True and outs_of(created)["previous_product_code"] == UR91
    assert outs_of(created)["site_state"] == "Started"
    scripts = [n for c in host.transport.calls for n in c.names if n.endswith(".ps1")]
    assert scripts == [f"{DEST}\\Setup\\Packages\\Update-TenantAPI.ps1"]
    read = p.read(created.id, outs_of(created))
    assert p.diff(created.id, outs_of(read), update_props()).changes is False
    # Inputs the host does not show are compared input against input; one not known yet (preview) is a change.
    for setting in ("Scripts", UNKNOWN):
        assert changed(outs_of(read), update_props(script_folder=setting)) == (["script_folder"], [])
    # Re-running create (e.g. after a lost reply) does not run the script again.
    p.create(update_props())
    assert [n for c in host.transport.calls for n in c.names if n.endswith(".ps1")] == scripts

    # An administrator stops the site: drift named site_state; update starts it.
    host.site_state = "Stopped"
    read = p.read(created.id, outs_of(created))
    assert changed(outs_of(read), update_props()) == (["site_state"], [])
    updated = p.update(created.id, outs_of(read), update_props())
    assert host.site_state == "Started" and outs_of(updated)["site_state"] == "Started"

    # Delete: nothing on the host, a clear warning.
    before = len(host.transport.calls)
    p.delete(created.id, outs_of(updated))
    assert len(host.transport.calls) == before
    err = capsys.readouterr().err
    assert "no documented undo" in err and "wapcomputer1.contoso.com" in err


@pytest.mark.unit
def test_update_on_a_host_without_tenant_api_reads_gone(host: FakeWindowsHost) -> None:
    host.product_code = None
    host.site_state = None
    assert T.TenantApiUpdateProvider(host.transport).read("id", {**update_props(), "updated": True}).id == ""


@pytest.mark.unit
def test_update_without_the_staged_script_says_to_stage_the_bundle(host: FakeWindowsHost) -> None:
    del host.files[f"{DEST}\\Setup\\Packages\\Update-TenantAPI.ps1".lower()]
    with pytest.raises(ConnectorError, match="stage the WAPConnector folder there first"):
        T.TenantApiUpdateProvider(host.transport).create(update_props())


@pytest.mark.unit
def test_update_script_failure_then_rerun_converges(host: FakeWindowsHost) -> None:
    host.fail["Update-TenantAPI.ps1"] = Failure("Installation of MgmtSvc-TenantAPI.msi failed (1620)", "x")
    with pytest.raises(RemoteCommandFailed, match="update Tenant API"):
        T.TenantApiUpdateProvider(host.transport).create(update_props())
    assert host.product_code == UR91
    del host.fail["Update-TenantAPI.ps1"]
    assert outs_of(T.TenantApiUpdateProvider(host.transport).create(update_props()))["updated"] is True


@pytest.mark.unit
def test_update_that_changes_nothing_is_reported(host: FakeWindowsHost) -> None:
    host.noop.add("Update-TenantAPI.ps1")
    with pytest.raises(ConnectorError, match="ProductCode is still"):
        T.TenantApiUpdateProvider(host.transport).create(update_props())


@pytest.mark.unit
def test_update_pinned_product_code() -> None:
    assert T.is_updated(CONNECTOR_TENANT_API, None) and not T.is_updated(UR91, None)
    assert not T.is_updated("{00000000-0000-0000-0000-000000000000}", CONNECTOR_TENANT_API)
    assert not T.is_updated(None)



# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)

from providers.transport import Command  # noqa: E402
from tests.providers.labsim_helpers import admin, clear_faults, conn_dict, invocations, last_id, set_fault  # noqa: E402


@pytest.mark.sim
def test_sim_update_lifecycle(labsim: LabServer, sim: PsrpTransport, capsys: pytest.CaptureFixture[str]) -> None:
    staged(labsim, "wapcomputer1")
    props = update_props(connection=conn_dict(labsim, "wapcomputer1"))
    p = T.TenantApiUpdateProvider(sim)
    created = p.create(props)
    assert outs_of(created)["previous_product_code"] == UR91
    assert outs_of(created)["updated"] is True and outs_of(created)["product_code"] != UR91
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["product_code"] == outs_of(created)["product_code"]
    assert p.diff(created.id, outs_of(read), props).changes is False

    admin(labsim, "wapcomputer1", "stop the Tenant API site", Command("Stop-Website", {"Name": "MgmtSvc-TenantAPI"}))
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["site_state"] == "Stopped"
    assert changed(outs_of(read), props) == (["site_state"], [])
    mark = last_id(labsim)
    updated = p.update(created.id, outs_of(read), props)
    assert outs_of(updated)["site_state"] == "Started"
    assert not invocations(labsim, "wapcomputer1", "Update-TenantAPI.ps1", since=mark), "no second install"
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), props).changes is False

    mark = last_id(labsim)
    p.delete(created.id, outs_of(updated))
    assert last_id(labsim) == mark and "no documented undo" in capsys.readouterr().err
    assert outs_of(p.read(created.id, outs_of(updated)))["updated"] is True   # the host is left as it is


@pytest.mark.sim
def test_sim_update_after_injected_failure_converges(labsim: LabServer, sim: PsrpTransport) -> None:
    staged(labsim, "wapcomputer2")
    props = update_props(connection=conn_dict(labsim, "wapcomputer2"))
    set_fault(labsim, "wapcomputer2", "command_terminating", "Update-TenantAPI.ps1")
    with pytest.raises(RemoteCommandFailed) as err:
        T.TenantApiUpdateProvider(sim).create(props)
    assert "wapcomputer2.contoso.com" in str(err.value) and "Update-TenantAPI" in str(err.value)
    clear_faults(labsim, "wapcomputer2")
    assert outs_of(T.TenantApiUpdateProvider(sim).create(props))["updated"] is True


# == both Tenant API resources ===================================================================================
@pytest.mark.sim
def test_sim_bad_inputs_make_no_invocation(labsim: LabServer, sim: PsrpTransport) -> None:
    mark = last_id(labsim)
    c = conn_dict(labsim, "wapcomputer1")
    cases: list[tuple[ResourceProvider, dict[str, Any]]] = [
        (trust.TenantApiTrustProvider(sim), trust_props(connection=c, sql_server=HOSTILE)),
        (trust.TenantApiTrustProvider(sim), trust_props(connection=c, data_file_name=HOSTILE)),
        (trust.TenantApiTrustProvider(sim), trust_props(connection={**c, "port": 123456})),
        (trust.TenantApiTrustProvider(sim), trust_props(connection={**c, "auth": "magic"})),
        (T.TenantApiUpdateProvider(sim), update_props(connection={**c, "username": None})),
        (T.TenantApiUpdateProvider(sim), update_props(connection={**c, "fqdn": "bad..name"})),
        (T.TenantApiUpdateProvider(sim), update_props(connection=c, bundle_path=HOSTILE)),
    ]
    for provider, props in cases:
        assert provider.check({}, props).failures
        with pytest.raises(ConfigurationError):  # create re-checks: the engine is not the only line of defence
            provider.create(props)
    assert last_id(labsim) == mark


@pytest.mark.unit
@pytest.mark.parametrize("cls, kwargs, secrets", [
    (T.TenantApiUpdate, {}, ["connection"]),
    (trust.TenantApiTrust, {"data_file_content": "{}", "data_file_name": "a.txt",
                            "sql_credential": {"username": "sa", "password": "x"}}, ["connection", "sql_credential"]),
])
def test_resource_classes_mark_secrets(monkeypatch: pytest.MonkeyPatch, cls: Callable[..., pulumi.dynamic.Resource],
                                       kwargs: dict[str, Any], secrets: list[str]) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("pulumi.dynamic.Resource.__init__",
                        lambda self, provider, name, props, opts=None: seen.update(p=provider, props=props, opts=opts))
    cls("r", connection=CONN, **kwargs)
    assert seen["opts"].additional_secret_outputs == secrets
    assert not vars(seen["p"]), "providers are pickled into the state: keep them empty"
    assert seen["props"]["bundle_path"] == DEST
