"""Ownership and adoption (issue 9, items 2-3): the marker, the pure decisions, and how the resources apply them
against an in-memory host (unit). The whole story on the real engine and labsim: tests/e2e/test_lab_ownership.py."""

from __future__ import annotations

import itertools
import json
import queue
import threading
from typing import Any

import pytest

from labsim.server import LabServer
from providers import ownership as O
from providers import tenant_api_trust as T
from providers.facts.files import ItemCount
from providers.facts.markers import OwnershipMarker
from providers.ownership import Difference, Marker, OwnershipConflict
from providers.transport import Call, Command, FakeTransport, HostConnection, PsrpTransport, Result, Transport
from tests.fake_windows_host import FakeWindowsHost
from tests.lab_state import lab_state
from tests.outs import outs_of
from tests.providers.labsim_helpers import admin, conn_dict
from tests.providers.test_tenant_api_trust import CONN, DEST, REALM, data_file, host_with, trust_props

ME, OTHER = "wap-connector/lab-a", "wap-connector/lab-b"
ROW = ("TenantAPI", "Authentication.IdentityProvider.Secondary")
DATA_FILE = f"{DEST}\\AzurePack-06-27-15-50.txt"


def claim(**kw: Any) -> Marker:
    args: dict[str, Any] = dict(host="wapcomputer1.contoso.com", thing="the thing", owner=ME, adopt=False,
                                marker=None, exists=False, differences=[], prior={}, resource="Thing")
    args.update(kw)
    return O.claim(**args)


# == the marker =================================================================================================
@pytest.mark.unit
def test_marker_round_trips_and_is_found_among_other_output() -> None:
    m = Marker(ME, adopted=True, prior={"certificate_thumbprint": "AB"}, resource="ConnectorSite", thing="x")
    read = OwnershipMarker(RES_A)
    assert read.parse([{"Name": "a"}, m.to_json(), "plain text", '{"owner": "not ours"}']) == m
    assert read.parse([{"Name": "a"}, "plain text", '{"owner": "not ours"}']) is None
    assert read.parse([]) is None


@pytest.mark.unit
@pytest.mark.parametrize("resource, key, path", [
    ("ConnectorSite", "connector", r"C:\ProgramData\WapConnectorIac\ConnectorSite\connector.json"),
    ("ConnectorBundle", r"C:\temp\WAPConnector",
     r"C:\ProgramData\WapConnectorIac\ConnectorBundle\c_temp_wapconnector.json"),
    ("AzurePackConnector", "AzS-ERCS01.AzureStack.local",
     r"C:\ProgramData\WapConnectorIac\AzurePackConnector\azs-ercs01.azurestack.local.json"),
    ("TenantApiTrust", "sql01\\WAP,1433-Authentication.IdentityProvider.Secondary",
     r"C:\ProgramData\WapConnectorIac\TenantApiTrust\sql01_wap_1433-authentication.identityprovider.secondary.json"),
])
def test_marker_paths_stay_in_our_namespace(resource: str, key: str, path: str) -> None:
    assert O.marker_path(resource, key) == path
    assert O.is_marker_path(path) and not O.is_marker_path(r"C:\ProgramData\Other\x.json")


@pytest.mark.unit
@pytest.mark.parametrize("owner, ok", [("proj/stack", True), ("wap-connector/sim.1", True), ("stack", False),
                                       ("a/b/c", False), ("a b/c", False), ("", False), (None, True)])
def test_owner_is_project_slash_stack(owner: str | None, ok: bool) -> None:
    assert (O.owner_problem(owner) is None) is ok


# == decisions ==================================================================================================
@pytest.mark.unit
def test_absent_is_created_and_owned() -> None:
    assert claim() == Marker(ME, adopted=False, resource="Thing", thing="the thing")


@pytest.mark.unit
def test_unmarked_and_matching_is_adopted_with_its_prior_values() -> None:
    m = claim(exists=True, prior={"realm": "r"})
    assert (m.owner, m.adopted, dict(m.prior)) == (ME, True, {"realm": "r"})


@pytest.mark.unit
def test_unmarked_and_different_is_refused_naming_host_thing_and_every_field() -> None:
    with pytest.raises(OwnershipConflict) as err:
        claim(exists=True, differences=[Difference("certificate_thumbprint", "AAAA", "BBBB"),
                                        Difference("tenant_api_fqdn", None, "api.contoso.com")])
    msg = str(err.value)
    assert msg.startswith("wapcomputer1.contoso.com: the thing already exists, was not created by stack " + ME)
    assert "certificate_thumbprint is 'AAAA', this stack wants 'BBBB'" in msg
    assert "tenant_api_fqdn is (none), this stack wants 'api.contoso.com'" in msg
    assert "Nothing was changed" in msg and "wapconnector:adopt: true" in msg and "clouds[<i>].adopt" in msg
    assert err.value.owner is None and len(err.value.differences) == 2


