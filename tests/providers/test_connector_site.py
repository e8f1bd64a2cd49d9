"""ConnectorSite: pure tables (read parsing, plan, diff), provider methods over FakeTransport, and the life
cycle against labsim over loopback (sim)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from labsim.hosts.wapconnector import CONNECTOR_PRODUCTS
from labsim.server import LabServer
from providers import connector_site as cs
from providers.errors import ConfigurationError, ConnectorError, RemoteCommandFailed
from providers.facts import locations
from providers.transport import (
    Call,
    ErrorRecordInfo,
    Failure,
    FakeTransport,
    HostConnection,
    Output,
    PsrpTransport,
    Result,
    Transport,
)
from tests.fake_windows_host import PRODUCT_CODES, FakeWindowsHost
from tests.lab_state import lab_state
from tests.outs import outs_of
from tests.providers.helpers import assert_only_failure, check_failures

T_TENANT = "A" * 40
T_OTHER = "B" * 40
HOSTILE = "x'\"; $(Remove-Item C:\\ -Recurse) `whoami` & calc\nnext"
WAP = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
       "username": "CONTOSO\\WapAdmin", "password": "wap-pw-123"}
SCRIPTS = "C:\\temp\\WAPConnector\\Setup\\Scripts\\"


def inputs(**kw: Any) -> dict[str, Any]:
    base = {"connection": dict(WAP), "tenant_portal_fqdn": "wapcomputer1.contoso.com",
            "tenant_api_fqdn": "wapcomputer1.contoso.com",
            "azure_stack_portal_fqdn": "portal.local.azurestack.external"}
    base.update(kw)
    return base


def changed_fields(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """The fields the provider's diff names besides the connection's and the owner's."""
    return [d.field for d in cs.compare(news, olds)]


def checked(props: dict[str, Any]) -> dict[str, Any]:
    result = cs.check(props)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


# ---------------------------------------------------------------------------------------------------------------
# A fake tenant portal computer answering the provider's commands like the contract (§5-§6) says.


def wap_host(*, installed: bool = False, url_rewrite: bool = True, bundle: bool = True,
             tenant_thumb: str = T_TENANT) -> FakeWindowsHost:
    """A FakeWindowsHost as a tenant portal computer: the tenant site bound to ``tenant_thumb``, URL Rewrite and the
    bundle's scripts present unless told, the connector installed and configured when ``installed``."""
    host = FakeWindowsHost()
    host.tenant_thumb = tenant_thumb
    if url_rewrite:
        host.dirs.add(locations.URL_REWRITE_KEY.lower())
    if bundle:
        for name in (cs.INSTALL_SCRIPT, cs.CERTIFICATES_SCRIPT, cs.CONFIGURE_SCRIPT):
            host.put_file(SCRIPTS + name, b"# script")
    if installed:
        host.install_connector()
        for site in host.sites.values():
            site["thumb"] = tenant_thumb
        host.app_settings = {"TenantPortalFQDN": "wapcomputer1.contoso.com",
                             "TenantAPIFQDN": "wapcomputer1.contoso.com",
                             "AzureStackPortalFQDN": "portal.local.azurestack.external"}
    return host


def observed(**kw: Any) -> tuple[FakeWindowsHost, cs.ConnectorSiteObserved | None]:
    wap = wap_host(**kw)
    return wap, cs.parse_read(*wap(_read_call()).outputs)


def _read_call() -> Call:
    from providers.transport import Call, to_statements

    return Call("h", "read", to_statements(cs.read_statements()))


def desired(tenant_portal_fqdn: str = "wapcomputer1.contoso.com",
            certificate_thumbprint: str | None = None) -> cs.ConnectorSiteInputs:
    return cs.ConnectorSiteInputs.parse(inputs(tenant_portal_fqdn=tenant_portal_fqdn,
                                               certificate_thumbprint=certificate_thumbprint))


DESIRED = desired()


# ---------------------------------------------------------------------------------------------------------------
# Pure tables


@pytest.mark.unit
def test_read_is_one_invocation_of_structured_commands() -> None:
    statements = cs.read_statements()
    assert [p.commands[0].name for p in statements] == ["Get-Website", "Get-WebConfigurationProperty", "Get-ChildItem"]
    assert all(p.commands[-1].name == "ConvertTo-Json" for p in statements)


