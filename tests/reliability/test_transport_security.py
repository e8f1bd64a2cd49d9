"""Transport security against labsim over real loopback TLS.

* TLS verification is on by default and refuses: the lab CA not trusted (system store), another CA in ca_file,
  a certificate that does not name the address connected to (or tls_server_name, when that is set), an expired
  certificate, a self-signed one; each with TlsVerificationFailed saying what to fix. Controls: the same
  connection with the right CA works, and a certificate naming only the FQDN works by IP with tls_server_name.
* CredSSP (hands the password to the host) only to the privileged endpoint, refused elsewhere unless
  allow_credssp, by HostConnection and by every remote resource's check; labsim never sees a CredSSP handshake
  from a refused connection.
* Basic over plain HTTP refused unless allow_basic_over_http; labsim never sees the Basic header then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labsim.lab import Host
from labsim.pki import LabCA
from labsim.server import LabServer
from providers.errors import ConfigurationError, TlsVerificationFailed
from providers.transport import Command, HostConnection, PsrpTransport, Result, SessionCache
from tests.lab_state import lab_state
from tests.providers.conftest import host_connection
from tests.reliability import figures
from tests.reliability.corpus import lab, scheme_recorder, valid_resource_inputs

pytestmark = pytest.mark.sim

WAP = "wapcomputer1"
PEP = "AzS-ERCS01"
PROBE = Command("Test-Path", {"Path": "C:\\"})


def _done(key: str) -> None:
    """One transport case passed its assertions (the page counts the distinct cases)."""
    figures.record_items("transport_security", "cases_passed", [key])


@pytest.fixture(scope="module", autouse=True)
def _failed_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    figures.record("transport_security", "failed", request.session.testsfailed - failed_before)


def run(conn: dict | HostConnection, command: Command = PROBE) -> Result:
    cache = SessionCache()
    try:
        return PsrpTransport(cache, retries=0).run(HostConnection.parse(conn), "probe", command)
    finally:
        cache.close_all()


@pytest.fixture(scope="module")
def default_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with lab(tmp_path_factory.mktemp("tls-default")) as server:
        yield server


def _issue(**kw: Any) -> Callable[[Host, LabCA], tuple[bytes, bytes]]:
    """A listener_certificate hook: the lab CA issues each host's WinRM certificate with ``kw`` changes."""
    def hook(host: Host, ca: LabCA) -> tuple[bytes, bytes]:
        dns = kw.get("dns", [host.fqdn, host.name.lower()])
        ips = kw.get("ips", [host.address])
        return ca.issue(host.fqdn, dns, ips, not_after=kw.get("not_after"), not_before=kw.get("not_before"))
    return hook


# -- TLS verification ---------------------------------------------------------------------------------------------
def test_verification_is_on_by_default_and_the_lab_ca_is_not_trusted_without_ca_file(default_lab: LabServer) -> None:
    conn = host_connection(default_lab, WAP)
    del conn["ca_file"]
    assert HostConnection.parse(conn).verify is True
    with pytest.raises(TlsVerificationFailed) as e:
        run(conn)
    msg = str(e.value)
    assert "not trusted" in msg and "local issuer" in msg and "set ca_file to the CA certificate" in msg, msg
    assert conn["password"] not in msg
    # control: the same connection with the lab CA works
    assert run(host_connection(default_lab, WAP)).output == [True]
    _done("default_verify_untrusted_system_store")


def test_another_ca_in_ca_file_is_refused_naming_the_file(default_lab: LabServer, tmp_path: Path) -> None:
    from labsim.pki import LabCA

    other = LabCA.load_or_create(tmp_path / "other-ca", "other")
    conn = host_connection(default_lab, WAP, ca_file=str(other.ca_file))
    with pytest.raises(TlsVerificationFailed) as e:
        run(conn)
    msg = str(e.value)
    assert str(other.ca_file) in msg and "not trusted" in msg, msg
    assert not e.value.transient  # retrying cannot help
    _done("untrusted_ca_file")