@pytest.mark.unit
def test_unmarked_and_different_is_adopted_when_asked() -> None:
    m = claim(exists=True, adopt=True, differences=[Difference("realm", "a", "b")], prior={"realm": "a"})
    assert m.adopted and dict(m.prior) == {"realm": "a"}


@pytest.mark.unit
def test_another_stacks_thing_is_refused_naming_the_owner_even_when_it_matches() -> None:
    with pytest.raises(OwnershipConflict, match=f"the thing is owned by stack {OTHER}; stack {ME} will not change "
                                                f"or delete it") as err:
        claim(exists=True, marker=Marker(OTHER))
    assert err.value.owner == OTHER


@pytest.mark.unit
def test_another_stacks_thing_is_taken_over_only_when_asked() -> None:
    m = claim(exists=True, adopt=True, marker=Marker(OTHER), prior={"x": 1})
    assert (m.owner, m.adopted, dict(m.prior)) == (ME, True, {"x": 1})


@pytest.mark.unit
def test_our_own_marker_is_a_rerun_that_keeps_what_it_recorded() -> None:
    mine = Marker(ME, adopted=True, prior={"x": "before"})
    m = claim(exists=True, marker=mine, differences=[Difference("x", "half-done", "wanted")], prior={"x": "now"})
    assert m.adopted and dict(m.prior) == {"x": "before"}


@pytest.mark.unit
def test_update_and_delete_guards() -> None:
    O.may_change(host="h", thing="t", owner=ME, adopt=False, marker=Marker(ME))
    O.may_change(host="h", thing="t", owner=ME, adopt=False, marker=None)
    O.may_change(host="h", thing="t", owner=ME, adopt=True, marker=Marker(OTHER))
    with pytest.raises(OwnershipConflict, match=f"now owned by stack {OTHER}"):
        O.may_change(host="h", thing="t", owner=ME, adopt=False, marker=Marker(OTHER))
    # The marker names the owner this resource's state recorded: the same stack under its former name.
    O.may_change(host="h", thing="t", owner=ME, adopt=False, marker=Marker(OTHER), previous=OTHER)
    assert O.may_delete(host="h", thing="t", owner=ME, marker=Marker(ME))
    assert O.may_delete(host="h", thing="t", owner=ME, marker=None)
    assert not O.may_delete(host="h", thing="t", owner=ME, marker=Marker(OTHER))


@pytest.mark.unit
def test_diff_names_owner_when_the_marker_read_back_is_not_ours() -> None:
    assert O.owner_changed({"observed_owner": ME}, {"owner": ME}) == []
    assert O.owner_changed({"observed_owner": None}, {"owner": ME}) == ["owner"]
    assert O.owner_changed({"observed_owner": OTHER}, {"owner": ME}) == ["owner"]
    assert O.owner_changed({"observed_owner": None}, {"owner": None}) == []  # not tracked


# == a resource applying them: TenantApiTrust on an in-memory host (the fixture host) ===========================
@pytest.fixture
def host() -> FakeWindowsHost:
    """A Tenant API VM with the trust script staged (as in the trust tests)."""
    return host_with("Setup\\Scripts\\Configure-TrustAzureStack.ps1")


def configure_by_hand(host: FakeWindowsHost, realm: str = REALM) -> None:
    """What an operator following the article leaves: the data file in the bundle folder, the trust row."""
    host.put_file(DATA_FILE, data_file(realm=realm).encode())
    host.rows[ROW] = json.dumps({"Realm": realm, "Certificate": json.loads(data_file())[
        "AuthenticationIdentityProviderPartner"]["Certificate"], "Endpoint": "https://wapcomputer1.contoso.com:40005"},
        separators=(",", ":"))


def writes(host_before_calls: int, transport: FakeTransport) -> list[Call]:
    return [c for c in transport.calls[host_before_calls:] if any(
        cmd.name not in ("Get-Content", "Get-FileHash", "Get-MgmtSvcDatabaseSetting", "Get-MgmtSvcSetting",
                         "Get-ChildItem", "Measure-Object", "Test-Path")
        for p in c.statements for cmd in p.commands)]


