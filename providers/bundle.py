"""ConnectorBundle: the WAPConnector folder staged from the operator's machine onto a WAP host.

The article copies the downloaded ``WAPConnector`` folder to ``c:\\temp`` on every tenant portal and Tenant API
VM [doc]. Here the desired state is *relative path -> SHA-256* of every file of a local folder, computed when
the resource is declared (so ``diff`` is pure); the files travel in chunks with structured file commands
(``Set-Content``/``Add-Content -Encoding Byte``) and are verified with ``Get-FileHash`` after the upload.

Three parts, as every remote resource:
  * read   — one pipeline: ``Get-ChildItem -Recurse -File | Get-FileHash``; the folder missing means gone;
  * plan   — which files to upload or remove (pure), and the chunked staging commands for one file (pure);
  * glue   — :class:`ConnectorBundleProvider` and the :class:`ConnectorBundle` resource.

The staging helpers and the Windows path rules it uses live in :mod:`providers.hostops`, shared with the
certificate and Tenant API resources, which stage a PFX or a data file the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult
from pydantic import Field, field_validator, model_validator

from providers import ownership
from providers.base import LabResource, is_unknown
from providers.errors import ConnectorError
from providers.hostops import (DEFAULT_CHUNK_SIZE, HASH_ALGORITHM, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, join,
                               only_expected_errors, remove_folder_if_empty, same_path, stage_bytes, windows_path)
from providers.remote import inputs_only as _inputs
from providers.remote import (RemoteInputs, RemoteProvider, check_remote, connection_diff, connection_of,
                              parse_model, password_secret, secret_outputs)
from providers.transport import Command, HostConnection, Pipeline, Transport

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — everything this resource takes for granted about the hosts, in one place.
# [doc] the article: "copy the WAPConnector folder ... to a folder named c:\temp" (so the root is
#       c:\temp\WAPConnector, the folder above Setup\).
DEFAULT_DESTINATION = r"C:\temp\WAPConnector"
# [inf] nothing here depends on the bundle's layout (unpublished): every file of the local folder is staged.
# ---------------------------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------------------------
# Pure: the local tree


def hash_tree(root: str | os.PathLike[str]) -> dict[str, str]:
    """Every regular file under ``root`` -> upper-case SHA-256 hex, keyed by its path relative to ``root`` with
    '/' separators (stable across operating systems). Symlinks are refused: they would stage what they point at."""
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"{str(root)!r} is not a folder on this machine")
    out: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; copy the real file into the bundle folder")
        if path.is_file():
            out[path.relative_to(base).as_posix()] = sha256_file(path)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest().upper()


# ---------------------------------------------------------------------------------------------------------------
# Read: one pipeline for the whole tree


def read_statements(destination: str) -> Pipeline:
    return (Command("Get-ChildItem", {"Path": destination}, ["Recurse", "File"])
            | Command("Get-FileHash", {"Algorithm": HASH_ALGORITHM}))


def relative_to(destination: str, full_path: str) -> str | None:
    """``C:\\temp\\WAPConnector\\Setup\\x.ps1`` -> ``Setup/x.ps1`` (case-insensitive prefix); None if outside."""
    full = full_path.replace("/", "\\")
    # Get-FileHash prints a provider path when the input was a PSPath; keep the file system part.
    if "::" in full:
        full = full.split("::", 1)[1]
    root = destination.rstrip("\\") + "\\"
    if not full.lower().startswith(root.lower()):
        return None
    return full[len(root):].replace("\\", "/")


def parse_hashes(destination: str, output: Sequence[Any]) -> dict[str, str]:
    """Get-FileHash objects -> {relative path (as the host spells it): hash}."""
    out: dict[str, str] = {}
    for obj in output:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("Path"), str):
            continue
        rel = relative_to(destination, obj["Path"])
        if rel is not None and isinstance(obj.get("Hash"), str):
            out[rel] = obj["Hash"].upper()
    return out


def observed_files(host_files: Mapping[str, str], desired: Iterable[str]) -> dict[str, str]:
    """The observed hash of each desired file, keyed like the desired map (Windows is case-insensitive).
    Missing files are left out; files the bundle does not declare (e.g. a staged data file) are ignored."""
    by_lower = {k.lower(): v for k, v in host_files.items()}
    return {rel: by_lower[rel.lower()] for rel in desired if rel.lower() in by_lower}


# ---------------------------------------------------------------------------------------------------------------
# Plan (pure)


def drifted_files(observed: Mapping[str, str] | None, desired: Mapping[str, str]) -> list[str]:
    """Desired files that are missing on the host or whose hash differs, sorted."""
    observed = observed or {}
    return sorted(rel for rel, h in desired.items() if str(observed.get(rel, "")).upper() != h.upper())


def stale_files(previous: Mapping[str, str] | None, desired: Mapping[str, str]) -> list[str]:
    """Files this resource staged before that the bundle no longer has (to remove on update)."""
    keep = {k.lower() for k in desired}
    return sorted(rel for rel in (previous or {}) if rel.lower() not in keep)


def directories_for(destination: str, relatives: Iterable[str]) -> list[str]:
    """The deepest folders the files need (New-Item -Force creates their parents), sorted, without repeats."""
    dirs = {destination.rstrip("\\")}
    for rel in relatives:
        parent = rel.replace("\\", "/").rsplit("/", 1)[0] if "/" in rel.replace("\\", "/") else ""
        if parent:
            dirs.add(join(destination, parent))
    # Drop folders that are a prefix of another: creating the deeper one creates them.
    ordered = sorted(dirs, key=str.lower)
    return [d for d in ordered if not any(o.lower().startswith(d.lower() + "\\") for o in ordered)]


# ---------------------------------------------------------------------------------------------------------------
# Inputs


class BundleArgs(RemoteInputs):
    source_dir: str = Field(description="the extracted WAPConnector folder on the operator's machine")
    destination: str = DEFAULT_DESTINATION
    chunk_size: Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)] = DEFAULT_CHUNK_SIZE
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{64}$")]]

    @field_validator("destination")
    @classmethod
    def _destination(cls, v: str) -> str:
        return windows_path(v)

    @field_validator("source_dir")
    @classmethod
    def _source(cls, v: str) -> str:
        if not os.path.isdir(v):
            raise ValueError(f"{v!r} is not a folder on this machine: extract the WAPConnector download and "
                             f"point source_dir at the folder that contains Setup")
        return v

    @field_validator("files")
    @classmethod
    def _files(cls, v: dict[str, str]) -> dict[str, str]:
        for rel in v:
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
                raise ValueError(f"{rel!r} is not a relative path with '/' separators")
        lowered = [k.lower() for k in v]
        if len(set(lowered)) != len(lowered):
            raise ValueError("two files differ only in letter case; Windows cannot hold both")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> BundleArgs:
        if not self.files:
            raise ValueError(f"source_dir: {self.source_dir!r} holds no files (is it the extracted WAPConnector "
                             f"folder?)")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Provider

STEP_READ = "read staged WAPConnector bundle"
STEP_STAGE = "stage WAPConnector bundle"
STEP_DELETE = "remove staged WAPConnector bundle"
#: Every step name of this resource: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
STEPS = (STEP_READ, STEP_STAGE, STEP_DELETE)


OWNERSHIP_RESOURCE = "ConnectorBundle"


def marker_path(destination: str) -> str:
    return ownership.marker_path(OWNERSHIP_RESOURCE, destination)


def thing(destination: str) -> str:
    return f"the staged WAPConnector bundle {destination}"


def _read_owned(t: Transport, conn: HostConnection,
                destination: str) -> tuple[dict[str, str] | None, ownership.Marker | None]:
    """Observed {relative path: hash} of every file under destination (None if the folder is gone), and its
    ownership marker, in one invocation."""
    stmts = [read_statements(destination), ownership.read_command(marker_path(destination))]
    result = t.run(conn, STEP_READ, stmts, idempotent=True, accept_errors=True)
    missing = only_expected_errors(conn, STEP_READ, stmts, result)
    files, marker = result.outputs
    if missing and not files:
        return None, ownership.marker_in(marker)
    return parse_hashes(destination, files), ownership.marker_in(marker)


def _read(t: Transport, conn: HostConnection, destination: str) -> dict[str, str] | None:
    return _read_owned(t, conn, destination)[0]


def changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(changed, replaced) property names: observed state in olds against desired state in news."""
    changed, replaces = connection_diff(olds, news)
    if not same_path(olds.get("destination"), news.get("destination")):
        changed.append("destination")
        replaces.append("destination")
    new_files = news.get("files")
    if is_unknown(new_files) or drifted_files(olds.get("files"), new_files or {}) or \
            stale_files(olds.get("files"), new_files or {}):
        changed.append("files")
    return changed, replaces


