"""Certificate provider: check's rules, read parsing, plan, diff, and create/read/update/delete against an
in-memory host (unit), then against labsim over loopback (sim, at the end of the module)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from labsim.server import LabServer
from providers import certificate as C
from providers.errors import ConfigurationError, ConnectorError, RemoteCommandFailed
from providers.transport import Failure, PsrpTransport
from tests.cert_factory import NOW, Issued, make_ca, make_leaf
from tests.fake_windows_host import FakeWindowsHost, params_of
from tests.outs import outs_of
from tests.providers.helpers import check_failures

PASSWORD = "Pfx-Pass-123"
HOSTILE = "a'b\"c$(Remove-Item C:\\ -Recurse);d`e\r\nf; & | @{x}"
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
        "username": "CONTOSO\\WapAdmin", "password": "LabOnly-Wap1-1!"}

CA = make_ca()
LEAF = make_leaf(CA)


def my_props(leaf: Issued = LEAF, password: str = PASSWORD, **kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "store": "My", "cert_pem": leaf.pem, "pfx_base64": leaf.pfx_base64(password),
             "pfx_password": password, "serves_fqdns": ["wapcomputer1.contoso.com"], "expiry_threshold_days": 30,
             "staging_dir": "C:\\temp"}
    props.update(kw)
    return props


def ca_props(cert: Issued = CA, store: str = "CA", **kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "store": store, "cert_pem": cert.pem, "serves_fqdns": [],
             "expiry_threshold_days": 30, "staging_dir": "C:\\temp"}
    props.update(kw)
    return props


def failures(props: dict[str, Any]) -> list[tuple[str, str]]:
    return check_failures(C.CertificateProvider, props)


# -- check: one clear property error per problem, no host call ----------------------------------------------------


@pytest.mark.unit
def test_check_accepts_a_ca_issued_leaf_with_its_pfx() -> None:
    assert failures(my_props()) == []


@pytest.mark.unit
def test_check_accepts_a_self_signed_root_for_the_ca_and_root_stores() -> None:
    assert failures(ca_props(store="CA")) == []
    assert failures(ca_props(store="Root")) == []


@pytest.mark.unit
@pytest.mark.parametrize("case, props, prop, words", [
    ("self-signed leaf", lambda: my_props(make_leaf(None)), "cert_pem", "self-signed"),
    ("self-signed leaf in CA", lambda: ca_props(make_leaf(None)), "cert_pem", "self-signed"),
    ("expired", lambda: my_props(make_leaf(CA, not_before=NOW - dt.timedelta(days=400),
                                           not_after=NOW - dt.timedelta(days=1))), "cert_pem", "expired on"),
    ("expiring soon", lambda: my_props(make_leaf(CA, not_after=NOW + dt.timedelta(days=10))), "cert_pem",
     "within expiry_threshold_days (30)"),
    ("not yet valid", lambda: my_props(make_leaf(CA, not_before=NOW + dt.timedelta(days=3))), "cert_pem",
     "not valid before"),
    ("wrong key", lambda: my_props(pfx_base64=LEAF.pfx_base64(PASSWORD, key=make_leaf(CA).key)), "pfx_base64",
     "does not belong to certificate"),
    ("pfx of another cert", lambda: my_props(pfx_base64=make_leaf(CA).pfx_base64(PASSWORD)), "pfx_base64",
     "does not belong"),
    ("wrong pfx password", lambda: my_props(pfx_password="nope"), "pfx_password", "does not open"),
    ("pfx not base64", lambda: my_props(pfx_base64="***"), "pfx_base64", "not base64"),
    ("SAN mismatch", lambda: my_props(serves_fqdns=["tenant.contoso.com"]), "serves_fqdns",
     "does not cover tenant.contoso.com"),
    ("malformed FQDN", lambda: my_props(serves_fqdns=["wap computer"]), "serves_fqdns[0]",
     "not a fully qualified domain name"),
    ("My without pfx", lambda: my_props(pfx_base64=None), "pfx_base64", "required for store My"),
    ("pfx for CA store", lambda: ca_props(pfx_base64=CA.pfx_base64("x")), "pfx_base64", "only for store My"),
    ("CA certificate in My", lambda: my_props(CA, pfx_base64=CA.pfx_base64(PASSWORD), serves_fqdns=[]), "store",
     "is a CA certificate"),
    ("unknown store", lambda: my_props(store="Personal"), "store", "'My', 'CA' or 'Root'"),
    ("chain instead of one cert", lambda: my_props(cert_pem=LEAF.pem + CA.pem), "cert_pem", "exactly one"),
    ("threshold out of range", lambda: my_props(expiry_threshold_days=-1), "expiry_threshold_days", "greater"),
    ("hostile staging dir", lambda: my_props(staging_dir=HOSTILE), "staging_dir", "not an absolute Windows"),
    ("hostile FQDN", lambda: my_props(serves_fqdns=[HOSTILE]), "serves_fqdns[0]", "not a fully qualified"),
    ("hostile PEM", lambda: my_props(cert_pem=HOSTILE), "cert_pem", "exactly one PEM"),
    ("port out of range", lambda: my_props(connection={**CONN, "port": 70000}), "connection", "port"),
    ("missing credential", lambda: my_props(connection={k: v for k, v in CONN.items() if k != "password"}),
     "connection", "password is required"),
    ("unknown auth", lambda: my_props(connection={**CONN, "auth": "magic"}), "connection", "unknown auth"),
    ("malformed host FQDN", lambda: my_props(connection={**CONN, "fqdn": "wap_01..x"}), "connection",
     "not a host name"),
    ("no connection", lambda: {k: v for k, v in my_props().items() if k != "connection"}, "connection", "missing"),
])
def test_check_refuses(case: str, props: Callable[[], dict[str, Any]], prop: str, words: str) -> None:
    found = failures(props())
    assert any(p == prop and words in r for p, r in found), found


@pytest.mark.unit
def test_check_reports_each_problem_once() -> None:
    expired_self_signed = make_leaf(None, not_before=NOW - dt.timedelta(days=9), not_after=NOW - dt.timedelta(days=1))
    found = failures(my_props(expired_self_signed, serves_fqdns=["a.contoso.com", "b.contoso.com"]))
    props = sorted(p for p, _ in found)
    assert props == ["cert_pem", "cert_pem", "serves_fqdns", "serves_fqdns"], found


@pytest.mark.unit
def test_check_never_echoes_the_password() -> None:
    found = failures(my_props(pfx_password="Wrong-Secret-42"))
    assert found and all("Wrong-Secret-42" not in r for _, r in found)


@pytest.mark.unit
def test_check_waits_for_unknown_values_in_preview() -> None:
    from providers.base import UNKNOWN
    assert failures(my_props(cert_pem=UNKNOWN, pfx_base64=UNKNOWN, pfx_password=UNKNOWN)) == []


# -- read parsing and plan (pure) ------------------------------------------------------------------------------
def _obj(store: str, thumb: str, key: bool = True) -> dict[str, Any]:
    return {"Thumbprint": thumb, "HasPrivateKey": key, "NotAfter": "2030-01-01T00:00:00Z",
            "PSPath": f"Microsoft.PowerShell.Security\\Certificate::LocalMachine\\{store}\\{thumb}"}


@pytest.mark.unit
@pytest.mark.parametrize("store, output, expected", [
    ("My", [], None),
    ("My", [_obj("My", "AB")], C.CertificateObserved("My", True, "2030-01-01T00:00:00Z")),
    ("My", [_obj("My", "AB", key=False)], C.CertificateObserved("My", False, "2030-01-01T00:00:00Z")),
    ("My", [_obj("My", "CD")], None),                     # another certificate: not ours
    ("CA", [_obj("Root", "AB")], C.CertificateObserved("Root", True, "2030-01-01T00:00:00Z")),
    ("CA", [_obj("Root", "AB"), _obj("CA", "AB")], C.CertificateObserved("CA", True, "2030-01-01T00:00:00Z")),
    ("Root", [_obj("CA", "ab")], C.CertificateObserved("CA", True, "2030-01-01T00:00:00Z")),
    ("My", [{"Thumbprint": "AB", "HasPrivateKey": True, "NotAfter": "/Date(1893456000000)/"}],
     C.CertificateObserved("My", True, "2030-01-01T00:00:00+00:00")),
])
def test_parse_read(store: str, output: list[Any], expected: C.CertificateObserved | None) -> None:
    # The read's statements, one per accepted store: each object goes to the store its PSPath names.
    def where(obj: dict[str, Any]) -> str:
        return obj["PSPath"].split("::", 1)[1].split("\\")[1] if "PSPath" in obj else store
    outputs = [[o for o in output if where(o) == s] for s in C.ACCEPTED_STORES[store]]
    assert C.parse_read(store, "AB", outputs) == expected


@pytest.mark.unit
def test_read_statements_look_in_both_ca_stores_in_one_call() -> None:
    stmts = C.read_statements("CA", "AB")
    assert [s.commands[0].parameters["Path"] for s in stmts] == ["Cert:\\LocalMachine\\CA\\AB",
                                                                 "Cert:\\LocalMachine\\Root\\AB"]
    assert [s.commands[0].parameters["Path"] for s in C.read_statements("My", "AB")] == ["Cert:\\LocalMachine\\My\\AB"]


@pytest.mark.unit
@pytest.mark.parametrize("store, observed, steps", [
    ("My", None, ["import"]),
    ("My", C.CertificateObserved("My", True, None), []),
    ("My", C.CertificateObserved("My", False, None), ["remove", "import"]),
    ("CA", C.CertificateObserved("Root", False, None), []),
    ("Root", None, ["import"]),
])
def test_plan(store: str, observed: C.CertificateObserved | None, steps: list[str]) -> None:
    inputs = C.CertificateInputs.parse(my_props() if store == "My" else ca_props(store=store))
    assert [s.kind for s in C.CertificateProvider().plan(observed, inputs)] == steps


# -- diff: observed (olds) against desired (news), field by field --------------------------------------------------
def changed_fields(olds: dict[str, Any], news: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changed, replaced) fields of the provider's diff."""
    d = C.CertificateProvider().diff("id", olds, news)
    return d.changed, list(d.replaces or [])


