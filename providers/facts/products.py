"""Installed products: the Windows Installer's Uninstall keys (DisplayName, DisplayVersion, the ProductCode as
the key's name), readable on every Windows version."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.facts import Fact, json_records, records
from providers.facts.locations import UNINSTALL_KEY
from providers.transport import Command, Pipeline


@dataclass(frozen=True)
class Product:
    name: str
    version: str | None
    code: str = ""
    """The ProductCode (the Uninstall key's name), when it was asked for."""

    @property
    def version_tuple(self) -> tuple[int, ...] | None:
        return version_tuple(self.version)


def version_tuple(text: Any) -> tuple[int, ...] | None:
    """``3.50.48.0`` -> (3, 50, 48, 0); None for what is not a version."""
    if not isinstance(text, str):
        return None
    m = re.match(r"^\s*(\d+(?:\.\d+)*)", text)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


@dataclass(frozen=True)
class InstalledProducts(Fact[tuple[Product, ...]]):
    """Every product in the Uninstall keys, or those whose DisplayName is ``like`` a wildcard; ``codes`` adds
    their ProductCodes (read through ConvertTo-Json)."""

    like: str | None = None
    codes: bool = False

    def statements(self) -> list[Pipeline]:
        pipeline = Command("Get-ChildItem", {"Path": UNINSTALL_KEY}) | Command("Get-ItemProperty")
        if self.like:
            pipeline = pipeline | Command("Where-Object", {"Property": "DisplayName", "Value": self.like}, ["Like"])
        props = [*(["PSChildName"] if self.codes else []), "DisplayName", "DisplayVersion"]
        pipeline = pipeline | Command("Select-Object", {"Property": props})
        if self.codes:
            pipeline = pipeline | Command("ConvertTo-Json", {}, ["Compress"])
        return [pipeline]

    def parse(self, objects: Sequence[Any]) -> tuple[Product, ...]:
        items = json_records(objects) if self.codes else records(objects)
        return tuple(Product(str(d.get("displayname") or ""),
                             d["displayversion"] if isinstance(d.get("displayversion"), str) else None,
                             str(d.get("pschildname") or "")) for d in items)
