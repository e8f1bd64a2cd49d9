"""AzurePackConnector: pure tables (endpoint, output file, diff), provider methods over FakeTransport, and the
whole life cycle against labsim over loopback (sim)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from labsim.server import LabServer
from providers import azure_pack_connector as apc
from providers.base import UNKNOWN
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge, RemoteCommandFailed, StepTimedOut
from providers.facts import locations
from providers.facts.files import ListedFile
from providers.transport import (
    Call,
    Failure,
    FakeTransport,
    HostConnection,
    Output,
    PsrpTransport,
    Result,
    Transport,
    VerbosePredicate,
)
from tests.fake_windows_host import CONNECTOR_CERT_B64 as CERT_B64
from tests.fake_windows_host import CONNECTOR_REALM as REALM
from tests.fake_windows_host import FakeWindowsHost
from tests.fake_windows_host import connector_output as file_text
from tests.lab_state import lab_state
from tests.outs import outs_of
from tests.providers.helpers import assert_only_failure, check_failures

HOSTILE = "x'\"; $(Remove-Item C:\\ -Recurse) `whoami` & calc\nnext"

PEP = {"fqdn": "azs-ercs01.azurestack.local", "address": "127.0.10.1", "auth": "credssp",
       "configuration_name": "PrivilegedEndpoint", "username": "AZURESTACK\\CloudAdmin", "password": "pep-pw-123"}
SHARE = {"fqdn": "azs-host.azurestack.local", "address": "127.0.10.3", "auth": "ntlm",
         "username": "AZURESTACK\\AzureStackAdmin", "password": "share-pw-123"}


def inputs(**kw: Any) -> dict[str, Any]:
    base = {"connection": dict(PEP), "share_connection": dict(SHARE), "azure_stack_cloud_name": "AzureStack",
            "clouds": [{"cloud_name": "AzurePack_1", "cloud_endpoint": "https://wapcomputer1.contoso.com:40005"},
                       {"cloud_name": "AzurePack_2", "cloud_endpoint": "https://wapcomputer2.contoso.com"}]}
    base.update(kw)
    return base


# ---------------------------------------------------------------------------------------------------------------
# Azure Stack as a FakeWindowsHost: the PEP's cmdlet and the share's output folder.

MARKER = apc.marker_path(PEP["fqdn"])


def stack_host(enable: Any = None) -> FakeWindowsHost:
    """The share's output folder exists; ``enable``, when given, is the PEP's whole answer to an enable."""
    host = FakeWindowsHost()
    host.dirs.add(locations.OUTPUT_FOLDER.lower())
    if enable is not None:
        host.reply[locations.ADD_CONNECTOR_CMDLET] = enable
    return host


def checked(props: dict[str, Any]) -> dict[str, Any]:
    result = apc.check(props)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


def deployed(host: Callable[[Call], Any]) -> tuple[apc.AzurePackConnectorProvider, FakeTransport, dict[str, Any]]:
    """The connector created on ``host`` (through a fake transport whose call log then starts empty)."""
    fake = FakeTransport(host)
    p = apc.AzurePackConnectorProvider(fake)
    outs = outs_of(p.create(checked(inputs())))
    fake.calls.clear()
    return p, fake, outs


# ---------------------------------------------------------------------------------------------------------------
# Pure tables


@pytest.mark.unit
@pytest.mark.parametrize("given, expected", [
    ("https://wap1.contoso.com", "https://wap1.contoso.com:40005"),
    ("https://wap1.contoso.com/", "https://wap1.contoso.com:40005"),
    ("https://wap1.contoso.com:443", "https://wap1.contoso.com:443"),
    ("HTTPS://waptenantportal1:40005", "https://waptenantportal1:40005"),
    ("https://10.0.0.5:40005", "https://10.0.0.5:40005"),
])
def test_normalize_endpoint(given: str, expected: str) -> None:
    assert apc.normalize_endpoint(given) == expected


@pytest.mark.unit
@pytest.mark.parametrize("given, reason", [
    ("http://wap1.contoso.com:40005", "not an absolute https URL"),
    ("wap1.contoso.com:40005", "not an absolute https URL"),
    ("https://wap1.contoso.com:70000", "port 70000 is out of range"),
    ("https://wap1.contoso.com:0", "port 0 is out of range"),
    ("https://wap1.contoso.com:40005/portal", "not an absolute https URL"),
    ("https://user@wap1.contoso.com", "not an absolute https URL"),
    ("https://wap_1.contoso.com", "is not a host name"),
    ("https://", "not an absolute https URL"),
])
def test_normalize_endpoint_refuses(given: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        apc.normalize_endpoint(given)


@pytest.mark.unit
@pytest.mark.parametrize("content, expected", [
    (file_text("AzurePack_1", "https://wap1:40005"),
     ("AzurePack_1", "AzureStack", "https://wap1:40005", REALM, CERT_B64)),
    ("\ufeff" + file_text("A", "https://wap1:40005"), ("A", "AzureStack", "https://wap1:40005", REALM, CERT_B64)),
    (json.dumps({"AzurePackConnectorEndpoint": "https://wap1:40005", "AuthenticationIdentityProviderPartner": {
        "Realm": REALM, "Certificate": "-----BEGIN CERTIFICATE-----\n" + CERT_B64[:10] + "\n" + CERT_B64[10:]
                                       + "\n-----END CERTIFICATE-----"}}),
     (None, None, "https://wap1:40005", REALM, CERT_B64)),
])
def test_parse_output_file(content: str, expected: tuple[Any, ...]) -> None:
    f = apc.parse_output_file("AzurePack-06-27-15-50.txt", content)
    assert (f.cloud_name, f.stack_cloud_name, f.endpoint, f.realm, f.signing_certificate) == expected
    assert f.content == content  # verbatim: TenantApiTrust stages it as the data file


@pytest.mark.unit
@pytest.mark.parametrize("content, reason", [
    ("AzurePackConnectorEndpoint: https://wap1", "is not JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"AuthenticationIdentityProviderPartner": {"Realm": REALM, "Certificate": CERT_B64}}),
     "AzurePackConnectorEndpoint is missing"),
    (json.dumps({"AzurePackConnectorEndpoint": "https://wap1:40005"}),
     "AuthenticationIdentityProviderPartner is missing"),
    (json.dumps({"AzurePackConnectorEndpoint": "https://w:1", "AuthenticationIdentityProviderPartner": {
        "Certificate": CERT_B64}}), "Realm is missing"),
    (json.dumps({"AzurePackConnectorEndpoint": "https://w:1", "AuthenticationIdentityProviderPartner": {
        "Realm": REALM, "Certificate": "not base64!"}}), "not base64"),
])
def test_parse_output_file_refuses(content: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        apc.parse_output_file("AzurePack-1.txt", content)


@pytest.mark.unit
def test_observed_clouds_match_by_endpoint_and_newest_wins() -> None:
    nameless = json.dumps({"AzurePackConnectorEndpoint": "https://wap2.contoso.com:40005",
                           "AuthenticationIdentityProviderPartner": {"Realm": REALM, "Certificate": CERT_B64}})
    observed = apc.AzurePackConnectorObserved((
        apc.parse_output_file("AzurePack-01-old.txt", file_text("One", "https://old:40005"), "2026-01-01"),
        apc.parse_output_file("AzurePack-02-new.txt", file_text("One", "https://new:40005"), "2026-02-01"),
        apc.parse_output_file("AzurePack-03.txt", nameless, "2026-02-01"),
        apc.parse_output_file("AzurePack-04.txt", nameless.replace("wap2", "unknown"), "2026-02-01"),
    ))
    known = [{"cloud_name": "Two", "cloud_endpoint": "https://WAP2.contoso.com"}]
    by_name = apc.observed_clouds(observed, known)
    assert sorted(by_name) == ["AzurePack-04.txt", "One", "Two"]
    assert by_name["One"].endpoint == "https://new:40005"
    outs = apc.observed_outputs(observed, known)
    assert outs["multi_cloud_enabled"] is True
    assert outs["cloud_outputs"]["Two"]["file_name"] == "AzurePack-03.txt"
    assert outs["azure_stack_cloud_name"] == "AzureStack"


@pytest.mark.unit
def test_each_listed_file_is_parsed_from_its_own_statement() -> None:
    folder = locations.OUTPUT_FOLDER + "\\"
    listed = apc.parse_listing(Output([
        {"Name": "AzurePack-a.txt", "FullName": folder + "AzurePack-a.txt", "LastWriteTimeUtc": "2026-01-02"},
        {"Name": "not a file"}, False,
        {"FullName": folder + "AzurePack-b.txt"}]))
    assert listed == [ListedFile("AzurePack-a.txt", folder + "AzurePack-a.txt", "2026-01-02"),
                      ListedFile(folder + "AzurePack-b.txt", folder + "AzurePack-b.txt", "")]
    assert [p.commands[0].parameters["Path"] for p in apc.content_statements(listed)] == [f.full_name for f in listed]
    observed = apc.parse_files(listed, [Output([file_text("A", "https://wap1:40005")]),
                                        Output([file_text("B", "https://wap2:40005")])])
    assert [(f.file_name, f.cloud_name, f.modified) for f in observed.files] == [
        ("AzurePack-a.txt", "A", "2026-01-02"), (folder + "AzurePack-b.txt", "B", "")]
    with pytest.raises(apc.FolderChanged, match=r"2 output file\(s\) listed but 1 read"):
        apc.parse_files(listed, [Output([file_text("A", "https://wap1:40005")]), Output([])])


@pytest.mark.unit
def test_read_names_a_folder_that_changed_while_it_was_read() -> None:
    stack = stack_host()
    stack.put_file(locations.OUTPUT_FOLDER + "\\AzurePack-1.txt",
                   file_text("AzurePack_1", "https://wapcomputer1.contoso.com:40005").encode())

    def vanishing(call: Call) -> Any:
        if call.names[0] == "Get-Content":
            return Result(outputs=[[] for _ in call.statements])  # the files went between the two calls
        return stack(call)

    with pytest.raises(ConnectorError, match="1 output file\\(s\\) listed but 0 read; the folder changed") as err:
        apc.AzurePackConnectorProvider(FakeTransport(vanishing)).read("id", checked(inputs()))
    assert SHARE["fqdn"] in str(err.value)


DESIRED = {"clouds": [{"cloud_name": "A", "cloud_endpoint": "https://wap1:40005"},
                      {"cloud_name": "B", "cloud_endpoint": "https://wap2:40005"}],
           "azure_stack_cloud_name": "AzureStack"}


def changed_fields(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """The fields the provider's comparison names (diff adds the connections' and the owner's)."""
    return [d.field for d in apc.compare(news, olds)]


