"""labsim over real loopback sockets with the real, unmodified pypsrp client: every auth method x transport,
fragmentation, stop, concurrency, refusals, run-time faults and the IIS https site listeners."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.shell import WinRS
from pypsrp.wsman import SelectorSet, WSMan

from labsim import records
from labsim.lab import Lab
from labsim.pki import LabCA, lab_ca, thumbprint
from labsim.runtime import Fault, HttpsBinding
from labsim.server import LabServer, LabServerError
from labsim.testing import free_loopback_lab, start_labsim
from tests.polling import wait_for

from .protocol_doubles import EchoRuntime, run

pytestmark = [pytest.mark.sim, pytest.mark.timeout(120)]

WAP_USER, WAP_PASSWORD = "CONTOSO\\WapAdmin", "LabOnly-Wap-1!"
PEP_USER, PEP_PASSWORD = "AZURESTACK\\CloudAdmin", "LabOnly-Pep-1!"


def make_lab() -> Lab:
    users = [{"name": WAP_USER, "password": WAP_PASSWORD}]
    return free_loopback_lab(Lab.model_validate({
        "name": "protocol-tests",
        "settings": {"operation_timeout": 2, "idle_shell_timeout": 120},
        "hosts": [
            {"name": "WAP01", "fqdn": "wap01.contoso.com", "address": "127.0.0.2", "roles": ["azs_user_portal"],
             "users": users},
            {"name": "PEP01", "fqdn": "pep01.azurestack.local", "address": "127.0.0.3",
             "roles": ["privileged_endpoint"], "winrm": {"auth": ["credssp"]},
             "users": [{"name": PEP_USER, "password": PEP_PASSWORD}]},
            {"name": "FLAKY01", "fqdn": "flaky01.contoso.com", "address": "127.0.0.4",
             "roles": ["azs_user_portal"], "users": users},
        ],
    }))


@pytest.fixture(scope="module")
def runtime() -> EchoRuntime:
    return EchoRuntime()


@pytest.fixture(scope="module")
def server(runtime: EchoRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with start_labsim(make_lab(), lambda lab, state_dir: runtime, tmp_path_factory.mktemp("labsim")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clear_faults(runtime: EchoRuntime) -> Iterator[None]:
    yield
    runtime.fault_list.clear()
    runtime.bindings.clear()


def connect(server: LabServer, host: str = "WAP01", *, auth: str = "negotiate", https: bool = True,
            user: str = WAP_USER, password: str = WAP_PASSWORD, **kw: Any) -> WSMan:
    address, port = server.endpoint(host, https)
    kw.setdefault("cert_validation", str(server.ca_file))
    if auth == "basic" and not https:
        kw.setdefault("encryption", "never")
    return WSMan(address, port=port, ssl=https, auth=auth, username=user, password=password,
                 operation_timeout=2, read_timeout=10, connection_timeout=3, **kw)


def still_serving(server: LabServer) -> None:
    with RunspacePool(connect(server, auth="basic")) as pool:
        assert run(pool, "Echo-Object", "still serving").output == ["still serving"]


# -- every auth method over every transport ----------------------------------------------------------------
@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
@pytest.mark.parametrize("auth", ["basic", "negotiate", "ntlm", "credssp"])
def test_auth_transport_matrix(server: LabServer, auth: str, https: bool) -> None:
    with RunspacePool(connect(server, auth=auth, https=https)) as pool:
        session = run(pool, "Get-Session").output[0].extended_properties
        assert session == {"Host": "WAP01", "User": WAP_USER, "Configuration": "Microsoft.PowerShell",
                           "Auth": "negotiate" if auth == "ntlm" else auth}
        ps = run(pool, "Write-Error", Message="soft failure", ErrorId="Soft")
        assert ps.output == ["after the error"] and not ps.had_errors
        assert [str(e) for e in ps.streams.error] == ["soft failure"]
        ps = run(pool, "Throw-Error", Message="hard failure", ErrorId="Hard,Test-It")
        assert ps.had_errors and ps.state == PSInvocationState.FAILED
        assert (str(ps.streams.error[-1]), ps.streams.error[-1].fq_error) == ("hard failure", "Hard,Test-It")
        ps = run(pool, "Write-Streams")
        assert [v.message for v in ps.streams.verbose] == ["verbose text"]


@pytest.mark.parametrize("auth, https", [("credssp", False), ("negotiate", False), ("basic", True)])
def test_large_parameters_and_outputs(server: LabServer, auth: str, https: bool) -> None:
    with RunspacePool(connect(server, auth=auth, https=https)) as pool:
        ps = run(pool, "Measure-Input", Blob="p" * 3_000_000)
        assert ps.output == [{"Length": 3_000_000, "InputCount": 0}]
        ps = run(pool, "Get-Large", Bytes=1_500_000, Count=3)
        assert [len(o) for o in ps.output] == [1_500_000] * 3
        assert ps.output[2] == "c" * 1_500_000


@pytest.mark.parametrize("cmdlet", ["Write-Error", "Throw-Error"])
def test_an_error_record_labsim_cannot_build_still_ends_the_pipeline(server: LabServer, cmdlet: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # labsim's own fault (here: building the record raises) fails the pipeline; the client never waits for an end
    def broken(*args: Any, **kw: Any) -> Any:
        raise ValueError("no record today")

    monkeypatch.setattr(records, "error_record", broken)
    with RunspacePool(connect(server, https=False)) as pool:
        ps = run(pool, cmdlet, Message="a failure", ErrorId="Soft")
        assert ps.state == PSInvocationState.FAILED
        assert "labsim internal error: ValueError: no record today" in str(ps.streams.error[-1])
        monkeypatch.undo()
        assert run(pool, "Echo-Object", "after it").output == ["after it"]


def test_stop_running_pipeline(server: LabServer, runtime: EchoRuntime) -> None:
    runtime.stopped.clear()
    with RunspacePool(connect(server, https=False)) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Sleep-Until-Stopped").add_parameter("Seconds", 30)
        ps.begin_invoke()
        while not ps.output:
            ps.poll_invoke()
        ps.stop()
        # Stopped in its sleep (the host saw the signal), not waited for until the 30 s were over.
        assert ps.state == PSInvocationState.STOPPED
        assert runtime.stopped.wait(5)
        assert run(pool, "Echo-Object", "after stop").output == ["after stop"]


def test_five_pools_twenty_pipelines_concurrently(server: LabServer) -> None:
    errors: list[BaseException] = []
    results: dict[int, list] = {}

    def worker(n: int) -> None:
        try:
            auth = ["negotiate", "basic", "credssp", "ntlm", "negotiate"][n]
            with RunspacePool(connect(server, auth=auth, https=n % 2 == 0)) as pool:
                results[n] = [run(pool, "Echo-Object", f"{n}-{i}").output[0] for i in range(20)]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results == {n: [f"{n}-{i}" for i in range(20)] for n in range(5)}
    assert server.service("WAP01").shell_ids == []  # every pool deleted its shell


# -- refusals --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth, https", [("basic", True), ("negotiate", True), ("ntlm", False),
                                         ("negotiate", False)])
def test_wrong_password_is_refused(server: LabServer, auth: str, https: bool) -> None:
    with pytest.raises(AuthenticationError):
        RunspacePool(connect(server, auth=auth, https=https, password="wrong")).open()
    still_serving(server)


def test_wrong_password_credssp_is_refused(server: LabServer) -> None:
    with pytest.raises(Exception) as exc:  # requests-credssp raises its own AuthenticationException family
        RunspacePool(connect(server, auth="credssp", password="wrong")).open()
    assert "auth" in type(exc.value).__name__.lower() or "NTStatus" in type(exc.value).__name__
    still_serving(server)


def test_unknown_user_is_refused(server: LabServer) -> None:
    with pytest.raises(AuthenticationError):
        RunspacePool(connect(server, auth="basic", user="CONTOSO\\nobody")).open()


def test_untrusted_ca_fails_tls_on_the_client(server: LabServer, tmp_path: Path) -> None:
    stranger = LabCA.load_or_create(tmp_path / "other-ca", "stranger")
    with pytest.raises(requests.exceptions.SSLError):
        RunspacePool(connect(server, auth="basic", cert_validation=str(stranger.ca_file))).open()
    still_serving(server)


def test_privileged_endpoint_accepts_only_credssp(server: LabServer) -> None:
    for auth in ("basic", "negotiate", "ntlm"):
        with pytest.raises(AuthenticationError):
            RunspacePool(connect(server, "PEP01", auth=auth, user=PEP_USER, password=PEP_PASSWORD),
                         configuration_name="PrivilegedEndpoint").open()
    with RunspacePool(connect(server, "PEP01", auth="credssp", user=PEP_USER, password=PEP_PASSWORD),
                      configuration_name="PrivilegedEndpoint") as pool:
        session = run(pool, "Get-Session").output[0].extended_properties
        assert (session["Configuration"], session["Auth"]) == ("PrivilegedEndpoint", "credssp")


def _post(server: LabServer, body: bytes) -> requests.Response:
    address, port = server.endpoint("WAP01")
    return requests.post(f"https://{address}:{port}/wsman", data=body, auth=(WAP_USER, WAP_PASSWORD),
                         verify=str(server.ca_file), timeout=10,
                         headers={"Content-Type": "application/soap+xml;charset=UTF-8"})


def test_malformed_xml_is_a_wsman_fault(server: LabServer) -> None:
    reply = _post(server, b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><oops")
    assert reply.status_code == 500
    fault = WSMan._parse_wsman_fault(reply.text)
    assert fault.code == 2150858817 and "XML is invalid" in fault.reason
    still_serving(server)


def test_huge_body_is_refused_without_reading_it(server: LabServer) -> None:
    address, port = server.endpoint("WAP01")
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with socket.create_connection((address, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=address) as tls:
        tls.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n\r\n" + b"x" * 1000)
        reply = b""
        while chunk := tls.recv(65536):  # the server answers, then closes the connection
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 500")
    assert b'Code="2150858846"' in reply
    still_serving(server)


def test_garbage_http_does_not_stop_the_server(server: LabServer) -> None:
    address, port = server.endpoint("WAP01", https=False)
    for junk in (b"\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"POST /wsman HTTP/1.1\r\n"
                 b"Authorization: Negotiate !!!notbase64\r\nContent-Length: 0\r\n\r\n"):
        with socket.create_connection((address, port), timeout=5) as sock:
            sock.sendall(junk)
            assert sock.recv(65536).startswith(b"HTTP/1.1 4")
    still_serving(server)


def test_unknown_shell_id_over_the_wire(server: LabServer) -> None:
    missing = str(uuid.uuid4()).upper()
    shell = WinRS(connect(server, auth="basic"), "http://schemas.microsoft.com/powershell/Microsoft.PowerShell")
    shell._selector_set = SelectorSet()
    shell._selector_set.add_option("ShellId", missing)
    with pytest.raises(WSManFaultError) as exc:
        shell.receive("stdout")
    assert exc.value.code == 2150858843
    assert missing in exc.value.reason
    still_serving(server)


def test_basic_over_http_can_be_refused_like_windows(tmp_path: Path) -> None:
    with start_labsim(make_lab(), lambda lab, d: EchoRuntime(), tmp_path, allow_unencrypted=False) as srv:
        with pytest.raises(AuthenticationError):
            RunspacePool(connect(srv, auth="basic", https=False)).open()
        with RunspacePool(connect(srv, auth="negotiate", https=False)) as pool:  # encrypted: fine
            assert run(pool, "Echo-Object", 1).output == [1]


def test_start_reports_a_taken_port(tmp_path: Path) -> None:
    lab = make_lab()
    host = lab.hosts[0]
    with socket.socket() as squatter:
        squatter.bind((host.address, host.winrm.https_port))
        squatter.listen(1)
        with pytest.raises(LabServerError, match=f"{host.address}:{host.winrm.https_port} is already in use"):
            LabServer(lab, EchoRuntime(), tmp_path).start()


# -- run-time faults -----------------------------------------------------------------------------------------
def test_fault_down_refuses_connections_until_cleared(server: LabServer, runtime: EchoRuntime) -> None:
    address, port = server.endpoint("FLAKY01")
    runtime.fault_list.append(Fault(host="FLAKY01", kind="down"))

    def refused() -> bool | None:
        """True refused, False accepted, None undecided (a connect that timed out on a busy machine)."""
        try:
            socket.create_connection((address, port), timeout=5).close()
            return False
        except ConnectionRefusedError:
            return True
        except TimeoutError:
            return None

    wait_for(lambda: refused() is True)
    with pytest.raises(requests.exceptions.ConnectionError):
        RunspacePool(connect(server, "FLAKY01", auth="basic")).open()
    still_serving(server)  # other hosts are unaffected
    runtime.fault_list.clear()
    wait_for(lambda: refused() is False)
    with RunspacePool(connect(server, "FLAKY01", auth="basic")) as pool:
        assert run(pool, "Echo-Object", "back").output == ["back"]


def test_fault_slow_adds_latency(server: LabServer, runtime: EchoRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    import labsim.transport

    delays: list[float] = []

    class Clock:  # labsim.transport's time module, with its sleeps recorded (and still slept)
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def sleep(self, seconds: float) -> None:
            delays.append(seconds)
            time.sleep(seconds)

    with RunspacePool(connect(server, "FLAKY01", auth="basic")) as pool:
        run(pool, "Echo-Object", 1)
        runtime.fault_list.append(Fault(host="FLAKY01", kind="slow", seconds=0.15))
        wait_for(lambda: any(f.kind == "slow" for f in server.faults_in_force("FLAKY01")))
        monkeypatch.setattr(labsim.transport, "time", Clock())
        run(pool, "Echo-Object", 1)
        monkeypatch.undo()
    # Each request of the pipeline (Command, then at least one Receive) waited the fault's 0.15 s before its answer.
    assert delays.count(0.15) >= 2, delays


def test_fault_auth_broken(server: LabServer, runtime: EchoRuntime) -> None:
    runtime.fault_list.append(Fault(host="FLAKY01", kind="auth_broken"))
    wait_for(lambda: any(f.kind == "auth_broken" for f in server.faults_in_force("FLAKY01")))
    for auth in ("basic", "negotiate"):
        with pytest.raises(AuthenticationError):
            RunspacePool(connect(server, "FLAKY01", auth=auth)).open()
    runtime.fault_list.clear()
    wait_for(lambda: not server.faults_in_force("FLAKY01"))
    with RunspacePool(connect(server, "FLAKY01", auth="negotiate")) as pool:
        assert run(pool, "Echo-Object", "ok").output == ["ok"]


@pytest.mark.parametrize("https", [True, False])
def test_fault_down_drops_open_connections(server: LabServer, runtime: EchoRuntime, https: bool) -> None:
    """`down` also cuts the connections already open (HTTPS ones included, whose socket the TLS layer owns): a
    client in the middle of a session sees its connection reset, as when a host drops off the network."""
    pool = RunspacePool(connect(server, "FLAKY01", auth="basic", https=https))
    pool.open()
    assert run(pool, "Echo-Object", "before").output == ["before"]
    runtime.fault_list.append(Fault(host="FLAKY01", kind="down"))
    wait_for(lambda: any(f.kind == "down" for f in server.faults_in_force("FLAKY01")))
    time.sleep(0.1)
    with pytest.raises(requests.exceptions.ConnectionError):
        run(pool, "Echo-Object", "after")
    runtime.fault_list.clear()
    wait_for(lambda: not server.faults_in_force("FLAKY01"))


def test_fault_wsman_fault_answers_http_500_with_a_wsman_fault(server: LabServer, runtime: EchoRuntime) -> None:
    from labsim.envelope import CODE_INTERNAL_ERROR

    with RunspacePool(connect(server, "FLAKY01", auth="negotiate")) as pool:
        runtime.fault_list.append(Fault(host="FLAKY01", kind="wsman_fault", message="WinRM is unwell"))
        wait_for(lambda: any(f.kind == "wsman_fault" for f in server.faults_in_force("FLAKY01")))
        with pytest.raises(WSManFaultError) as err:
            run(pool, "Echo-Object", "x")
        assert err.value.code == CODE_INTERNAL_ERROR and "WinRM is unwell" in str(err.value.reason)
        still_serving(server)  # other hosts are unaffected
        runtime.fault_list.clear()
        wait_for(lambda: not server.faults_in_force("FLAKY01"))
    with RunspacePool(connect(server, "FLAKY01", auth="negotiate")) as pool:
        assert run(pool, "Echo-Object", "ok").output == ["ok"]


# -- IIS https site listeners ---------------------------------------------------------------------------------
def _peer_certificate(address: str, port: int, ca_file: Path) -> tuple[bytes, bytes]:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = False
    with socket.create_connection((address, port), timeout=3) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(b"GET / HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n")
        page = b""
        while chunk := tls.recv(65536):
            page += chunk
        return der, page


def test_https_bindings_get_real_listeners(server: LabServer, runtime: EchoRuntime) -> None:
    host = server.lab.host("WAP01")
    ca = lab_ca(server.state_dir, server.lab)
    with socket.socket() as probe:
        probe.bind((host.address, 0))
        port = probe.getsockname()[1]

    def binding(cn: str) -> HttpsBinding:
        cert, key = ca.issue(cn, [cn], [host.address])
        return HttpsBinding(host="WAP01", address=host.address, port=port, site="MgmtSvc-Connector",
                            cert_pem=cert, key_pem=key, thumbprint=thumbprint(cert))

    first = binding("wap01.contoso.com")
    runtime.bindings.append(first)
    wait_for(lambda: _try(lambda: _peer_certificate(host.address, port, server.ca_file)))
    der, page = _peer_certificate(host.address, port, server.ca_file)
    assert thumbprint(der) == first.thumbprint
    assert page.startswith(b"HTTP/1.1 200") and b"MgmtSvc-Connector" in page

    second = binding("connector.contoso.com")
    runtime.bindings[:] = [second]
    wait_for(lambda: _try(lambda: thumbprint(_peer_certificate(host.address, port, server.ca_file)[0]))
             == second.thumbprint)

    runtime.bindings.clear()
    wait_for(lambda: _try(lambda: _peer_certificate(host.address, port, server.ca_file)) is None)


def test_two_reconciles_at_once_bind_a_site_once(server: LabServer, runtime: EchoRuntime,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """start() reconciles the sites itself while the sites thread may be at it too (on a loaded machine, a start
    takes longer than the thread's poll): the second must wait for the first, not bind the same port again and
    leave the site unserved ("already in use")."""
    host = server.lab.host("WAP01")
    with socket.socket() as probe:
        probe.bind((host.address, 0))
        port = probe.getsockname()[1]
    cert, key = lab_ca(server.state_dir, server.lab).issue("wap01.contoso.com", ["wap01.contoso.com"],
                                                           [host.address])
    binding = HttpsBinding(host="WAP01", address=host.address, port=port, site="MgmtSvc-Connector",
                           cert_pem=cert, key_pem=key, thumbprint=thumbprint(cert))
    started: list[HttpsBinding] = []
    entered, release = threading.Event(), threading.Event()
    real_start = server._start_site

    def slow_start(b: HttpsBinding) -> Any:
        started.append(b)
        entered.set()
        release.wait(10)
        return real_start(b)

    monkeypatch.setattr(server, "_start_site", slow_start)
    runtime.bindings.append(binding)
    try:
        assert entered.wait(10), "the sites thread never started the site"  # the sites thread, in its reconcile
        second = threading.Thread(target=server._reconcile_sites)
        second.start()
        second.join(0.5)  # without the lock it would be in _start_site by now
        assert len(started) == 1, started
        release.set()
        second.join(10)
        assert not second.is_alive() and len(started) == 1, started
        der, _page = _peer_certificate(host.address, port, server.ca_file)
        assert thumbprint(der) == binding.thumbprint
    finally:
        release.set()
        runtime.bindings.clear()
    wait_for(lambda: _try(lambda: _peer_certificate(host.address, port, server.ca_file)) is None)


T = TypeVar("T")


def _try(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except (OSError, ssl.SSLError):
        return None


def test_free_loopback_lab_gives_distinct_addresses_and_keeps_listener_shape() -> None:
    base = Lab.model_validate({
        "name": "shape",
        "hosts": [{"name": f"H{i}", "fqdn": f"h{i}.lab.test", "address": f"127.0.0.{i + 1}",
                   "roles": ["azs_user_portal"], "users": [{"name": "u", "password": "p"}],
                   "winrm": {"http_port": None} if i == 0 else {}} for i in range(4)],
    })
    lab = free_loopback_lab(base)
    assert len({h.address for h in lab.hosts}) == 4
    assert all(h.address.startswith("127.") and h.address not in ("127.0.0.1",) for h in lab.hosts)
    assert lab.hosts[0].winrm.http_port is None and lab.hosts[0].winrm.https_port not in (None, 5986)
    assert all(h.winrm.http_port not in (None, 5985) for h in lab.hosts[1:])
    assert [h.name for h in lab.hosts] == [h.name for h in base.hosts]
