"""TenantApiTrust provider: parsers, plan, diff, and the provider methods against an in-memory host (unit); the
labsim versions are at the end of the module (sim)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from labsim.server import LabServer
from providers import tenant_api_trust as T
from providers.errors import ConnectorError, RemoteCommandFailed
from providers.facts import tenant_api
from providers.transport import Credential, Failure, FakeTransport, PsrpTransport
from tests.cert_factory import make_ca
from tests.fake_windows_host import FakeWindowsHost, params_of
from tests.outs import outs_of
from tests.providers.helpers import assert_check_finds, check_failures

HOSTILE = "a'b\"c$(Remove-Item C:\\ -Recurse);d`e\r\nf; & | @{x}"
HOSTILE_LINE = HOSTILE.replace("\r\n", " ")  # user names cannot hold line breaks: check refuses those
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
        "username": "CONTOSO\\WapAdmin", "password": "LabOnly-Wap1-1!"}
DEST = "C:\\temp\\WAPConnector"
SIGNING = make_ca("ADFS Signing")
SIGNING_B64 = base64.b64encode(SIGNING.cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization
                                                         .Encoding.DER)).decode()
REALM = "https://adfs.local.azurestack.external/adfs/6c1a0f4e-1111-2222-3333-444455556666/"


def data_file(realm: str = REALM, endpoint: str = "https://wapcomputer1.contoso.com:40005", cert: str = SIGNING_B64,
              **extra: Any) -> str:
    doc = {"CloudName": "AzurePack_1", "AzureStackCloudName": "AzureStack", "AzurePackConnectorEndpoint": endpoint,
           "AuthenticationIdentityProviderPartner": {"Realm": realm, "Certificate": cert}}
    doc.update(extra)
    return json.dumps(doc, indent=2)


def trust_props(**kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "data_file_content": data_file(), "data_file_name": "AzurePack-06-27-15-50.txt",
             "bundle_path": DEST, "sql_server": None, "sql_credential": None, "realm": None}
    props.update(kw)
    return props



def host_with(script: str) -> FakeWindowsHost:
    """An in-memory Windows host with one of the bundle's scripts staged under DEST."""
    h = FakeWindowsHost()
    h.put_file(f"{DEST}\\{script}", b"#")
    return h


@pytest.fixture
def host() -> FakeWindowsHost:
    return host_with("Setup\\Scripts\\Configure-TrustAzureStack.ps1")


# == pure parsers ===============================================================================================
@pytest.mark.unit
@pytest.mark.parametrize("cs, server", [
    ("Data Source=wapcomputer1;Initial Catalog=Microsoft.MgmtSvc.Store;Integrated Security=True", "wapcomputer1"),
    ("server = sql01.contoso.com\\WAP ; database=Microsoft.MgmtSvc.Store", "sql01.contoso.com\\WAP"),
    ("Initial Catalog=x;Address='tcp:sql02,1433';", "tcp:sql02,1433"),
    ("DATA SOURCE=\"SQL03\";User ID=sa", "SQL03"),
    ("Initial Catalog=x;Integrated Security=True", None),
    ("Data Source=;Initial Catalog=x", None),
    ("", None),
])
def test_parse_data_source(cs: str, server: str | None) -> None:
    assert tenant_api.parse_data_source(cs) == server


@pytest.mark.unit
@pytest.mark.parametrize("value, ok", [
    ("wapcomputer1", True), ("sql01.contoso.com", True), ("sql01\\WAP", True), ("sql01,1433", True),
    ("tcp:sql01.contoso.com\\WAP,1433", True), (".", True), ("(local)", True),
    ("sql01;Password=x", False), ("sql01=x", False), (HOSTILE, False), ("sql01,70000", False), ("", False),
    ("sql 01", False), ("sql01\\bad instance", False),
])
def test_sql_server_name(value: str, ok: bool) -> None:
    if ok:
        assert tenant_api.sql_server_name(value) == value
        assert tenant_api.store_connection_string(value).startswith(
            f"Data Source={value};Initial Catalog=Microsoft.MgmtSvc.Store")
    else:
        with pytest.raises(ValueError):
            tenant_api.sql_server_name(value)


