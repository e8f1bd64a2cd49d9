"""ConnectorBundle: the WAPConnector folder staged from the operator's machine onto a WAP host.

The article copies the downloaded ``WAPConnector`` folder to ``c:\\temp`` on every tenant portal and Tenant API
VM [doc]. Here the desired state is *relative path -> SHA-256* of every file of a local folder, computed when
the resource is declared (so ``diff`` is pure); the files travel in chunks with structured file commands
(``Set-Content``/``Add-Content -Encoding Byte``) and are verified with ``Get-FileHash`` after the upload.

Three parts, as every remote resource:
  * read   — one pipeline: ``Get-ChildItem -Recurse -File | Get-FileHash``; the folder missing means gone;
  * compare — which files differ (pure), and the steps: upload or remove them;
  * the template's hooks (:class:`ConnectorBundleProvider`) and the :class:`ConnectorBundle` resource.

The staging helpers and the Windows path rules it uses live in :mod:`providers.hostops`, shared with the
certificate and Tenant API resources, which stage a PFX or a data file the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
from pydantic import AfterValidator, Field, field_validator, model_validator

from providers import ownership
from providers.base import LabResource, is_unknown
from providers.errors import ConnectorError, HostDidNotConverge
from providers.facts import files
from providers.facts.locations import BUNDLE_PATH
from providers.hostops import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    join,
    only_expected_errors,
    remove_folder_if_empty,
    same_path,
    stage_bytes,
    windows_path,
)
from providers.remote import (
    Converged,
    HostResourceProvider,
    Identity,
    RemoteInputs,
    connection_of,
    password_secret,
    secret_outputs,
)
from providers.transport import Command, HostConnection, Pipeline, Transport

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — everything this resource takes for granted about the hosts, in one place.
# [doc] the article: "copy the WAPConnector folder ... to a folder named c:\temp" (so the root is
#       c:\temp\WAPConnector, the folder above Setup\).
DEFAULT_DESTINATION = BUNDLE_PATH  # providers/facts/locations.py
# [doc] the scripts other resources run (Update-TenantAPI.ps1, Configure-TrustAzureStack.ps1) come with the bundle.
SCRIPT_MISSING_HINT = ("stage the WAPConnector folder there first (ConnectorBundle with destination = this "
                       "resource's bundle_path) and run `pulumi up` again")
# [inf] nothing here depends on the bundle's layout (unpublished): every file of the local folder is staged.
# ---------------------------------------------------------------------------------------------------------------

#: Where the WAPConnector bundle is staged on a host, as the resources that run its scripts take it.
BundlePath = Annotated[str, AfterValidator(windows_path)]

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
    return files.TreeHashes(destination).statements()[0]


def parse_hashes(destination: str, output: Sequence[Any]) -> dict[str, str]:
    """Get-FileHash objects -> {relative path (as the host spells it): hash}."""
    return files.TreeHashes(destination).parse(output)


def observed_files(host_files: Mapping[str, str], desired: Iterable[str]) -> dict[str, str]:
    """The observed hash of each desired file, keyed like the desired map (Windows is case-insensitive).
    Missing files are left out; files the bundle does not declare (e.g. a staged data file) are ignored."""
    by_lower = {k.lower(): v for k, v in host_files.items()}
    return {rel: by_lower[rel.lower()] for rel in desired if rel.lower() in by_lower}


@dataclass(frozen=True)
class ConnectorBundleObserved:
    """The destination folder as the host shows it, against the bundle's files."""

    host_files: Mapping[str, str]
    """Every file under the destination: {relative path as the host spells it: SHA-256}."""
    files: Mapping[str, str]
    """The observed hash of each of the bundle's files (:func:`observed_files`)."""
    drifted: tuple[str, ...]
    """The bundle's files missing on the host or different there (:func:`drifted_files`)."""


def observe(host_files: Mapping[str, str], desired: Mapping[str, str]) -> ConnectorBundleObserved:
    files = observed_files(host_files, desired)
    return ConnectorBundleObserved(dict(host_files), files, tuple(drifted_files(files, desired)))


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