@pytest.mark.unit
@pytest.mark.parametrize("output, expected", [
    (([], [], []), None),
    ((['[{"name":"MgmtSvc-TenantSite","state":"Started","bindings":{"Collection":[]}}]'], [], []), None),
    ((['{"name":"mgmtsvc-connector","state":"Stopped","bindings":{"Collection":{"protocol":"https",'
       '"bindingInformation":"*:40005:","certificateHash":"abc"}}}'], [], []),
     {"sites": {"MgmtSvc-Connector": ("Stopped", "ABC", 40005)}, "packages": set(), "settings": {}, "tenant": None}),
    (([], [], ['[{"PSChildName":"{x}","DisplayName":"Windows Azure Pack Connector for Azure Stack - Extension",'
               '"DisplayVersion":"1.0"},{"PSChildName":"{y}","DisplayName":"Something else","DisplayVersion":"1.0"}]']),
     {"sites": {}, "packages": {"windows azure pack connector for azure stack - extension"}, "settings": {},
      "tenant": None}),
    ((['[{"name":"MgmtSvc-TenantSite","state":"Started","bindings":{"Collection":[{"protocol":"https",'
       '"bindingInformation":"*:30081:","certificateHash":"' + T_TENANT + '"}]}},{"name":"MgmtSvc-Connector",'
       '"state":"Started","bindings":{"Collection":[]}}]'], ['[{"key":"TenantPortalFQDN","value":"a.b"},'
                                                             '{"key":"TenantAPIFQDN","value":null}]'], []),
     {"sites": {"MgmtSvc-Connector": ("Started", "", None)}, "packages": set(),
      "settings": {"TenantPortalFQDN": "a.b", "TenantAPIFQDN": ""}, "tenant": T_TENANT}),
])
def test_parse_read(output: tuple[Any, ...], expected: dict[str, Any] | None) -> None:
    got = cs.parse_read(*(Output(o) for o in output))
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert {n: (s.state, s.https_thumbprint, s.https_port) for n, s in got.sites.items()} == expected["sites"]
    assert set(got.packages) == expected["packages"]
    assert dict(got.app_settings) == expected["settings"]
    assert got.tenant_site_thumbprint == expected["tenant"]


def _mutate(f: Callable[[FakeWindowsHost], object]) -> cs.ConnectorSiteObserved | None:
    wap = wap_host(installed=True)
    f(wap)
    return cs.parse_read(*wap(_read_call()).outputs)


@pytest.mark.unit
@pytest.mark.parametrize("case, observed_state, desired, expected", [
    ("nothing there", None, DESIRED, ["install", "certificates", "configure"]),
    ("converged", _mutate(lambda w: None), DESIRED, []),
    ("site missing", _mutate(lambda w: w.sites.pop("MgmtSvc-ConnectorExtension")), DESIRED,
     ["install", "certificates", "configure"]),
    ("package missing", _mutate(lambda w: w.packages.discard(cs.CONNECTOR_PACKAGES[2])), DESIRED,
     ["install", "certificates", "configure"]),
    ("site stopped", _mutate(lambda w: w.sites["MgmtSvc-Connector"].update(state="Stopped")), DESIRED, ["start"]),
    ("missing and stopped", _mutate(lambda w: (w.sites.pop("MgmtSvc-ConnectorExtension"),
                                               w.sites["MgmtSvc-Connector"].update(state="Stopped"))), DESIRED,
     ["install", "start", "certificates", "configure"]),
    ("other cert bound", _mutate(lambda w: w.sites["MgmtSvc-ConnectorController"].update(thumb=T_OTHER)), DESIRED,
     ["certificates"]),
    ("explicit cert wanted", _mutate(lambda w: None),
     desired(certificate_thumbprint=T_OTHER),
     ["certificates"]),
    ("tenant cert changed", _mutate(lambda w: setattr(w, "tenant_thumb", T_OTHER)), DESIRED, ["certificates"]),
    ("no cert anywhere", _mutate(lambda w: setattr(w, "tenant_thumb", "")), DESIRED, ["certificates"]),
    ("fqdn changed", _mutate(lambda w: None), desired("tenant.contoso.com"), ["configure"]),
    ("fqdn case only", _mutate(lambda w: None), desired("WAPCOMPUTER1.contoso.com"), []),
    ("settings emptied", _mutate(lambda w: w.app_settings.update(TenantAPIFQDN="")), DESIRED, ["configure"]),
])
def test_plan(case: str, observed_state: cs.ConnectorSiteObserved | None, desired: cs.ConnectorSiteInputs,
              expected: list[str]) -> None:
    assert [s.kind for s in cs.ConnectorSiteProvider().plan(observed_state, desired)] == expected


