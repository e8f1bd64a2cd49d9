"""The ConnectorBundle resource's model, pure (no host is touched here): the assumptions about the hosts, the local
tree's hashes, the read's statement and its parser, :func:`compare` and the steps for its differences, the inputs.

providers/bundle.py runs it against the WAP computer (the template's hooks) and keeps every public name importable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from providers import ownership
from providers.base import is_unknown
from providers.facts import files
from providers.facts.locations import BUNDLE_PATH
from providers.hostops import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    join,
    windows_path,
)
from providers.remote import (
    RemoteInputs,
)
from providers.transport import Pipeline

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — everything this resource takes for granted about the hosts, in one place.
# [doc] the default destination, BUNDLE_PATH (providers/facts/locations.py): the article copies the WAPConnector
#       folder to c:\temp.
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
    destination: str = BUNDLE_PATH
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

def uploaded(steps: Sequence[ConnectorBundleStep]) -> list[str]:
    """The files the steps sent (the ``uploaded`` output)."""
    return [rel for step in steps if step.kind == "upload" for rel in step.files]

def ancestors(path: str) -> list[str]:
    """C:\\a\\b\\c -> [C:\\a, C:\\a\\b] (never the drive itself)."""
    parts = windows_path(path).split("\\")
    return ["\\".join(parts[:i]) for i in range(2, len(parts))]

#: Left in the outermost folder a create makes until the create succeeds: a rerun after a failed create whose
#: cleanup could not reach the host knows the folder is still its own (and destroy removes it).
CREATED_MARKER = ".wapconnector-iac-created"


def join_marker(folder: str) -> str:
    return folder + "\\" + CREATED_MARKER