def observed_as(**kw: Any) -> dict[str, Any]:
    return {"multi_cloud_enabled": True, "clouds": DESIRED["clouds"], "azure_stack_cloud_name": "AzureStack", **kw}


@pytest.mark.unit
@pytest.mark.parametrize("olds, news, expected", [
    (observed_as(), DESIRED, []),
    (observed_as(clouds=list(reversed(DESIRED["clouds"]))), DESIRED, []),  # order does not matter
    (observed_as(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://WAP1:40005"},
                         {"cloud_name": "B", "cloud_endpoint": "https://wap2:40005"}]), DESIRED, []),
    (observed_as(multi_cloud_enabled=False, clouds=[], azure_stack_cloud_name=None), DESIRED,
     ["multi_cloud_enabled"]),
    (observed_as(clouds=DESIRED["clouds"][:1]), DESIRED, ["clouds"]),
    (observed_as(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://wap9:40005"}, DESIRED["clouds"][1]]),
     DESIRED, ["clouds"]),
    (observed_as(clouds=[{"cloud_name": "a", "cloud_endpoint": "https://wap1:40005"}, DESIRED["clouds"][1]]),
     DESIRED, ["clouds"]),
    (observed_as(azure_stack_cloud_name="Other"), DESIRED, ["azure_stack_cloud_name"]),
    (observed_as(), {**DESIRED, "clouds": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}, ["clouds"]),
])
def test_changed_fields_and_plan(olds: dict[str, Any], news: dict[str, Any], expected: list[str]) -> None:
    assert changed_fields(olds, news) == expected