@pytest.mark.unit
def test_trust_configured_by_hand_is_adopted_with_only_the_marker_written_and_left_by_delete(
        host: FakeWindowsHost) -> None:
    configure_by_hand(host)
    before = dict(host.rows)
    p = T.TenantApiTrustProvider(host.transport)
    created = p.create(trust_props(owner=ME))
    assert outs_of(created)["adopted"] is True and outs_of(created)["observed_owner"] == ME
    written = writes(0, host.transport)
    assert len(written) == 1 and all(O.is_marker_path(cmd.parameters["Path"]) for cmd in
                                     written[0].statements[0].commands + written[0].statements[1].commands)
    assert host.script_params == [] and host.rows == before
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["observed_owner"] == ME
    assert p.diff(created.id, outs_of(read), trust_props(owner=ME)).changes is False

    p.delete(created.id, outs_of(created))
    assert host.rows == before and host.file(DATA_FILE) == data_file().encode()  # as it was
    assert not any(O.is_marker_path(k) for k in host.files)


@pytest.mark.unit
def test_trust_of_another_realm_is_refused_then_adopted_on_request_and_put_back_by_delete(
        host: FakeWindowsHost) -> None:
    old = "https://adfs.local.azurestack.external/adfs/00000000-aaaa-bbbb-cccc-000000000000/"
    configure_by_hand(host, realm=old)
    before = dict(host.rows)
    p = T.TenantApiTrustProvider(host.transport)
    with pytest.raises(OwnershipConflict) as err:
        p.create(trust_props(owner=ME))
    assert f"realm is {old!r}, this stack wants {REALM!r}" in str(err.value)
    assert "wapcomputer1.contoso.com: the trust row TenantAPI/Authentication.IdentityProvider.Secondary" \
        in str(err.value)
    assert host.rows == before and host.script_params == [] and writes(0, host.transport) == []

    created = p.create(trust_props(owner=ME, adopt=True))
    assert json.loads(host.rows[ROW])["Realm"] == REALM and outs_of(created)["adopted"] is True
    p.delete(created.id, outs_of(created))
    assert host.rows == before  # the prior row is back, never deleted


@pytest.mark.unit
def test_a_second_stack_neither_changes_nor_deletes_the_first_stacks_trust(host: FakeWindowsHost) -> None:
    p = T.TenantApiTrustProvider(host.transport)
    first = p.create(trust_props(owner=ME))
    assert outs_of(first)["adopted"] is False
    rows, calls = dict(host.rows), len(host.transport.calls)
    with pytest.raises(OwnershipConflict, match=f"owned by stack {ME}; stack {OTHER} will not change or delete it"):
        p.create(trust_props(owner=OTHER))
    assert writes(calls, host.transport) == []
    # The second stack's state claims it (say, an older version took it silently): its delete leaves it.
    p.delete(first.id, {**outs_of(first), "owner": OTHER})
    assert host.rows == rows and host.file(DATA_FILE) is not None
    # The owner's read and delete still work as theirs.
    assert outs_of(p.read(first.id, outs_of(first)))["observed_owner"] == ME
    p.delete(first.id, outs_of(first))
    assert ROW not in host.rows and not any(O.is_marker_path(k) for k in host.files)


# == ConnectorSite: an adopted connector is never uninstalled; destroy puts its prior values back ================
def site_props(**kw: Any) -> dict[str, Any]:
    from tests.providers.test_connector_site import checked, inputs

    return checked(inputs(owner=ME, **kw))


@pytest.mark.unit
@pytest.mark.parametrize("prior_cert_present", [True, False])
def test_connector_that_differs_is_refused_then_adopted_and_destroy_puts_fqdn_and_certificate_back(
        prior_cert_present: bool) -> None:
    from providers import connector_site as cs
    from providers.transport import FakeTransport
    from tests.providers.test_connector_site import T_TENANT, wap_host

    host = wap_host(installed=True)
    host.app_settings["TenantAPIFQDN"] = "api.contoso.com"
    if prior_cert_present:
        host.certs[("My", T_TENANT)] = True
    wanted = "B" * 40
    provider = cs.ConnectorSiteProvider(FakeTransport(host))
    with pytest.raises(OwnershipConflict) as err:
        provider.create(site_props(certificate_thumbprint=wanted))
    assert f"certificate_thumbprint is '{T_TENANT}', this stack wants '{wanted}'" in str(err.value)
    assert "tenant_api_fqdn is 'api.contoso.com', this stack wants 'wapcomputer1.contoso.com'" in str(err.value)
    assert host.ran == [] and markers(host) == []

    created = provider.create(site_props(certificate_thumbprint=wanted, adopt=True))
    assert outs_of(created)["adopted"] is True and outs_of(created)["prior"]["tenant_api_fqdn"] == "api.contoso.com"
    assert host.ran == ["Configure-Certificates.ps1", "Configure-WapConnector.ps1"]
    assert host.app_settings["TenantAPIFQDN"] == "wapcomputer1.contoso.com" and markers(host)

    host.ran.clear()
    provider.delete(created.id, outs_of(created))
    assert host.app_settings["TenantAPIFQDN"] == "api.contoso.com"  # the hand's value is back
    assert host.packages and "msiexec /x" not in host.ran  # never uninstalled
    expected_thumb = T_TENANT if prior_cert_present else wanted  # a prior certificate gone since is not rebound
    assert {s["thumb"] for s in host.sites.values()} == {expected_thumb}
    assert markers(host) == []


