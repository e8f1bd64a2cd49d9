"""The ownership marker as a file on a host (providers/ownership.py): what an administrator reads in it, which
files are taken for a marker (only ours, whatever else sits there), and how differences are shown in a refusal.
Pure functions and an in-memory host: no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from providers import ownership as O
from providers.facts.markers import parse_marker
from providers.ownership import Difference, Marker, OwnershipConflict
from providers.transport import Call, HostConnection
from tests.fake_windows_host import FakeWindowsHost

pytestmark = pytest.mark.unit

ME, OTHER = "wap-connector/lab-a", "wap-connector/lab-b"


def test_the_marker_file_says_who_wrote_it_for_what_and_how_it_goes_away() -> None:
    text = Marker(ME, adopted=True, prior={"realm": "r"}, resource="TenantApiTrust", thing="the trust row").to_json()
    doc = json.loads(text)
    assert doc == {"managedBy": "wap-connector-iac", "owner": ME, "resource": "TenantApiTrust",
                   "thing": "the trust row", "adopted": True, "prior": {"realm": "r"},
                   "note": "written by wap-connector-iac; the owning stack's destroy removes it"}
    assert text.splitlines()[0] == "{" and len(text.splitlines()) > 5  # indented: readable in Notepad


@pytest.mark.parametrize("text, expected", [
    ("\ufeff" + Marker(ME).to_json(), Marker(ME)),  # Get-Content of a file saved with a BOM
    (json.dumps({"managedBy": "wap-connector-iac", "owner": ME}), Marker(ME)),
    (json.dumps({"managedBy": "wap-connector-iac", "owner": ME, "adopted": "true", "prior": ["x"],
                 "resource": None, "thing": 7}), Marker(ME, adopted=False, prior={}, resource="", thing="7")),
    (json.dumps({"managedBy": "wap-connector-iac", "owner": ME, "adopted": True, "prior": {"a": 1}}),
     Marker(ME, adopted=True, prior={"a": 1})),
])
def test_a_marker_file_is_read_leniently_but_only_adopted_true_means_adopted(text: str, expected: Marker) -> None:
    assert parse_marker(text) == expected


@pytest.mark.parametrize("text", [
    None, 42, {"managedBy": "wap-connector-iac", "owner": ME}, "", "plain text",
    "wap-connector-iac but not json {",
    json.dumps(["wap-connector-iac"]),
    json.dumps({"managedBy": "someone-else", "owner": ME, "note": "wap-connector-iac"}),
    json.dumps({"managedBy": "wap-connector-iac", "owner": 5}),
    json.dumps({"managedBy": "wap-connector-iac"}),
])
def test_anything_else_is_not_a_marker(text: object) -> None:
    assert parse_marker(text) is None


def test_a_difference_shows_both_values_and_none_for_nothing() -> None:
    assert str(Difference("realm", "a", "b")) == "realm is 'a', this stack wants 'b'"
    assert str(Difference("realm", None, "")) == "realm is (none), this stack wants (none)"
    assert str(Difference("ports", [2, 1], {"b": 1, "a": 2})) == \
        "ports is '[2, 1]', this stack wants '{\"a\": 2, \"b\": 1}'"


def test_a_long_value_is_cut_at_200_characters() -> None:
    shown = str(Difference("script", "x" * 201, "y" * 200))
    assert shown == f"script is '{'x' * 200}...', this stack wants '{'y' * 200}'"


def test_owner_problem_says_what_an_owner_looks_like() -> None:
    assert O.owner_problem("nope") == "'nope' is not project/stack (letters, digits, '.', '_', '-')"
    assert O.owner_problem(5) == "5 is not project/stack (letters, digits, '.', '_', '-')"
    assert O.owner_problem("a" * 100 + "/" + "b" * 100) is None
    assert O.owner_problem("a" * 101 + "/b") is not None


def test_marker_paths_keep_dots_and_dashes_and_trim_the_rest() -> None:
    assert O.marker_path("R", "  Host.Name-1!  ") == r"C:\ProgramData\WapConnectorIac\R\host.name-1.json"
    assert O.is_marker_path(r"c:\programdata\wapconnectoriac\R\x.json")
    assert not O.is_marker_path(O.MARKER_ROOT) and not O.is_marker_path(None)


def test_write_creates_the_folder_then_the_file_with_the_marker_text() -> None:
    host = FakeWindowsHost()
    conn = HostConnection(fqdn="wapcomputer1.contoso.com", auth="ntlm", username="u", password="p")
    path = O.marker_path("ConnectorSite", "connector")
    marker = Marker(ME, resource="ConnectorSite", thing="the connector")
    O.write(host.transport, conn, O.STEP_MARK, path, marker)
    assert O.read(host.transport, conn, "read", path) == marker
    [call] = host.transport.calls[:1]
    folder, file = (p.commands[0] for p in call.statements)
    assert (folder.name, dict(folder.parameters), list(folder.switches)) == (
        "New-Item", {"Path": r"C:\ProgramData\WapConnectorIac\ConnectorSite", "ItemType": "Directory"}, ["Force"])
    assert dict(file.parameters) == {"Path": path, "ItemType": "File", "Value": marker.to_json()}
    assert list(file.switches) == ["Force"] and call.idempotent


def test_refusals_name_the_owner_and_what_to_do() -> None:
    with pytest.raises(OwnershipConflict) as err:
        O.claim(host="h1", thing="the site", owner=ME, adopt=False, marker=Marker(OTHER), exists=True,
                differences=[], prior={}, resource="R")
    assert str(err.value).startswith(f"h1: the site is owned by stack {OTHER}; stack {ME} will not change or delete "
                                     f"it. Nothing was changed. Manage it from {OTHER}, destroy that stack first, or "
                                     f"set wapconnector:adopt: true")
    assert err.value.host == "h1" and err.value.thing == "the site" and err.value.differences == []
    with pytest.raises(OwnershipConflict) as err:
        O.may_change(host="h1", thing="the site", owner=ME, adopt=False, marker=Marker(OTHER), previous=ME)
    assert str(err.value).startswith(f"h1: the site is now owned by stack {OTHER}; stack {ME} will not change it. "
                                     f"Nothing was changed. Manage it from {OTHER}, or set wapconnector:adopt")
    assert err.value.owner == OTHER and err.value.thing == "the site"


def test_direct_use_without_an_owner_is_never_guarded() -> None:
    O.may_change(host="h", thing="t", owner=None, adopt=False, marker=Marker(OTHER))
    assert O.may_delete(host="h", thing="t", owner=None, marker=Marker(OTHER))


def test_delete_of_another_stacks_thing_warns_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    warned = []
    monkeypatch.setattr(O.pulumi.log, "warn", lambda msg, *a, **k: warned.append(msg))
    assert O.may_delete(host="h1", thing="the site", owner=ME, marker=Marker(OTHER)) is False
    assert warned == [f"h1: the site is owned by stack {OTHER}; stack {ME} leaves it in place (only its own state "
                      f"entry is removed)"]
    assert O.may_delete(host="h1", thing="the site", owner=ME, marker=Marker(ME)) and len(warned) == 1


def test_ownership_outputs_are_what_read_records() -> None:
    assert O.outputs(None) == {"observed_owner": None}
    assert O.outputs(Marker(ME, adopted=True, prior={"a": 1})) == {"observed_owner": ME, "adopted": True,
                                                                   "prior": {"a": 1}}
    assert O.from_state({"owner": ME, "prior": "not a dict"}, "R", "t") == Marker(ME, resource="R", thing="t")


# -- the commands a host sees ----------------------------------------------------------------------------------------
CONN = HostConnection(fqdn="wapcomputer1.contoso.com", auth="ntlm", username="u", password="p")
PATH = O.marker_path("ConnectorSite", "connector")


def shape(call: Call) -> tuple[str, list[list[tuple[str, dict[str, Any], list[str]]]], bool]:
    """A call as the host sees it: step, each statement's commands with parameters and switches, resendable."""
    return (call.step, [[(c.name, dict(c.parameters), list(c.switches)) for c in p.commands] for p in call.statements],
            call.idempotent)