# ---------------------------------------------------------------------------------------------------------------
# check: one clear property error per problem, and no host touched


BAD_INPUTS = [
    ("duplicate cloud names", inputs(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w1:40005"},
                                             {"cloud_name": "a", "cloud_endpoint": "https://w2:40005"}]),
     "clouds", "'a' is used twice"),
    ("port out of range", inputs(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w1:70000"}]),
     "clouds[0].cloud_endpoint", "port 70000 is out of range"),
    ("http endpoint", inputs(clouds=[{"cloud_name": "A", "cloud_endpoint": "http://w1:40005"}]),
     "clouds[0].cloud_endpoint", "not an absolute https URL"),
    ("no clouds", inputs(clouds=[]), "clouds", "at least 1"),
    ("blank cloud name", inputs(clouds=[{"cloud_name": " ", "cloud_endpoint": "https://w1"}]),
     "clouds[0].cloud_name", "must not be blank"),
    ("extra cloud key", inputs(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w1", "Port": 1}]),
     "clouds[0].Port", "Extra inputs"),
    ("stack named like a cloud", inputs(azure_stack_cloud_name="azurepack_1"), "azure_stack_cloud_name",
     "also a WAP cloud's name"),
    ("missing credential", inputs(connection={k: v for k, v in PEP.items() if k != "password"}), "connection",
     "password is required for credssp"),
    ("unknown auth", inputs(connection={**PEP, "auth": "digest"}), "connection", "unknown auth"),
    ("non-CredSSP for the PEP", inputs(connection={**PEP, "auth": "ntlm"}), "connection",
     "reached with CredSSP"),
    ("not the PEP configuration", inputs(connection={**PEP, "configuration_name": "Microsoft.PowerShell",
                                                     "allow_credssp": True}),
     "connection", "configuration_name: PrivilegedEndpoint"),
    ("share on the PEP", inputs(share_connection=dict(PEP)), "share_connection", "cannot read files"),
    ("missing share", {k: v for k, v in inputs().items() if k != "share_connection"}, "share_connection",
     "missing"),
    ("timeout", inputs(timeout_seconds=0), "timeout_seconds", "greater than 0"),
]


@pytest.mark.unit
@pytest.mark.parametrize("case, props, prop, reason", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_check_refuses_without_touching_a_host(case: str, props: dict[str, Any], prop: str, reason: str) -> None:
    found = check_failures(apc.AzurePackConnectorProvider, props)
    assert_only_failure(found, prop, reason, ("pep-pw-123", "share-pw-123"))


@pytest.mark.unit
def test_check_normalises_endpoints_and_defaults() -> None:
    out = checked(inputs())
    assert [c["cloud_endpoint"] for c in out["clouds"]] == ["https://wapcomputer1.contoso.com:40005",
                                                             "https://wapcomputer2.contoso.com:40005"]
    assert out["timeout_seconds"] == apc.DEFAULT_TIMEOUT_SECONDS


@pytest.mark.unit
def test_create_with_bad_inputs_raises_before_any_call() -> None:
    fake = FakeTransport(stack_host())
    with pytest.raises(ConfigurationError, match="reached with CredSSP"):
        apc.AzurePackConnectorProvider(fake).create(inputs(connection={**PEP, "auth": "ntlm", "allow_credssp": True}))
    assert fake.calls == []


# ---------------------------------------------------------------------------------------------------------------
# Provider methods over FakeTransport


@pytest.mark.unit
def test_create_stops_at_the_success_line_and_reads_the_output_files() -> None:
    stack = stack_host()
    fake = FakeTransport(stack)
    res = apc.AzurePackConnectorProvider(fake).create(checked(inputs(timeout_seconds=120)))
    first = next(c for c in fake.calls if c.kind == "run_until")
    assert (first.kind, first.host, first.timeout) == ("run_until", PEP["fqdn"], 120)
    cmd = first.statements[0].commands[0]
    assert cmd.name == "Add-AzurePackConnector" and "Verbose" in cmd.switches
    assert [dict(c) for c in cmd.parameters["AzurePackClouds"]] == [
        {"CloudName": "AzurePack_1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"},
        {"CloudName": "AzurePack_2", "CloudEndpoint": "https://wapcomputer2.contoso.com:40005"}]
    assert cmd.parameters["AzureStackCloudName"] == "AzureStack"
    # Everything else happened on the share host, never on the PEP (which cannot read files).
    assert {c.host for c in fake.calls if c is not first} == {SHARE["fqdn"]}
    assert res.id == "multicloud@azs-ercs01.azurestack.local"
    outs = outs_of(res)
    assert outs["multi_cloud_enabled"] is True
    assert sorted(outs["cloud_outputs"]) == ["AzurePack_1", "AzurePack_2"]
    one = outs["cloud_outputs"]["AzurePack_1"]
    assert one["endpoint"] == "https://wapcomputer1.contoso.com:40005"
    assert (one["realm"], one["signing_certificate"]) == (REALM, CERT_B64)
    assert one["content"] == stack.files_in(locations.OUTPUT_FOLDER)[one["file_name"]]
    assert stack.file(MARKER)
    assert changed_fields(outs, checked(inputs())) == []


@pytest.mark.unit
def test_run_until_is_given_the_documented_success_line() -> None:
    seen: dict[str, Any] = {}

    class Spy(FakeTransport):
        def run_until(self, conn: HostConnection, step: str, statements: Any, verbose_predicate: VerbosePredicate,
                      timeout: float | None = None, **kw: Any) -> Result:
            seen["predicate"] = verbose_predicate
            return super().run_until(conn, step, statements, verbose_predicate, timeout, **kw)

    apc.AzurePackConnectorProvider(Spy(stack_host())).create(checked(inputs()))
    assert seen["predicate"] == "Step 'Configure Azure Pack Connector' status: 'Success'"


@pytest.mark.unit
def test_create_times_out_with_a_clear_error() -> None:
    fake = FakeTransport(stack_host(enable=Result(verbose=["Step 'Configure Azure Pack Connector' status: "
                                                          "'Running'"], stopped=True)))
    with pytest.raises(StepTimedOut) as err:
        apc.AzurePackConnectorProvider(fake).create(checked(inputs(timeout_seconds=42)))
    msg = str(err.value)
    assert "azs-ercs01.azurestack.local" in msg and "42 s" in msg
    assert apc.ENABLE_SUCCESS_LINE in msg and "timeout_seconds" in msg
    assert fake.calls[-1].kind == "run_until"  # nothing written after a failed enable


@pytest.mark.unit
def test_create_fails_clearly_when_the_command_ends_without_success() -> None:
    fake = FakeTransport(stack_host(enable=Result(verbose=["Step 'Configure Azure Pack Connector' status: "
                                                          "'Failed'"])))
    with pytest.raises(RemoteCommandFailed, match="ended without reporting"):
        apc.AzurePackConnectorProvider(fake).create(checked(inputs()))


@pytest.mark.unit
def test_missing_cmdlet_on_a_later_pep_is_explained() -> None:
    fake = FakeTransport(stack_host(enable=Failure("The term 'Add-AzurePackConnector' is not recognized",
                                                  error_id="CommandNotFoundException", category="ObjectNotFound")))
    with pytest.raises(RemoteCommandFailed, match="absent from later Azure Stack builds"):
        apc.AzurePackConnectorProvider(fake).create(checked(inputs()))


@pytest.mark.unit
def test_create_refuses_success_without_files() -> None:
    no_files = stack_host(enable=Result(verbose=[apc.ENABLE_SUCCESS_LINE]))  # success, yet no file written
    with pytest.raises(HostDidNotConverge, match="does not show the config"):
        apc.AzurePackConnectorProvider(FakeTransport(no_files)).create(checked(inputs()))


@pytest.mark.unit
def test_read_present_disabled_and_gone() -> None:
    stack = stack_host()
    p, _, outs = deployed(stack)
    present = p.read("id", outs)
    assert present.id == "id" and outs_of(present)["cloud_outputs"] == outs["cloud_outputs"]
    stack.clear_folder(locations.OUTPUT_FOLDER)  # an administrator ran -DisableMultiCloud
    disabled = p.read("id", outs)
    assert disabled.id == "id" and outs_of(disabled)["multi_cloud_enabled"] is False
    assert outs_of(disabled)["cloud_outputs"] == {}
    assert changed_fields(outs_of(disabled), checked(inputs())) == ["multi_cloud_enabled"]
    assert p.diff("id", outs_of(disabled), checked(inputs())).changes is True
    stack.remove_file(MARKER)
    gone = p.read("id", outs)
    assert (gone.id, outs_of(gone)) == ("", {})


@pytest.mark.unit
def test_read_tolerates_a_missing_folder_but_not_other_errors() -> None:
    from providers.transport import ErrorRecordInfo

    missing = ErrorRecordInfo(f"Cannot find path '{locations.OUTPUT_FOLDER}' because it does not exist.",
                              "PathNotFound,Microsoft.PowerShell.Commands.GetChildItemCommand", "ObjectNotFound",
                              target=locations.OUTPUT_FOLDER)
    fake = FakeTransport(lambda call: Result(outputs=[[False], []], errors=[missing]))
    assert apc.AzurePackConnectorProvider(fake).read("id", checked(inputs())).id == ""
    denied = ErrorRecordInfo("Access is denied", "UnauthorizedAccess", "PermissionDenied")
    fake = FakeTransport(lambda call: Result(outputs=[[False], []], errors=[denied]))
    with pytest.raises(RemoteCommandFailed, match="Access is denied"):
        apc.AzurePackConnectorProvider(fake).read("id", checked(inputs()))


@pytest.mark.unit
def test_diff_field_by_field_and_replace_on_another_pep() -> None:
    p = apc.AzurePackConnectorProvider(FakeTransport(stack_host()))
    outs = p.create(checked(inputs()))
    olds = {**outs_of(outs), "__provider": "pickled"}
    assert p.diff("id", olds, checked(inputs())).changes is False
    d = p.diff("id", olds, checked(inputs(azure_stack_cloud_name="Other")))
    assert (d.changes, d.replaces) == (True, [])
    d = p.diff("id", olds, checked(inputs(connection={**PEP, "fqdn": "azs-ercs02.azurestack.local"})))
    assert (d.changes, d.replaces, d.delete_before_replace) == (True, ["connection"], True)
    d = p.diff("id", olds, checked(inputs(connection={**PEP, "password": "new"})))
    assert (d.changes, d.replaces) == (True, [])
    # settings the PEP does not show are compared input against input, a value not known yet as a change
    for setting in (60, UNKNOWN):
        d = p.diff("id", olds, checked(inputs(timeout_seconds=setting)))
        assert (d.changed, d.replaces) == (["timeout_seconds"], [])


@pytest.mark.unit
def test_update_reruns_only_when_the_configuration_differs() -> None:
    p, fake, outs = deployed(stack_host())
    p.update("id", outs, checked(inputs(timeout_seconds=60)))
    assert "run_until" not in [c.kind for c in fake.calls]
    new = checked(inputs(clouds=[{"cloud_name": "AzurePack_1", "cloud_endpoint": "https://wap9.contoso.com"}]))
    res = p.update("id", outs, new)
    assert [c.kind for c in fake.calls].count("run_until") == 1
    assert sorted(outs_of(res)["cloud_outputs"]) == ["AzurePack_1"]
    assert outs_of(res)["cloud_outputs"]["AzurePack_1"]["endpoint"] == "https://wap9.contoso.com:40005"


@pytest.mark.unit
def test_delete_disables_then_removes_the_marker_and_is_rerunnable() -> None:
    stack = stack_host()
    p, fake, outs = deployed(stack)
    p.delete("id", outs)
    disable = fake.calls[0]
    assert (disable.kind, disable.host) == ("run", PEP["fqdn"])
    assert disable.statements[0].commands[0].switches == ("DisableMultiCloud", "Verbose")
    assert dict(disable.statements[0].commands[0].parameters) == {}
    folders = {MARKER.rsplit("\\", i)[0] for i in range(1, MARKER.count("\\"))}
    last = next(c for c in reversed(fake.calls)  # the marker goes last (then its emptied folders)
                if c.statements[0].commands[0].parameters.get("Path") not in folders).statements[0].commands[0]
    assert last.name == "Remove-Item" and last.parameters["Path"] == apc.marker_path(PEP["fqdn"])
    assert (stack.files_in(locations.OUTPUT_FOLDER), stack.file(MARKER)) == ({}, None)
    p.delete("id", outs)  # again: converges, no error
    assert p.read("id", outs).id == ""


@pytest.mark.unit
def test_delete_refuses_when_files_remain() -> None:
    stack = stack_host()

    def sticky(call: Call) -> Any:
        if apc.DISABLE_SWITCH in call.statements[0].commands[0].switches:
            return Result()
        return stack(call)

    p, _, outs = deployed(sticky)
    with pytest.raises(HostDidNotConverge, match="output file"):
        p.delete("id", outs)
    assert stack.file(MARKER)  # still deletable on the next run


@pytest.mark.unit
def test_hostile_strings_reach_the_pep_verbatim() -> None:
    props = checked(inputs(azure_stack_cloud_name=HOSTILE + "-stack",
                           clouds=[{"cloud_name": HOSTILE, "cloud_endpoint": "https://wap1.contoso.com"}]))
    fake = FakeTransport(stack_host())
    outs = outs_of(apc.AzurePackConnectorProvider(fake).create(props))
    cmd = next(c for c in fake.calls if c.kind == "run_until").statements[0].commands[0]
    assert cmd.parameters["AzurePackClouds"][0]["CloudName"] == HOSTILE
    assert cmd.parameters["AzureStackCloudName"] == HOSTILE + "-stack"
    assert list(outs["cloud_outputs"]) == [HOSTILE]
    assert outs["azure_stack_cloud_name"] == HOSTILE + "-stack"


@pytest.mark.unit
def test_no_password_in_input_errors() -> None:
    # (A host echoing the password back is scrubbed by the transport: tests/providers/test_transport_*.)
    bad = inputs(connection={**PEP, "auth": "digest"})
    with pytest.raises(ConfigurationError) as err:
        apc.AzurePackConnectorInputs.parse(bad)
    assert "pep-pw-123" not in str(err.value)


@pytest.mark.unit
def test_resource_marks_connections_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi.dynamic

    seen: dict[str, Any] = {}

    def fake_init(self: object, provider: object, name: str, props: dict[str, Any], opts: object = None) -> None:
        seen.update(provider=provider, name=name, props=props, opts=opts)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", fake_init)
    apc.AzurePackConnector("multicloud", connection=PEP, share_connection=SHARE, azure_stack_cloud_name="AzureStack",
                           clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w1"}])
    assert set(seen["opts"].additional_secret_outputs) >= {"connection", "share_connection"}
    assert isinstance(seen["provider"], apc.AzurePackConnectorProvider)
    assert {"multi_cloud_enabled", "cloud_outputs"} <= set(seen["props"])
    assert not vars(seen["provider"])  # nothing kept on the pickled provider


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)

POLLING = 30.0  # the lab's PEP keeps polling this long after the success line: create must not wait for it


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": POLLING}


@pytest.fixture
def pep_lab(labsim: LabServer, sim: PsrpTransport) -> Iterator[LabServer]:
    """The module's lab; after the test its faults are cleared and multi-cloud is disabled again with the marker
    folder removed, on sessions of their own (the test may have left its own broken)."""
    from providers.transport import PsrpTransport, SessionCache

    yield labsim
    lab_state(labsim).clear_faults()
    cache = SessionCache()
    try:
        t = PsrpTransport(cache)
        t.run(_pep(labsim), "reset", apc.disable_command())
        t.run(_share(labsim), "reset", apc.Command("Remove-Item", {"Path": apc.MARKER_FOLDER, "ErrorAction":
                                                                   "SilentlyContinue"}, ["Recurse", "Force"]))
    finally:
        cache.close_all()


def _pep(server: LabServer, **kw: Any) -> HostConnection:
    from providers.transport import HostConnection
    from tests.providers.conftest import host_connection

    return HostConnection.parse(host_connection(server, "AzS-ERCS01", **kw))


def _share(server: LabServer) -> HostConnection:
    from providers.transport import HostConnection
    from tests.providers.conftest import host_connection

    return HostConnection.parse(host_connection(server, "AzS-HOST"))


def sim_inputs(server: LabServer, **kw: Any) -> dict[str, Any]:
    from tests.providers.conftest import host_connection

    return inputs(connection=host_connection(server, "AzS-ERCS01"),
                  share_connection=host_connection(server, "AzS-HOST"), **kw)


def pep_invocations(server: LabServer, command: str = "Add-AzurePackConnector") -> list[dict[str, Any]]:
    return lab_state(server).invocations(server.lab.host("AzS-ERCS01").name, command)


def params(invocation: dict[str, Any]) -> dict[str, Any]:
    """An invocation record's parameters ([name, value] pairs) as a dict."""
    return {name: value for name, value in invocation["parameters"]}


def _as_admin_disable(server: LabServer, t: Transport) -> None:
    # An administrator's own PEP session, out of band.
    t.run(_pep(server), "admin: disable multi-cloud", apc.disable_command())


@pytest.mark.sim
def test_sim_lifecycle_with_out_of_band_disable(pep_lab: LabServer, sim: PsrpTransport) -> None:
    p = apc.AzurePackConnectorProvider(sim)
    props = checked(sim_inputs(pep_lab, timeout_seconds=60))
    created = p.create(props)
    # Stopped in the PEP's polling loop after the success line, not waited for until the polling ended.
    last = pep_invocations(pep_lab)[-1]
    assert last["configuration"] == "PrivilegedEndpoint" and last["outcome"].lower() == "stopped"
    outs = outs_of(created)
    assert outs["multi_cloud_enabled"] is True
    assert sorted(outs["cloud_outputs"]) == ["AzurePack_1", "AzurePack_2"]
    one = outs["cloud_outputs"]["AzurePack_1"]
    assert one["endpoint"] == "https://wapcomputer1.contoso.com:40005"
    assert one["realm"].startswith("https://adfs.local.azurestack.external/adfs/")
    base64.b64decode(one["signing_certificate"], validate=True)
    assert json.loads(one["content"])["AzurePackConnectorEndpoint"] == one["endpoint"]

    read = p.read(created.id, outs)
    assert read.id == created.id and changed_fields(outs_of(read), props) == []
    assert p.diff(created.id, outs_of(read), props).changes is False

    _as_admin_disable(pep_lab, sim)
    drift = p.read(created.id, outs_of(read))
    assert drift.id == created.id and outs_of(drift)["multi_cloud_enabled"] is False
    assert changed_fields(outs_of(drift), props) == ["multi_cloud_enabled"]
    assert p.diff(created.id, outs_of(drift), props).changes is True

    healed = p.update(created.id, outs_of(drift), props)
    assert outs_of(healed)["multi_cloud_enabled"] is True
    again = p.read(created.id, outs_of(healed))
    assert changed_fields(outs_of(again), props) == [] and not p.diff(created.id, outs_of(again), props).changes

    p.delete(created.id, outs_of(again))
    assert params(pep_invocations(pep_lab)[-1]).get("DisableMultiCloud") in (True, "True")
    assert p.read(created.id, outs_of(again)).id == ""


@pytest.mark.sim
def test_sim_out_of_band_cloud_list_change_shows_as_clouds(pep_lab: LabServer, sim: PsrpTransport) -> None:
    p = apc.AzurePackConnectorProvider(sim)
    props = checked(sim_inputs(pep_lab))
    outs = outs_of(p.create(props))
    only_one = apc.AzurePackConnectorInputs.parse(checked(sim_inputs(pep_lab, clouds=props["clouds"][:1])))
    apc.enable(sim, only_one)  # an administrator re-ran the cmdlet with one cloud
    drift = p.read("id", outs)
    assert changed_fields(outs_of(drift), props) == ["clouds"]
    healed = p.update("id", outs_of(drift), props)
    assert sorted(outs_of(healed)["cloud_outputs"]) == ["AzurePack_1", "AzurePack_2"]


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["command_terminating", "command_error"])
def test_sim_create_after_injected_failure_converges(pep_lab: LabServer, sim: PsrpTransport, kind: str) -> None:
    from labsim.runtime import Fault

    pep = pep_lab.lab.host("AzS-ERCS01").name
    lab_state(pep_lab).set_fault(Fault(host=pep, kind=kind, command="Add-AzurePackConnector"))
    p = apc.AzurePackConnectorProvider(sim)
    props = checked(sim_inputs(pep_lab))
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(props)
    assert "azs-ercs01.azurestack.local" in str(err.value) and "LabsimFault" in str(err.value)
    lab_state(pep_lab).clear_faults(pep)
    outs = outs_of(p.create(props))
    assert outs["multi_cloud_enabled"] is True and changed_fields(outs_of(p.read("id", outs)), props) == []


@pytest.mark.sim
def test_sim_hang_times_out_clearly_then_converges(pep_lab: LabServer, sim: PsrpTransport) -> None:
    from labsim.runtime import Fault

    pep = pep_lab.lab.host("AzS-ERCS01").name
    lab_state(pep_lab).set_fault(Fault(host=pep, kind="command_hang", command="Add-AzurePackConnector"))
    p = apc.AzurePackConnectorProvider(sim)
    with pytest.raises(StepTimedOut) as err:
        p.create(checked(sim_inputs(pep_lab, timeout_seconds=3)))
    assert apc.ENABLE_SUCCESS_LINE in str(err.value) and "3 s" in str(err.value)
    lab_state(pep_lab).clear_faults(pep)
    outs = outs_of(p.create(checked(sim_inputs(pep_lab))))
    assert outs["multi_cloud_enabled"] is True


@pytest.mark.sim
def test_sim_hostile_strings_reach_the_pep_verbatim(pep_lab: LabServer, sim: PsrpTransport) -> None:
    # The lab names each output file after the cloud (contract §8): no path separator in this one; the stack name
    # (never a file name) carries the full hostile string.
    hostile_name = HOSTILE.replace("\\", "_")
    props = checked(sim_inputs(pep_lab, azure_stack_cloud_name=HOSTILE,
                               clouds=[{"cloud_name": hostile_name, "cloud_endpoint": "https://wapcomputer1.contoso.com"}]))
    outs = outs_of(apc.AzurePackConnectorProvider(sim).create(props))
    sent = params(pep_invocations(pep_lab)[-1])
    assert sent["AzureStackCloudName"] == HOSTILE
    assert sent["AzurePackClouds"][0]["CloudName"] == hostile_name
    assert list(outs["cloud_outputs"]) == [hostile_name] and outs["azure_stack_cloud_name"] == HOSTILE
    every = json.dumps(lab_state(pep_lab).invocations())
    assert "LabOnly-Pep-1!" not in every and "LabOnly-Host-1!" not in every


@pytest.mark.sim
@pytest.mark.parametrize("case, props, prop, reason", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_sim_bad_inputs_record_no_invocation(labsim: LabServer, case: str, props: dict[str, Any], prop: str,
                                             reason: str) -> None:
    before = len(lab_state(labsim).invocations())
    result = apc.AzurePackConnectorProvider().check({}, props)
    assert [f.property for f in result.failures] == [prop]
    with pytest.raises(ConfigurationError):
        apc.AzurePackConnectorProvider().create(props)
    assert len(lab_state(labsim).invocations()) == before
