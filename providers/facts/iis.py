"""IIS: the sites a host has (state, https binding) and a site's appSettings (WebAdministration module)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.facts import Fact, json_records, lower_keys, records
from providers.transport import Command, Pipeline


@dataclass(frozen=True)
class Website:
    name: str
    state: str
    """Started | Stopped (as IIS says it)."""
    https_thumbprint: str = ""
    """The certificate bound to its https binding, upper case; "" when none is bound (or bindings were not read)."""
    https_port: int | None = None


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def https_binding(bindings: Any) -> tuple[str, int | None]:
    """(thumbprint, port) of the https binding in a site's JSON ``bindings`` ({Collection: [...]} or a list)."""
    if isinstance(bindings, Mapping):
        bindings = lower_keys(bindings).get("collection")
    for b in _as_list(bindings):
        if not isinstance(b, Mapping):
            continue
        b = lower_keys(b)
        if str(b.get("protocol", "")).lower() == "https":
            info = str(b.get("bindinginformation", ""))
            parts = info.split(":")
            port = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
            return str(b.get("certificatehash") or "").upper(), port
    return "", None


@dataclass(frozen=True)
class Websites(Fact[tuple[Website, ...]]):
    """The sites (``name`` one site, ``like`` a wildcard); ``bindings`` adds each site's https binding, read
    through ConvertTo-Json so the nested collection survives remoting."""

    name: str | None = None
    like: str | None = None
    bindings: bool = False

    def statements(self) -> list[Pipeline]:
        pipeline = Pipeline((Command("Get-Website", {"Name": self.name} if self.name else {}),))
        if self.like:
            pipeline = pipeline | Command("Where-Object", {"Property": "name", "Value": self.like}, ["Like"])
        props = ["name", "state", *(["bindings"] if self.bindings else [])]
        pipeline = pipeline | Command("Select-Object", {"Property": props})
        if self.bindings:
            pipeline = pipeline | Command("ConvertTo-Json", {"Depth": 5}, ["Compress"])
        return [pipeline]

    def parse(self, objects: Sequence[Any]) -> tuple[Website, ...]:
        items = json_records(objects) if self.bindings else records(objects)
        return tuple(Website(str(d.get("name") or ""), str(d.get("state") or ""), *https_binding(d.get("bindings")))
                     for d in items)


def site_named(sites: Sequence[Website], name: str) -> Website | None:
    """IIS site names compare case-insensitively."""
    return next((s for s in sites if s.name.lower() == name.lower()), None)


@dataclass(frozen=True)
class AppSettings(Fact[dict[str, str]]):
    """A site's web.config appSettings: {key: value}."""

    site: str

    def statements(self) -> list[Pipeline]:
        return [Command("Get-WebConfigurationProperty", {"PSPath": "IIS:\\Sites\\" + self.site,
                                                         "Filter": "appSettings/add", "Name": "."})
                | Command("Select-Object", {"Property": ["key", "value"]})
                | Command("ConvertTo-Json", {}, ["Compress"])]

    def parse(self, objects: Sequence[Any]) -> dict[str, str]:
        return {str(d["key"]): "" if d.get("value") is None else str(d["value"])
                for d in json_records(objects) if "key" in d}


@dataclass(frozen=True)
class HttpsBinding(Fact[str | None]):
    """The certificate hash of a site's https binding: None when the site has no https binding (or no site),
    "" when one has no certificate."""

    site: str

    def statements(self) -> list[Pipeline]:
        return [Command("Get-WebBinding", {"Name": self.site, "Protocol": "https"})
                | Command("Select-Object", {"Property": ["certificateHash"]})]

    def parse(self, objects: Sequence[Any]) -> str | None:
        if not objects:
            return None
        return next((str(d.get("certificatehash") or "") for d in records(objects)), "")