def _outs(f: Callable[[FakeWindowsHost], object] = lambda w: None, **kw: Any) -> dict[str, Any]:
    return cs.observed_outputs(_mutate(f), "wapcomputer1.contoso.com") | kw


def _remove_extension_site(w: FakeWindowsHost) -> None:
    w.sites.pop("MgmtSvc-ConnectorExtension")
    w.packages.discard(cs.CONNECTOR_PACKAGES[1])


NEWS = {"tenant_portal_fqdn": "wapcomputer1.contoso.com", "tenant_api_fqdn": "wapcomputer1.contoso.com",
        "azure_stack_portal_fqdn": "portal.local.azurestack.external", "certificate_thumbprint": None}


@pytest.mark.unit
@pytest.mark.parametrize("case, olds, news, expected", [
    ("converged", _outs(), NEWS, []),
    ("site removed", _outs(_remove_extension_site), NEWS, ["sites", "packages"]),
    ("site stopped", _outs(lambda w: w.sites["MgmtSvc-Connector"].update(state="Stopped")), NEWS, ["sites"]),
    ("rebound", _outs(lambda w: w.sites["MgmtSvc-Connector"].update(thumb=T_OTHER)), NEWS,
     ["certificate_thumbprint"]),
    ("explicit thumbprint", _outs(), {**NEWS, "certificate_thumbprint": T_OTHER}, ["certificate_thumbprint"]),
    ("explicit equals bound", _outs(), {**NEWS, "certificate_thumbprint": T_TENANT}, []),
    ("api fqdn edited", _outs(lambda w: w.app_settings.update(TenantAPIFQDN="evil.contoso.com")), NEWS,
     ["tenant_api_fqdn"]),
    ("portal fqdn wanted", _outs(), {**NEWS, "azure_stack_portal_fqdn": "portal.east.azurestack.external"},
     ["azure_stack_portal_fqdn"]),
    ("unknown in preview", _outs(), {**NEWS, "tenant_portal_fqdn": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},
     ["tenant_portal_fqdn"]),
])
def test_changed_fields(case: str, olds: dict[str, Any], news: dict[str, Any], expected: list[str]) -> None:
    assert changed_fields({**olds, "__provider": "x"}, news) == expected


# ---------------------------------------------------------------------------------------------------------------
# check


BAD_INPUTS = [
    ("malformed fqdn", inputs(tenant_portal_fqdn="tenant..contoso.com"), "tenant_portal_fqdn",
     "not a fully qualified domain name"),
    ("single label", inputs(tenant_api_fqdn="tenantapi"), "tenant_api_fqdn", "not a fully qualified"),
    ("url instead of fqdn", inputs(azure_stack_portal_fqdn="https://portal.local.azurestack.external"),
     "azure_stack_portal_fqdn", "not a fully qualified"),
    ("bad thumbprint", inputs(certificate_thumbprint="12AB"), "certificate_thumbprint", "40 hexadecimal digits"),
    ("relative bundle", inputs(bundle_path="temp\\WAPConnector"), "bundle_path", "absolute local folder"),
    ("missing credential", inputs(connection={k: v for k, v in WAP.items() if k != "password"}), "connection",
     "password is required for ntlm"),
    ("unknown auth", inputs(connection={**WAP, "auth": "digest"}), "connection", "unknown auth"),
    ("credssp refused", inputs(connection={**WAP, "auth": "credssp"}), "connection", "only used for the"),
    ("the PEP", inputs(connection={**WAP, "auth": "credssp", "configuration_name": "PrivilegedEndpoint"}),
     "connection", "not on the privileged endpoint"),
    ("missing connection", {k: v for k, v in inputs().items() if k != "connection"}, "connection", "missing"),
]


