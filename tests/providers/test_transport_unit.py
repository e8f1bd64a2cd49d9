"""Unit tables for the transport boundary: commands, values, results, error translation, the fake, and the
connection model. No sockets."""

from __future__ import annotations

import logging
import pathlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
from pypsrp.complex_objects import GenericComplexObject, PSCredential
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.serializer import Serializer, TaggedValue

from providers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    HostUnreachable,
    RemoteCommandFailed,
    StepTimedOut,
    TlsVerificationFailed,
    TransportError,
    is_transient,
)
from providers.transport import (
    Call,
    Command,
    Credential,
    ErrorRecordInfo,
    Failure,
    FakeTransport,
    HostConnection,
    Pipeline,
    Result,
    Secret,
    describe,
    error_info,
    secrets_in,
    to_plain,
    to_statements,
    to_wire,
    translate,
)

pytestmark = pytest.mark.unit

PASSWORD = "Sup3r-S3cret!pw"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def conn(**kw: Any) -> HostConnection:
    base = dict(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm", username="CONTOSO\\admin",
                password=PASSWORD)
    base.update(kw)
    return HostConnection(**base)


# -- the project never sends script text --------------------------------------------------------------------------
def test_no_script_text_anywhere_in_providers() -> None:
    offenders = []
    for path in (ROOT / "providers").rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(add_script|execute_ps|execute_cmd)\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "PowerShell script text is forbidden; use Command objects:\n" + "\n".join(offenders)


# -- commands ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "Get-Website", "ConvertTo-Json", "Microsoft.PowerShell.Utility\\ConvertTo-Json", "Add-AzurePackConnector",
    "C:\\setup\\scripts\\Install-Connector.ps1", "C:\\Program Files\\WAP Connector\\Configure-Certificates.ps1",
])
def test_command_names_accepted(name: str) -> None:
    assert Command(name).name == name


@pytest.mark.parametrize("name", [
    "Get-Website; Remove-Item C:\\", "Get-Website | Out-Null", "$(whoami)", "& notepad", "Get-Item `n",
    "", "Get Website", "C:\\x\\a'.ps1", "C:\\x\\run.exe", "\\\\server\\share\\x.ps1",
])
def test_command_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a command name"):
        Command(name)