def markers(wap: FakeWindowsHost) -> list[str]:
    return [k for k in wap.files if O.is_marker_path(k)]


# == removing a marker ==========================================================================================
RES_A, RES_B = O.marker_path("ConnectorSite", "connector"), O.marker_path("ConnectorBundle", r"C:\temp\WAPConnector")
SIBLING = O.marker_path("ConnectorSite", "another")


def write_markers(t: Transport, conn: HostConnection, *paths: str) -> None:
    for path in paths:
        O.write(t, conn, O.STEP_MARK, path, Marker(ME, resource="Thing", thing=path))


def pipelines(transport: FakeTransport, since: int) -> list[list[str]]:
    """The remote pipelines run since call ``since``, each as its statements' command names."""
    return [[" | ".join(c.name for c in s.commands) for s in call.statements] for call in transport.calls[since:]]


@pytest.mark.unit
@pytest.mark.parametrize("others, gone, kept", [
    ((SIBLING,), [RES_A], [SIBLING]),  # another marker in the folder: the folder stays
    ((RES_B,), [RES_A, r"C:\ProgramData\WapConnectorIac\ConnectorSite"], [RES_B]),  # the folder goes, the root stays
    ((), [RES_A, r"C:\ProgramData\WapConnectorIac\ConnectorSite", O.MARKER_ROOT], []),  # the last: the root too
], ids=["sibling", "other-resource", "last"])
def test_remove_takes_the_marker_then_each_emptied_folder_one_pipeline_apiece(others: tuple[Any, ...],
                                                                              gone: list[Any],
                                                                              kept: list[Any]) -> None:
    host = FakeWindowsHost()
    host.dirs.add(r"c:\programdata")
    conn = HostConnection.parse(dict(CONN))
    write_markers(host.transport, conn, RES_A, *others)
    since = len(host.transport.calls)
    O.remove(host.transport, conn, O.STEP_UNMARK, RES_A)
    calls = host.transport.calls[since:]
    # Each pipeline removes one thing (the marker, then each emptied folder, deepest first) and counts what is
    # left in the folder above it; a pipeline with nothing to count removes the root, the last folder.
    assert pipelines(host.transport, since) == [*(["Remove-Item", "Get-ChildItem | Measure-Object"]
                                                  for _ in gone[:2]), *(["Remove-Item"] for _ in gone[2:])]
    assert [c.statements[0].commands[0].parameters["Path"] for c in calls] == gone
    assert [c.statements[1].commands[0].parameters["Path"] for c in calls[:2]] == \
        [r"C:\ProgramData\WapConnectorIac\ConnectorSite", O.MARKER_ROOT][:len(calls)]
    assert all(c.statements[0].commands[0].switches == ("Force",) for c in calls)  # never -Recurse
    for path in gone:
        assert host.file(path) is None and path.lower() not in host.dirs, path
    for path in kept:
        assert host.file(path) is not None, path
    assert r"c:\programdata" in host.dirs  # never C:\ProgramData itself


@pytest.mark.unit
def test_remove_keeps_a_folder_that_holds_a_file_it_did_not_write() -> None:
    host = FakeWindowsHost()
    conn = HostConnection.parse(dict(CONN))
    foreign = O.MARKER_ROOT + r"\readme.txt"
    host.put_file(foreign, b"an operator's note")
    write_markers(host.transport, conn, RES_A)
    O.remove(host.transport, conn, O.STEP_UNMARK, RES_A)
    assert host.file(RES_A) is None and host.file(foreign) == b"an operator's note"


@pytest.mark.unit
@pytest.mark.parametrize("count", [[], [{"Count": 0}, {"Count": 0}], ["not a count"], [{"Count": None}]])
def test_an_unreadable_count_removes_the_marker_and_no_folder(count: list[Any]) -> None:
    def answer(call: Call) -> Result:
        return Result(outputs=[[], count] if len(call.statements) == 2 else [[]])

    transport = FakeTransport(answer)
    O.remove(transport, HostConnection.parse(dict(CONN)), O.STEP_UNMARK, RES_A)
    assert [[s.commands[0].parameters["Path"] for s in c.statements] for c in transport.calls] == \
        [[RES_A, O.marker_folders(RES_A)[0]]]