def _state(props: dict[str, Any], **observed: Any) -> dict[str, Any]:
    outs = {**props, "thumbprint": C.desired_thumbprint(props), "found_in_store": props["store"],
            "has_private_key": props["store"] == "My", "adopted": False, "__provider": "pickle"}
    outs.update(observed)
    return outs


@pytest.mark.unit
@pytest.mark.parametrize("change, expected_changed, expected_replaces, dbr", [
    (lambda o, n: None, [], [], False),
    (lambda o, n: o.update(has_private_key=False), ["has_private_key"], [], False),
    (lambda o, n: n.update(store="Root", pfx_base64=None, pfx_password=None), ["store"], ["store"], True),
    (lambda o, n: n.update(pfx_base64=LEAF.pfx_base64("other"), pfx_password="other"), [], [], False),
    (lambda o, n: n.update(cert_pem=make_leaf(CA).pem), ["cert_pem"], ["cert_pem"], False),
    (lambda o, n: n.update(connection={**CONN, "fqdn": "wapcomputer2.contoso.com"}), ["connection"],
     ["connection"], True),
    (lambda o, n: n.update(connection={**CONN, "address": "127.0.0.9"}), ["connection"], [], False),
    (lambda o, n: n.update(serves_fqdns=[]), ["serves_fqdns"], [], False),
])
def test_diff(change: Callable[[dict[str, Any], dict[str, Any]], object], expected_changed: list[str],
              expected_replaces: list[str], dbr: bool) -> None:
    news = my_props()
    olds = _state(news)
    change(olds, news)
    changed, replaces = changed_fields(olds, news)
    assert changed == expected_changed and replaces == expected_replaces
    d = C.CertificateProvider().diff("id", olds, news)
    assert d.changes is bool(expected_changed) and d.replaces == expected_replaces
    assert d.delete_before_replace is dbr