def test_certificate_that_does_not_name_the_address_is_refused(tmp_path: Path) -> None:
    # The listener certificate names the FQDN only; the client connects by the host's IP address.
    with lab(tmp_path, listener_certificate=_issue(ips=[])) as server:
        conn = host_connection(server, WAP)
        with pytest.raises(TlsVerificationFailed) as e:
            run(conn)
        msg = str(e.value)
        assert conn["address"] in msg, msg
        assert "IP address mismatch" in msg or "Hostname mismatch" in msg or "match" in msg, msg
        assert "does not name the address connected to" in msg, msg
    _done("wrong_host_name")


def test_tls_server_name_checks_the_certificate_against_that_name_when_connecting_by_ip(tmp_path: Path) -> None:
    # Integrated systems reach the PEP by IP while its certificate names only its DNS name.
    with lab(tmp_path, listener_certificate=_issue(ips=[])) as server:
        conn = host_connection(server, WAP)
        assert run({**conn, "tls_server_name": conn["fqdn"]}).output == [True]
        with pytest.raises(TlsVerificationFailed) as e:
            run({**conn, "tls_server_name": "wapcomputer9.contoso.com"})
        msg = str(e.value)
        assert "checked as wapcomputer9.contoso.com" in msg and "does not name wapcomputer9.contoso.com" in msg, msg
        assert not e.value.transient
    for bad, words in (({"verify": False}, "only used with https: true and verify: true"),
                       ({"https": False}, "only used with https: true and verify: true"),
                       ({"tls_server_name": "10.0.0.1"}, "is not a host name"),
                       ({"tls_server_name": "a b"}, "is not a host name")):
        with pytest.raises(ConfigurationError, match=words):
            HostConnection.parse({**conn, "tls_server_name": conn["fqdn"], **bad})
    _done("tls_server_name")