@dataclass(frozen=True)
class ConnectorBundleStep:
    """``upload`` the files that differ (chunked, verified), or ``remove`` files dropped from the bundle."""

    kind: Literal["upload", "remove"]
    files: tuple[str, ...]


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """``files`` when a file of the bundle is missing on the host or different there, or when a file staged before
    (``staged_before``, else the observed ``files`` of the state) is no longer in the bundle and still on the host
    (``host_files``, when the read saw them). ``desired`` as the inputs, ``observed`` as the outputs."""
    files = desired.get("files")
    if is_unknown(files):
        return [ownership.Difference("files", None, "the bundle's files")]
    files = files or {}
    drift = drifted_files(observed.get("files"), files)
    if drift:
        return [ownership.Difference(
            "files", f"{len(drift)} of {len(files)} missing or different ({', '.join(drift[:3])}"
                     f"{', ...' if len(drift) > 3 else ''})", "the bundle's files")]
    previous = desired.get("staged_before") if desired.get("staged_before") is not None else observed.get("files")
    on_host = observed.get("host_files")
    stale = [rel for rel in stale_files(previous, files)
             if on_host is None or rel.lower() in {k.lower() for k in on_host}]
    if stale:
        return [ownership.Difference("files", f"{len(stale)} staged before and no longer in the bundle "
                                              f"({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})",
                                     "the bundle's files")]
    return []


def steps_for(observed: ConnectorBundleObserved | None, desired: Mapping[str, str],
              staged_before: Mapping[str, str] | None = None) -> list[ConnectorBundleStep]:
    """Upload what is missing or different (everything when the folder is gone), then remove the files staged
    before that the bundle no longer has and that are still on the host. [] when the host matches."""
    steps: list[ConnectorBundleStep] = []
    todo = drifted_files(observed.files if observed is not None else None, desired)
    if todo:
        steps.append(ConnectorBundleStep("upload", tuple(todo)))
    on_host = {k.lower() for k in observed.host_files} if observed is not None else set()
    stale = [rel for rel in stale_files(staged_before, desired) if rel.lower() in on_host]
    if stale:
        steps.append(ConnectorBundleStep("remove", tuple(stale)))
    return steps


# ---------------------------------------------------------------------------------------------------------------
# Inputs


class ConnectorBundleInputs(RemoteInputs):
    source_dir: str = Field(description="the extracted WAPConnector folder on the operator's machine")
    destination: str = DEFAULT_DESTINATION
    chunk_size: Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)] = DEFAULT_CHUNK_SIZE
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{64}$")]]
    #: The files this resource staged before (update sets it from the state; the program never does): those the
    #: bundle no longer has are removed.
    staged_before: dict[str, str] | None = None

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
    def _not_empty(self) -> ConnectorBundleInputs:
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


def read_bundle_owned(t: Transport, conn: HostConnection,
                      destination: str) -> tuple[dict[str, str] | None, ownership.Marker | None]:
    """Observed {relative path: hash} of every file under destination (None if the folder is gone), and its
    ownership marker, in one invocation."""
    stmts: list[Command | Pipeline] = [read_statements(destination), ownership.read_command(marker_path(destination))]
    result = t.run(conn, STEP_READ, stmts, idempotent=True, accept_errors=True)
    missing = only_expected_errors(conn, STEP_READ, stmts, result)
    files, marker = result.outputs
    if missing and not files:
        return None, ownership.marker_in(marker)
    return parse_hashes(destination, files), ownership.marker_in(marker)


def stage_files(t: Transport, inputs: ConnectorBundleInputs, relatives: Sequence[str]) -> None:
    """Upload the given files of the bundle, chunked, and verify their hashes on the host."""
    stage_bytes(t, inputs.connection, STEP_STAGE,
                {join(inputs.destination, rel): Path(inputs.source_dir, rel).read_bytes() for rel in relatives},
                chunk_size=inputs.chunk_size, directories=directories_for(inputs.destination, relatives))


def remove_files(t: Transport, conn: HostConnection, destination: str, relatives: Sequence[str]) -> None:
    cmds = [Command("Remove-Item", {"Path": join(destination, rel)}, ["Force"]) for rel in relatives]
    result = t.run(conn, STEP_STAGE, cmds, idempotent=True, accept_errors=True)
    only_expected_errors(conn, STEP_STAGE, cmds, result)


def remove_bundle(t: Transport, conn: HostConnection, destination: str, created_folders: Sequence[str]) -> None:
    cmd = Command("Remove-Item", {"Path": destination}, ["Recurse", "Force"])
    result = t.run(conn, STEP_DELETE, cmd, idempotent=True, accept_errors=True)
    only_expected_errors(conn, STEP_DELETE, cmd, result)  # already gone is fine
    # Deepest first, and only while empty: something else may have moved in since.
    for folder in sorted(created_folders, key=len, reverse=True):
        if not remove_folder_if_empty(t, conn, STEP_DELETE, folder):
            return


