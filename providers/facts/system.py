"""The host itself: its Windows and Windows PowerShell, the URL Rewrite module, free space, a command's presence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.facts import Fact, as_pipelines, quiet, records
from providers.facts.locations import POWERSHELL_KEY, URL_REWRITE_KEY, WINDOWS_KEY
from providers.transport import Command, Pipeline


@dataclass(frozen=True)
class HostWindows:
    product: str | None
    """ProductName, e.g. Windows Server 2012 R2 Datacenter; None when the registry does not say."""
    build: str | None
    powershell: str | None
    """The Windows PowerShell engine's version text, e.g. 4.0; None when its key is not there."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class WindowsVersion(Fact[HostWindows]):
    """What the registry says of the host's Windows (name, build) and of its Windows PowerShell engine."""

    def statements(self) -> list[Pipeline]:
        return as_pipelines(quiet("Get-ItemProperty", {"Path": WINDOWS_KEY})
                            | Command("Select-Object", {"Property": ["ProductName", "CurrentBuildNumber"]}),
                            quiet("Get-ItemProperty", {"Path": POWERSHELL_KEY})
                            | Command("Select-Object", {"Property": ["PowerShellVersion"]}))

    def parse(self, objects: Sequence[Any]) -> HostWindows:
        values: dict[str, Any] = {}
        for o in objects:
            if isinstance(o, Mapping):
                values.update({k: v for k, v in o.items() if v is not None})
        return HostWindows(_text(values.get("ProductName")), _text(values.get("CurrentBuildNumber")),
                           _text(values.get("PowerShellVersion")))


@dataclass(frozen=True)
class UrlRewrite(Fact[str | None]):
    """The IIS URL Rewrite module's version; None when it is not installed."""

    def statements(self) -> list[Pipeline]:
        return [quiet("Get-ItemProperty", {"Path": URL_REWRITE_KEY})
                | Command("Select-Object", {"Property": ["Version"]})]

    def parse(self, objects: Sequence[Any]) -> str | None:
        return next((str(d["version"]) for d in records(objects) if d.get("version")), None)


@dataclass(frozen=True)
class FreeSpace(Fact[int | None]):
    """Free bytes on a file system drive (its letter); None when there is no such drive."""

    drive: str

    def statements(self) -> list[Pipeline]:
        return [quiet("Get-PSDrive", {"Name": [self.drive], "PSProvider": "FileSystem"})
                | Command("Select-Object", {"Property": ["Name", "Free"]})]

    def parse(self, objects: Sequence[Any]) -> int | None:
        return next((int(d["free"]) for d in records(objects) if d.get("free") is not None), None)


@dataclass(frozen=True)
class CommandAvailable(Fact[bool]):
    """Whether the session offers a command (a JEA endpoint lists only what it allows)."""

    name: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-Command", {"Name": [self.name]}))

    def parse(self, objects: Sequence[Any]) -> bool:
        return any(str(d.get("name", "")).lower() == self.name.lower() for d in records(objects))