def test_expired_certificate_is_refused_saying_so(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    hook = _issue(not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    with lab(tmp_path, listener_certificate=hook) as server:
        conn = host_connection(server, WAP)
        with pytest.raises(TlsVerificationFailed) as e:
            run(conn)
        msg = str(e.value)
        assert "expired" in msg, msg
        assert "renew" in msg.lower(), msg  # the fix is a new certificate, not another ca_file
    _done("expired_certificate")


def test_not_yet_valid_certificate_is_refused(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    hook = _issue(not_before=now + dt.timedelta(days=2), not_after=now + dt.timedelta(days=30))
    with lab(tmp_path, listener_certificate=hook) as server:
        with pytest.raises(TlsVerificationFailed) as e:
            run(host_connection(server, WAP))
        assert "not yet valid" in str(e.value), str(e.value)
    _done("not_yet_valid_certificate")


def test_self_signed_listener_certificate_is_refused(tmp_path: Path) -> None:
    from labsim.pki import LabCA

    def hook(host: Host, ca: LabCA) -> tuple[bytes, bytes]:
        # A certificate from a CA of its own (what a default WinRM HTTPS listener often has), not the lab CA.
        return LabCA.load_or_create(tmp_path / "rogue", "rogue").issue(host.fqdn, [host.fqdn], [host.address])

    with lab(tmp_path / "lab", listener_certificate=hook) as server:
        with pytest.raises(TlsVerificationFailed):
            run(host_connection(server, WAP))
    _done("rogue_issuer")


def test_verify_false_is_the_explicit_opt_out(tmp_path: Path) -> None:
    with lab(tmp_path, listener_certificate=_issue(ips=[])) as server:
        conn = host_connection(server, WAP)
        del conn["ca_file"]
        assert run({**conn, "verify": False}).output == [True]
        with pytest.raises(ConfigurationError, match="ca_file is set but verify is false"):
            HostConnection.parse({**host_connection(server, WAP), "verify": False})
    _done("verify_false_explicit")


# -- CredSSP ------------------------------------------------------------------------------------------------------
def test_credssp_only_to_the_privileged_endpoint_unless_allowed(default_lab: LabServer) -> None:
    with scheme_recorder() as seen:
        # refused before any connection: a WAP host with credssp
        conn = host_connection(default_lab, WAP, auth="credssp")
        with pytest.raises(ConfigurationError) as e:
            run(conn)
        assert "credssp hands the password" in str(e.value) and "allow_credssp" in str(e.value)
        assert conn["password"] not in str(e.value)
        assert seen.count() == 0, seen.seen
        # the PEP: CredSSP with its own configuration is the one place it is used
        assert run(host_connection(default_lab, PEP), Command("Get-AzureStackStampInformation")).output
        assert seen.hosts_with("credssp") == {PEP}
        # explicitly allowed (a host that really demands delegation): it works, and the handshake is visible
        assert run(host_connection(default_lab, WAP, auth="credssp", allow_credssp=True)).output == [True]
        assert seen.hosts_with("credssp") == {PEP, WAP}
    _done("credssp_refused_elsewhere")
    _done("credssp_pep_allowed")
    _done("credssp_explicit_allow")


REMOTE_PROVIDERS = ["ConnectorSite", "Certificate", "ConnectorBundle", "TenantApiUpdate", "TenantApiTrust",
                    "AzurePackConnector.share_connection"]  # (the PEP connection itself must be credssp)


@pytest.mark.parametrize("resource", REMOTE_PROVIDERS)
def test_every_remote_resource_refuses_credssp_outside_the_pep(default_lab: LabServer, tmp_path: Path,
                                                               resource: str) -> None:
    provider, props, key = valid_resource_inputs(default_lab, resource, tmp_path, PsrpTransport(SessionCache()))
    assert provider.check({}, props).failures == [], "the valid inputs must pass"
    props[key] = {**props[key], "auth": "credssp"}
    mark = max([i["id"] for i in lab_state(default_lab).invocations()] + [0])
    with scheme_recorder() as seen:
        failures = provider.check({}, props).failures
        assert [f.property for f in failures] == [key], failures
        assert "allow_credssp" in failures[0].reason
        with pytest.raises(ConfigurationError):
            provider.create(props)
        assert seen.count() == 0, seen.seen
    assert max([i["id"] for i in lab_state(default_lab).invocations()] + [0]) == mark
    _done(f"credssp_refused_by_{resource}")


# -- Basic over http ----------------------------------------------------------------------------------------------
def test_basic_over_http_is_refused_unless_allowed(default_lab: LabServer) -> None:
    address, port = default_lab.endpoint(WAP, https=False)
    conn = host_connection(default_lab, WAP, auth="basic", https=False, port=port)
    del conn["ca_file"]
    with scheme_recorder() as seen:
        with pytest.raises(ConfigurationError) as e:
            run(conn)
        assert "allow_basic_over_http" in str(e.value) and conn["password"] not in str(e.value)
        assert seen.count() == 0
        # Basic over https is fine (TLS protects it); over http only when explicitly allowed
        assert run(host_connection(default_lab, WAP, auth="basic")).output == [True]
        assert run({**conn, "allow_basic_over_http": True}).output == [True]
        assert seen.count("basic") >= 2
    _done("basic_over_http_refused")
    _done("basic_over_http_explicit_allow")


def test_server_refuses_basic_over_http_like_windows_when_not_allow_unencrypted(tmp_path: Path) -> None:
    from providers.errors import AuthenticationFailed

    with lab(tmp_path, allow_unencrypted=False) as server:
        address, port = server.endpoint(WAP, https=False)
        conn = host_connection(server, WAP, auth="basic", https=False, port=port, allow_basic_over_http=True)
        del conn["ca_file"]
        with pytest.raises(AuthenticationFailed):
            run(conn)
        # NTLM over http with message encryption is the supported way without TLS
        assert run({**conn, "auth": "ntlm", "allow_basic_over_http": False}).output == [True]
    _done("server_allow_unencrypted_false")


@pytest.mark.parametrize("change, words", [
    ({"https": False}, "ca_file is only used with https"),
    ({"verify": False}, "ca_file is set but verify is false"),
    ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_incoherent_tls_settings_are_refused_before_connecting(default_lab: LabServer, change: dict[str, Any],
                                                               words: str) -> None:
    with scheme_recorder() as seen:
        with pytest.raises(ConfigurationError, match=words):
            run(host_connection(default_lab, WAP, **change))
        assert seen.count() == 0
    _done(f"incoherent_tls:{words}")