@pytest.mark.unit
def test_diff_with_unknown_certificate_in_preview_is_a_replace() -> None:
    from providers.base import UNKNOWN
    news = my_props()
    olds = _state(news)
    changed, replaces = changed_fields(olds, {**news, "cert_pem": UNKNOWN})
    assert "cert_pem" in changed and "cert_pem" in replaces


# -- provider methods against the in-memory host ---------------------------------------------------------------
@pytest.fixture
def host() -> FakeWindowsHost:
    return FakeWindowsHost()


@pytest.mark.unit
def test_create_my_imports_the_pfx_with_a_securestring_and_removes_the_staged_file(host: FakeWindowsHost) -> None:
    p = C.CertificateProvider(host.transport)
    created = p.create(my_props())
    assert created.id == f"wapcomputer1.contoso.com:My:{LEAF.thumbprint}"
    assert host.certs == {("My", LEAF.thumbprint): True}
    assert host.pfx_passwords == [PASSWORD]
    assert host.file(f"C:\\temp\\{LEAF.thumbprint}.pfx") is None, "the staged PFX must be removed"
    assert outs_of(created)["has_private_key"] is True and outs_of(created)["adopted"] is False
    # The password never appears in the display form of any command.
    assert all(PASSWORD not in c for c in host.transport.commands)
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id
    assert p.diff(created.id, outs_of(read), my_props()).changes is False