@pytest.mark.unit
def test_parse_data_file() -> None:
    parsed = T.parse_data_file("\ufeff" + data_file())
    thumb = hashlib.sha1(SIGNING.cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization
                                                   .Encoding.DER)).hexdigest().upper()
    assert parsed == tenant_api.TrustData(REALM, "https://wapcomputer1.contoso.com:40005", thumb)
    assert parsed.certificate_thumbprint == SIGNING.thumbprint
    assert T.parse_data_file(data_file(cert="not base64!")).certificate_thumbprint is None
    with pytest.raises(ValueError, match="not JSON"):
        T.parse_data_file("AzurePackConnectorEndpoint: https://x")
    with pytest.raises(ValueError, match="has no AuthenticationIdentityProviderPartner.Realm"):
        T.parse_data_file(json.dumps({"AzurePackConnectorEndpoint": "https://x"}))


@pytest.mark.unit
@pytest.mark.parametrize("rows, expected", [
    ([], None),
    ([{"Namespace": "TenantAPI", "Name": "Authentication.IdentityProvider", "Value": "{}"}], None),
    ([{"Namespace": "TenantAPI", "Name": "Authentication.IdentityProvider.Secondary",
       "Value": json.dumps({"Realm": REALM, "Endpoint": "https://e", "Certificate": SIGNING_B64})}],
     tenant_api.TrustData(REALM, "https://e", SIGNING.thumbprint)),
    ([{"Namespace": "TenantAPI", "Name": "authentication.identityprovider.secondary", "Value": "garbage"}],
     tenant_api.TrustData("")),
    ([{"Namespace": "TenantAPI", "Name": "Authentication.IdentityProvider.Secondary", "Value": "[1]"}],
     tenant_api.TrustData("")),
])
def test_parse_trust_row(rows: list[Any], expected: T.TrustData | None) -> None:
    row = tenant_api.TrustSetting("wapcomputer1").parse(rows)
    assert (row.trust if row else None) == expected


def changed_fields(olds: dict[str, Any], news: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changed, replaced) fields of the provider's diff."""
    d = T.TenantApiTrustProvider(FakeTransport({})).diff("id", olds, news)
    return d.changed, list(d.replaces or [])


def _desired(**kw: Any) -> dict[str, Any]:
    d = {"realm": REALM, "connector_endpoint": "https://e", "token_signing_thumbprint": "AB", "data_file_sha256": "11"}
    d.update(kw)
    return d


@pytest.mark.unit
@pytest.mark.parametrize("observed, desired, steps", [
    (_desired(), _desired(), []),
    (_desired(realm=None, connector_endpoint=None, token_signing_thumbprint=None), _desired(), ["run_trust_script"]),
    (_desired(data_file_sha256=None), _desired(), ["stage_data_file", "run_trust_script"]),
    (_desired(token_signing_thumbprint="CD"), _desired(), ["run_trust_script"]),
    (_desired(connector_endpoint="x"), _desired(connector_endpoint=None), []),   # not in the data file: not compared
])
def test_plan_trust(observed: dict[str, Any], desired: dict[str, Any], steps: list[str]) -> None:
    assert [s.kind for s in T.steps_for(T.compare(desired, observed))] == steps


@pytest.mark.unit
@pytest.mark.parametrize("state, gone", [
    (T.TenantApiTrustObserved(None, None), True),
    (T.TenantApiTrustObserved(tenant_api.TrustData("https://other/"), None), True),
    (T.TenantApiTrustObserved(None, "11"), False),
    (T.TenantApiTrustObserved(tenant_api.TrustData(REALM), None), False),
])
def test_trust_is_gone(state: T.TenantApiTrustObserved, gone: bool) -> None:
    assert T.trust_is_gone(state, tenant_api.TrustData(REALM)) is gone