class ConnectorBundleProvider(RemoteProvider):
    """Stages a local folder onto a host; diff names the drifted ``files``; update re-uploads only those."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return check_remote(BundleArgs, news)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed, replaces = changed_fields(olds, news)
        changed += ownership.owner_changed(olds, news)
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        args = parse_model(BundleArgs, props, "ConnectorBundle inputs")
        # Folders above the destination that we create (C:\temp for the seed's C:\temp\WAPConnector) are ours to
        # remove again on delete, so that destroy leaves the host as it found it.
        _refuse_changed_source(args)
        t = self.transport
        own = self._claim(t, args) if args.owner is not None else {}
        if own.get("adopted"):
            # It was there before: nothing of it is ours to remove (no created folders), only what differs is staged.
            outs = self._converge(t, args, previous=None)
            return CreateResult(id_=f"{args.connection.fqdn}:{args.destination}",
                                outs={**_inputs(props), **outs, **own, "created_folders": []})
        created = missing_ancestors(t, args.connection, args.destination)
        try:
            mark_created(t, args.connection, created)
            outs = self._converge(t, args, previous=None)
            unmark_created(t, args.connection, created)
        except ConnectorError:
            # Roll back the folders this attempt created: the rerun could not tell them from the host's own and
            # destroy would leave them behind. The partial upload goes with them (the rerun stages it again).
            _remove_created(t, args.connection, created)
            raise
        return CreateResult(id_=f"{args.connection.fqdn}:{args.destination}",
                            outs={**_inputs(props), **outs, **own, "created_folders": created})

    def _claim(self, t: Transport, args: BundleArgs) -> dict[str, Any]:
        """Ownership (providers/ownership.py): a folder already there is adopted when it holds the bundle's files
        as they are; otherwise refused (naming the files that differ) unless adopt."""
        assert args.owner is not None
        conn = args.connection
        observed, marker = _read_owned(t, conn, args.destination)
        drift = drifted_files(observed_files(observed or {}, args.files), args.files)
        differs = [ownership.Difference(
            "files", f"{len(drift)} of {len(args.files)} missing or different ({', '.join(drift[:3])}"
                     f"{', ...' if len(drift) > 3 else ''})", "the bundle's files")] if observed is not None and drift else []
        mark = ownership.claim(host=conn.fqdn, thing=thing(args.destination), owner=args.owner, adopt=args.adopt,
                               marker=marker, exists=observed is not None, differences=differs,
                               prior={"files_differing": drift}, resource=OWNERSHIP_RESOURCE)
        ownership.write(t, conn, ownership.STEP_MARK, marker_path(args.destination), mark)
        return ownership.outputs(mark)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        conn = connection_of(props)
        destination = windows_path(props["destination"])
        host_files, marker = _read_owned(self.transport, conn, destination)
        if host_files is None:
            return ReadResult(id_="", outs={})
        desired = props.get("files") or {}
        return ReadResult(id_=id_, outs={**props, "files": observed_files(host_files, desired),
                                         "observed_owner": marker.owner if marker else None})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        args = parse_model(BundleArgs, news, "ConnectorBundle inputs")
        t = self.transport
        own: dict[str, Any] = {}
        if args.owner is not None:
            _, marker = _read_owned(t, args.connection, args.destination)
            ownership.may_change(host=args.connection.fqdn, thing=thing(args.destination), owner=args.owner,
                                 adopt=args.adopt, marker=marker, previous=olds.get("owner"))
            mark = ownership.from_state({**olds, "owner": args.owner}, OWNERSHIP_RESOURCE, thing(args.destination))
            if marker != mark:
                ownership.write(t, args.connection, ownership.STEP_MARK, marker_path(args.destination), mark)
            own = ownership.outputs(mark)
        outs = self._converge(t, args, previous=olds.get("files"))
        return UpdateResult(outs={**_inputs(news), **outs, **own,
                                  "created_folders": olds.get("created_folders") or []})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        conn = connection_of(props)
        destination = windows_path(props["destination"])
        t = self.transport
        owner = props.get("owner")
        if isinstance(owner, str):
            marker = ownership.read(t, conn, ownership.STEP_UNMARK, marker_path(destination))
            if not ownership.may_delete(host=conn.fqdn, thing=thing(destination), owner=owner, marker=marker):
                return
            if props.get("adopted"):
                pulumi.log.warn(f"{conn.fqdn}: {destination} was there before this stack staged the bundle; "
                                f"leaving it in place")
                ownership.remove(t, conn, ownership.STEP_UNMARK, marker_path(destination))
                return
        self._remove(t, conn, destination, props.get("created_folders") or [])
        if isinstance(owner, str):
            ownership.remove(t, conn, ownership.STEP_UNMARK, marker_path(destination))  # last: delete stays re-runnable

    @staticmethod
    def _remove(t: Transport, conn: HostConnection, destination: str, created_folders: Sequence[str]) -> None:
        cmd = Command("Remove-Item", {"Path": destination}, ["Recurse", "Force"])
        result = t.run(conn, STEP_DELETE, cmd, idempotent=True, accept_errors=True)
        only_expected_errors(conn, STEP_DELETE, cmd, result)  # already gone is fine
        # Deepest first, and only while empty: something else may have moved in since.
        for folder in sorted(created_folders, key=len, reverse=True):
            if not remove_folder_if_empty(t, conn, STEP_DELETE, folder):
                return

    # -- the one place that writes ---------------------------------------------------------------------------
    def _converge(self, t: Transport, args: BundleArgs, previous: Mapping[str, str] | None) -> dict[str, Any]:
        """Upload whatever differs from the desired files (all of them on a fresh host), remove files dropped
        from the bundle, verify. Re-running after any partial failure converges."""
        conn = args.connection
        _refuse_changed_source(args)
        observed = _read(t, conn, args.destination)
        host_view = observed_files(observed or {}, args.files)
        todo = drifted_files(host_view, args.files)
        stale = [rel for rel in stale_files(previous, args.files)
                 if observed is not None and rel.lower() in {k.lower() for k in observed}]
        if todo:
            stage_bytes(t, conn, STEP_STAGE,
                        {join(args.destination, rel): Path(args.source_dir, rel).read_bytes() for rel in todo},
                        chunk_size=args.chunk_size, directories=directories_for(args.destination, todo))
        if stale:
            cmds = [Command("Remove-Item", {"Path": join(args.destination, rel)}, ["Force"]) for rel in stale]
            result = t.run(conn, STEP_STAGE, cmds, idempotent=True, accept_errors=True)
            only_expected_errors(conn, STEP_STAGE, cmds, result)
        return {
            "destination": args.destination,
            "files": dict(args.files),
            "file_count": len(args.files),
            "total_bytes": sum(Path(args.source_dir, rel).stat().st_size for rel in args.files),
            "uploaded": todo,
        }



def _refuse_changed_source(args: BundleArgs) -> None:
    """The plan was made from the folder's hashes when the program ran; refuse to stage something else."""
    local = hash_tree(args.source_dir)
    if local != args.files:
        changed = sorted(set(local.items()) ^ set(args.files.items()))
        names = sorted({k for k, _ in changed})
        raise ConnectorError(
            f"{args.connection.fqdn}, step '{STEP_STAGE}': the folder {args.source_dir!r} changed after the plan was "
            f"made ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); run `pulumi up` again",
            host=args.connection.fqdn, step=STEP_STAGE)