@pytest.mark.unit
@pytest.mark.parametrize("case, props, prop, reason", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_check_refuses_without_touching_a_host(case: str, props: dict[str, Any], prop: str, reason: str) -> None:
    assert_only_failure(check_failures(cs.ConnectorSiteProvider, props), prop, reason, ("wap-pw-123",))


@pytest.mark.unit
@pytest.mark.parametrize("field", ["tenant_portal_fqdn", "tenant_api_fqdn", "azure_stack_portal_fqdn",
                                   "certificate_thumbprint", "bundle_path"])
def test_hostile_strings_are_refused_by_check_and_create(field: str) -> None:
    # Every ConnectorSite string input has a strict grammar (FQDN, thumbprint, local path), so a hostile value
    # never gets as far as a host: check says which property, create raises before any call.
    fake = FakeTransport(lambda call: pytest.fail(f"touched a host: {call.command}"))
    result = cs.check(inputs(**{field: HOSTILE}))
    assert [f.property for f in result.failures] == [field]
    with pytest.raises(ConfigurationError, match=field):
        cs.ConnectorSiteProvider(fake).create(inputs(**{field: HOSTILE}))
    assert fake.calls == []


@pytest.mark.unit
def test_check_normalises_thumbprint_and_bundle_path() -> None:
    out = checked(inputs(certificate_thumbprint="aa aa " + "a" * 36 + "\u200e",
                         bundle_path="D:\\stage\\WAPConnector\\"))
    assert (out["certificate_thumbprint"], out["bundle_path"]) == ("A" * 40, "D:\\stage\\WAPConnector")
    assert checked(inputs())["bundle_path"] == locations.BUNDLE_PATH


# ---------------------------------------------------------------------------------------------------------------
# Provider methods over FakeTransport


@pytest.mark.unit
def test_create_runs_the_three_scripts_by_full_path() -> None:
    wap = wap_host()
    fake = FakeTransport(wap)
    res = cs.ConnectorSiteProvider(fake).create(checked(inputs()))
    assert wap.ran == ["Install-Connector.ps1", "Configure-Certificates.ps1", "Configure-WapConnector.ps1"]
    names = [n for c in fake.calls for n in c.names]
    assert SCRIPTS + "Install-Connector.ps1" in names
    configure = next(c for c in fake.calls if c.names[0].endswith("Configure-WapConnector.ps1"))
    assert dict(configure.statements[0].commands[0].parameters) == {
        "TenantPortalFQDN": "wapcomputer1.contoso.com", "TenantAPIFQDN": "wapcomputer1.contoso.com",
        "AzureStackPortalFQDN": "portal.local.azurestack.external"}
    certs = next(c for c in fake.calls if c.names[0].endswith("Configure-Certificates.ps1"))
    assert dict(certs.statements[0].commands[0].parameters) == {}  # the tenant site's certificate by default
    probe = next(c for c in fake.calls if c.names == ["Test-Path"])
    assert locations.URL_REWRITE_KEY in probe.statements[0].commands[0].parameters["Path"]
    outs = outs_of(res)
    assert res.id == "connector@wapcomputer1.contoso.com"
    assert outs["endpoint"] == "https://wapcomputer1.contoso.com:40005"
    assert outs["bound_thumbprint"] == T_TENANT and outs["installed"] is True
    assert outs["sites"] == {s: "Started" for s in locations.CONNECTOR_SITES}
    assert changed_fields(outs, checked(inputs())) == []
    read_calls = [c for c in fake.calls if c.names[0] == "Get-Website"]
    assert len(read_calls) == 2 and all(c.idempotent for c in read_calls)  # before and after


@pytest.mark.unit
def test_create_on_a_converged_host_runs_nothing() -> None:
    wap = wap_host(installed=True)
    fake = FakeTransport(wap)
    cs.ConnectorSiteProvider(fake).create(checked(inputs()))
    assert wap.ran == [] and [c.names[0] for c in fake.calls] == ["Get-Website"]


@pytest.mark.unit
@pytest.mark.parametrize("wap, message", [
    (wap_host(url_rewrite=False), "URL Rewrite module is not installed"),
    (wap_host(bundle=False), "stage the WAPConnector bundle at bundle_path C:\\temp\\WAPConnector"),
])
def test_prerequisites_fail_clearly_before_any_script(wap: FakeWindowsHost, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        cs.ConnectorSiteProvider(FakeTransport(wap)).create(checked(inputs()))
    assert message in str(err.value) and "wapcomputer1.contoso.com" in str(err.value)
    assert wap.ran == []


@pytest.mark.unit
def test_update_runs_only_the_step_whose_input_changed() -> None:
    wap = wap_host(installed=True)
    p = cs.ConnectorSiteProvider(FakeTransport(wap))
    olds = outs_of(p.create(checked(inputs())))
    p.update("id", olds, checked(inputs(certificate_thumbprint=T_OTHER)))
    assert wap.ran == ["Configure-Certificates.ps1"]
    wap.ran.clear()
    p.update("id", olds, checked(inputs(certificate_thumbprint=T_OTHER, tenant_api_fqdn="api.contoso.com")))
    assert wap.ran == ["Configure-WapConnector.ps1"]
    assert wap.sites["MgmtSvc-Connector"]["thumb"] == T_OTHER
    assert wap.app_settings["TenantAPIFQDN"] == "api.contoso.com"


@pytest.mark.unit
def test_update_restarts_a_stopped_site() -> None:
    wap = wap_host(installed=True)
    wap.sites["MgmtSvc-ConnectorController"]["state"] = "Stopped"
    fake = FakeTransport(wap)
    res = cs.ConnectorSiteProvider(fake).update("id", {}, checked(inputs()))
    assert wap.ran == ["Start-Website"] and outs_of(res)["sites"]["MgmtSvc-ConnectorController"] == "Started"


@pytest.mark.unit
def test_failing_script_reports_host_and_step_and_rerun_converges() -> None:
    wap = wap_host()
    calls = {"n": 0}

    def flaky(call: Call) -> Any:
        if call.names[0].endswith("Configure-Certificates.ps1") and calls["n"] == 0:
            calls["n"] += 1
            return Failure("No certificate is bound to MgmtSvc-TenantSite; pass -Thumbprint.",
                           error_id="No certificate is bound to MgmtSvc-TenantSite; pass -Thumbprint.")
        return wap(call)

    p = cs.ConnectorSiteProvider(FakeTransport(flaky))
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(checked(inputs()))
    assert "wapcomputer1.contoso.com" in str(err.value) and "Configure-Certificates" in str(err.value)
    wap.ran.clear()
    res = p.create(checked(inputs()))
    assert wap.ran == ["Configure-Certificates.ps1", "Configure-WapConnector.ps1"]  # install not repeated
    assert outs_of(res)["installed"] is True


@pytest.mark.unit
def test_create_refuses_when_the_host_does_not_converge() -> None:
    deaf = wap_host()
    deaf.noop.add("Configure-WapConnector.ps1")
    with pytest.raises(ConnectorError, match="still differs"):
        cs.ConnectorSiteProvider(FakeTransport(deaf)).create(checked(inputs()))


@pytest.mark.unit
def test_read_reports_drift_and_gone() -> None:
    wap = wap_host()
    p = cs.ConnectorSiteProvider(FakeTransport(wap))
    outs = outs_of(p.create(checked(inputs())))
    wap.sites["MgmtSvc-Connector"]["thumb"] = T_OTHER
    drift = p.read("id", outs)
    assert outs_of(drift)["bound_thumbprint"] == T_OTHER
    assert changed_fields(outs_of(drift), checked(inputs())) == ["certificate_thumbprint"]
    assert p.diff("id", outs_of(drift), checked(inputs())).changes is True
    p.delete("id", outs)
    gone = p.read("id", outs)
    assert (gone.id, outs_of(gone)) == ("", {})


@pytest.mark.unit
def test_read_raises_on_unexpected_errors() -> None:
    denied = ErrorRecordInfo("Access is denied", "UnauthorizedAccess", "PermissionDenied")
    with pytest.raises(RemoteCommandFailed, match="Access is denied"):
        cs.ConnectorSiteProvider(FakeTransport(lambda call: Result(errors=[denied]))).read("id", checked(inputs()))


@pytest.mark.unit
def test_delete_uninstalls_the_packages_and_is_rerunnable() -> None:
    wap = wap_host(installed=True)
    fake = FakeTransport(wap)
    cs.ConnectorSiteProvider(fake).delete("id", checked(inputs()))
    cs.ConnectorSiteProvider(fake).delete("id", checked(inputs()))
    uninstall = [c for c in fake.calls if c.step == cs.STEP_UNINSTALL]
    assert len(uninstall) == 1  # the rerun finds nothing left to remove
    assert uninstall[0].names == ["Start-Process", "Select-Object"] * 3
    started = [p.commands[0] for p in uninstall[0].statements]
    assert [list(c.parameters["ArgumentList"]) for c in started] == [
        ["/x", code, "/qn", "/norestart"] for code in sorted(PRODUCT_CODES.values())]
    assert all(c.parameters["FilePath"] == "msiexec.exe" and set(c.switches) == {"Wait", "PassThru"} for c in started)
    assert wap.sites == {} and wap.packages == set()


@pytest.mark.unit
@pytest.mark.parametrize("exit_code, fails", [(0, False), (3010, False), (1605, False), (1618, True), (1603, True)])
def test_delete_judges_msiexec_exit_codes(exit_code: int, fails: bool) -> None:
    wap = wap_host(installed=True)

    def host(call: Call) -> Any:
        if call.step == cs.STEP_UNINSTALL:
            wap.sites.clear()
            wap.packages.clear()
            return Result(outputs=[[{"ExitCode": exit_code}]] * len(call.statements))
        return wap(call)

    provider = cs.ConnectorSiteProvider(FakeTransport(host))
    if fails:
        with pytest.raises(ConnectorError, match=f"exited with {exit_code}"):
            provider.delete("id", checked(inputs()))
    else:
        provider.delete("id", checked(inputs()))


@pytest.mark.unit
def test_diff_replaces_on_another_host_only() -> None:
    p = cs.ConnectorSiteProvider(FakeTransport(wap_host(installed=True)))
    olds = outs_of(p.create(checked(inputs())))
    assert p.diff("id", olds, checked(inputs())).changes is False
    assert p.diff("id", olds, checked(inputs(bundle_path="D:\\x"))).changes is False  # where it came from: no drift
    d = p.diff("id", olds, checked(inputs(connection={**WAP, "fqdn": "wapcomputer2.contoso.com"})))
    assert (d.changes, d.replaces) == (True, ["connection"])
    d = p.diff("id", olds, checked(inputs(connection={**WAP, "password": "rotated"})))
    assert (d.changes, d.replaces) == (True, [])


@pytest.mark.unit
def test_resource_marks_the_connection_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi.dynamic

    seen: dict[str, Any] = {}
    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__",
                        lambda self, provider, name, props, opts=None: seen.update(p=provider, props=props, opts=opts))
    cs.ConnectorSite("wap1", connection=WAP, tenant_portal_fqdn="a.b.c", tenant_api_fqdn="a.b.c",
                     azure_stack_portal_fqdn="p.b.c")
    assert "connection" in seen["opts"].additional_secret_outputs
    assert {"endpoint", "bound_thumbprint", "sites"} <= set(seen["props"])
    assert seen["props"]["bundle_path"] == locations.BUNDLE_PATH
    assert not vars(seen["p"])


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)