# == check ======================================================================================================
@pytest.mark.unit
@pytest.mark.parametrize("case, change, prop, words", [
    ("ok", {}, None, None),
    ("ok with credential", {"sql_credential": {"username": HOSTILE_LINE, "password": HOSTILE}}, None, None),
    ("user name with a newline", {"sql_credential": {"username": "sa\r\nx", "password": "x"}},
     "sql_credential.username", "not a user name"),
    ("ok unparseable file with realm", {"data_file_content": "opaque", "realm": REALM}, None, None),
    ("unparseable file", {"data_file_content": "opaque"}, "data_file_content", "not JSON"),
    ("realm mismatch", {"realm": "https://other/"}, "realm", "the data file's realm"),
    ("empty file", {"data_file_content": "  "}, "data_file_content", "is empty"),
    ("hostile file name", {"data_file_name": HOSTILE}, "data_file_name", "not a plain file name"),
    ("file name with folder", {"data_file_name": "..\\x.txt"}, "data_file_name", "not a plain file name"),
    ("hostile bundle path", {"bundle_path": HOSTILE}, "bundle_path", "not an absolute Windows"),
    ("hostile sql server", {"sql_server": HOSTILE}, "sql_server", "not a SQL Server name"),
    ("injection via sql server", {"sql_server": "sql01;User ID=sa"}, "sql_server", "not a SQL Server name"),
    ("sql port out of range", {"sql_server": "sql01,99999"}, "sql_server", "out of range"),
    ("credential without password", {"sql_credential": {"username": "sa"}}, "sql_credential.password", "required"),
    ("credential empty password", {"sql_credential": {"username": "sa", "password": ""}}, "sql_credential.password",
     "is empty"),
    ("credential unknown key", {"sql_credential": {"username": "sa", "password": "x", "domain": "y"}},
     "sql_credential.domain", "Extra inputs"),
    ("port out of range", {"connection": {**CONN, "port": 65536}}, "connection", "port"),
    ("missing credential", {"connection": {k: v for k, v in CONN.items() if k != "password"}}, "connection",
     "password is required"),
    ("unknown auth", {"connection": {**CONN, "auth": "ntlmv3"}}, "connection", "unknown auth"),
    ("malformed FQDN", {"connection": {**CONN, "fqdn": "wap$(x).contoso.com"}}, "connection", "not a host name"),
])
def test_trust_check(case: str, change: dict[str, Any], prop: str | None, words: str | None) -> None:
    found = check_failures(T.TenantApiTrustProvider, trust_props(**change))
    assert_check_finds(found, prop, words)
    assert all("LabOnly" not in r for _, r in found)


# == methods ===================================================================================================
ROW = ("TenantAPI", "Authentication.IdentityProvider.Secondary")


@pytest.mark.unit
def test_trust_lifecycle_discovers_sql_and_heals_a_deleted_row(host: FakeWindowsHost) -> None:
    p = T.TenantApiTrustProvider(host.transport)
    created = p.create(trust_props())
    assert outs_of(created)["sql_server_used"] == "wapcomputer1"
    assert json.loads(host.rows[ROW])["Realm"] == REALM
    path = f"{DEST}\\AzurePack-06-27-15-50.txt"
    assert host.file(path) == data_file().encode()
    assert host.script_params == [{"SqlServer": "wapcomputer1", "DataFile": path}]
    assert outs_of(created)["realm"] == REALM and outs_of(created)["token_signing_thumbprint"] == SIGNING.thumbprint
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id
    assert p.diff(created.id, outs_of(read), trust_props()).changes is False

    # An administrator deletes the trust row: drift on exactly the row's fields; update re-runs the script.
    del host.rows[ROW]
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id and outs_of(read)["realm"] is None
    changed, replaces = changed_fields(outs_of(read), trust_props())
    assert changed == ["realm", "connector_endpoint", "token_signing_thumbprint"] and replaces == []
    p.update(created.id, outs_of(read), trust_props())
    assert json.loads(host.rows[ROW])["Realm"] == REALM
    assert len(host.script_params) == 2

    p.delete(created.id, outs_of(created))
    assert ROW not in host.rows and host.file(path) is None
    assert p.read(created.id, outs_of(created)).id == ""
    p.delete(created.id, outs_of(created))


@pytest.mark.unit
def test_trust_changed_data_file_is_staged_and_applied(host: FakeWindowsHost) -> None:
    p = T.TenantApiTrustProvider(host.transport)
    created = p.create(trust_props())
    new_realm = "https://adfs.local.azurestack.external/adfs/99999999-0000-0000-0000-000000000000/"
    news = trust_props(data_file_content=data_file(realm=new_realm))
    changed, replaces = changed_fields(outs_of(p.read(created.id, outs_of(created))), news)
    assert changed == ["realm", "data_file_sha256"] and replaces == []
    p.update(created.id, outs_of(created), news)
    assert json.loads(host.rows[ROW])["Realm"] == new_realm