def _remove_created(t: Transport, conn: HostConnection, folders: Sequence[str]) -> None:
    """Best effort: remove the outermost of ``folders`` (the others are inside it); warn if the host cannot."""
    if not folders:
        return
    outermost = min(folders, key=len)
    try:
        t.run(conn, STEP_STAGE, Command("Remove-Item", {"Path": outermost, "ErrorAction":
                        "SilentlyContinue"}, ["Recurse", "Force"]), idempotent=True)
    except ConnectorError as exc:
        pulumi.log.warn(f"{conn.fqdn}: could not remove {outermost}, created by the failed staging ({exc}); "
                        f"delete it by hand, or destroy will leave it behind")


def ancestors(path: str) -> list[str]:
    """C:\\a\\b\\c -> [C:\\a, C:\\a\\b] (never the drive itself)."""
    parts = windows_path(path).split("\\")
    return ["\\".join(parts[:i]) for i in range(2, len(parts))]


def missing_ancestors(t: Transport, conn: HostConnection, destination: str) -> list[str]:
    """The folders above ``destination`` that do not exist yet, or that a failed create made (they still hold
    its CREATED_MARKER): one pipeline."""
    folders = ancestors(destination)
    if not folders:
        return []
    probes = [Command("Test-Path", {"Path": p}) for f in folders for p in (f, join_marker(f))]
    found = [output.single() is True for output in t.run(conn, STEP_STAGE, probes, idempotent=True).outputs]
    created, ours = [], False
    for i, folder in enumerate(folders):  # outermost first: everything below a marked folder is ours too
        exists, marked = found[2 * i], found[2 * i + 1]
        ours = ours or not exists or marked
        if ours:
            created.append(folder)
    return created