@pytest.mark.unit
def test_the_count_is_of_every_item_in_the_folder_not_only_files() -> None:
    # labsim and Windows list folders too: a root that holds another resource's folder is not empty
    assert ItemCount("folder").statements()[0].commands[0].switches == ()
    assert [ItemCount("f").parse(o) for o in ([{"Count": 2}], [{"Count": 0}], [], [{"Count": "2"}])] == \
        [2, 0, None, None]


@pytest.mark.sim
@pytest.mark.parametrize("others, folder_kept, root_kept", [
    ((SIBLING,), True, True), ((RES_B,), False, True), ((), False, False)], ids=["sibling", "other-resource", "last"])
def test_sim_remove_leaves_the_host_as_it_was_one_pipeline_per_removal(labsim: LabServer, sim: PsrpTransport,
                                                                       others: tuple[Any, ...], folder_kept: bool,
                                                                       root_kept: bool) -> None:
    # labsim's Get-ChildItem lists folders too (as Windows does): a root that holds another resource's folder
    # is not empty, and one that held only the emptied folder is once that is gone.
    conn = HostConnection.parse(conn_dict(labsim, "wapcomputer1"))
    host = labsim.lab.host("wapcomputer1").name
    write_markers(sim, conn, RES_A, *others)
    before = lab_state(labsim).wire_counts(host)[host]["pipeline"]
    O.remove(sim, conn, O.STEP_UNMARK, RES_A)
    assert lab_state(labsim).wire_counts(host)[host]["pipeline"] - before == 1 + (not folder_kept) + (not root_kept)
    assert present(labsim, RES_A, O.marker_folders(RES_A)[0], O.MARKER_ROOT, *others, r"C:\ProgramData") == \
        [False, folder_kept, root_kept, *(True for _ in others), True]
    for path in others:  # leave the host clean for the next case
        O.remove(sim, conn, O.STEP_UNMARK, path)


def present(labsim: LabServer, *paths: str) -> list[bool]:
    looked = admin(labsim, "wapcomputer1", "look", [Command("Test-Path", {"Path": p}) for p in paths])
    return [o for out in looked.outputs for o in out]


class Turns:
    """A transport that lets one ``remove`` run its next pipeline only when the test says so: the test then
    decides the order in which two concurrent deletes' pipelines reach the host."""

    def __init__(self, inner: Transport) -> None:
        self.inner, self.go, self.events = inner, threading.Semaphore(0), queue.Queue[str]()

    def run(self, conn: HostConnection, step: str, statements: Any, **kw: Any) -> Any:
        self.events.put("call")
        self.go.acquire()
        return self.inner.run(conn, step, statements, **kw)

    def run_until(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("remove never watches a verbose stream")

    def delete(self, conn: HostConnection, path: str) -> threading.Thread:
        def work() -> None:
            try:
                O.remove(self, conn, O.STEP_UNMARK, path)
            finally:
                self.events.put("done")
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread


@pytest.mark.sim
@pytest.mark.parametrize("first, second", [(RES_A, RES_B), (RES_A, SIBLING)], ids=["two-folders", "one-folder"])
def test_sim_concurrent_removes_leave_no_folder_behind_in_any_order(labsim: LabServer, sim: PsrpTransport,
                                                                    first: str, second: str) -> None:
    # The engine deletes one host's things at once. Whatever order their pipelines reach the host in, the two
    # removes together leave no marker folder behind (an empty WapConnectorIac after a destroy was the symptom).
    conn = HostConnection.parse(conn_dict(labsim, "wapcomputer1"))
    everything = [first, second, *O.marker_folders(first), *O.marker_folders(second)]
    for order in sorted(set(itertools.permutations("AAABBB"))):
        write_markers(sim, conn, first, second)
        turns = {"A": Turns(sim), "B": Turns(sim)}
        threads = [turns["A"].delete(conn, first), turns["B"].delete(conn, second)]
        pending = {k: t.events.get(timeout=60) for k, t in turns.items()}
        for k in order:
            if pending[k] == "call":
                turns[k].go.release()
                pending[k] = turns[k].events.get(timeout=60)  # the pipeline ran: its next call, or done
        for thread in threads:
            thread.join(timeout=60)
        assert set(pending.values()) == {"done"}, order
        assert present(labsim, *everything, r"C:\ProgramData") == [*(False for _ in everything), True], order