def test_the_read_takes_the_whole_file_as_one_text_and_tolerates_its_absence() -> None:
    host = FakeWindowsHost()
    assert O.read(host.transport, CONN, "read the connector", PATH) is None
    assert shape(host.transport.calls[0]) == ("read the connector", [[(
        "Get-Content", {"Path": PATH, "Raw": True, "ErrorAction": "SilentlyContinue"}, [])]], True)


def test_write_is_one_resendable_call_in_the_callers_step() -> None:
    host = FakeWindowsHost()
    O.write(host.transport, CONN, "mark it", PATH, Marker(ME))
    [call] = host.transport.calls
    assert call.step == "mark it" and call.idempotent is True
    assert [c.name for p in call.statements for c in p.commands] == ["New-Item", "New-Item"]


def test_remove_sends_what_the_host_contract_says_one_removal_and_the_count_above_it_per_call() -> None:
    host = FakeWindowsHost()
    O.write(host.transport, CONN, "mark", PATH, Marker(ME))
    del host.transport.calls[:]
    O.remove(host.transport, CONN, "unmark", PATH)
    folder, root = O.marker_folders(PATH)
    quiet = {"ErrorAction": "SilentlyContinue"}
    assert [shape(c) for c in host.transport.calls] == [
        ("unmark", [[("Remove-Item", {"Path": PATH, **quiet}, ["Force"])],
                    [("Get-ChildItem", {"Path": folder, **quiet}, []), ("Measure-Object", {}, [])]], True),
        ("unmark", [[("Remove-Item", {"Path": folder, **quiet}, ["Force"])],
                    [("Get-ChildItem", {"Path": root, **quiet}, []), ("Measure-Object", {}, [])]], True),
        ("unmark", [[("Remove-Item", {"Path": root, **quiet}, ["Force"])]], True)]


