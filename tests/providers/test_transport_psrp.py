"""PsrpTransport with real pypsrp against labsim's WSMan/PSRP core, in memory (no sockets): the protocol flow,
streams, errors, timeouts, run_until, the session cache and dead-session recovery."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pypsrp.wsman import WSMan

from labsim.wsman import WSManService
from providers.errors import RemoteCommandFailed, StepTimedOut, TransportError
from providers.transport import Command, Credential, HostConnection, PsrpTransport, Secret, SessionCache
from tests.labsim.protocol_doubles import in_memory_wsman
from tests.providers.psrp_doubles import SUCCESS, ConnectorRuntime

pytestmark = pytest.mark.sim

PASSWORD = "In-M3mory-Pa55word"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Wraps the in-memory HTTP layer: the next N sends fail like a dropped connection."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_next = 0
        self.endpoint = inner.endpoint

    def send(self, message: bytes, **kw: Any) -> Any:
        if self.fail_next:
            self.fail_next -= 1
            raise requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")
        return self.inner.send(message, **kw)

    def close(self) -> None:
        pass


@dataclass
class PsrpLab:
    """One in-memory host behind the real transport: its runtime and service, the transport's session cache, a
    connection to it, the service's clock and the HTTP layers that can drop the next sends."""

    runtime: ConnectorRuntime
    service: WSManService
    cache: SessionCache
    transport: PsrpTransport
    conn: HostConnection
    clock: Clock
    flaky: list[Flaky]


@pytest.fixture
def lab() -> Iterator[PsrpLab]:
    runtime = ConnectorRuntime()
    clock = Clock()
    service = WSManService("wap01", "WAP01", runtime, operation_timeout=5, clock=clock)
    flaky: list[Flaky] = []

    def factory(conn: HostConnection, password: str | None) -> WSMan:
        wsman = in_memory_wsman(service, operation_timeout=conn.operation_timeout)
        stand_in = Flaky(wsman.transport)
        # pypsrp types the attribute as its HTTP transport; this stand-in has the send/close it calls.
        wsman.transport = stand_in  # type: ignore[assignment]
        flaky.append(stand_in)
        return wsman

    cache = SessionCache(wsman_factory=factory)
    transport = PsrpTransport(cache, sleep=lambda s: None)
    conn = HostConnection(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm", username="LAB\\admin",
                          password=PASSWORD, operation_timeout=5, read_timeout=10)
    yield PsrpLab(runtime=runtime, service=service, cache=cache, transport=transport, conn=conn, clock=clock,
                  flaky=flaky)
    cache.close_all()
    service.close()


def test_objects_streams_and_typed_parameters(lab: PsrpLab) -> None:
    t, conn = lab.transport, lab.conn
    assert t.run(conn, "who", Command("Get-Session")).single() == {
        "Host": "wap01", "User": "LAB\\admin", "Configuration": "Microsoft.PowerShell", "Auth": "negotiate"}
    r = t.run(conn, "streams", Command("Write-Streams"))
    assert (r.output, r.verbose, r.warnings, r.information) == (["done"], ["verbose text"], ["warning text"],
                                                                ["information text"])
    params = {"Text": "it's $(x)", "Count": 3, "Big": 2**40, "Ratio": 1.5, "Blob": b"\x00\xff", "List": [1, "a"],
              "Map": {"CloudName": "wap", "Port": 40005}, "Pw": Secret(PASSWORD)}
    seen = {o["Name"]: (o["Type"], o["Value"]) for o in
            t.run(conn, "types", Command("Describe-Parameters", params, ["Force"])).output}
    assert seen == {"Text": ("str", "it's $(x)"), "Count": ("int", 3), "Big": ("int", 2**40),
                    "Ratio": ("float", 1.5), "Blob": ("bytes", b"\x00\xff"), "List": ("list", [1, "a"]),
                    "Map": ("dict", {"CloudName": "wap", "Port": 40005}), "Pw": ("SecretStr", "****"),
                    "Force": ("bool", True)}
    cred = t.run(conn, "cred", Command("Reveal-Secret", {"Secret": Credential("LAB\\svc", Secret(PASSWORD))})).single()
    assert cred == {"UserName": "LAB\\svc", "Password": PASSWORD, "IsSecret": "SecretStr"}