@pytest.mark.parametrize("params, switches, error", [
    ({"Name;x": 1}, (), "not a parameter name"),
    ({"-Name": 1}, (), "not a parameter name"),
    ({}, ("Com press",), "not a switch name"),
    ({"Force": True}, ("force",), "given twice"),
    ({"Obj": object()}, (), "unsupported value type object"),
    ({"Map": {1: "a"}}, (), "keys must be str"),
])
def test_command_parameters_refused(params: dict[str, Any], switches: tuple[Any, ...], error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        Command("Get-Item", params, switches)


def test_switches_must_be_a_sequence_not_a_string() -> None:
    with pytest.raises(TypeError):
        Command("ConvertTo-Json", switches="Compress")


def test_pipelines_and_statements_normalise() -> None:
    get = Command("Get-Website", {"Name": "MgmtSvc-Connector"})
    json = Command("ConvertTo-Json", {"Depth": 4}, ["Compress"])
    p = get | json
    assert isinstance(p, Pipeline) and [c.name for c in p.commands] == ["Get-Website", "ConvertTo-Json"]
    assert to_statements(get) == (Pipeline((get,)),)
    assert to_statements([get, p]) == (Pipeline((get,)), p)
    assert (p | get).commands[-1] == get
    with pytest.raises(ValueError):
        to_statements([])


def test_describe_quotes_masks_and_is_for_display_only() -> None:
    cmd = (Command("New-Item", {"Path": "C:\\it's", "Count": 3, "On": True, "Off": False, "N": None,
                                "Blob": b"\x00\x01", "List": ["a", 1], "Map": {"k": "v"},
                                "Pw": Secret(PASSWORD), "Cred": Credential("CONTOSO\\svc", Secret(PASSWORD))},
                   ["Force"])
           | Command("C:\\setup\\Install-Connector.ps1"))
    text = describe(cmd)
    assert text == ("New-Item -Path 'C:\\it''s' -Count 3 -On $true -Off $false -N $null -Blob <2 bytes> "
                    "-List @('a', 1) -Map @{k='v'} -Pw '****' -Cred (Credential 'CONTOSO\\\\svc' '****') -Force"
                    " | & 'C:\\setup\\Install-Connector.ps1'")
    assert PASSWORD not in text and PASSWORD not in repr(cmd)
    assert secrets_in(cmd) == [PASSWORD, PASSWORD]


def test_secret_is_masked_and_never_pickled() -> None:
    import pickle
    s = Secret(PASSWORD)
    assert PASSWORD not in f"{s} {s!r} {[s]} {Credential('u', s)!r}"
    # A plain str is turned into a Secret: what this asserts, so the declared Secret is not passed.
    assert s.reveal() == PASSWORD and Credential("u", PASSWORD).password == s  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(s)


# -- values on the wire ------------------------------------------------------------------------------------------
def _clixml(value: object) -> str:
    el = Serializer().serialize(to_wire(value))
    assert el is not None
    return ET.tostring(el, encoding="unicode")


@pytest.mark.parametrize("value, tag", [
    ("text", "S"), (True, "B"), (7, "I32"), (2**40, "I64"), (1.5, "Db"), (b"\x01", "BA"), (None, "Nil"),
])
def test_scalar_types_on_the_wire(value: object, tag: str) -> None:
    assert _clixml(value).startswith(f"<{tag}")


def test_collections_on_the_wire() -> None:
    assert "<LST>" in _clixml(("a", 1)) and "System.Collections.Hashtable" in _clixml({"a": [1, 2]})
    assert isinstance(to_wire({"CloudName": "c", "Nested": {"x": Secret("s")}})["Nested"]["x"], TaggedValue)
    with pytest.raises(ValueError):
        to_wire(2**64)


def test_secrets_become_secure_strings_and_credentials() -> None:
    tv = to_wire(Secret(PASSWORD))
    assert isinstance(tv, TaggedValue) and tv.tag == "SS"
    cred = to_wire(Credential("CONTOSO\\svc", Secret(PASSWORD)))
    assert isinstance(cred, PSCredential) and cred.username == "CONTOSO\\svc" and cred.password == PASSWORD


# -- output conversion -------------------------------------------------------------------------------------------
SITE_XML = """<Obj RefId="0"><TN RefId="0"><T>Microsoft.IIs.PowerShell.Framework.ConfigurationElement#site</T>
<T>System.Object</T></TN><ToString>MgmtSvc-Connector</ToString><Props><S N="name">MgmtSvc-Connector</S>
<I64 N="id">4</I64></Props><MS><S N="PhysicalPath">C:\\inetpub\\MgmtSvc-Connector</S>
<Obj N="State" RefId="1"><TN RefId="1"><T>System.ServiceProcess.ServiceControllerStatus</T><T>System.Enum</T>
<T>System.ValueType</T><T>System.Object</T></TN><ToString>Running</ToString><I32>4</I32></Obj>
<Obj N="Bindings" RefId="2"><TN RefId="2"><T>System.Object[]</T><T>System.Array</T><T>System.Object</T></TN>
<LST><S>https/*:443:</S></LST></Obj></MS></Obj>"""


def test_objects_become_dicts_enums_names() -> None:
    obj = Serializer().deserialize(SITE_XML)
    assert isinstance(obj, GenericComplexObject)
    assert to_plain(obj) == {"name": "MgmtSvc-Connector", "id": 4, "PhysicalPath": "C:\\inetpub\\MgmtSvc-Connector",
                             "State": "Running", "Bindings": ["https/*:443:"]}
    assert to_plain([1, "a", None, {"k": [True]}]) == [1, "a", None, {"k": [True]}]


def test_result_json_and_single() -> None:
    assert Result(output=['{"a": [1, 2]}']).json() == {"a": [1, 2]}
    assert Result(output=["[", "1", "]"]).json() == [1]
    assert Result().json() is None and Result().single() is None
    with pytest.raises(ValueError):
        Result(output=[{"a": 1}]).json()
    with pytest.raises(ValueError):
        Result(output=[1, 2]).single()


def test_error_record_conversion() -> None:
    exc = GenericComplexObject()
    exc.types = ["Deserialized.System.Management.Automation.ItemNotFoundException", "Deserialized.System.Exception"]
    exc.adapted_properties["Message"] = "Cannot find path 'IIS:\\Sites\\X'."

    class Rec:  # the attributes pypsrp's ErrorRecord has
        exception = exc
        fq_error = "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
        category = 13
        target_name = "IIS:\\Sites\\X"
        details_message = None
        command_name = "Get-Item"
        message = "ObjectNotFound: (IIS:\\Sites\\X:String) [Get-Item], ItemNotFoundException"

        def __str__(self) -> str:
            return ""

    info = error_info(Rec())
    assert info == ErrorRecordInfo("Cannot find path 'IIS:\\Sites\\X'.", Rec.fq_error, "ObjectNotFound",
                                   "IIS:\\Sites\\X", "Get-Item", "System.Management.Automation.ItemNotFoundException")
    assert info.error_code == "PathNotFound"


# -- error translation ---------------------------------------------------------------------------------------------
def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def _fault(code: int, reason: str = "r") -> WSManFaultError:
    return WSManFaultError(code, "machine", reason, None, None, None)


TRANSLATIONS = [
    (AuthenticationError("Failed to authenticate the user CONTOSO\\admin with ntlm"), AuthenticationFailed,
     "refused user 'CONTOSO\\admin' with ntlm"),
    (_chained(requests.exceptions.ConnectionError("x"), ConnectionRefusedError(111, "refused")), HostUnreachable,
     "check WinRM is listening on 127.0.10.4:5986 and the host is up"),
    (requests.exceptions.ConnectTimeout("x"), HostUnreachable, "no answer within 30 s"),
    (requests.exceptions.ReadTimeout("x"), TransportError, "within 30 s (read_timeout)"),
    (requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
     TlsVerificationFailed, "set ca_file"),
    (_fault(0x8033805B, "The shell was not found"), TransportError, "WSMan fault 0x8033805b"),
    (_fault(5, "Access is denied."), AuthenticationFailed, "access denied to session configuration"),
    (_fault(0x80338000, "Cannot find the X session configuration"), ConfigurationError, "Get-PSSessionConfiguration"),
    (WinRMTransportError("http", 503, "busy"), TransportError, "HTTP 503"),
    (_chained(requests.exceptions.ConnectionError("x"), ConnectionResetError(104, "reset")), TransportError,
     "lost: ConnectionResetError"),
]


@pytest.mark.parametrize("exc, kind, text", TRANSLATIONS, ids=[type(t[0]).__name__ + str(i) for i, t in
                                                              enumerate(TRANSLATIONS)])
def test_translate(exc: Exception, kind: type[Exception], text: str) -> None:
    err = translate(exc, conn(), "read site")
    assert type(err) is kind
    assert text in str(err) and "wap01.contoso.local" in str(err) and "read site" in str(err)
    assert PASSWORD not in str(err)


def test_translate_credssp_failure_and_scrubs_password() -> None:
    from requests_credssp.exceptions import AuthenticationException  # type: ignore[import-untyped]  # no stubs exist
    err = translate(AuthenticationException(f"Server did not accept {PASSWORD}"), conn(), "s")
    assert isinstance(err, AuthenticationFailed) and PASSWORD not in str(err) and "****" in str(err)


def test_translate_credssp_reply_without_challenge_is_a_transport_error() -> None:
    """A WSMan fault (HTTP 500, no WWW-Authenticate) answering CredSSP's last step is no refused credential."""
    from requests_credssp.exceptions import AuthenticationException
    err = translate(AuthenticationException("Server did not response with a CredSSP token after step Credential "
                                            "exchange - actual ''"), conn(), "s")
    assert type(err) is TransportError and err.transient and "not a refused credential" in str(err)
    refused = translate(AuthenticationException("Server did not response with a CredSSP token after step TLS "
                                                "Handshake - actual 'Negotiate, Basic'"), conn(), "s")
    assert isinstance(refused, AuthenticationFailed)


@pytest.mark.parametrize("err, transient", [
    (TransportError("h", "s", "d"), True), (HostUnreachable("h", "s", "d"), True),
    (StepTimedOut("h", "s", seconds=1, waiting_for="finish"), True),
    (AuthenticationFailed("h", "s", user="u", auth="ntlm"), False), (TlsVerificationFailed("h", "s", "d"), False),
    (RemoteCommandFailed("h", "s", command="c", message="m"), False), (ConfigurationError(["p"]), False),
    (ValueError("x"), False),
])
def test_transient_classification(err: BaseException, transient: bool) -> None:
    assert is_transient(err) is transient
    if isinstance(err, ConnectorError):
        assert isinstance(err, ConnectorError) and err.message


# -- FakeTransport -------------------------------------------------------------------------------------------------
READ_SITE = Command("Get-Website", {"Name": "MgmtSvc-Connector"}) | Command("ConvertTo-Json", {"Depth": 4},
                                                                             ["Compress"])


def test_fake_table_answers_and_records() -> None:
    fake = FakeTransport({
        "Get-Website -Name 'MgmtSvc-Connector' | ConvertTo-Json -Depth 4 -Compress": ['{"state":"Started"}'],
    })
    assert fake.run(conn(), "read site", READ_SITE, idempotent=True).json() == {"state": "Started"}
    call = fake.calls[0]
    assert (call.host, call.step, call.kind, call.idempotent) == ("wap01.contoso.local", "read site", "run", True)
    assert call.names == ["Get-Website", "ConvertTo-Json"]
    with pytest.raises(AssertionError, match="unexpected command"):
        fake.run(conn(), "x", Command("Get-Item"))


def test_fake_handler_failures_and_error_records() -> None:
    def handler(call: Call) -> Result | Failure | HostUnreachable:
        if call.names[0] == "Remove-Website":
            return Failure("Cannot find site", error_id="NoWebsiteFound,Remove-Website", category="ObjectNotFound")
        if call.names[0] == "Get-Item":
            denied = ErrorRecordInfo("access denied", "UnauthorizedAccess", "PermissionDenied")
            return Result(output=[1], errors=[denied])
        return HostUnreachable(call.host, call.step, "connection refused")

    fake = FakeTransport(handler)
    with pytest.raises(RemoteCommandFailed) as e:
        fake.run(conn(), "remove site", Command("Remove-Website", {"Name": "X"}))
    assert (e.value.error_id, e.value.category, e.value.terminating) == ("NoWebsiteFound,Remove-Website",
                                                                          "ObjectNotFound", True)
    assert "Remove-Website -Name 'X'" in str(e.value)
    with pytest.raises(RemoteCommandFailed, match="access denied") as e:
        fake.run(conn(), "probe", Command("Get-Item"))
    assert e.value.terminating is False
    assert fake.run(conn(), "probe", Command("Get-Item"), accept_errors=True).errors[0].category == "PermissionDenied"
    with pytest.raises(HostUnreachable):
        fake.run(conn(), "x", Command("Get-Service"))


def test_fake_run_until() -> None:
    lines = ["Step 'Validate' status: 'Success'", "Step 'Configure Azure Pack Connector' status: 'Success'",
             "polling...", "polling..."]
    fake = FakeTransport(lambda call: Result(verbose=lines))
    r = fake.run_until(conn(), "add connector", Command("Add-AzurePackConnector"),
                       "'Configure Azure Pack Connector' status: 'Success'")
    assert r.stopped and r.verbose == lines[:2]
    hang = FakeTransport(lambda call: Result(verbose=["polling..."], stopped=True))
    with pytest.raises(StepTimedOut, match="did not print the expected verbose line within 600 s"):
        hang.run_until(conn(), "add connector", Command("Add-AzurePackConnector"), re.compile("Success"), 600)
    done = FakeTransport(lambda call: Result(verbose=["nothing"]))
    with pytest.raises(RemoteCommandFailed, match="without printing"):
        done.run_until(conn(), "add connector", Command("Add-AzurePackConnector"), lambda s: "Success" in s)


def test_fake_masks_secrets_in_recorded_commands() -> None:
    fake = FakeTransport(lambda call: Failure(f"bad password {PASSWORD}"))
    with pytest.raises(RemoteCommandFailed) as e:
        fake.run(conn(), "set cred", Command("Set-Thing", {"Credential": Credential("u", Secret(PASSWORD))}))
    assert PASSWORD not in str(e.value) and PASSWORD not in fake.commands[0]


# -- connection model ----------------------------------------------------------------------------------------------
def test_connection_defaults() -> None:
    c = conn()
    assert (c.effective_port, c.endpoint, c.verify, c.configuration_name) == (5986, "127.0.10.4:5986", True,
                                                                              "Microsoft.PowerShell")
    assert conn(https=False).effective_port == 5985 and conn(address=None).connect_address == "wap01.contoso.local"
    assert conn(step_timeouts={"add connector": 900}).timeout_for("add connector", 60) == 900
    assert conn().timeout_for("other", 60) == 60 and conn().timeout_for("other") == 300
    assert conn(auth="credssp", configuration_name="PrivilegedEndpoint").auth == "credssp"
    assert conn(auth="kerberos", username=None, password=None).password is None


def test_wsman_names_the_host_for_kerberos_and_pins_tls_only_when_asked() -> None:
    from providers.transport import make_wsman

    by_ip = make_wsman(conn(auth="kerberos", username=None, password=None), None).transport
    assert by_ip.negotiate_hostname_override == "wap01.contoso.local"  # SPN WSMAN/<fqdn>, not WSMAN/127.0.10.4
    assert by_ip.session is None  # pypsrp builds its session lazily: nothing pinned
    by_name = make_wsman(conn(address=None), PASSWORD).transport
    assert by_name.negotiate_hostname_override is None
    pinned = make_wsman(conn(tls_server_name="wap01.contoso.local"), PASSWORD).transport
    pool_kw = pinned.session.get_adapter("https://x").poolmanager.connection_pool_kw
    assert pool_kw["server_hostname"] == pool_kw["assert_hostname"] == "wap01.contoso.local"


def test_password_never_in_repr_str_or_dump() -> None:
    c = conn()
    assert PASSWORD not in f"{c} {c!r} {c.model_dump()} {c.model_dump_json()}"


BAD_CONNECTIONS: list[tuple[dict[str, Any], list[str]]] = [
    (dict(fqdn="not a name"), ["fqdn: 'not a name' is not a host name"]),
    (dict(fqdn="10.0.0.1"), ["fqdn: '10.0.0.1' is not a host name"]),
    (dict(address="bad address!"), ["address: 'bad address!' is neither an IP address nor a host name"]),
    (dict(port=70000), ["port: Input should be less than or equal to 65535"]),
    (dict(port=0), ["port: Input should be greater than or equal to 1"]),
    (dict(auth="digest"), ["auth: unknown auth: use one of basic, ntlm, negotiate, kerberos, credssp"]),
    (dict(username=None, password=None), ["username is required for ntlm authentication",
                                          "password is required for ntlm authentication"]),
    (dict(auth="credssp"), ["auth credssp hands the password to wap01.contoso.local"]),
    (dict(auth="basic", https=False), ["auth basic over http sends the password in clear"]),
    (dict(ca_file="/nonexistent/ca.pem"), ["ca_file '/nonexistent/ca.pem' does not exist"]),
    (dict(verify=False, ca_file=__file__), ["ca_file is set but verify is false"]),
    (dict(operation_timeout=30, read_timeout=30), ["read_timeout (30 s) must exceed operation_timeout"]),
    (dict(configuration_name="Bad Name"), ["configuration_name: 'Bad Name' is not a session configuration"]),
    (dict(colour="blue"), ["colour: unknown setting"]),
    (dict(fqdn="-bad-.x", port="x"), ["fqdn: '-bad-.x' is not a host name", "port: Input should be a valid integer"]),
]


@pytest.mark.parametrize("changes, problems", BAD_CONNECTIONS, ids=[str(sorted(c)) for c, _ in BAD_CONNECTIONS])
def test_connection_validation_one_problem_each(changes: dict[str, Any], problems: list[str]) -> None:
    data = dict(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm", username="CONTOSO\\admin",
                password=PASSWORD)
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigurationError) as e:
        HostConnection.parse(data)
    got = e.value.problems
    assert len(got) == len(problems), got
    for want, have in zip(problems, got, strict=True):
        assert have.startswith(want) or want in have, (want, have)
    assert PASSWORD not in str(e.value)