def test_the_marker_text_is_the_same_for_the_same_marker() -> None:
    """Sorted keys and a fixed indent: writing the marker again leaves the file byte for byte as it was."""
    a = Marker(ME, adopted=True, prior={"b": 1, "a": 2}, resource="R", thing="t")
    b = Marker(ME, adopted=True, prior={"a": 2, "b": 1}, resource="R", thing="t")
    assert a.to_json() == b.to_json()
    lines = a.to_json().splitlines()
    assert lines[1] == '  "adopted": true,' and lines[-1] == "}"
    assert [ln.split('"')[1] for ln in lines if ln.startswith('  "')] == sorted(
        ["adopted", "managedBy", "note", "owner", "prior", "resource", "thing"])


def test_a_value_json_cannot_write_is_shown_as_text() -> None:
    import datetime as dt

    when = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert str(Difference("expires", {"at": when}, None)) == \
        'expires is \'{"at": "2026-06-01 00:00:00+00:00"}\', this stack wants (none)'


@pytest.mark.parametrize("kw", [
    {},                                                             # nothing there: owned
    {"exists": True},                                               # unmarked and matching: adopted
    {"exists": True, "marker": Marker(ME, adopted=True)},           # ours already: a rerun
    {"exists": True, "marker": Marker(OTHER), "adopt": True},       # another stack's, taken over
])
def test_every_marker_claim_writes_names_its_resource_and_thing(kw: dict[str, Any]) -> None:
    args = dict(host="h1", thing="the site", owner=ME, adopt=False, marker=None, exists=False, differences=[],
                prior={}, resource="ConnectorSite")
    m = O.claim(**{**args, **kw})
    assert (m.owner, m.resource, m.thing) == (ME, "ConnectorSite", "the site")
    assert m.adopted is bool(kw.get("exists"))


def test_a_refusal_of_differences_lists_each_and_names_host_and_thing() -> None:
    diffs = [Difference("a", 1, 2), Difference("b", 3, 4)]
    with pytest.raises(OwnershipConflict) as err:
        O.claim(host="h1", thing="the site", owner=ME, adopt=False, marker=None, exists=True, differences=diffs,
                prior={}, resource="R")
    assert "differs from its configuration: a is '1', this stack wants '2'; b is '3', this stack wants '4'. " \
           "Nothing was changed." in str(err.value)
    assert (err.value.host, err.value.thing, err.value.owner) == ("h1", "the site", None)
    with pytest.raises(OwnershipConflict) as err:
        O.may_change(host="h1", thing="the site", owner=ME, adopt=False, marker=Marker(OTHER))
    assert err.value.host == "h1"


def _remote_resources() -> list[tuple[str, Callable[[], object]]]:
    from docs.examples.registry_value import RegistryValue
    from providers.azure_pack_connector import AzurePackConnector
    from providers.bundle import ConnectorBundle
    from providers.certificate import Certificate
    from providers.connector_site import ConnectorSite
    from providers.tenant_api_trust import TenantApiTrust
    from providers.tenant_api_update import TenantApiUpdate

    conn = {"fqdn": "wapcomputer1.contoso.com", "auth": "ntlm", "username": "u", "password": "p"}
    return [
        ("ConnectorBundle", lambda: ConnectorBundle("b", connection=conn, source_dir="missing", owner=ME)),
        ("Certificate", lambda: Certificate("c", connection=conn, cert_pem="PEM", store="CA", owner=ME)),
        ("ConnectorSite", lambda: ConnectorSite("s", connection=conn, tenant_portal_fqdn="a.b", tenant_api_fqdn="a.b",
                                                azure_stack_portal_fqdn="a.b", owner=ME)),
        ("TenantApiTrust", lambda: TenantApiTrust("t", connection=conn, data_file_content="{}",
                                                  data_file_name="a.txt", owner=ME)),
        ("TenantApiUpdate", lambda: TenantApiUpdate("u", connection=conn, owner=ME)),
        ("AzurePackConnector", lambda: AzurePackConnector("m", connection=conn, share_connection=conn, clouds=[],
                                                          azure_stack_cloud_name="x", owner=ME)),
        ("RegistryValue", lambda: RegistryValue("r", connection=conn, key="HKLM:\\SOFTWARE\\X", value_name="n",
                                                value="v", owner=ME)),
    ]


@pytest.mark.parametrize("kind, make", _remote_resources(), ids=[k for k, _ in _remote_resources()])
def test_every_remote_resource_registers_its_owner_and_the_ownership_outputs(
        kind: str, make: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner and adopt inputs, and observed_owner, adopted and prior declared (unknown until create), so that
    the program and `stack output` see what ownership records."""
    captured: dict[str, Any] = {}

    def fake_init(self: object, provider: object, name: str, props: dict[str, Any], opts: object = None) -> None:
        captured.update(props)

    monkeypatch.setattr("pulumi.dynamic.Resource.__init__", fake_init)
    make()
    assert (captured["owner"], captured["adopt"]) == (ME, False), kind
    assert all(k in captured and captured[k] is None for k in ("observed_owner", "adopted", "prior")), kind