@pytest.mark.unit
def test_create_ca_stages_the_der_and_imports_into_the_store(host: FakeWindowsHost) -> None:
    created = C.CertificateProvider(host.transport).create(ca_props())
    assert host.certs == {("CA", CA.thumbprint): False}
    imports = params_of(host.transport, "Import-Certificate")
    assert imports == [{"FilePath": f"C:\\temp\\{CA.thumbprint}.cer", "CertStoreLocation": "Cert:\\LocalMachine\\CA"}]
    assert outs_of(created)["found_in_store"] == "CA"


@pytest.mark.unit
def test_create_adopts_a_certificate_already_in_root_and_delete_leaves_it(host: FakeWindowsHost) -> None:
    host.certs[("Root", CA.thumbprint)] = False
    p = C.CertificateProvider(host.transport)
    created = p.create(ca_props())
    assert params_of(host.transport, "Import-Certificate") == []
    assert outs_of(created)["adopted"] is True and outs_of(created)["found_in_store"] == "Root"
    p.delete(created.id, outs_of(created))
    assert ("Root", CA.thumbprint) in host.certs


@pytest.mark.unit
def test_read_after_out_of_band_removal_says_gone_and_create_heals(host: FakeWindowsHost) -> None:
    p = C.CertificateProvider(host.transport)
    created = p.create(ca_props())
    del host.certs[("CA", CA.thumbprint)]
    assert p.read(created.id, outs_of(created)).id == ""
    p.create(ca_props())
    assert ("CA", CA.thumbprint) in host.certs


@pytest.mark.unit
def test_lost_private_key_is_drift_named_has_private_key_and_update_reimports(host: FakeWindowsHost) -> None:
    p = C.CertificateProvider(host.transport)
    created = p.create(my_props())
    host.certs[("My", LEAF.thumbprint)] = False          # re-imported from a .cer by an administrator
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["has_private_key"] is False
    assert changed_fields(outs_of(read), my_props()) == (["has_private_key"], [])
    updated = p.update(created.id, outs_of(read), my_props())
    assert host.certs[("My", LEAF.thumbprint)] is True and outs_of(updated)["has_private_key"] is True
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), my_props()).changes is False


@pytest.mark.unit
def test_delete_removes_it_and_read_says_gone(host: FakeWindowsHost) -> None:
    p = C.CertificateProvider(host.transport)
    created = p.create(my_props())
    p.delete(created.id, outs_of(created))
    assert host.certs == {}
    assert p.read(created.id, outs_of(created)).id == ""
    p.delete(created.id, outs_of(created))                   # deleting again is fine


@pytest.mark.unit
def test_failed_import_still_removes_the_staged_pfx_and_a_rerun_converges(host: FakeWindowsHost) -> None:
    host.fail["Import-PfxCertificate"] = Failure("The PFX file could not be read.", "CryptographicException")
    p = C.CertificateProvider(host.transport)
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(my_props())
    assert "wapcomputer1.contoso.com" in str(err.value) and "install certificate" in str(err.value)
    assert host.file(f"C:\\temp\\{LEAF.thumbprint}.pfx") is None
    del host.fail["Import-PfxCertificate"]
    p.create(my_props())
    assert host.certs == {("My", LEAF.thumbprint): True}


@pytest.mark.unit
def test_import_that_does_not_land_is_reported(host: FakeWindowsHost) -> None:
    host.fail_after["Import-Certificate"] = 0
    with pytest.raises(RemoteCommandFailed):
        C.CertificateProvider(host.transport).create(ca_props())


