"""Facts: what the project reads from a host, each thing once.

A fact (in the sense of pyinfra's facts) is the structured statements that read one thing and a pure parser from
what those statements wrote to a small typed value::

    sites = Websites(like="MgmtSvc-*", bindings=True)
    result = transport.run(conn, step, [*sites.statements(), *other.statements()], idempotent=True)
    found = sites.parse(result.outputs[0])

Facts never run anything themselves: a resource's read and preflight put the statements of several facts (and an
ownership marker) into one invocation, so a host is asked once, and each caller keeps its own error handling.
``parse`` takes the objects the fact's statements wrote, in order (one statement's ``Result.outputs`` entry, or
the concatenation when a fact has several), and returns None for "absent" where absence is an answer.

Modules, one per area of a host: :mod:`.locations` (the registry keys, folders, shares, sites and ports the
project knows, defined once), :mod:`.iis` (sites, their bindings and appSettings), :mod:`.products` (the Windows
Installer's Uninstall keys), :mod:`.certstore` (certificate stores), :mod:`.system` (Windows, PowerShell, URL
Rewrite, free space, commands), :mod:`.tenant_api` (the Tenant API's settings, product and Store),
:mod:`.files` (hashes, the connector's output folder, paths, a folder's item count), :mod:`.network` (ping, TCP
ports), :mod:`.markers` (the ownership marker a stack keeps beside what it owns).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from providers.transport import Command, Output, Pipeline

T = TypeVar("T")

__all__ = ["Fact", "as_pipelines", "first_bool", "json_records", "lower_keys", "quiet", "records"]


class Fact(ABC, Generic[T]):
    """One thing read from a host: :meth:`statements` ask for it, :meth:`parse` (pure) understands the answer."""

    @abstractmethod
    def statements(self) -> list[Pipeline]:
        """The read-only statements, in the order :meth:`parse` expects their objects."""

    @abstractmethod
    def parse(self, objects: Sequence[Any]) -> T:
        """The typed value from the objects the statements wrote (concatenated, in order)."""


def as_pipelines(*statements: Command | Pipeline) -> list[Pipeline]:
    return [s if isinstance(s, Pipeline) else Pipeline((s,)) for s in statements]


def quiet(name: str, params: Mapping[str, Any] | None = None, switches: Sequence[str] = ()) -> Command:
    """A read whose "not found" is an answer, not an error."""
    return Command(name, {**(params or {}), "ErrorAction": "SilentlyContinue"}, switches)


def lower_keys(d: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in d.items()}


def records(objects: Sequence[Any]) -> list[dict[str, Any]]:
    """The objects of a statement (dicts of their properties), keys lower-cased; anything else is skipped."""
    return [lower_keys(o) for o in objects if isinstance(o, Mapping)]


def json_records(objects: Sequence[Any]) -> list[dict[str, Any]]:
    """The objects of a statement that ends in ConvertTo-Json (one JSON value: an object or an array), keys
    lower-cased. Real PowerShell serialises nested objects (a site's bindings) only one level deep, so reads that
    need the shape end in ConvertTo-Json. ValueError when the output is not JSON text."""
    value = Output(objects).json()
    return records(value if isinstance(value, list) else [] if value is None else [value])


def first_bool(objects: Sequence[Any]) -> bool | None:
    """The first boolean a statement wrote (Test-Path, Test-Connection -Quiet), None when it wrote none."""
    return next((o for o in objects if isinstance(o, bool)), None)
