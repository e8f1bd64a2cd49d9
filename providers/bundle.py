"""ConnectorBundle: the WAPConnector folder staged from the operator's machine onto a WAP host.

The article copies the downloaded ``WAPConnector`` folder to ``c:\\temp`` on every tenant portal and Tenant API
VM [doc]. Here the desired state is *relative path -> SHA-256* of every file of a local folder, computed when
the resource is declared (so ``diff`` is pure); the files travel in chunks with structured file commands
(``Set-Content``/``Add-Content -Encoding Byte``) and are verified with ``Get-FileHash`` after the upload.

Two modules, by job: providers/_bundle_model.py is pure (the assumptions, the local tree's hashes, the read's
statement and parser, which files differ and the steps: upload or remove them, the inputs); this module runs
against the host: the read (one pipeline, ``Get-ChildItem -Recurse -File | Get-FileHash``; the folder missing means
gone), the upload and removal, the template's hooks (:class:`ConnectorBundleProvider`) and the
:class:`ConnectorBundle` resource.

The staging helpers and the Windows path rules it uses live in :mod:`providers.hostops`, shared with the
certificate and Tenant API resources, which stage a PFX or a data file the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from providers import ownership

# Importable from here too, where callers and tests find them.
from providers._bundle_model import (  # noqa: F401
    OWNERSHIP_RESOURCE,
    SCRIPT_MISSING_HINT,
    STEP_DELETE,
    STEP_READ,
    STEP_STAGE,
    STEPS,
    BundlePath,
    ConnectorBundleInputs,
    ConnectorBundleObserved,
    ConnectorBundleStep,
    ancestors,
    compare,
    directories_for,
    drifted_files,
    hash_tree,
    join_marker,
    marker_path,
    observe,
    observed_files,
    parse_hashes,
    read_statements,
    stale_files,
    steps_for,
    thing,
    uploaded,
)
from providers.base import LabResource
from providers.errors import ConnectorError, HostDidNotConverge
from providers.facts.files import PathExists
from providers.facts.locations import BUNDLE_PATH
from providers.facts.markers import OwnershipMarker
from providers.hostops import (
    DEFAULT_CHUNK_SIZE,
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
    connection_of,
    password_secret,
    secret_outputs,
)
from providers.transport import Command, HostConnection, Transport

# ---------------------------------------------------------------------------------------------------------------
# Provider


def read_bundle_owned(t: Transport, conn: HostConnection,
                      destination: str) -> tuple[dict[str, str] | None, ownership.Marker | None]:
    """Observed {relative path: hash} of every file under destination (None if the folder is gone), and its
    ownership marker, in one invocation."""
    mark = OwnershipMarker(marker_path(destination))
    stmts = [read_statements(destination), *mark.statements()]
    result = t.run(conn, STEP_READ, stmts, idempotent=True, accept_errors=True)
    missing = only_expected_errors(conn, STEP_READ, stmts, result)
    files, marker = result.outputs
    if missing and not files:
        return None, mark.parse(marker)
    return parse_hashes(destination, files), mark.parse(marker)


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


def missing_ancestors(t: Transport, conn: HostConnection, destination: str) -> list[str]:
    """The folders above ``destination`` that do not exist yet, or that a failed create made (they still hold
    its CREATED_MARKER): one invocation, two statements per folder (the folder, its marker)."""
    folders = ancestors(destination)
    if not folders:
        return []
    probes = [PathExists(p) for f in folders for p in (f, join_marker(f))]
    outputs = t.run(conn, STEP_STAGE, [p for probe in probes for p in probe.statements()], idempotent=True).outputs
    found = [probe.parse(output) is True for probe, output in zip(probes, outputs, strict=True)]
    created: list[str] = []
    ours = False
    for i, folder in enumerate(folders):  # outermost first: everything below a marked folder is ours too
        exists, marked = found[2 * i], found[2 * i + 1]
        ours = ours or not exists or marked
        if ours:
            created.append(folder)
    return created


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
                 destination: str = BUNDLE_PATH, chunk_size: int = DEFAULT_CHUNK_SIZE,
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
            **ownership.resource_props(owner, adopt),
        }
        super().__init__(ConnectorBundleProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, secret_outputs()))