@pytest.mark.unit
def test_trust_delete_leaves_a_row_of_another_realm(host: FakeWindowsHost, capsys: pytest.CaptureFixture[str]) -> None:
    p = T.TenantApiTrustProvider(host.transport)
    created = p.create(trust_props())
    host.rows[ROW] = json.dumps({"Realm": "https://someone-else/"})
    p.delete(created.id, outs_of(created))
    assert ROW in host.rows
    assert "leaving it" in capsys.readouterr().err


@pytest.mark.unit
def test_trust_sql_credential_is_a_pscredential_and_never_displayed(host: FakeWindowsHost) -> None:
    p = T.TenantApiTrustProvider(host.transport)
    p.create(trust_props(sql_server="wapcomputer1.contoso.com",
                         sql_credential={"username": "sa", "password": "Sql-Secret-9!"}))
    cred = host.script_params[0]["SqlCredential"]
    assert isinstance(cred, Credential) and cred.user == "sa" and cred.password.reveal() == "Sql-Secret-9!"
    assert all("Sql-Secret-9!" not in c for c in host.transport.commands)
    assert params_of(host.transport, "Get-MgmtSvcSetting") == []   # given, not discovered
    # Read and delete use Integrated Security: the password never goes into a connection string.
    assert all("Sql-Secret-9!" not in str(v) for ps in params_of(host.transport, "Get-MgmtSvcDatabaseSetting")
               for v in ps.values())


@pytest.mark.unit
def test_trust_script_failure_halfway_then_rerun_converges(host: FakeWindowsHost) -> None:
    host.fail["Configure-TrustAzureStack.ps1"] = Failure("Login failed for user 'CONTOSO\\WapAdmin'.", "x")
    p = T.TenantApiTrustProvider(host.transport)
    with pytest.raises(RemoteCommandFailed, match="Configure-TrustAzureStack"):
        p.create(trust_props())
    assert host.file(f"{DEST}\\AzurePack-06-27-15-50.txt") is not None and ROW not in host.rows
    del host.fail["Configure-TrustAzureStack.ps1"]
    before = len(params_of(host.transport, "Set-Content"))
    p.create(trust_props())
    assert json.loads(host.rows[ROW])["Realm"] == REALM
    assert len(params_of(host.transport, "Set-Content")) == before, "the staged file was right: not sent again"


@pytest.mark.unit
@pytest.mark.parametrize("credential, words", [
    (None, "set wapconnector:clouds[1].sqlCredential to a credential (a name in wapconnector:credentials) whose "
           "SQL login is sysadmin on Microsoft.MgmtSvc.Store"),
    ({"username": "sa", "password": "Sql-Secret-9!"},
     "the SQL login of the credential wapconnector:clouds[1].sqlCredential names was refused"),
])
def test_trust_sql_access_refused_names_the_clouds_sql_credential_key(host: FakeWindowsHost,
                                                                      credential: dict[str, Any] | None,
                                                                      words: str) -> None:
    host.fail["Configure-TrustAzureStack.ps1"] = Failure(
        "The current user 'CONTOSO\\WapAdmin' does not have sysadmin access to Microsoft.MgmtSvc.Store on "
        "'wapcomputer1'. Run as a sysadmin or pass -SqlCredential.", "x")
    with pytest.raises(RemoteCommandFailed) as info:
        T.TenantApiTrustProvider(host.transport).create(trust_props(settings_key="wapconnector:clouds[1]",
                                                      sql_credential=credential))
    assert words in str(info.value), str(info.value)
    assert "Sql-Secret-9!" not in str(info.value)


@pytest.mark.unit
def test_trust_hostile_strings_reach_the_host_verbatim(host: FakeWindowsHost) -> None:
    # Hostile text inside the data file (a JSON string) and in the SQL user name: parameter values only.
    content = data_file(realm=REALM, CloudName=HOSTILE)
    T.TenantApiTrustProvider(host.transport).create(trust_props(data_file_content=content,
                                                  sql_credential={"username": HOSTILE_LINE, "password": HOSTILE}))
    assert host.file(f"{DEST}\\AzurePack-06-27-15-50.txt") == content.encode()
    cred = host.script_params[0]["SqlCredential"]
    assert cred.user == HOSTILE_LINE and cred.password.reveal() == HOSTILE