def test_statements_run_in_one_pipeline(lab: PsrpLab) -> None:
    r = lab.transport.run(lab.conn, "two", [Command("Write-Streams"), Command("Get-Session")])
    assert r.outputs[0] == ["done"] and r.outputs[1][0]["Host"] == "wap01"  # each statement's output apart
    session, statements, _ = lab.runtime.calls[-1]
    # Between the statements, the boundary that tells their outputs apart.
    assert [[c.name for c in s] for s in statements] == [["Write-Streams"], ["Write-Output"], ["Get-Session"]]
    assert not any(c.is_script for s in statements for c in s)


def test_non_terminating_and_terminating_errors(lab: PsrpLab) -> None:
    t, conn = lab.transport, lab.conn
    with pytest.raises(RemoteCommandFailed) as e:
        t.run(conn, "probe", Command("Write-Error", {"Message": "Access denied", "ErrorId": "Denied",
                                                     "Category": 18}))
    assert (e.value.error_id, e.value.category, e.value.terminating) == ("Denied", "PermissionDenied", False)
    r = t.run(conn, "probe", Command("Write-Error", {"Message": "x"}), accept_errors=True)
    assert r.output == ["after the error"] and r.errors[0].category == "ObjectNotFound"
    with pytest.raises(RemoteCommandFailed) as e:
        t.run(conn, "install", Command("Throw-Error", {"Message": "MSI failed", "ErrorId": "MsiFailed"}),
              accept_errors=True)  # accepting error records never hides a Failed pipeline
    assert e.value.terminating and e.value.error_id == "MsiFailed" and "MSI failed" in str(e.value)


def test_timeout_stops_the_pipeline(lab: PsrpLab) -> None:
    with pytest.raises(StepTimedOut, match=r"did not finish within 1\.5 s and was stopped") as e:
        lab.transport.run(lab.conn, "slow", Command("Sleep-Until-Stopped", {"Seconds": 30}), timeout=1.5)
    # Stopped on the host (its 30 s sleep cut short), not left to run out.
    assert lab.runtime.stopped.wait(2), "the host never saw the stop signal"
    assert e.value.seconds == 1.5
    # The host's per-step override wins over the provider's default.
    conn = lab.conn.model_copy(update={"step_timeouts": {"slow": 1.0}})
    with pytest.raises(StepTimedOut, match="within 1 s"):
        lab.transport.run(conn, "slow", Command("Sleep-Until-Stopped", {"Seconds": 30}), timeout=60)


def test_run_until_stops_at_the_success_line(lab: PsrpLab) -> None:
    # The host polls forever after the line: returning at all (no StepTimedOut) means the line was noticed.
    r = lab.transport.run_until(lab.conn, "add connector", Command("Add-AzurePackConnector"),
                                re.compile(re.escape(SUCCESS)), timeout=20)
    assert r.stopped and r.verbose[-1] == SUCCESS and len(r.verbose) == 2
    assert lab.runtime.stopped.wait(2), "the pipeline was not stopped on the host"
    # The session is still good afterwards.
    assert lab.transport.run(lab.conn, "who", Command("Get-Session")).output


def test_run_until_times_out_without_the_line(lab: PsrpLab) -> None:
    with pytest.raises(StepTimedOut, match="did not print the expected verbose line within 2 s"):
        lab.transport.run_until(lab.conn, "add connector", Command("Add-AzurePackConnector", {"Never": True}),
                                SUCCESS, timeout=2)
    assert lab.runtime.stopped.wait(2)
    with pytest.raises(RemoteCommandFailed, match="without printing the expected verbose line"):
        lab.transport.run_until(lab.conn, "quiet", Command("Finish-Quietly"), SUCCESS, timeout=10)


def test_sessions_are_reused_and_idle_ones_retired(lab: PsrpLab, monkeypatch: pytest.MonkeyPatch) -> None:
    t, conn, cache = lab.transport, lab.conn, lab.cache
    for _ in range(3):
        t.run(conn, "who", Command("Get-Session"))
    assert cache.opened == 1 and cache.idle_count(conn) == 1
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 120.0)  # as if two minutes had passed
    t.run(conn, "who", Command("Get-Session"))
    assert cache.opened == 2 and cache.discarded == 1


