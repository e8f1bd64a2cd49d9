"""ConnectorBundle provider: local hashing, read parsing, plan, staging commands, diff, and create/read/update/
delete against an in-memory host (unit); the labsim version is at the end of the module (sim)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from labsim.server import LabServer
from providers import bundle as B
from providers import hostops
from providers.errors import ConfigurationError, ConnectorError, RemoteCommandFailed
from providers.facts.files import relative_to
from providers.facts.locations import BUNDLE_PATH
from providers.transport import Command, FakeTransport, HostConnection, PsrpTransport
from tests.fake_windows_host import FakeWindowsHost, params_of
from tests.outs import outs_of
from tests.providers.helpers import assert_check_finds, check_failures

HOSTILE_NAME = "we'ird $(calc);`x` & y.txt"
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
        "username": "CONTOSO\\WapAdmin", "password": "LabOnly-Wap1-1!"}
DEST = "C:\\temp\\WAPConnector"


def make_bundle(root: Path, big: int = 3000) -> Path:
    """A tiny bundle in the contract's layout, with one file bigger than a chunk and one empty file."""
    files = {
        "Setup/Scripts/Install-Connector.ps1": b"# install\r\n",
        "Setup/Scripts/Update-TenantAPI.ps1": b"# update\r\n",
        "Setup/Packages/MgmtSvc-TenantAPI.msi": bytes(range(256)) * (big // 256 + 1),
        "Setup/Packages/empty.txt": b"",
        "readme.txt": b"WAPConnector test bundle\r\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def props_for(root: Path, **kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "source_dir": str(root), "destination": DEST, "chunk_size": 1024,
             "files": B.hash_tree(root)}
    props.update(kw)
    return props


# -- pure: paths, hashing, parsing, planning ------------------------------------------------------------------

def changed_fields(olds: dict[str, Any], news: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changed, replaced) fields of the provider's diff."""
    d = B.ConnectorBundleProvider().diff("id", olds, news)
    return d.changed, list(d.replaces or [])

@pytest.mark.unit
@pytest.mark.parametrize("value, ok", [
    ("C:\\temp\\WAPConnector", True), ("C:\\temp\\WAPConnector\\", True), ("D:\\x y\\z-1_2", True), ("C:\\", True),
    ("temp\\x", False), ("C:/temp", False), ("C:\\temp\\..\\Windows", False), ("C:\\a'b", False),
    ("C:\\$(calc)", False), ("C:\\a;b", False), ("C:\\a`b", False), ("\\\\srv\\share", False), ("C:\\a\r\nb", False),
    ("C:\\%TEMP%", False), ("C:\\temp.", False),
])
def test_windows_path(value: str, ok: bool) -> None:
    if ok:
        assert B.windows_path(value) == (value.rstrip("\\") if len(value) > 3 else value)
    else:
        with pytest.raises(ValueError, match="Windows folder path|must not be"):
            B.windows_path(value)


@pytest.mark.unit
def test_hash_tree_is_relative_posix_sorted_and_refuses_symlinks(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    tree = B.hash_tree(tmp_path)
    assert list(tree) == sorted(tree)
    assert tree["Setup/Packages/empty.txt"] == hashlib.sha256(b"").hexdigest().upper()
    (tmp_path / "link").symlink_to(tmp_path / "readme.txt")
    with pytest.raises(ValueError, match="symbolic link"):
        B.hash_tree(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        B.hash_tree(tmp_path / "nope")


@pytest.mark.unit
@pytest.mark.parametrize("full, rel", [
    ("C:\\temp\\WAPConnector\\Setup\\a.ps1", "Setup/a.ps1"),
    ("c:\\TEMP\\wapconnector\\readme.txt", "readme.txt"),
    ("Microsoft.PowerShell.Core\\FileSystem::C:\\temp\\WAPConnector\\x.txt", "x.txt"),
    ("C:\\temp\\WAPConnectorX\\x.txt", None),
    ("C:\\other\\x.txt", None),
])
def test_relative_to(full: str, rel: str | None) -> None:
    assert relative_to(DEST, full) == rel


@pytest.mark.unit
def test_parse_hashes_and_observed_files_ignore_undeclared_files() -> None:
    output = [{"Algorithm": "SHA256", "Hash": "aa", "Path": "C:\\temp\\WAPConnector\\SETUP\\A.ps1"},
              {"Algorithm": "SHA256", "Hash": "BB", "Path": "C:\\temp\\WAPConnector\\AzurePack-1.txt"},
              "noise"]
    host = B.parse_hashes(DEST, output)
    assert host == {"SETUP/A.ps1": "AA", "AzurePack-1.txt": "BB"}
    assert B.observed_files(host, {"Setup/A.ps1": "x", "Setup/B.ps1": "y"}) == {"Setup/A.ps1": "AA"}


@pytest.mark.unit
@pytest.mark.parametrize("observed, desired, drifted", [
    (None, {"a": "11", "b": "22"}, ["a", "b"]),
    ({"a": "11", "b": "22"}, {"a": "11", "b": "22"}, []),
    ({"a": "11", "b": "99"}, {"a": "11", "b": "22"}, ["b"]),
    ({"a": "11"}, {"a": "11", "b": "22"}, ["b"]),
    ({"a": "11", "c": "33"}, {"a": "11"}, []),
    ({"a": "ab"}, {"a": "AB"}, []),
])
def test_drifted_files(observed: dict[str, Any] | None, desired: dict[str, Any], drifted: list[Any]) -> None:
    assert B.drifted_files(observed, desired) == drifted


@pytest.mark.unit
def test_stale_files_and_directories() -> None:
    assert B.stale_files({"a": "1", "Old/x": "2"}, {"A": "1"}) == ["Old/x"]
    assert B.directories_for(DEST, ["readme.txt", "Setup/Scripts/a.ps1", "Setup/b.msi", "Setup/Packages/c"]) == [
        "C:\\temp\\WAPConnector\\Setup\\Packages", "C:\\temp\\WAPConnector\\Setup\\Scripts"]
    assert B.directories_for(DEST, ["readme.txt"]) == [DEST]


@pytest.mark.unit
@pytest.mark.parametrize("size, chunk, expected", [
    (0, 4, [("New-Item", 0)]),
    (3, 4, [("Set-Content", 3)]),
    (4, 4, [("Set-Content", 4)]),
    (9, 4, [("Set-Content", 4), ("Add-Content", 4), ("Add-Content", 1)]),
])
def test_staging_commands(size: int, chunk: int, expected: list[tuple[str, int]]) -> None:
    data = bytes(range(size))
    cmds = hostops.staging_commands("C:\\t\\f.bin", data, chunk)
    assert [(c.name, len(c.parameters.get("Value", b""))) for c in cmds] == expected
    assert b"".join(c.parameters.get("Value", b"") for c in cmds) == data
    assert all(c.parameters["Path"] == "C:\\t\\f.bin" for c in cmds)
    assert all(c.parameters.get("Encoding", "Byte") == "Byte" for c in cmds)


@pytest.mark.unit
def test_batches_bound_the_payload_of_each_call() -> None:
    cmds = [Command("Set-Content", {"Path": "p", "Value": b"x" * n}) for n in (300, 300, 500, 2000, 10)]
    assert [[len(c.parameters["Value"]) for c in b] for b in hostops.batches(cmds, 1024)] == [[300, 300], [500], [2000],
                                                                                       [10]]


# -- check ------------------------------------------------------------------------------------------------------
def failures(props: dict[str, Any]) -> list[tuple[str, str]]:
    return check_failures(B.ConnectorBundleProvider, props)


@pytest.mark.unit
@pytest.mark.parametrize("case, change, prop, words", [
    ("ok", {}, None, None),
    ("hostile destination", {"destination": "C:\\x'; Remove-Item C:\\ -Recurse; '"}, "destination", "not an absolute"),
    ("relative destination", {"destination": "WAPConnector"}, "destination", "not an absolute"),
    ("chunk too small", {"chunk_size": 10}, "chunk_size", "greater than or equal"),
    ("chunk too big", {"chunk_size": 64 * 1024 * 1024}, "chunk_size", "less than or equal"),
    ("missing source", {"source_dir": "/nonexistent/WAPConnector"}, "source_dir", "not a folder on this machine"),
    ("no files", {"files": {}}, "source_dir", "holds no files"),
    ("bad hash", {"files": {"a.txt": "xyz"}}, "files.a.txt", "pattern"),
    ("escaping path", {"files": {"../a.txt": "A" * 64}}, "files", "not a relative path"),
    ("port out of range", {"connection": {**CONN, "port": 0}}, "connection", "port"),
    ("missing credential", {"connection": {**CONN, "username": None}}, "connection", "username is required"),
    ("unknown auth", {"connection": {**CONN, "auth": "digest"}}, "connection", "unknown auth"),
    ("malformed FQDN", {"connection": {**CONN, "fqdn": "-bad-.contoso"}}, "connection", "not a host name"),
])
def test_check(tmp_path: Path, case: str, change: dict[str, Any], prop: str | None, words: str | None) -> None:
    assert_check_finds(failures(props_for(make_bundle(tmp_path), **change)), prop, words)


# -- diff --------------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_diff_names_exactly_the_files_field_and_replaces_on_destination(tmp_path: Path) -> None:
    news = props_for(make_bundle(tmp_path))
    olds = {**news, "__provider": "pickle"}
    assert changed_fields(olds, news) == ([], [])
    drifted = {**olds, "files": {**olds["files"], "readme.txt": "0" * 64}}
    assert changed_fields(drifted, news) == (["files"], [])
    assert B.drifted_files(drifted["files"], news["files"]) == ["readme.txt"]
    assert changed_fields(olds, {**news, "destination": "C:\\TEMP\\wapconnector\\"}) == ([], [])
    assert changed_fields(olds, {**news, "destination": "D:\\WAPConnector"}) == (["destination"], ["destination"])
    assert changed_fields(olds, {**news, "chunk_size": 4096}) == ([], [])
    d = B.ConnectorBundleProvider().diff("id", drifted, news)
    assert d.changes is True and d.replaces == []


# -- provider methods against the in-memory host -------------------------------------------------------------------
@pytest.fixture
def host() -> FakeWindowsHost:
    return FakeWindowsHost()


@pytest.mark.unit
def test_lifecycle_create_read_drift_update_delete(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    props = props_for(root)
    p = B.ConnectorBundleProvider(host.transport)
    created = p.create(props)
    assert created.id == f"wapcomputer1.contoso.com:{DEST}"
    for rel in props["files"]:
        assert host.file(B.join(DEST, rel)) == (root / rel).read_bytes(), rel
    assert sorted(outs_of(created)["uploaded"]) == sorted(props["files"])
    # The big file went in chunks: one Set-Content then Add-Content.
    big = B.join(DEST, "Setup/Packages/MgmtSvc-TenantAPI.msi")
    writes = [c for c in params_of(host.transport, "Set-Content") + params_of(host.transport, "Add-Content")
              if c["Path"] == big]
    assert len(writes) == 3 and all(len(w["Value"]) <= 1024 for w in writes)

    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["files"] == props["files"]
    assert p.diff(created.id, outs_of(read), props).changes is False

    # An administrator edits one staged file; another file appears that the bundle does not declare.
    host.put_file(B.join(DEST, "Setup/Scripts/Update-TenantAPI.ps1"), b"# tampered\r\n")
    host.put_file(B.join(DEST, "AzurePack-06-27-15-50.txt"), b"{}")
    read = p.read(created.id, outs_of(created))
    assert changed_fields(outs_of(read), props) == (["files"], [])
    assert B.drifted_files(outs_of(read)["files"], props["files"]) == ["Setup/Scripts/Update-TenantAPI.ps1"]

    before = len(host.transport.calls)
    updated = p.update(created.id, outs_of(read), props)
    assert outs_of(updated)["uploaded"] == ["Setup/Scripts/Update-TenantAPI.ps1"]
    sent = {c["Path"] for c in params_of_since(host.transport, before, "Set-Content")}
    assert sent == {B.join(DEST, "Setup/Scripts/Update-TenantAPI.ps1")}
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), props).changes is False

    p.delete(created.id, outs_of(updated))
    assert not any(k.startswith(DEST.lower()) for k in host.files)
    assert p.read(created.id, outs_of(updated)).id == ""
    p.delete(created.id, outs_of(updated))  # again: already gone is fine


def params_of_since(transport: FakeTransport, start: int, name: str) -> list[dict[str, Any]]:
    return [dict(c.parameters) for call in transport.calls[start:] for pl in call.statements for c in pl.commands
            if c.name == name]


@pytest.mark.unit
def test_update_removes_files_dropped_from_the_bundle(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    p = B.ConnectorBundleProvider(host.transport)
    created = p.create(props_for(root))
    (root / "readme.txt").unlink()
    p.update(created.id, outs_of(created), props_for(root))
    assert host.file(B.join(DEST, "readme.txt")) is None
    assert host.file(B.join(DEST, "Setup/Scripts/Install-Connector.ps1")) is not None


@pytest.mark.unit
def test_rerun_after_a_failure_halfway_converges_and_skips_what_is_there(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    props = props_for(root)
    p = B.ConnectorBundleProvider(host.transport)
    host.fail_after["Add-Content"] = 1          # the big file breaks after its second chunk
    with pytest.raises(RemoteCommandFailed) as err:
        p.create(props)
    assert "stage WAPConnector bundle" in str(err.value) and "wapcomputer1.contoso.com" in str(err.value)
    del host.fail_after["Add-Content"]
    host._runs.clear()
    # Make the failed run leave one good file behind, as if it had got further: it must not be sent again.
    good = "readme.txt"
    host.put_file(B.join(DEST, good), (root / good).read_bytes())
    broken = [rel for rel in props["files"] if host.file(B.join(DEST, rel)) != (root / rel).read_bytes()]
    assert "Setup/Packages/MgmtSvc-TenantAPI.msi" in broken and good not in broken
    before = len(host.transport.calls)
    created = p.create(props)
    for rel in props["files"]:
        assert host.file(B.join(DEST, rel)) == (root / rel).read_bytes(), rel
    assert outs_of(created)["uploaded"] == sorted(broken)
    resent = {c["Path"] for c in params_of_since(host.transport, before, "Set-Content")}
    assert B.join(DEST, good) not in resent


@pytest.mark.unit
def test_a_corrupted_upload_is_caught_by_the_hash_check(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    host.corrupt.add("Add-Content")  # the host loses the last byte of each appended chunk
    with pytest.raises(ConnectorError, match="do not have the expected SHA-256.*MgmtSvc-TenantAPI.msi"):
        B.ConnectorBundleProvider(host.transport).create(props_for(root))


@pytest.mark.unit
def test_create_refuses_a_source_folder_changed_since_the_plan(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    props = props_for(root)
    (root / "readme.txt").write_bytes(b"changed")
    with pytest.raises(ConnectorError, match="changed after the plan was made.*readme.txt"):
        B.ConnectorBundleProvider(host.transport).create(props)
    assert host.transport.calls == []


@pytest.mark.unit
def test_hostile_file_name_reaches_the_host_verbatim_as_a_path_value(host: FakeWindowsHost, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    (root / HOSTILE_NAME).write_bytes(b"x")
    B.ConnectorBundleProvider(host.transport).create(props_for(root))
    target = B.join(DEST, HOSTILE_NAME)
    assert target in {c["Path"] for c in params_of(host.transport, "Set-Content")}
    assert host.file(target) == b"x"


@pytest.mark.unit
def test_resource_class_hashes_the_folder_and_marks_connection_secret(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}

    def fake_init(self: object, provider: object, name: str, props: dict[str, Any], opts: object = None) -> None:
        captured.update(provider=provider, props=props, opts=opts)

    monkeypatch.setattr("pulumi.dynamic.Resource.__init__", fake_init)
    root = make_bundle(tmp_path)
    B.ConnectorBundle("b", connection=CONN, source_dir=str(root))
    assert captured["props"]["files"] == B.hash_tree(root)
    assert captured["props"]["destination"] == BUNDLE_PATH
    assert "connection" in captured["opts"].additional_secret_outputs
    assert isinstance(captured["provider"], B.ConnectorBundleProvider)


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback (provider methods directly, real PsrpTransport)

from tests.providers import labsim_helpers as lab  # noqa: E402


def sim_bundle(tmp_path: Path) -> Path:
    """labsim's fake WAPConnector bundle (contract §6) plus a file with a hostile name."""
    from labsim.hosts.wapconnector import make_bundle as labsim_bundle

    root = labsim_bundle(tmp_path)
    (root / HOSTILE_NAME).write_bytes(b"hostile name, harmless content\r\n")
    return root


def sim_props(server: LabServer, root: Path, host: str = "wapcomputer2", **kw: Any) -> dict[str, Any]:
    props = {"connection": lab.conn_dict(server, host), "source_dir": str(root), "destination": DEST,
             "chunk_size": 4096, "files": B.hash_tree(root)}
    props.update(kw)
    return props


@pytest.mark.sim
def test_sim_lifecycle_drift_heal_delete(labsim: LabServer, sim: PsrpTransport, tmp_path: Path) -> None:
    root = sim_bundle(tmp_path)
    props = sim_props(labsim, root)
    p = B.ConnectorBundleProvider(sim)
    mark = lab.last_id(labsim)
    created = p.create(props)
    assert sorted(outs_of(created)["uploaded"]) == sorted(props["files"])
    # Chunked: the fake MSIs are bigger than 4 KiB, so Add-Content ran.
    assert lab.invocations(labsim, "wapcomputer2", "Add-Content", since=mark)

    read = p.read(created.id, outs_of(created))
    assert read.id == created.id and outs_of(read)["files"] == props["files"]
    assert p.diff(created.id, outs_of(read), props).changes is False

    # The hostile file name reached the host verbatim as a -Path value (and nothing ran it).
    paths = {lab.params(i).get("Path") for i in lab.invocations(labsim, "wapcomputer2", "Set-Content", since=mark)}
    assert B.join(DEST, HOSTILE_NAME) in paths

    # An administrator edits one staged script.
    edited = "Setup/Scripts/Update-TenantAPI.ps1"
    lab.admin(labsim, "wapcomputer2", "edit a staged file",
              Command("Set-Content", {"Path": B.join(DEST, edited), "Value": "Write-Host tampered"}))
    read = p.read(created.id, outs_of(created))
    assert changed_fields(outs_of(read), props) == (["files"], [])
    assert B.drifted_files(outs_of(read)["files"], props["files"]) == [edited]
    mark = lab.last_id(labsim)
    updated = p.update(created.id, outs_of(read), props)
    assert outs_of(updated)["uploaded"] == [edited]
    sent = {lab.params(i)["Path"] for i in lab.invocations(labsim, "wapcomputer2", "Set-Content", since=mark)}
    assert sent == {B.join(DEST, edited)}
    assert p.diff(created.id, outs_of(p.read(created.id, outs_of(updated))), props).changes is False

    p.delete(created.id, outs_of(updated))
    assert p.read(created.id, outs_of(updated)).id == ""
    p.delete(created.id, outs_of(updated))


@pytest.mark.sim
@pytest.mark.parametrize("kind, command", [("command_terminating", "Add-Content"),
                                           ("command_error", "Set-Content")])
def test_sim_rerun_after_a_failure_halfway_converges(labsim: LabServer, sim: PsrpTransport, tmp_path: Path, kind: str,
                                                     command: str) -> None:
    root = sim_bundle(tmp_path)
    props = sim_props(labsim, root, host="wapcomputer1", destination="C:\\temp\\Faulty")
    p = B.ConnectorBundleProvider(sim)
    lab.set_fault(labsim, "wapcomputer1", kind, command)
    with pytest.raises(ConnectorError) as err:
        p.create(props)
    assert "wapcomputer1.contoso.com" in str(err.value) and "stage WAPConnector bundle" in str(err.value)
    lab.clear_faults(labsim, "wapcomputer1")
    created = p.create(props)
    read = p.read(created.id, outs_of(created))
    assert outs_of(read)["files"] == props["files"]
    p.delete(created.id, outs_of(created))


@pytest.mark.sim
def test_sim_bad_inputs_make_no_invocation(labsim: LabServer, sim: PsrpTransport, tmp_path: Path) -> None:
    root = sim_bundle(tmp_path)
    mark = lab.last_id(labsim)
    for change in ({"destination": "C:\\x'; Remove-Item C:\\ -Recurse; '"}, {"chunk_size": 1},
                   {"connection": {**lab.conn_dict(labsim, "wapcomputer2"), "port": 70000}},
                   {"connection": {**lab.conn_dict(labsim, "wapcomputer2"), "auth": "magic"}},
                   {"connection": {**lab.conn_dict(labsim, "wapcomputer2"), "password": None}}):
        assert B.ConnectorBundleProvider(sim).check({}, sim_props(labsim, root, **change)).failures
        with pytest.raises(ConfigurationError):  # create re-checks: the engine is not the only line of defence
            B.ConnectorBundleProvider(sim).create(sim_props(labsim, root, **change))
    assert lab.last_id(labsim) == mark
    assert "LabOnly-Wap2-1!" not in lab.all_invocations_text(labsim)


@pytest.mark.unit
def test_a_folder_the_stack_made_is_removed_only_while_nothing_moved_into_it() -> None:
    """Delete's clean-up of the folders create made above the destination: a folder that now holds an operator's
    file is kept with it (no Remove-Item is sent), an empty one goes."""
    host = FakeWindowsHost()
    conn = HostConnection.parse(dict(CONN))
    host.put_file("C:\\temp\\operator-notes.txt", b"mine")
    host.dirs.add("c:\\empty")
    assert hostops.remove_folder_if_empty(host.transport, conn, B.STEP_DELETE, "C:\\temp") is False
    assert host.file("C:\\temp\\operator-notes.txt") == b"mine"
    assert [c.statements[0].commands[0].name for c in host.transport.calls] == ["Get-ChildItem"]
    assert hostops.remove_folder_if_empty(host.transport, conn, B.STEP_DELETE, "C:\\empty") is True
    assert "c:\\empty" not in host.dirs


@pytest.mark.sim
def test_sim_a_script_the_bundle_lacks_is_refused_even_where_a_folder_has_its_name(labsim: LabServer,
                                                                                   sim: PsrpTransport) -> None:
    """What the Tenant API resources check before they run a staged script: a file (Test-Path -PathType Leaf),
    so a folder of the script's name is refused as clearly as nothing at all."""
    conn = HostConnection.parse(lab.conn_dict(labsim, "wapcomputer2"))
    script = B.join(DEST, "Setup/Scripts/Configure-TrustAzureStack.ps1")
    lab.admin(labsim, "wapcomputer2", "a folder of the script's name",
              Command("New-Item", {"Path": script, "ItemType": "Directory"}, ["Force"]))
    with pytest.raises(ConnectorError, match="is not on the host: stage it"):
        hostops.require_file(sim, conn, "run script", script, hint="stage it")
    lab.admin(labsim, "wapcomputer2", "the script instead", Command("Remove-Item", {"Path": script}, ["Force"]))
    lab.admin(labsim, "wapcomputer2", "the script instead",
              Command("New-Item", {"Path": script, "ItemType": "File", "Value": "# trust"}, ["Force"]))
    hostops.require_file(sim, conn, "run script", script, hint="stage it")
