"""Ownership markers as a host keeps them: the JSON file a stack writes beside what it owns, its format both ways,
and the fact that reads one. The rules that decide with them are in providers/ownership.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.facts import Fact, as_pipelines, quiet
from providers.transport import Pipeline

#: Identifies a marker among a read's outputs (like Helm's app.kubernetes.io/managed-by label).
MANAGED_BY = "wap-connector-iac"


@dataclass(frozen=True)
class Marker:
    owner: str
    """``project/stack`` of the owning stack."""
    adopted: bool = False
    """The thing existed before the owner and was adopted: delete leaves it (or puts ``prior`` back)."""
    prior: Mapping[str, Any] = field(default_factory=dict)
    """What the thing held before an adoption changed it (names as the resource's fields)."""
    resource: str = ""
    thing: str = ""

    def to_json(self) -> str:
        return json.dumps({"managedBy": MANAGED_BY, "owner": self.owner, "resource": self.resource,
                           "thing": self.thing, "adopted": self.adopted, "prior": dict(self.prior),
                           "note": "written by wap-connector-iac; the owning stack's destroy removes it"},
                          indent=2, sort_keys=True)


def parse_marker(text: Any) -> Marker | None:
    """A marker file's text -> Marker; None if it is not one of ours (any other output of a read)."""
    if not isinstance(text, str) or MANAGED_BY not in text:
        return None
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("managedBy") != MANAGED_BY or not isinstance(data.get("owner"), str):
        return None
    prior = data.get("prior")
    return Marker(owner=data["owner"], adopted=data.get("adopted") is True,
                  prior=prior if isinstance(prior, dict) else {}, resource=str(data.get("resource") or ""),
                  thing=str(data.get("thing") or ""))


@dataclass(frozen=True)
class OwnershipMarker(Fact[Marker | None]):
    """The marker at ``path``; None when the host has none (or the file there is not one of ours). Its statement
    joins a resource's read, so one invocation brings the thing and its marker."""

    path: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(quiet("Get-Content", {"Path": self.path, "Raw": True}))

    def parse(self, objects: Sequence[Any]) -> Marker | None:
        return next((m for m in map(parse_marker, objects) if m is not None), None)