def _outputs(inputs: ConnectorBundleInputs, uploaded: list[str]) -> dict[str, Any]:
    return {
        "destination": inputs.destination,
        "files": dict(inputs.files),
        "file_count": len(inputs.files),
        "total_bytes": sum(Path(inputs.source_dir, rel).stat().st_size for rel in inputs.files),
        "uploaded": uploaded,
    }


class ConnectorBundleProvider(HostResourceProvider[ConnectorBundleInputs, ConnectorBundleObserved,
                                                   ConnectorBundleStep]):
    """Stages a local folder onto a host; diff names the drifted ``files``; update re-uploads only those (the
    template of providers.remote). Besides the template: the folders above the destination that create makes are
    recorded (``created_folders``) and removed again by delete."""

    inputs_model = ConnectorBundleInputs
    ownership_resource = OWNERSHIP_RESOURCE
    compare = staticmethod(compare)
    replace_on = ("destination",)

    def parse_inputs(self, t: Transport, props: Mapping[str, Any],
                     olds: Mapping[str, Any] | None) -> ConnectorBundleInputs:
        inputs = ConnectorBundleInputs.parse(props)
        if olds is not None:  # what update staged before: the files the bundle no longer has are removed
            inputs = inputs.model_copy(update={"staged_before": olds.get("files")})
        _refuse_changed_source(inputs)
        return inputs

    def identity(self, inputs: ConnectorBundleInputs) -> Identity:
        return _identity(inputs.connection.fqdn, inputs.destination)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return _identity(connection_of(props).fqdn, windows_path(props["destination"]))

    def read_host(self, t: Transport, inputs: ConnectorBundleInputs) -> tuple[ConnectorBundleObserved | None,
                                                                               ownership.Marker | None]:
        host_files, marker = read_bundle_owned(t, inputs.connection, inputs.destination)
        return (None if host_files is None else observe(host_files, inputs.files)), marker

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[ConnectorBundleObserved | None,
                                                                           ownership.Marker | None]:
        host_files, marker = read_bundle_owned(t, connection_of(props), windows_path(props["destination"]))
        return (None if host_files is None else observe(host_files, props.get("files") or {})), marker

    def desired_values(self, inputs: ConnectorBundleInputs) -> Mapping[str, Any]:
        return {"files": inputs.files, "staged_before": inputs.staged_before}

    def observed_values(self, observed: ConnectorBundleObserved | None,
                        inputs: ConnectorBundleInputs) -> Mapping[str, Any]:
        return {"files": observed.files if observed else {}, "host_files": observed.host_files if observed else {}}


    def changed_settings(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        return [] if same_path(olds.get("destination"), news.get("destination")) else ["destination"]

    def steps(self, differences: list[ownership.Difference], inputs: ConnectorBundleInputs,
              observed: ConnectorBundleObserved | None) -> list[ConnectorBundleStep]:
        return steps_for(observed, inputs.files, inputs.staged_before) if differences else []

    def apply(self, t: Transport, inputs: ConnectorBundleInputs, steps: list[ConnectorBundleStep],
              observed: ConnectorBundleObserved | None) -> None:
        for step in steps:
            if step.kind == "upload":
                stage_files(t, inputs, step.files)
            else:
                remove_files(t, inputs.connection, inputs.destination, step.files)

    def did_not_converge(self, inputs: ConnectorBundleInputs, observed: ConnectorBundleObserved | None,
                         left: list[ConnectorBundleStep]) -> HostDidNotConverge:
        still = [rel for step in left for rel in step.files]
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_STAGE,
            f"the staging succeeded but {inputs.destination} still differs ({', '.join(still[:5])}"
            f"{', ...' if len(still) > 5 else ''})",
            hint="check what else writes to that folder on the host, then run `pulumi up` again")

    def prior_values(self, observed: ConnectorBundleObserved, inputs: ConnectorBundleInputs) -> dict[str, Any]:
        return {"files_differing": list(observed.drifted)}

    def create_steps(self, t: Transport, inputs: ConnectorBundleInputs,
                     own: Mapping[str, Any]) -> Converged[ConnectorBundleObserved, ConnectorBundleStep]:
        """The converge, with the folders it made above the destination as what it applied (none when the
        destination was adopted: nothing of it is ours to remove, only what differs is staged)."""
        if own.get("adopted"):
            done = self.converge_steps(t, inputs)
            return Converged(done.observed, done.steps, [])
        # Folders above the destination that we create (C:\temp for the seed's C:\temp\WAPConnector) are ours
        # to remove again on delete, so that destroy leaves the host as it found it.
        created = missing_ancestors(t, inputs.connection, inputs.destination)
        try:
            mark_created(t, inputs.connection, created)
            done = self.converge_steps(t, inputs)
            unmark_created(t, inputs.connection, created)
        except ConnectorError:
            # Roll back the folders this attempt created: the rerun could not tell them from the host's own and
            # destroy would leave them behind. The partial upload goes with them (the rerun stages it again).
            _remove_created(t, inputs.connection, created)
            raise
        return Converged(done.observed, done.steps, created)

    def outputs(self, props: Mapping[str, Any], inputs: ConnectorBundleInputs,
                done: Converged[ConnectorBundleObserved, ConnectorBundleStep],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        created = done.applied if olds is None else olds.get("created_folders") or []
        return {**_outputs(inputs, uploaded(done.steps)), "created_folders": created}

    def resource_id(self, inputs: ConnectorBundleInputs, outputs: Mapping[str, Any]) -> str:
        return f"{inputs.connection.fqdn}:{inputs.destination}"

    def read_outputs(self, props: Mapping[str, Any], observed: ConnectorBundleObserved | None) -> dict[str, Any]:
        return {"files": dict(observed.files) if observed else {}}

    def read_before_delete(self, t: Transport, props: Mapping[str, Any],
                           tracked: bool) -> tuple[ConnectorBundleObserved | None, ownership.Marker | None]:
        if not tracked:
            return None, None
        return None, ownership.read(t, connection_of(props), ownership.STEP_UNMARK,
                                    marker_path(windows_path(props["destination"])))

    def leave(self, t: Transport, props: Mapping[str, Any], found: ConnectorBundleObserved | None) -> None:
        pulumi.log.warn(f"{connection_of(props).fqdn}: {windows_path(props['destination'])} was there before this "
                        f"stack staged the bundle; leaving it in place")

    def remove(self, t: Transport, props: Mapping[str, Any], found: ConnectorBundleObserved | None) -> None:
        remove_bundle(t, connection_of(props), windows_path(props["destination"]), props.get("created_folders") or [])


def _identity(host: str, destination: str) -> Identity:
    return Identity(host, marker_path(destination), thing(destination))


def uploaded(steps: Sequence[ConnectorBundleStep]) -> list[str]:
    """The files the steps sent (the ``uploaded`` output)."""
    return [rel for step in steps if step.kind == "upload" for rel in step.files]


def _refuse_changed_source(inputs: ConnectorBundleInputs) -> None:
    """The plan was made from the folder's hashes when the program ran; refuse to stage something else."""
    local = hash_tree(inputs.source_dir)
    if local != inputs.files:
        changed = sorted(set(local.items()) ^ set(inputs.files.items()))
        names = sorted({k for k, _ in changed})
        raise ConnectorError(
            f"{inputs.connection.fqdn}, step '{STEP_STAGE}': the folder {inputs.source_dir!r} changed after the plan "
            f"was made ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); run `pulumi up` again",
            host=inputs.connection.fqdn, step=STEP_STAGE)


def _remove_created(t: Transport, conn: HostConnection, folders: Sequence[str]) -> None:
    """Best effort: remove the outermost of ``folders`` (the others are inside it); warn if the host cannot."""
    if not folders:
        return
    outermost = min(folders, key=len)
    try:
        t.run(conn, STEP_STAGE, Command("Remove-Item", {"Path": outermost, "ErrorAction": "SilentlyContinue"},
                                        ["Recurse", "Force"]), idempotent=True)
    except ConnectorError as exc:
        pulumi.log.warn(f"{conn.fqdn}: could not remove {outermost}, created by the failed staging ({exc}); "
                        f"delete it by hand, or destroy will leave it behind")


def ancestors(path: str) -> list[str]:
    """C:\\a\\b\\c -> [C:\\a, C:\\a\\b] (never the drive itself)."""
    parts = windows_path(path).split("\\")
    return ["\\".join(parts[:i]) for i in range(2, len(parts))]


def missing_ancestors(t: Transport, conn: HostConnection, destination: str) -> list[str]:
    """The folders above ``destination`` that do not exist yet, or that a failed create made (they still hold
    its CREATED_MARKER): one invocation, two statements per folder (the folder, its marker)."""
    folders = ancestors(destination)
    if not folders:
        return []
    probes = [Command("Test-Path", {"Path": p}) for f in folders for p in (f, join_marker(f))]
    outputs = t.run(conn, STEP_STAGE, probes, idempotent=True).outputs
    created: list[str] = []
    ours = False
    for i, folder in enumerate(folders):  # outermost first: everything below a marked folder is ours too
        exists, marked = (outputs[2 * i].single() is True), (outputs[2 * i + 1].single() is True)
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