def test_shell_gone_on_the_server_is_reopened_even_for_writes(lab: PsrpLab) -> None:
    t, conn, cache = lab.transport, lab.conn, lab.cache
    t.run(conn, "who", Command("Get-Session"))
    lab.clock.now += 10_000
    assert lab.service.reap_idle(), "the server should have dropped the shell"
    # Not idempotent: safe anyway, because a "shell not found" fault proves the command never ran.
    assert t.run(conn, "write", Command("Get-Session")).output
    assert cache.opened == 2
    assert len(lab.runtime.calls) == 2


def test_lost_connection_retried_for_reads_only(lab: PsrpLab) -> None:
    t, conn, cache = lab.transport, lab.conn, lab.cache
    t.run(conn, "who", Command("Get-Session"))
    lab.flaky[-1].fail_next = 1
    assert t.run(conn, "read", Command("Get-Session"), idempotent=True).output
    assert cache.opened == 2
    lab.flaky[-1].fail_next = 1
    with pytest.raises(TransportError, match="connection to 127.0.10.4:5986 lost"):
        t.run(conn, "write", Command("Get-Session"))
    # The broken session was thrown away: the next call opens a new one and works.
    assert t.run(conn, "who", Command("Get-Session")).output and cache.opened == 3


def test_four_threads_share_the_cache(lab: PsrpLab) -> None:
    results, errors = [], []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(lab.transport.run(lab.conn, "who", Command("Get-Session")).single()["Host"])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors and results == ["wap01"] * 20
    # Short calls wait for the busy session rather than paying for a pool each: one pool per host per process.
    assert lab.cache.opened == 1


def test_a_session_held_by_a_read_is_waited_for_however_slow(lab: PsrpLab) -> None:
    cache, conn = lab.cache, lab.conn
    cache.reuse_wait, cache.read_wait = 0.1, 10
    held = cache.checkout(conn, "read", read=True)
    threading.Timer(0.5, cache.checkin, [held]).start()  # five times reuse_wait: only read_wait explains a reuse
    again = cache.checkout(conn, "read", read=True)  # a slow host: still cheaper than a pool of its own
    assert again is held and cache.opened == 1


def test_a_session_held_by_a_long_step_is_waited_for_briefly_then_a_second_one_opens(lab: PsrpLab) -> None:
    cache, conn = lab.cache, lab.conn
    cache.reuse_wait = 5  # far beyond the 0.05 s the long step keeps it, however loaded the machine
    held = cache.checkout(conn, "long step")
    threading.Timer(0.05, cache.checkin, [held]).start()
    again = cache.checkout(conn, "read")  # the long step gave it back in time: waited for, then reused
    assert again is held and cache.opened == 1
    cache.reuse_wait = 0.1
    other = cache.checkout(conn, "read")  # still held: after reuse_wait, a second pool
    assert other is not held and cache.opened == 2
    cache.discard(other)
    cache.checkin(again)
    # A discarded session no longer counts as busy: the next checkout takes the idle one.
    assert cache.checkout(conn, "read") is held and cache.opened == 2


def test_no_secret_in_errors_or_logs(lab: PsrpLab, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t, conn = lab.transport, lab.conn
    failures: list[Exception] = []
    for cmd in (Command("Throw-Error", {"Message": f"bad {PASSWORD}", "Pw": Secret(PASSWORD)}),
                Command("Write-Error", {"Message": f"echo {PASSWORD}", "Cred": Credential("u", Secret(PASSWORD))})):
        with pytest.raises(RemoteCommandFailed) as e:
            t.run(conn, "secret", cmd)
        failures.append(e.value)
    lab.flaky[-1].fail_next = 1
    with pytest.raises(TransportError) as dropped:
        t.run(conn, "secret", Command("Get-Session"))
    failures.append(dropped.value)
    # Client-side records only: the simulated host (psrpcore at DEBUG) logs what it received, including the
    # plain-text message this test sends on purpose to make the "host" echo the password.
    client = [r for r in caplog.records if not r.name.startswith(("psrpcore", "labsim"))]
    text = "\n".join([str(f) for f in failures] + [repr(f) for f in failures] +
                     [r.getMessage() for r in client] + [str(r.args) for r in client])
    assert "****" in text and PASSWORD not in text


def test_pipeline_input(lab: PsrpLab) -> None:
    r = lab.transport.run(lab.conn, "input", Command("Measure-Input", {"Blob": b"abc"}), input=["a", 2, {"k": 1}])
    assert r.single() == {"Length": 3, "InputCount": 3}
    _, _, sent = lab.runtime.calls[-1]
    assert sent == ["a", 2, {"k": 1}]