@pytest.mark.unit
def test_hostile_password_reaches_the_host_verbatim_as_a_securestring(host: FakeWindowsHost) -> None:
    leaf = make_leaf(CA)
    C.CertificateProvider(host.transport).create(my_props(leaf, password=HOSTILE))
    assert host.pfx_passwords == [HOSTILE]
    assert all(HOSTILE not in c for c in host.transport.commands)


@pytest.mark.unit
def test_secret_outputs_are_declared() -> None:
    assert C.SECRET_OUTPUTS == ("pfx_base64", "pfx_password")


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)

from cryptography.hazmat.primitives import serialization  # noqa: E402

from providers.transport import Command  # noqa: E402
from tests.providers import labsim_helpers as lab  # noqa: E402


def sim_my(server: LabServer, leaf: Issued, password: str = PASSWORD, host: str = "wapcomputer1") -> dict[str, Any]:
    return my_props(leaf, password=password, connection=lab.conn_dict(server, host),
                    serves_fqdns=[server.lab.host(host).fqdn])


@pytest.mark.sim
def test_sim_ca_certificate_on_wasp_lifecycle(labsim: LabServer, sim: PsrpTransport) -> None:
    ca = make_ca("Connector Issuing CA (sim)")
    props = ca_props(ca, store="CA", connection=lab.conn_dict(labsim, "AzS-WASP01"))
    p = C.CertificateProvider(sim)
    created = p.create(props)
    assert outs_of(created)["found_in_store"] == "CA" and outs_of(created)["adopted"] is False
    read = p.read(created.id, outs_of(created))
    assert read.id == created.id and p.diff(created.id, outs_of(read), props).changes is False
    # The staged .cer is gone again.
    assert lab.admin(labsim, "AzS-WASP01", "look for the staged file",
                     Command("Test-Path", {"Path": f"C:\\temp\\{ca.thumbprint}.cer"})).single() is False

    # An administrator removes the CA certificate: read says gone; create (what the engine runs next) heals.
    lab.admin(labsim, "AzS-WASP01", "remove the CA certificate",
              Command("Remove-Item", {"Path": f"Cert:\\LocalMachine\\CA\\{ca.thumbprint}"}))
    assert p.read(created.id, outs_of(created)).id == ""
    healed = p.create(props)
    assert outs_of(p.read(healed.id, outs_of(healed)))["found_in_store"] == "CA"

    p.delete(healed.id, outs_of(healed))
    assert p.read(healed.id, outs_of(healed)).id == ""
    p.delete(healed.id, outs_of(healed))


@pytest.mark.sim
def test_sim_root_certificate_already_trusted_is_adopted_not_removed(labsim: LabServer, sim: PsrpTransport) -> None:
    """Every lab host trusts the lab CA in Root (baseline): declaring it for CA adopts it [inf: CA or Root]."""
    from labsim.pki import lab_ca

    ca_pem = lab_ca(labsim.state_dir, labsim.lab).cert_pem
    pem = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
    props = ca_props(store="CA", cert_pem=pem, connection=lab.conn_dict(labsim, "AzS-WASP01"))
    p = C.CertificateProvider(sim)
    created = p.create(props)
    assert outs_of(created)["adopted"] is True and outs_of(created)["found_in_store"] == "Root"
    p.delete(created.id, outs_of(created))
    assert p.read(created.id, outs_of(created)).id == created.id


