"""Files and folders: hashes, the connector's output folder and a file's text, whether a path exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from providers.facts import Fact, as_pipelines, first_bool, quiet
from providers.facts.locations import OUTPUT_FILE_FILTER, OUTPUT_FOLDER
from providers.transport import Command, Pipeline

# [pub] Get-FileHash (PowerShell 4+) defaults to SHA256 and prints upper-case hex; it binds piped FileInfo
#       objects by property name (PSPath), so one pipeline hashes a whole tree.
HASH_ALGORITHM = "SHA256"


@dataclass(frozen=True)
class FileHash(Fact[str | None]):
    """A file's SHA-256 (upper-case hex); None when the file is not there."""

    path: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-FileHash", {"Path": self.path, "Algorithm": HASH_ALGORITHM}))

    def parse(self, objects: Sequence[Any]) -> str | None:
        return next((str(o["Hash"]).upper() for o in objects if isinstance(o, Mapping) and "Hash" in o), None)


def relative_to(root: str, full_path: str) -> str | None:
    """``C:\\temp\\WAPConnector\\Setup\\x.ps1`` -> ``Setup/x.ps1`` (case-insensitive prefix); None if outside."""
    full = full_path.replace("/", "\\")
    # Get-FileHash prints a provider path when the input was a PSPath; keep the file system part.
    if "::" in full:
        full = full.split("::", 1)[1]
    base = root.rstrip("\\") + "\\"
    if not full.lower().startswith(base.lower()):
        return None
    return full[len(base):].replace("\\", "/")


@dataclass(frozen=True)
class TreeHashes(Fact[dict[str, str]]):
    """Every file under ``root`` -> its SHA-256, keyed by its path relative to ``root`` with '/' separators (as
    the host spells it). Empty when the folder is missing (its PathNotFound tells the two apart)."""

    root: str

    def statements(self) -> list[Pipeline]:
        return [Command("Get-ChildItem", {"Path": self.root}, ["Recurse", "File"])
                | Command("Get-FileHash", {"Algorithm": HASH_ALGORITHM})]

    def parse(self, objects: Sequence[Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for obj in objects:
            if not isinstance(obj, Mapping) or not isinstance(obj.get("Path"), str):
                continue
            rel = relative_to(self.root, obj["Path"])
            if rel is not None and isinstance(obj.get("Hash"), str):
                out[rel] = obj["Hash"].upper()
        return out


@dataclass(frozen=True)
class ListedFile:
    """One AzurePack-*.txt file as the folder listing shows it."""

    name: str
    full_name: str
    modified: str


@dataclass(frozen=True)
class OutputFolder(Fact[tuple[ListedFile, ...]]):
    """The Add-AzurePackConnector output files on the infrastructure share (an object without FullName is not
    a file)."""

    def statements(self) -> list[Pipeline]:
        return [Command("Get-ChildItem", {"Path": OUTPUT_FOLDER, "Filter": OUTPUT_FILE_FILTER})
                | Command("Select-Object", {"Property": ["Name", "FullName", "LastWriteTimeUtc"]})]

    def parse(self, objects: Sequence[Any]) -> tuple[ListedFile, ...]:
        return tuple(ListedFile(str(o.get("Name") or o["FullName"]), str(o["FullName"]),
                                str(o.get("LastWriteTimeUtc") or ""))
                     for o in objects if isinstance(o, Mapping) and o.get("FullName"))


@dataclass(frozen=True)
class FileText(Fact[str | None]):
    """A text file's content; None unless exactly one text came back (the file is gone)."""

    path: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-Content", {"Path": self.path, "Raw": True}))

    def parse(self, objects: Sequence[Any]) -> str | None:
        texts = [o for o in objects if isinstance(o, str)]
        return texts[0] if len(texts) == 1 else None


@dataclass(frozen=True)
class PathExists(Fact[bool | None]):
    """Test-Path: True, False, or None when it answered nothing. ``kind`` Leaf: a file, Container: a folder (a
    certificate's path, ``Cert:\\LocalMachine\\My\\<thumbprint>``, is a path too)."""

    path: str
    kind: Literal["Leaf", "Container"] | None = None

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Test-Path", {"Path": self.path, **({"PathType": self.kind} if self.kind else {})}))

    def parse(self, objects: Sequence[Any]) -> bool | None:
        return first_bool(objects)


@dataclass(frozen=True)
class PathsExist(Fact[tuple[bool, ...]]):
    """One Test-Path of several paths: its answers in the order of ``paths`` (anything but True reads False; fewer
    answers than paths is the caller's to refuse)."""

    paths: tuple[str, ...]

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Test-Path", {"Path": list(self.paths)}))

    def parse(self, objects: Sequence[Any]) -> tuple[bool, ...]:
        return tuple(o is True for o in objects)


@dataclass(frozen=True)
class ItemCount(Fact[int | None]):
    """How many items (files and folders) a folder holds; 0 when it is not there, None when the count cannot be
    read."""

    folder: str

    def statements(self) -> list[Pipeline]:
        return [quiet("Get-ChildItem", {"Path": self.folder}) | Command("Measure-Object")]

    def parse(self, objects: Sequence[Any]) -> int | None:
        count = objects[0].get("Count") if len(objects) == 1 and isinstance(objects[0], Mapping) else None
        return count if isinstance(count, int) else None


@dataclass(frozen=True)
class FileHashes(Fact[dict[str, str]]):
    """The SHA-256 of each of ``paths`` that is there: {path, lower-case: hash, upper-case}."""

    paths: tuple[str, ...]

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-FileHash", {"Path": list(self.paths), "Algorithm": HASH_ALGORITHM}))

    def parse(self, objects: Sequence[Any]) -> dict[str, str]:
        return {str(o.get("Path", "")).lower(): str(o.get("Hash", "")).upper()
                for o in objects if isinstance(o, Mapping)}