@pytest.mark.unit
def test_trust_discovery_without_a_server_is_a_clear_error(host: FakeWindowsHost) -> None:
    host.sql_server = ""
    with pytest.raises(ConnectorError, match="names no SQL server; set sql_server explicitly"):
        T.TenantApiTrustProvider(host.transport).create(trust_props())
    host.sql_server = "sql 01$(calc)"
    with pytest.raises(ConnectorError, match="set sql_server explicitly"):
        T.TenantApiTrustProvider(host.transport).create(trust_props())


@pytest.mark.unit
def test_trust_diff_replaces_on_identity_and_deletes_first() -> None:
    news = trust_props()
    olds = {**news, "realm": REALM, "connector_endpoint": "https://wapcomputer1.contoso.com:40005",
            "token_signing_thumbprint": SIGNING.thumbprint,
            "data_file_sha256": hashlib.sha256(news["data_file_content"].encode()).hexdigest().upper()}
    assert changed_fields(olds, news) == ([], [])
    d = T.TenantApiTrustProvider(FakeTransport({})).diff("id", olds, {**news, "sql_server": "sql02"})
    assert d.replaces == ["sql_server"] and d.delete_before_replace is True
    assert changed_fields(olds, {**news, "sql_credential": {"username": "a", "password": "b"}}) == (
        ["sql_credential"], [])


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)

from providers.transport import Command  # noqa: E402
from tests.providers import labsim_helpers as lab  # noqa: E402

STAGED: set[tuple[int, str]] = set()


def staged(server: LabServer, host: str) -> None:
    """The fake bundle on the host (once per lab and host), put there directly in the lab state."""
    from tests.providers.conftest import stage_bundle

    key = (id(server), host)
    if key not in STAGED:
        stage_bundle(server, host)
        STAGED.add(key)


@pytest.mark.sim
def test_sim_trust_lifecycle(labsim: LabServer, sim: PsrpTransport) -> None:
    staged(labsim, "wapcomputer1")
    content = data_file(CloudName=HOSTILE)
    props = trust_props(connection=lab.conn_dict(labsim, "wapcomputer1"), data_file_content=content)
    p = T.TenantApiTrustProvider(sim)
    mark = lab.last_id(labsim)
    created = p.create(props)
    assert outs_of(created)["sql_server_used"] == "wapcomputer1"     # discovered from ManagementStore
    assert outs_of(created)["realm"] == REALM and outs_of(created)["token_signing_thumbprint"] == SIGNING.thumbprint
    script = lab.invocations(labsim, "wapcomputer1", "Configure-TrustAzureStack.ps1", since=mark)
    assert [lab.params(i) for i in script] == [{"SqlServer": "wapcomputer1",
                                               "DataFile": f"{DEST}\\AzurePack-06-27-15-50.txt"}]
    # The data file (with its hostile text) arrived byte for byte.
    got = lab.admin(labsim, "wapcomputer1", "read the data file",
                    Command("Get-Content", {"Path": f"{DEST}\\AzurePack-06-27-15-50.txt", "Encoding": "Byte"}, ["Raw"]))
    assert got.single() == content.encode()
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id and p.diff(created.id, outs_of(read), props).changes is False

    # An administrator deletes the trust row.
    cs = tenant_api.store_connection_string("wapcomputer1")
    lab.admin(labsim, "wapcomputer1", "delete the trust row", Command("Set-MgmtSvcDatabaseSetting", {
            "ConnectionString": cs, "Namespace": "TenantAPI", "Name": "Authentication.IdentityProvider.Secondary",
            "Value": ""}, ["Force"]))
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id and outs_of(read)["realm"] is None
    assert changed_fields(outs_of(read), props) == (["realm", "connector_endpoint", "token_signing_thumbprint"],
                                                        [])
    updated = p.update(created.id, outs_of(read), props)
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), props).changes is False

    p.delete(created.id, outs_of(updated))
    assert p.read(created.id, outs_of(updated)).id == ""
    rows = lab.admin(labsim, "wapcomputer1", "look for the row", Command("Get-MgmtSvcDatabaseSetting", {
            "ConnectionString": cs, "Namespace": "TenantAPI", "Name": ["Authentication.IdentityProvider.Secondary"]}))
    assert rows.output == []
    p.delete(created.id, outs_of(updated))


