"""labsim's sans-IO WSMan/PSRP core, driven in memory by the real pypsrp client (no sockets)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from pypsrp.complex_objects import ObjectMeta, PSCredential
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.shell import WinRS
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

from labsim import envelope as soap
from labsim.envelope import Principal
from labsim.runtime import PSObject, SecretStr
from labsim.wsman import WSManService

from .protocol_doubles import EchoRuntime, InMemoryTransport, envelope, in_memory_wsman, run

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


@pytest.fixture
def runtime() -> EchoRuntime:
    return EchoRuntime()


@pytest.fixture
def service(runtime: EchoRuntime) -> Iterator[WSManService]:
    svc = WSManService("WAP01", "wap01.contoso.com", runtime, operation_timeout=1.0, idle_shell_timeout=60)
    yield svc
    svc.close()


@pytest.fixture
def pool(service: WSManService) -> Iterator[RunspacePool]:
    with RunspacePool(in_memory_wsman(service, operation_timeout=1)) as rp:
        yield rp


def raw_request(service: WSManService, data: bytes, user: str = "LAB\\admin") -> WSManFaultError | ET.Element:
    reply = service.handle(data, Principal(user, "basic"))
    if reply.status != 200:
        return WSMan._parse_wsman_fault(reply.body.decode())
    return ET.fromstring(reply.body)




# -- pipelines, streams and values ----------------------------------------------------------------------------
def test_output_objects_and_session(pool: RunspacePool, runtime: EchoRuntime) -> None:
    ps = run(pool, "Get-Session")
    props = ps.output[0].extended_properties
    assert props == {"Host": "WAP01", "User": "LAB\\admin", "Configuration": "Microsoft.PowerShell",
                     "Auth": "negotiate"}
    assert ps.output[0].types[0] == "Labsim.Session"
    session = runtime.calls[-1][0]
    assert session.shell_id == str(pool.id).upper()


def test_values_cross_the_seam_as_plain_python(pool: RunspacePool, runtime: EchoRuntime) -> None:
    ps = run(pool, "Describe-Parameters", Force=None, Name="x", Count=7, Blob=b"\x00\xff", Items=[1, "a"],
             Table={"k": [True, 2]})
    described = {o["Name"]: (o["Type"], o["Value"]) for o in ps.output}
    assert described == {"Force": ("bool", True), "Name": ("str", "x"), "Count": ("int", 7),
                         "Blob": ("bytes", b"\x00\xff"), "Items": ("list", [1, "a"]),
                         "Table": ("dict", {"k": [True, 2]})}
    # echoing a hashtable and a PSObject back gives a hashtable and a PSCustomObject
    ps = run(pool, "Echo-Object", InputObject={"nested": {"a": 1}})
    assert ps.output == [{"nested": {"a": 1}}]


def test_secure_string_and_credential_arrive_decrypted(pool: RunspacePool) -> None:
    pool.exchange_keys()
    ps = run(pool, "Reveal-Secret", Secret=pool.serialize("s3cret!", ObjectMeta("SS")))
    assert ps.output == [{"Password": "s3cret!", "IsSecret": "SecretStr"}]
    ps = run(pool, "Reveal-Secret", Secret=PSCredential(username="CONTOSO\\svc", password="p@ss:word"))
    assert ps.output == [{"UserName": "CONTOSO\\svc", "Password": "p@ss:word", "IsSecret": "SecretStr"}]
    assert "p@ss" not in repr(SecretStr("p@ss"))


def test_pipeline_input(pool: RunspacePool, runtime: EchoRuntime) -> None:
    ps = run(pool, "Measure-Input", input=["a", "b", "c"])
    assert ps.output == [{"Length": 0, "InputCount": 3}]
    assert runtime.calls[-1][2] == ["a", "b", "c"]


def test_statements_are_split(pool: RunspacePool, runtime: EchoRuntime) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Echo-Object").add_argument(1).add_statement().add_cmdlet("Echo-Object").add_argument(2)
    assert ps.invoke() == [1, 2]
    statements = runtime.calls[-1][1]
    assert [[c.name for c in s] for s in statements] == [["Echo-Object"], ["Echo-Object"]]
    assert statements[0][0].end_of_statement


def test_non_terminating_error_keeps_going(pool: RunspacePool) -> None:
    ps = run(pool, "Write-Error", Message="disk is full", ErrorId="DiskFull", Category=7)
    assert ps.output == ["after the error"]
    assert not ps.had_errors
    assert ps.state == PSInvocationState.COMPLETED
    [err] = ps.streams.error
    assert (str(err), err.fq_error, err.category) == ("disk is full", "DiskFull", 7)


def test_terminating_error_fails_the_pipeline(pool: RunspacePool) -> None:
    ps = run(pool, "Throw-Error", Message="site not found", ErrorId="SiteNotFound,Get-Website", Category=13)
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    assert ps.output == ["before the throw"]
    [err] = ps.streams.error
    assert str(err) == "site not found"
    assert err.fq_error == "SiteNotFound,Get-Website"
    assert err.category == 13
    assert err.reason is not None and "RuntimeException" in err.reason


def test_behaviour_bug_is_reported_not_fatal(pool: RunspacePool) -> None:
    ps = run(pool, "Crash")
    assert ps.had_errors
    assert ps.streams.error[0].fq_error == "LabsimInternalError"
    assert "the behaviour layer has a bug" in str(ps.streams.error[0])
    assert run(pool, "Echo-Object", "still alive").output == ["still alive"]


def test_verbose_warning_information_streams(pool: RunspacePool) -> None:
    ps = run(pool, "Write-Streams")
    assert [v.message for v in ps.streams.verbose] == ["verbose text"]
    assert [w.message for w in ps.streams.warning] == ["warning text"]
    assert [i.message_data for i in ps.streams.information] == ["information text"]


def test_psobject_output_keeps_type_names(pool: RunspacePool, runtime: EchoRuntime,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    site = PSObject({"name": "MgmtSvc-Connector", "id": 3},
                    type_names=["Microsoft.IIs.PowerShell.Framework.ConfigurationElement#site"])
    monkeypatch.setattr(runtime, "_get_site", lambda s, p, a, i, sink: sink.output(site), raising=False)
    ps = run(pool, "Get-Site")
    assert ps.output[0].types[0] == "Microsoft.IIs.PowerShell.Framework.ConfigurationElement#site"
    assert ps.output[0].extended_properties == {"name": "MgmtSvc-Connector", "id": 3}


def test_large_output_is_fragmented_within_the_envelope(service: WSManService,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    wsman = in_memory_wsman(service, operation_timeout=1)
    transport = wsman.transport
    assert isinstance(transport, InMemoryTransport)
    sizes: list[int] = []
    send = transport.send

    def spy(message: bytes, **kw: Any) -> bytes:
        reply = send(message, **kw)
        sizes.append(len(reply))
        return reply

    monkeypatch.setattr(transport, "send", spy)
    with RunspacePool(wsman) as rp:
        ps = run(rp, "Get-Large", Bytes=700_000, Count=3)
        assert [len(o) for o in ps.output] == [700_000] * 3
        ps = run(rp, "Measure-Input", Blob="x" * 2_000_000)
        assert ps.output == [{"Length": 2_000_000, "InputCount": 0}]
    assert max(sizes) <= wsman.max_envelope_size
    assert len(sizes) > 10  # really fragmented across several Receives


def test_command_metadata_and_runspace_settings(pool: RunspacePool) -> None:
    assert pool.get_command_metadata("Get-*") == []
    pool.max_runspaces = 3  # pypsrp sends the call id as "CI"
    assert pool.max_runspaces == 3
    assert pool.get_available_runspaces() >= 1


def test_many_pipelines_in_one_pool_then_close(pool: RunspacePool, service: WSManService) -> None:
    for i in range(30):
        assert run(pool, "Echo-Object", i).output == [i]
    shell = next(iter(service._shells.values()))
    assert not shell.runs, "finished pipelines must not pile up in the shell"


# -- stop, long poll, reaper -----------------------------------------------------------------------------------
def test_receive_long_poll_times_out_and_pypsrp_polls_again(runtime: EchoRuntime,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's long poll is short here (0.25 s), so a 1 s command outlasts it several times.
    svc = WSManService("WAP01", "wap01.contoso.com", runtime, operation_timeout=0.25, idle_shell_timeout=60)
    handle, timed_out = svc.handle, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        reply = handle(*args, **kwargs)
        if b"w:TimedOut" in reply.body:
            timed_out.append(reply.status)
        return reply

    monkeypatch.setattr(svc, "handle", counted)
    try:
        with RunspacePool(in_memory_wsman(svc, operation_timeout=1)) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Sleep-Until-Stopped").add_parameter("Seconds", 1.0)
            ps.begin_invoke()
            ps.end_invoke()  # the server answers OperationTimeout at least once; pypsrp polls again
            assert ps.output == ["sleeping", "woke up"]
    finally:
        svc.close()
    assert timed_out and set(timed_out) == {500}, timed_out


def test_stop_running_pipeline(pool: RunspacePool, runtime: EchoRuntime, service: WSManService) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Sleep-Until-Stopped").add_parameter("Seconds", 30)
    ps.begin_invoke()
    while not ps.output:
        ps.poll_invoke()
    assert ps.output == ["sleeping"]
    ps.stop()
    assert runtime.stopped.wait(5), "the behaviour never saw stop_requested"
    assert ps.state == PSInvocationState.STOPPED
    assert run(pool, "Echo-Object", "next").output == ["next"]


def test_idle_shells_are_reaped(runtime: EchoRuntime) -> None:
    now = [1000.0]
    svc = WSManService("H", "h.lab", runtime, operation_timeout=1, idle_shell_timeout=10, clock=lambda: now[0])
    pool = RunspacePool(in_memory_wsman(svc))
    pool.open()
    assert svc.shell_ids == [str(pool.id).upper()]
    now[0] += 5
    assert svc.reap_idle() == []
    now[0] += 11
    assert svc.reap_idle() == [str(pool.id).upper()]
    with pytest.raises(WSManFaultError) as exc:
        run(pool, "Echo-Object", 1)
    assert exc.value.code == soap.CODE_SHELL_NOT_FOUND
    assert not pool.is_alive()


def test_a_shell_is_reaped_after_the_idle_timeout_its_client_asked(runtime: EchoRuntime) -> None:
    """The client's rsp:IdleTimeOut applies when it is shorter than labsim's own limit."""
    now = [1000.0]
    svc = WSManService("H", "h.lab", runtime, operation_timeout=1, idle_shell_timeout=240, clock=lambda: now[0])
    short = RunspacePool(in_memory_wsman(svc), idle_timeout=30)
    short.open()
    default = RunspacePool(in_memory_wsman(svc))
    default.open()
    now[0] += 31
    assert svc.reap_idle() == [str(short.id).upper()]
    now[0] += 210
    assert svc.reap_idle() == [str(default.id).upper()]


@pytest.mark.parametrize(("target", "shown"), [
    ("x" * 40, "x" * 40),
    ("a" * 15 + "b" * 11 + "c" * 15, "a" * 15 + "..." + "c" * 15),
])
def test_category_fields_over_40_characters_are_shortened_in_the_middle(target: str, shown: str) -> None:
    from psrpcore.types import ErrorCategory

    from labsim.records import category_message

    assert category_message(ErrorCategory.ObjectNotFound, "Get-Item", "ItemNotFoundException", target, "String") == (
        f"ObjectNotFound: ({shown}:String) [Get-Item], ItemNotFoundException")


# -- faults ------------------------------------------------------------------------------------------------------
def test_unknown_shell_id_is_a_windows_shaped_fault(service: WSManService, pool: RunspacePool) -> None:
    missing = str(uuid.uuid4()).upper()
    shell = WinRS(in_memory_wsman(service), "http://schemas.microsoft.com/powershell/Microsoft.PowerShell")
    shell._selector_set = SelectorSet()
    shell._selector_set.add_option("ShellId", missing)
    with pytest.raises(WSManFaultError) as exc:
        shell.receive("stdout")
    assert exc.value.code == 2150858843
    assert f"ShellId {missing} failed because the shell was not found on the server" in exc.value.reason
    assert exc.value.machine == "wap01.contoso.com"
    assert run(pool, "Echo-Object", "ok").output == ["ok"]


def test_other_users_shell_is_invisible(service: WSManService, pool: RunspacePool) -> None:
    other = RunspacePool(in_memory_wsman(service, user="LAB\\mallory"))
    other.id = pool.id
    other.shell._selector_set = SelectorSet()
    other.shell._selector_set.add_option("ShellId", str(pool.id).upper())
    with pytest.raises(WSManFaultError) as exc:
        other.shell.receive("stdout")
    assert exc.value.code == soap.CODE_SHELL_NOT_FOUND


@pytest.mark.parametrize("data, code", [
    (b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header>", soap.CODE_INVALID_XML),
    (b"not xml at all \x00\xff", soap.CODE_INVALID_XML),
    (b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'>]><lol>&a;</lol>", soap.CODE_INVALID_XML),
    (b"<root/>", soap.CODE_INVALID_XML),
    (b"", soap.CODE_INVALID_XML),
])
def test_malformed_requests_are_faults(service: WSManService, pool: RunspacePool, data: bytes, code: int) -> None:
    fault = raw_request(service, data)
    assert isinstance(fault, WSManFaultError)
    assert fault.code == code
    assert run(pool, "Echo-Object", "ok").output == ["ok"]


def test_wrong_action_and_missing_selector(service: WSManService, pool: RunspacePool) -> None:
    fault = raw_request(service, envelope("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
                                          shell_id=str(pool.id).upper()))
    assert isinstance(fault, WSManFaultError) and fault.code == soap.CODE_ACTION_NOT_SUPPORTED
    fault = raw_request(service, envelope(soap.ACTION_RECEIVE))
    assert isinstance(fault, WSManFaultError) and fault.code == soap.CODE_INVALID_SELECTORS
    fault = raw_request(service, envelope(soap.ACTION_COMMAND, shell_id=str(pool.id).upper()))
    assert isinstance(fault, WSManFaultError) and fault.code == soap.CODE_INVALID_REQUEST
    cmd = ET.Element(f"{{{NAMESPACES['rsp']}}}CommandLine", CommandId=str(uuid.uuid4()))
    ET.SubElement(cmd, f"{{{NAMESPACES['rsp']}}}Arguments").text = "AAAA garbage"
    fault = raw_request(service, envelope(soap.ACTION_COMMAND, shell_id=str(pool.id).upper(), body=cmd))
    assert isinstance(fault, WSManFaultError)
    assert run(pool, "Echo-Object", "ok").output == ["ok"]


def test_unknown_session_configuration(service: WSManService) -> None:
    with pytest.raises(WSManFaultError) as exc:
        RunspacePool(in_memory_wsman(service), configuration_name="PrivilegedEndpoint").open()
    assert exc.value.code == soap.CODE_CONFIG_NOT_FOUND
    assert "PrivilegedEndpoint session configuration" in exc.value.reason


def test_privileged_endpoint_serves_only_its_jea_configuration(runtime: EchoRuntime) -> None:
    svc = WSManService("AzS-ERCS01", "azs-ercs01.azurestack.local", runtime, privileged_endpoint=True)
    with RunspacePool(in_memory_wsman(svc, auth="credssp"), configuration_name="PrivilegedEndpoint") as pool:
        assert run(pool, "Get-Session").output[0].extended_properties["Configuration"] == "PrivilegedEndpoint"
    with pytest.raises(WSManFaultError):
        RunspacePool(in_memory_wsman(svc)).open()
    svc.close()