def test_pydantic_errors_do_not_echo_the_password() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as e:
        HostConnection(fqdn="wap01.contoso.local", auth="credssp", username="u", password=PASSWORD)
    assert PASSWORD not in str(e.value) and PASSWORD not in repr(e.value)


def test_a_transport_keeps_pypsrp_debug_off() -> None:
    from providers.transport import PsrpTransport, SessionCache

    logging.getLogger("pypsrp").setLevel(logging.NOTSET)
    PsrpTransport(SessionCache())  # constructing one, not importing the module, sets the levels
    assert logging.getLogger("pypsrp").getEffectiveLevel() >= logging.INFO


# -- the CA by content: the same connection from every checkout ----------------------------------------------------

def _ca_pem() -> str:
    from tests.cert_factory import make_ca

    return make_ca("WinRM CA").pem


def _conn(**changes: Any) -> dict[str, Any]:
    data = dict(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm", username="CONTOSO\\admin",
                password=PASSWORD)
    return {**data, **changes}


def test_a_ca_given_as_pem_is_written_once_to_a_file_for_tls(tmp_path: Path) -> None:
    pem = _ca_pem()
    conn = HostConnection.parse(_conn(ca_pem=pem))
    bundle = conn.ca_bundle
    assert bundle is not None and open(bundle).read().strip() == pem.strip()
    assert HostConnection.parse(_conn(ca_pem=pem.replace("\n", "\r\n"))).ca_bundle == bundle  # same content
    assert conn.ca_source is not None and conn.ca_source.startswith("CN=WinRM CA")