@pytest.mark.sim
def test_sim_my_certificate_lost_key_is_drift_and_update_heals(labsim: LabServer, sim: PsrpTransport) -> None:
    leaf = make_leaf(CA, names=("wapcomputer1.contoso.com",))
    props = sim_my(labsim, leaf, password=HOSTILE)   # a hostile password works only if it arrives verbatim
    p = C.CertificateProvider(sim)
    mark = lab.last_id(labsim)
    created = p.create(props)
    assert outs_of(created)["has_private_key"] is True
    imports = lab.invocations(labsim, "wapcomputer1", "Import-PfxCertificate", since=mark)
    assert len(imports) == 1 and lab.params(imports[0])["Password"] == "****"
    sent = lab.all_invocations_text(labsim)
    assert HOSTILE not in sent and leaf.pfx_base64(HOSTILE) not in sent
    read = p.read(created.id, outs_of(created))
    assert p.diff(created.id, outs_of(read), props).changes is False

    # An administrator replaces it with the bare certificate (no key), as `certutil -addstore My x.cer` would.
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    lab.admin(labsim, "wapcomputer1", "reimport without key", [
            Command("Remove-Item", {"Path": f"Cert:\\LocalMachine\\My\\{leaf.thumbprint}"}),
            Command("Set-Content", {"Path": "C:\\temp\\bare.cer", "Value": der, "Encoding": "Byte"}),
            Command("Import-Certificate", {"FilePath": "C:\\temp\\bare.cer",
                                           "CertStoreLocation": "Cert:\\LocalMachine\\My"}),
        ])
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["has_private_key"] is False
    assert changed_fields(outs_of(read), props) == (["has_private_key"], [])
    updated = p.update(created.id, outs_of(read), props)
    assert outs_of(updated)["has_private_key"] is True
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), props).changes is False

    p.delete(created.id, outs_of(updated))
    assert p.read(created.id, outs_of(updated)).id == ""


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["command_terminating", "command_error"])
def test_sim_failed_import_cleans_up_and_rerun_converges(labsim: LabServer, sim: PsrpTransport, kind: str) -> None:
    leaf = make_leaf(CA, names=("wapcomputer2.contoso.com",))
    props = sim_my(labsim, leaf, host="wapcomputer2")
    p = C.CertificateProvider(sim)
    lab.set_fault(labsim, "wapcomputer2", kind, "Import-PfxCertificate")
    with pytest.raises(ConnectorError) as err:
        p.create(props)
    assert "wapcomputer2.contoso.com" in str(err.value) and "install certificate" in str(err.value)
    assert lab.admin(labsim, "wapcomputer2", "look for the staged PFX",
                     Command("Test-Path", {"Path": f"C:\\temp\\{leaf.thumbprint}.pfx"})).single() is False
    lab.clear_faults(labsim, "wapcomputer2")
    created = p.create(props)
    assert outs_of(created)["has_private_key"] is True
    p.delete(created.id, outs_of(created))


@pytest.mark.sim
def test_sim_bad_inputs_make_no_invocation(labsim: LabServer, sim: PsrpTransport) -> None:
    mark = lab.last_id(labsim)
    bad = [
        my_props(make_leaf(None), connection=lab.conn_dict(labsim, "wapcomputer1")),                      # self-signed
        my_props(make_leaf(CA, not_before=NOW - dt.timedelta(days=40), not_after=NOW - dt.timedelta(days=1)),
                 connection=lab.conn_dict(labsim, "wapcomputer1")),                                      # expired
        my_props(pfx_base64=LEAF.pfx_base64(PASSWORD, key=make_leaf(CA).key),
                 connection=lab.conn_dict(labsim, "wapcomputer1")),                                      # wrong key
        my_props(serves_fqdns=["other.contoso.com"], connection=lab.conn_dict(labsim, "wapcomputer1")),  # SAN mismatch
        my_props(serves_fqdns=["not a name"], connection=lab.conn_dict(labsim, "wapcomputer1")),         # malformed
        my_props(connection={**lab.conn_dict(labsim, "wapcomputer1"), "port": 0}),                       # port
        my_props(connection={**lab.conn_dict(labsim, "wapcomputer1"), "password": None}),                # credential
        my_props(connection={**lab.conn_dict(labsim, "wapcomputer1"), "auth": "magic"}),                 # auth
    ]
    for props in bad:
        assert C.CertificateProvider(sim).check({}, props).failures
        with pytest.raises(ConfigurationError):  # create re-checks: the engine is not the only line of defence
            C.CertificateProvider(sim).create(props)
    assert lab.last_id(labsim) == mark


@pytest.mark.unit
def test_resource_class_marks_pfx_and_connection_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("pulumi.dynamic.Resource.__init__",
                        lambda self, provider, name, props, opts=None: seen.update(p=provider, props=props, opts=opts))
    C.Certificate("c", connection=CONN, cert_pem=LEAF.pem, pfx_base64="x", pfx_password="y",
                  serves_fqdns=("wapcomputer1.contoso.com",))
    assert seen["opts"].additional_secret_outputs == ["connection", "pfx_base64", "pfx_password"]
    assert seen["props"]["serves_fqdns"] == ["wapcomputer1.contoso.com"] and not vars(seen["p"])