#: Left in the outermost folder a create makes until the create succeeds: a rerun after a failed create whose
#: cleanup could not reach the host knows the folder is still its own (and destroy removes it).
CREATED_MARKER = ".wapconnector-iac-created"


def join_marker(folder: str) -> str:
    return folder + "\\" + CREATED_MARKER


def mark_created(t: Transport, conn: HostConnection, folders: Sequence[str]) -> None:
    if folders:
        outermost = min(folders, key=len)
        t.run(conn, STEP_STAGE, [
            Command("New-Item", {"Path": outermost, "ItemType": "Directory"}, ["Force"]),
            Command("New-Item", {"Path": join_marker(outermost), "ItemType": "File"}, ["Force"])], idempotent=True)


def unmark_created(t: Transport, conn: HostConnection, folders: Sequence[str]) -> None:
    if folders:
        cmd = Command("Remove-Item", {"Path": join_marker(min(folders, key=len))}, ["Force"])
        result = t.run(conn, STEP_STAGE, cmd, idempotent=True, accept_errors=True)
        only_expected_errors(conn, STEP_STAGE, cmd, result)


# ---------------------------------------------------------------------------------------------------------------
# Resource


class ConnectorBundle(LabResource, name="ConnectorBundle"):
    """The WAPConnector folder staged on one host (default ``C:\\temp\\WAPConnector``).

    Outputs: ``destination`` (the bundle root on the host, the folder above ``Setup``), ``files`` (relative
    path -> SHA-256), ``file_count``, ``total_bytes``, ``uploaded`` (files sent by the last create/update).
    ``connection`` is a secret output."""

    destination: pulumi.Output[str]
    files: pulumi.Output[dict[str, str]]
    file_count: pulumi.Output[int]
    total_bytes: pulumi.Output[int]
    uploaded: pulumi.Output[list[str]]

    def __init__(self, name: str, *, connection: pulumi.Input[dict[str, Any]], source_dir: str,
                 destination: str = DEFAULT_DESTINATION, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 owner: pulumi.Input[str] | None = None, adopt: pulumi.Input[bool] = False,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # Hash the local folder now, so the desired state is known at preview and diff stays pure. A missing
        # folder leaves files empty: check then names source_dir with what to do.
        try:
            files = hash_tree(source_dir)
        except (OSError, ValueError):
            files = {}
        props = {
            "connection": password_secret(connection), "source_dir": str(source_dir),
            "destination": destination, "chunk_size": chunk_size, "files": files,
            "file_count": None, "total_bytes": None, "uploaded": None, "created_folders": None,
            "owner": owner, "adopt": adopt, "observed_owner": None, "adopted": None, "prior": None,
        }
        super().__init__(ConnectorBundleProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, secret_outputs()))