def sim_inputs(server: LabServer, host: str = "wapcomputer1", **kw: Any) -> dict[str, Any]:
    from tests.providers.conftest import host_connection

    fqdn = server.lab.host(host).fqdn
    return checked(inputs(connection=host_connection(server, host), tenant_portal_fqdn=fqdn, tenant_api_fqdn=fqdn,
                          **kw))


def conn_of(server: LabServer, host: str) -> HostConnection:
    from providers.transport import HostConnection
    from tests.providers.conftest import host_connection

    return HostConnection.parse(host_connection(server, host))


def invocations(server: LabServer, host: str, command: str | None = None, since: int = 0) -> list[dict[str, Any]]:
    return [i for i in lab_state(server).invocations(server.lab.host(host).name, command) if i["id"] > since]


def last_id(server: LabServer) -> int:
    return max([i["id"] for i in lab_state(server).invocations()] + [0])


def script(server: LabServer, host: str, name: str) -> cs.Command:
    return cs.Command(cs.script_path(locations.BUNDLE_PATH, name))


def import_second_certificate(server: LabServer, t: Transport, host: str) -> str:
    """A second CA-issued certificate with its key in the host's My store, imported the way an admin would."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from labsim.pki import lab_ca
    from providers.transport import Secret
    from tests.cert_factory import private_key

    fqdn = server.lab.host(host).fqdn
    cert_pem, key_pem = lab_ca(server.state_dir, server.lab).issue(fqdn, [fqdn])
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = private_key(key_pem)
    pfx = pkcs12.serialize_key_and_certificates(b"other", key, cert, None,
                                                serialization.BestAvailableEncryption(b"pfx-pass"))
    c = conn_of(server, host)
    t.run(c, "admin: stage pfx", [cs.Command("New-Item", {"Path": "C:\\temp", "ItemType": "Directory"}, ["Force"]),
                                  cs.Command("Set-Content", {"Path": "C:\\temp\\other.pfx", "Value": pfx,
                                                             "Encoding": "Byte"})])
    out = t.run(c, "admin: import pfx", cs.Command("Import-PfxCertificate", {
        "FilePath": "C:\\temp\\other.pfx", "CertStoreLocation": "Cert:\\LocalMachine\\My",
        "Password": Secret("pfx-pass")})).single()
    return out["Thumbprint"]


@pytest.mark.sim
def test_sim_lifecycle_with_out_of_band_changes(labsim: LabServer, sim: PsrpTransport) -> None:
    from tests.providers.conftest import stage_bundle

    host = "wapcomputer1"
    stage_bundle(labsim, host)
    p = cs.ConnectorSiteProvider(sim)
    props = sim_inputs(labsim, host)
    created = p.create(props)
    outs = outs_of(created)
    assert outs["installed"] is True and outs["endpoint"] == "https://wapcomputer1.contoso.com:40005"
    assert outs["sites"] == {s: "Started" for s in locations.CONNECTOR_SITES}
    assert outs["bound_thumbprint"] == outs["tenant_site_thumbprint"] is not None
    ran = [i["command"].rsplit("\\", 1)[-1] for i in invocations(labsim, host) if i["command"].endswith(".ps1")]
    assert ran == ["Install-Connector.ps1", "Configure-Certificates.ps1", "Configure-WapConnector.ps1"]

    read = p.read(created.id, outs)
    assert read.id == created.id and changed_fields(outs_of(read), props) == []
    assert p.diff(created.id, outs_of(read), props).changes is False
    c = conn_of(labsim, host)

    # 1. An administrator uninstalls one connector package (its site goes with it).
    sim.run(c, "admin: uninstall", cs.uninstall_statements([CONNECTOR_PRODUCTS[1][3]]))
    drift = p.read(created.id, outs_of(read))
    assert drift.id == created.id and outs_of(drift)["sites"]["MgmtSvc-ConnectorExtension"] == "Missing"
    assert changed_fields(outs_of(drift), props) == ["sites", "packages"]
    healed = outs_of(p.update(created.id, outs_of(drift), props))
    assert healed["installed"] is True and changed_fields(outs_of(p.read(created.id, healed)), props) == []

    # 2. ... rebinds another certificate.
    other = import_second_certificate(labsim, sim, host)
    sim.run(c, "admin: rebind", cs.Command(cs.script_path(locations.BUNDLE_PATH, cs.CERTIFICATES_SCRIPT),
                                           {"Thumbprint": other}))
    drift = p.read(created.id, healed)
    assert outs_of(drift)["bound_thumbprint"] == other
    assert changed_fields(outs_of(drift), props) == ["certificate_thumbprint"]
    mark = last_id(labsim)
    healed = outs_of(p.update(created.id, outs_of(drift), props))
    assert healed["bound_thumbprint"] == healed["tenant_site_thumbprint"] != other
    ran = [i["command"].rsplit("\\", 1)[-1] for i in invocations(labsim, host, since=mark) if ".ps1" in i["command"]]
    assert ran == ["Configure-Certificates.ps1"]

    # 3. ... edits an FQDN.
    sim.run(c, "admin: reconfigure", cs.Command(cs.script_path(locations.BUNDLE_PATH, cs.CONFIGURE_SCRIPT), {
        "TenantPortalFQDN": "wapcomputer1.contoso.com", "TenantAPIFQDN": "elsewhere.contoso.com",
        "AzureStackPortalFQDN": "portal.local.azurestack.external"}))
    drift = p.read(created.id, healed)
    assert outs_of(drift)["tenant_api_fqdn"] == "elsewhere.contoso.com"
    assert changed_fields(outs_of(drift), props) == ["tenant_api_fqdn"]
    healed = outs_of(p.update(created.id, outs_of(drift), props))

    # 4. ... stops a site.
    sim.run(c, "admin: stop", cs.Command("Stop-Website", {"Name": "MgmtSvc-ConnectorController"}))
    drift = p.read(created.id, healed)
    assert changed_fields(outs_of(drift), props) == ["sites"]
    healed = outs_of(p.update(created.id, outs_of(drift), props))
    assert healed["sites"]["MgmtSvc-ConnectorController"] == "Started"

    # An input change runs only its own step: the explicit certificate.
    mark = last_id(labsim)
    wanted = checked({**props, "certificate_thumbprint": other})
    assert changed_fields(healed, wanted) == ["certificate_thumbprint"]
    updated = outs_of(p.update(created.id, healed, wanted))
    assert updated["bound_thumbprint"] == other
    cert_call = [i for i in invocations(labsim, host, since=mark) if ".ps1" in i["command"]]
    assert [i["command"].rsplit("\\", 1)[-1] for i in cert_call] == ["Configure-Certificates.ps1"]
    assert dict(cert_call[0]["parameters"]) == {"Thumbprint": other}
    assert "pfx-pass" not in json.dumps(lab_state(labsim).invocations())
    assert "LabOnly-Wap1-1!" not in json.dumps(lab_state(labsim).invocations())

    p.delete(created.id, updated)
    assert p.read(created.id, updated).id == ""
    p.delete(created.id, updated)  # again: nothing left, no error


@pytest.mark.sim
@pytest.mark.parametrize("kind, command", [("command_terminating", "Configure-WapConnector.ps1"),
                                           ("command_error", "Configure-Certificates.ps1"),
                                           ("command_terminating", "Install-Connector.ps1")])
def test_sim_create_after_injected_failure_converges(labsim: LabServer, sim: PsrpTransport, kind: str,
                                                     command: str) -> None:
    from labsim.runtime import Fault
    from tests.providers.conftest import stage_bundle

    host = "wapcomputer2"
    stage_bundle(labsim, host)
    p = cs.ConnectorSiteProvider(sim)
    props = sim_inputs(labsim, host)
    lab_state(labsim).set_fault(Fault(host=labsim.lab.host(host).name, kind=kind, command=command))
    mark = last_id(labsim)
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(props)
    assert "wapcomputer2.contoso.com" in str(err.value) and command.split(".")[0] in str(err.value)
    lab_state(labsim).clear_faults(labsim.lab.host(host).name)
    outs = outs_of(p.create(props))
    assert outs["installed"] is True and changed_fields(outs_of(p.read("id", outs)), props) == []
    installs = [i for i in invocations(labsim, host, "Install-Connector.ps1", since=mark)]
    # An install that succeeded before the failure is not repeated by the re-run.
    assert len(installs) == (2 if command == "Install-Connector.ps1" else 1)
    p.delete("id", outs)


@pytest.mark.sim
def test_sim_missing_bundle_and_url_rewrite_are_reported_before_any_script(labsim: LabServer,
                                                                           sim: PsrpTransport) -> None:
    mark = last_id(labsim)
    with pytest.raises(ConfigurationError, match="stage the WAPConnector bundle"):
        cs.ConnectorSiteProvider(sim).create(sim_inputs(labsim, "wapcomputer1",
                                                        bundle_path="D:\\nowhere\\WAPConnector"))
    assert not [i for i in invocations(labsim, "wapcomputer1", since=mark) if ".ps1" in i["command"]]


@pytest.mark.sim
@pytest.mark.parametrize("case, props, prop, reason", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_sim_bad_inputs_record_no_invocation(labsim: LabServer, sim: PsrpTransport, case: str, props: dict[str, Any],
                                             prop: str, reason: str) -> None:
    before = last_id(labsim)
    assert [f.property for f in cs.check(props).failures] == [prop]
    with pytest.raises(ConfigurationError):
        cs.ConnectorSiteProvider(sim).create(props)
    assert last_id(labsim) == before


@pytest.mark.sim
@pytest.mark.parametrize("field", ["tenant_portal_fqdn", "tenant_api_fqdn", "azure_stack_portal_fqdn",
                                   "certificate_thumbprint", "bundle_path"])
def test_sim_hostile_strings_never_reach_the_host(labsim: LabServer, sim: PsrpTransport, field: str) -> None:
    before = last_id(labsim)
    props = {**sim_inputs(labsim), field: HOSTILE}
    assert [f.property for f in cs.check(props).failures] == [field]
    with pytest.raises(ConfigurationError):
        cs.ConnectorSiteProvider(sim).create(props)
    assert last_id(labsim) == before