@pytest.mark.sim
def test_sim_trust_new_data_file_name_rewrites_the_row_in_place(labsim: LabServer, sim: PsrpTransport) -> None:
    # A connector rerun writes a newly timestamped output file: the trust updates in place, the row is never
    # emptied, and the old staged copy is removed once the row reads the new one.
    staged(labsim, "wapcomputer1")
    props = trust_props(connection=lab.conn_dict(labsim, "wapcomputer1"))
    p = T.TenantApiTrustProvider(sim)
    created = p.create(props)
    news = {**props, "data_file_name": "AzurePack-11-25-10-59.txt"}
    d = p.diff(created.id, outs_of(p.read(created.id, outs_of(created))), news)
    assert d.changes and d.replaces == []
    mark = lab.last_id(labsim)
    updated = p.update(created.id, outs_of(created), news)
    ran = lab.invocations(labsim, "wapcomputer1", since=mark)
    assert [lab.params(i) for i in ran if i["command"].endswith("Configure-TrustAzureStack.ps1")] == [
            {"SqlServer": "wapcomputer1", "DataFile": f"{DEST}\\AzurePack-11-25-10-59.txt"}]
    assert not [i for i in ran if i["command"] == "Set-MgmtSvcDatabaseSetting"], "the row was emptied"
    assert outs_of(updated)["data_file_path"] == f"{DEST}\\AzurePack-11-25-10-59.txt"
    exists = lab.admin(labsim, "wapcomputer1", "look for the data files", Command("Test-Path", {"Path": [
            f"{DEST}\\AzurePack-06-27-15-50.txt", f"{DEST}\\AzurePack-11-25-10-59.txt"]}))
    assert exists.output == [False, True]
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), news).changes is False
    p.delete(created.id, outs_of(updated))
    assert p.read(created.id, outs_of(updated)).id == ""


@pytest.mark.sim
def test_sim_trust_with_sql_credential_never_logs_the_password(labsim: LabServer, sim: PsrpTransport) -> None:
    staged(labsim, "wapcomputer2")
    user = labsim.lab.host("wapcomputer2").users[0]
    props = trust_props(connection=lab.conn_dict(labsim, "wapcomputer2"), sql_server="wapcomputer2",
                        sql_credential={"username": user.name, "password": user.password},
                        data_file_name="AzurePack-cred.txt")
    p = T.TenantApiTrustProvider(sim)
    mark = lab.last_id(labsim)
    created = p.create(props)
    (inv,) = lab.invocations(labsim, "wapcomputer2", "Configure-TrustAzureStack.ps1", since=mark)
    assert lab.params(inv)["SqlCredential"] == "****"
    assert user.password not in lab.all_invocations_text(labsim)
    p.delete(created.id, outs_of(created))


@pytest.mark.sim
def test_sim_trust_wrong_sql_password_is_a_clear_error_then_converges(labsim: LabServer, sim: PsrpTransport) -> None:
    staged(labsim, "wapcomputer2")
    user = labsim.lab.host("wapcomputer2").users[0]
    p = T.TenantApiTrustProvider(sim)
    bad = trust_props(connection=lab.conn_dict(labsim, "wapcomputer2"), sql_server="wapcomputer2",
                      sql_credential={"username": user.name, "password": "Wrong-Pass-1"})
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(bad)
    assert "Login failed" in str(err.value) and "Wrong-Pass-1" not in str(err.value)
    lab.set_fault(labsim, "wapcomputer2", "command_error", "Configure-TrustAzureStack.ps1")
    with pytest.raises(RemoteCommandFailed):
        p.create(trust_props(connection=lab.conn_dict(labsim, "wapcomputer2")))
    lab.clear_faults(labsim, "wapcomputer2")
    created = p.create(trust_props(connection=lab.conn_dict(labsim, "wapcomputer2")))
    assert outs_of(created)["realm"] == REALM
    p.delete(created.id, outs_of(created))
