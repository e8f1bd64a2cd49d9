"""PsrpTransport against labsim over real loopback HTTP(S): TLS with the lab CA, NTLM, Basic, CredSSP to the
privileged endpoint, message encryption over http, error translation for what goes wrong on the way, and
sessions surviving the server dropping them."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labsim.lab import DEFAULT_LAB, load_lab
from labsim.pki import LabCA
from labsim.server import LabServer
from labsim.testing import free_loopback_lab, start_labsim
from providers.errors import AuthenticationFailed, HostUnreachable, RemoteCommandFailed, TlsVerificationFailed
from providers.transport import Command, HostConnection, PsrpTransport, Secret, SessionCache
from tests.lab_state import lab_state
from tests.providers.psrp_doubles import SUCCESS, ConnectorRuntime

pytestmark = pytest.mark.sim

WAP = "wapcomputer1"
PEP = "AzS-ERCS01"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    lab = free_loopback_lab(load_lab(DEFAULT_LAB))
    state = tmp_path_factory.mktemp("labsim")
    runtime = ConnectorRuntime()
    with start_labsim(lab, lambda lab, state_dir: runtime, state) as server:
        yield server


def runtime_of(server: LabServer) -> ConnectorRuntime:
    assert isinstance(server.runtime, ConnectorRuntime)
    return server.runtime


@pytest.fixture
def transport() -> Iterator[PsrpTransport]:
    cache = SessionCache()
    yield PsrpTransport(cache, sleep=lambda s: None)
    cache.close_all()


def user_of(server: LabServer, host: str) -> tuple[str, str]:
    u = server.lab.host(host).users[0]
    return u.name, u.password


def connect(server: LabServer, host: str = WAP, *, https: bool = True, **kw: Any) -> HostConnection:
    address, port = server.endpoint(host, https=https)
    name, password = user_of(server, host)
    settings = dict(fqdn=server.lab.host(host).fqdn, address=address, port=port, https=https, auth="ntlm",
                    username=name, password=password, operation_timeout=5, read_timeout=15, connect_timeout=5)
    if https:
        settings["ca_file"] = str(server.ca_file)
    settings.update(kw)
    return HostConnection(**settings)


@pytest.mark.parametrize("auth, https", [("ntlm", True), ("negotiate", True), ("basic", True),
                                         ("ntlm", False)])
def test_auth_and_channels(lab_server: LabServer, transport: PsrpTransport, auth: str, https: bool) -> None:
    conn = connect(lab_server, auth=auth, https=https)
    who = transport.run(conn, "who am i", Command("Get-Session"), idempotent=True).single()
    assert who["User"] == user_of(lab_server, WAP)[0]
    assert who["Auth"] == ("basic" if auth == "basic" else "negotiate")
    # A SecureString needs the PSRP session key: exercises the key exchange over this channel.
    got = transport.run(conn, "secret", Command("Reveal-Secret", {"Secret": Secret("s3cret value")})).single()
    assert got == {"Password": "s3cret value", "IsSecret": "SecretStr"}


def test_credssp_to_the_privileged_endpoint(lab_server: LabServer, transport: PsrpTransport) -> None:
    conn = connect(lab_server, PEP, auth="credssp", configuration_name="PrivilegedEndpoint")
    who = transport.run(conn, "who am i", Command("Get-Session")).single()
    assert (who["Configuration"], who["Auth"]) == ("PrivilegedEndpoint", "credssp")


def test_run_until_over_https(lab_server: LabServer, transport: PsrpTransport) -> None:
    conn = connect(lab_server)
    # The host polls forever after the line: returning (no StepTimedOut) means the line was noticed.
    r = transport.run_until(conn, "add connector", Command("Add-AzurePackConnector"), SUCCESS, timeout=30)
    assert r.stopped and r.verbose[-1] == SUCCESS
    assert runtime_of(lab_server).stopped.wait(3)
    assert transport.run(conn, "after", Command("Get-Session")).output


def test_wrong_password(lab_server: LabServer, transport: PsrpTransport) -> None:
    for conn in (connect(lab_server, password="Wrong-Passw0rd!"),
                 connect(lab_server, PEP, auth="credssp", configuration_name="PrivilegedEndpoint",
                         password="Wrong-Passw0rd!")):
        with pytest.raises(AuthenticationFailed) as e:
            transport.run(conn, "who am i", Command("Get-Session"), idempotent=True)
        assert conn.username is not None
        assert conn.username in str(e.value) and "Wrong-Passw0rd!" not in str(e.value)


def test_untrusted_ca(lab_server: LabServer, transport: PsrpTransport, tmp_path: Path) -> None:
    other = LabCA.load_or_create(tmp_path / "other", "other")
    with pytest.raises(TlsVerificationFailed, match="ca_file") as e:
        transport.run(connect(lab_server, ca_file=str(other.ca_file)), "who am i", Command("Get-Session"),
                      idempotent=True)
    assert "unable to get local issuer certificate" in str(e.value)
    with pytest.raises(TlsVerificationFailed, match="set ca_file to the CA certificate"):
        transport.run(connect(lab_server, ca_file=None), "who am i", Command("Get-Session"))
    # Verification off must be explicit, and then it connects.
    assert transport.run(connect(lab_server, ca_file=None, verify=False), "who", Command("Get-Session")).output


def test_connection_refused(lab_server: LabServer, transport: PsrpTransport) -> None:
    address, _ = lab_server.endpoint(WAP)
    with socket.socket() as s:  # a port nobody listens on
        s.bind((address, 0))
        port = s.getsockname()[1]
    conn = connect(lab_server, port=port)
    delays: list[float] = []
    transport = PsrpTransport(transport.cache, sleep=delays.append)
    with pytest.raises(HostUnreachable) as e:
        transport.run(conn, "who am i", Command("Get-Session"), idempotent=True)
    assert f"check WinRM is listening on {address}:{port} and the host is up" in str(e.value)
    assert delays == [0.5, 1.0]  # bounded retries with backoff, not a hang


def test_shells_dropped_by_the_server_are_reopened(lab_server: LabServer, transport: PsrpTransport) -> None:
    conn = connect(lab_server)
    transport.run(conn, "who", Command("Get-Session"))
    opened = transport.cache.opened
    lab_server.service(WAP).close()  # the WinRM service forgets every shell (idle timeout, restart)
    assert transport.run(conn, "write-ish", Command("Get-Session")).output  # shell-gone: safe to resend
    assert transport.cache.opened == opened + 1


def test_server_restart_is_survived_by_reads(tmp_path: Path, transport: PsrpTransport) -> None:
    lab = free_loopback_lab(load_lab(DEFAULT_LAB))
    runtime = ConnectorRuntime()
    server = LabServer(lab, runtime, tmp_path).start()
    conn = connect(server)
    try:
        transport.run(conn, "who", Command("Get-Session"))
    finally:
        server.stop()
    with pytest.raises(HostUnreachable):
        transport.run(conn, "who", Command("Get-Session"))
    server = LabServer(lab, runtime, tmp_path).start()
    try:
        assert transport.run(conn, "who", Command("Get-Session"), idempotent=True).output
    finally:
        server.stop()


def test_secrets_never_logged_in_failures(lab_server: LabServer, transport: PsrpTransport,
                                          caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG, logger="providers")
    caplog.set_level(logging.DEBUG, logger="pypsrp")  # what a careless root DEBUG config would do
    real = user_of(lab_server, WAP)[1]
    wrong = "Wr0ng-But-Secret!"
    errors = []
    other = LabCA.load_or_create(tmp_path / "other", "other")
    for conn in (connect(lab_server, password=wrong), connect(lab_server, ca_file=str(other.ca_file)),
                 connect(lab_server, port=1)):
        with pytest.raises(Exception) as e:
            transport.run(conn, "secret step", Command("Get-Session"), idempotent=True)
        errors.append(e.value)
    with pytest.raises(Exception) as e:
        transport.run(connect(lab_server), "secret step",
                      Command("Throw-Error", {"Message": "failed", "Pw": Secret(real)}))
    errors.append(e.value)
    text = "\n".join([f"{x}\n{x!r}" for x in errors] + [caplog.text])
    assert wrong not in text and real not in text


@pytest.mark.parametrize("https", [True, False], ids=["https", "http-encrypted"])
def test_dropped_keepalive_connection_is_survived_even_by_writes(lab_server: LabServer, transport: PsrpTransport,
                                                                 https: bool) -> None:
    """The host closes an idle HTTP connection while the shell lives on. Over http the message-encryption
    context dies with it, and the host refuses the next request unrun: a fresh session resends it."""
    conn = connect(lab_server, https=https)
    transport.run(conn, "who", Command("Get-Session"))
    for session in transport.cache._idle[next(iter(transport.cache._idle))]:
        session.wsman.transport.session.close()  # drops the pooled TCP connection
    calls = len(runtime_of(lab_server).calls)
    assert transport.run(conn, "write", Command("Get-Session")).output
    assert len(runtime_of(lab_server).calls) == calls + 1  # ran exactly once


# -- against labsim's real host behaviour (labsim.hosts), not the echo double -------------------------------------
@pytest.fixture(scope="module")
def real_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    from labsim.hosts import LabRuntime
    from labsim.pki import lab_ca
    from labsim.state import LabState

    lab = free_loopback_lab(load_lab(DEFAULT_LAB))
    state = tmp_path_factory.mktemp("labsim-real")
    with start_labsim(lab, lambda lab, d: LabRuntime(lab, LabState(d / "lab.db"), lab_ca(d, lab)), state) as server:
        yield server


def test_read_through_convertto_json_on_a_wap_host(real_lab: LabServer, transport: PsrpTransport) -> None:
    conn = connect(real_lab)
    read = (Command("Get-Website", {"Name": "MgmtSvc-TenantSite"})
            | Command("ConvertTo-Json", {"Depth": 4}, ["Compress"]))
    site = transport.run(conn, "read tenant site", read, idempotent=True).json()
    assert site["name"] == "MgmtSvc-TenantSite" and site["state"] == "Started"
    assert transport.run(conn, "read", Command("Get-Website", {"Name": "NoSuchSite"})).json() is None
    with pytest.raises(RemoteCommandFailed) as e:
        transport.run(conn, "read setting", Command("Get-MgmtSvcSetting", {"Namespace": "Nope"}))
    assert (e.value.error_id, e.value.category) == ("InvalidNamespace", "ObjectNotFound")


def test_add_azurepackconnector_stopped_at_the_success_line(real_lab: LabServer, transport: PsrpTransport) -> None:
    conn = connect(real_lab, PEP, auth="credssp", configuration_name="PrivilegedEndpoint")
    clouds = [{"CloudName": "wapcloud1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"}]
    r = transport.run_until(conn, "add azure pack connector",
                            Command("Add-AzurePackConnector", {"AzurePackClouds": clouds,
                                                               "AzureStackCloudName": "AzureStack"}),
                            SUCCESS, timeout=60)
    assert r.stopped and r.verbose[-1] == SUCCESS
    # Stopped in its polling loop after the line, not waited for until the polling ended on its own.
    for _ in range(300):  # the host records the outcome once its pipeline thread has unwound
        last = lab_state(real_lab).invocations(real_lab.lab.host(PEP).name, "Add-AzurePackConnector")[-1]
        if last["outcome"].lower() != "running":
            break
        time.sleep(0.1)
    assert last["outcome"].lower() == "stopped", last