@pytest.mark.parametrize("changes, problem", [
    (dict(ca_pem="not a certificate"), "ca_pem: holds no PEM certificate"),
    (dict(ca_pem="CA", ca_file=__file__), "ca_pem: holds no PEM certificate"),
])
def test_ca_pem_problems(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        HostConnection.parse(_conn(**changes))
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_ca_file_and_ca_pem_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ca_file and ca_pem both name a CA"):
        HostConnection.parse(_conn(ca_pem=_ca_pem(), ca_file=__file__))


def test_a_ca_file_stored_by_another_checkout_is_found_in_this_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.transport import locate_ca_file

    here = tmp_path / "bob" / "wap"
    (here / ".labsim/lab/pki").mkdir(parents=True)
    (here / ".labsim/lab/pki/ca.pem").write_text(_ca_pem())
    monkeypatch.chdir(here)
    alice = "/home/alice/wap/.labsim/lab/pki/ca.pem"
    assert locate_ca_file(alice) == str(here / ".labsim/lab/pki/ca.pem")
    assert locate_ca_file("/home/alice/wap/.labsim/other/ca.pem") is None
    assert locate_ca_file(".labsim/lab/pki/ca.pem") == ".labsim/lab/pki/ca.pem"
    assert HostConnection.parse(_conn(ca_file=alice)).ca_bundle == str(here / ".labsim/lab/pki/ca.pem")


def test_connections_compare_the_ca_by_content_whatever_names_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.remote import connection_diff, same_connection

    pem = _ca_pem()
    ca = tmp_path / "first" / "ca.pem"
    ca.parent.mkdir()
    ca.write_text(pem)
    by_path = _conn(ca_file=str(ca))
    by_content = _conn(ca_pem=pem.replace("\n", "\r\n"))
    assert same_connection(by_path, by_content) and same_connection(by_content, _conn(ca_pem=pem))
    assert connection_diff({"connection": by_path}, {"connection": by_content}) == ([], [])
    assert not same_connection(by_content, _conn(ca_pem=_ca_pem()))  # another CA
    assert not same_connection(by_path, _conn(ca_pem=pem, port=5987))
    ca.unlink()  # unreadable on this machine: a change (the update stores the content)
    monkeypatch.chdir(tmp_path)
    assert connection_diff({"connection": by_path}, {"connection": by_content}) == (["connection"], [])
