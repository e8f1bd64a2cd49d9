"""Who owns a thing on a host: the ownership marker every remote resource reads, writes and removes.

Rules (docs/ownership.md has the why, docs/host-contract.md §11 where the markers live):

* Everything a stack creates or adopts on a host carries a marker naming the owning stack (``project/stack``),
  written by create (before its first change, so a rerun after a partial failure still knows it is its own),
  read back by every read (output ``observed_owner``), removed by delete.
* create meets a thing that already exists:
    - marked by another stack: refuse, naming the owner, unless ``adopt`` (then take it over);
    - marked by this stack: it is ours (a rerun), converge;
    - unmarked and matching the desired state: *adopt* it; the only write is the marker;
    - unmarked and different: refuse, naming the host, the thing and every differing field, unless ``adopt``.
  An adopted thing remembers its prior values (in the marker and in the state); delete puts them back or leaves
  the thing in place, and never removes it.
* update and delete never change or remove what another stack's marker claims (update refuses, delete leaves it).

The marker is a small JSON file under ``C:\\ProgramData\\WapConnectorIac\\<Resource>\\<key>.json`` on the host where
the resource's read runs (for the privileged endpoint, which is JEA and takes no file commands, on the share host).
It lives in our own namespace and never touches the thing's own configuration. Writes and reads use the ordinary
file cmdlets (New-Item, Get-Content, Remove-Item), so labsim models them like any other file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from providers.errors import ConnectorError
from providers.facts.files import ItemCount
from providers.facts.markers import Marker, OwnershipMarker
from providers.hostops import remove_quietly
from providers.transport import Command, HostConnection, Transport

MARKER_ROOT = r"C:\ProgramData\WapConnectorIac"
STEP_MARK = "record ownership"
STEP_UNMARK = "remove ownership record"

_OWNER = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_KEY_CHARS = re.compile(r"[^a-z0-9.-]+")


def owner_problem(value: Any) -> str | None:
    """Why ``value`` is not an owner (``project/stack``), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _OWNER.match(value):
        return f"{value!r} is not project/stack (letters, digits, '.', '_', '-')"
    return None


def marker_path(resource: str, key: str) -> str:
    """``C:\\ProgramData\\WapConnectorIac\\<resource>\\<key>.json``; the key is lower-cased and reduced to
    letters, digits, '.' and '-' (others become '_'), so any host name, store or path fits in a file name."""
    return f"{MARKER_ROOT}\\{resource}\\{_KEY_CHARS.sub('_', key.lower()).strip('_')}.json"


def is_marker_path(path: Any) -> bool:
    return isinstance(path, str) and path.lower().startswith(MARKER_ROOT.lower() + "\\")


def read(t: Transport, conn: HostConnection, step: str, path: str) -> Marker | None:
    """The marker alone (delete's check, and resources whose read cannot carry one more statement)."""
    marker = OwnershipMarker(path)
    return marker.parse(t.run(conn, step, marker.statements(), idempotent=True).output)


def write(t: Transport, conn: HostConnection, step: str, path: str, marker: Marker) -> None:
    folder = path.rsplit("\\", 1)[0]
    t.run(conn, step, [
        Command("New-Item", {"Path": folder, "ItemType": "Directory"}, ["Force"]),
        Command("New-Item", {"Path": path, "ItemType": "File", "Value": marker.to_json()}, ["Force"]),
    ], idempotent=True)


def remove(t: Transport, conn: HostConnection, step: str, path: str) -> None:
    """Remove the marker, then each of its folders that holds nothing any more, deepest first, up to MARKER_ROOT
    (never C:\\ProgramData itself), so that a destroy leaves the host as it was.

    Each pipeline removes one thing and then counts what is left in the next folder up. The deletes of one host's
    things run at once (the engine sends them together), and a count taken before the other deletes' removals
    would keep a folder they all emptied: with the count after each removal, whichever delete counts last sees
    every removal before it and takes the folder. A folder is removed without -Recurse: one something moved into
    since stays, with what is in it."""
    gone = path
    for folder in marker_folders(path):
        left = ItemCount(folder)
        outputs = t.run(conn, step, [remove_quietly(gone), *left.statements()], idempotent=True).outputs
        if left.parse(outputs[-1]) != 0:  # something else is in it, or the count could not be read
            return
        gone = folder
    t.run(conn, step, remove_quietly(gone), idempotent=True)


def marker_folders(path: str) -> list[str]:
    """The folders of a marker that are ours to remove once empty, deepest first, up to MARKER_ROOT."""
    folders, folder = [], path.rsplit("\\", 1)[0]
    while is_marker_path(folder) or folder.lower() == MARKER_ROOT.lower():
        folders.append(folder)
        folder = folder.rsplit("\\", 1)[0]
    return folders


# ---------------------------------------------------------------------------------------------------------------
# Decisions (pure)


@dataclass(frozen=True)
class Difference:
    field: str
    found: Any
    wanted: Any

    def __str__(self) -> str:
        return f"{self.field} is {_show(self.found)}, this stack wants {_show(self.wanted)}"


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return repr(text[:200] + ("..." if len(text) > 200 else ""))


class OwnershipConflict(ConnectorError):
    """The thing on the host belongs to another stack, or existed before this stack and differs from what it
    wants; nothing was changed. ``owner`` is the other stack (None when the thing is simply unmarked)."""

    def __init__(self, message: str, *, host: str, thing: str, owner: str | None = None,
                 differences: Sequence[Difference] = ()) -> None:
        self.thing = thing
        self.owner = owner
        self.differences = list(differences)
        super().__init__(message, host=host)


ADOPT_HINT = ("set wapconnector:adopt: true to take it over explicitly (wapconnector:clouds[<i>].adopt: true does so "
              "for one cloud's WAP-side things only)")


def claim(*, host: str, thing: str, owner: str, adopt: bool, marker: Marker | None, exists: bool,
          differences: Sequence[Difference], prior: Mapping[str, Any], resource: str) -> Marker:
    """create's decision: the marker to write (adopted or not, with the prior values), or OwnershipConflict.

    ``exists``: the thing is on the host; ``differences``: how it differs from the desired state;
    ``prior``: the values an adoption must remember (what destroy puts back)."""
    if marker is not None and marker.owner != owner:
        if not adopt:
            raise OwnershipConflict(
                f"{host}: {thing} is owned by stack {marker.owner}; stack {owner} will not change or delete it. "
                f"Nothing was changed. Manage it from {marker.owner}, destroy that stack first, or {ADOPT_HINT}",
                host=host, thing=thing, owner=marker.owner)
        # Taken over on request: what it holds now is the prior state our destroy puts back.
        return Marker(owner, adopted=True, prior=dict(prior), resource=resource, thing=thing)
    if marker is not None:
        return Marker(owner, adopted=marker.adopted, prior=dict(marker.prior), resource=resource, thing=thing)
    if not exists:
        return Marker(owner, adopted=False, resource=resource, thing=thing)
    if differences and not adopt:
        listed = "; ".join(str(d) for d in differences)
        raise OwnershipConflict(
            f"{host}: {thing} already exists, was not created by stack {owner}, and differs from its configuration: "
            f"{listed}. Nothing was changed. Make the stack's configuration match the host (then it is adopted "
            f"as it is), or {ADOPT_HINT} (destroy then puts these values back)",
            host=host, thing=thing, differences=differences)
    return Marker(owner, adopted=True, prior=dict(prior), resource=resource, thing=thing)


def may_change(*, host: str, thing: str, owner: str | None, adopt: bool, marker: Marker | None,
               previous: str | None = None) -> None:
    """update's guard: refuse to change what another stack's marker claims (unless adopt). ``previous`` is the
    owner this resource's state recorded: a marker naming it is still ours (the stack or project was renamed)."""
    if owner is None or marker is None or marker.owner in (owner, previous) or adopt:
        return
    raise OwnershipConflict(
        f"{host}: {thing} is now owned by stack {marker.owner}; stack {owner} will not change it. Nothing was "
        f"changed. Manage it from {marker.owner}, or {ADOPT_HINT}", host=host, thing=thing, owner=marker.owner)


def may_delete(*, host: str, thing: str, owner: str | None, marker: Marker | None) -> bool:
    """delete's guard: False (and a warning) when another stack's marker claims the thing."""
    if owner is None or marker is None or marker.owner == owner:
        return True
    pulumi.log.warn(f"{host}: {thing} is owned by stack {marker.owner}; stack {owner} leaves it in place "
                    f"(only its own state entry is removed)")
    return False


def owner_changed(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """diff's part: ``owner`` when the marker read back (``observed_owner``) is not this stack's (gone, or
    another stack's). Resources without an owner (direct use of a provider) are not tracked."""
    owner = news.get("owner")
    if not isinstance(owner, str):
        return []
    return [] if olds.get("observed_owner") == owner else ["owner"]


def resource_props(owner: Any, adopt: Any = False) -> dict[str, Any]:
    """What every remote resource registers for ownership: the ``owner`` and ``adopt`` inputs, and the outputs of
    :func:`outputs`, unknown until create."""
    return {"owner": owner, "adopt": adopt, "observed_owner": None, "adopted": None, "prior": None}


def outputs(marker: Marker | None) -> dict[str, Any]:
    """The ownership outputs every remote resource records."""
    if marker is None:
        return {"observed_owner": None}
    return {"observed_owner": marker.owner, "adopted": marker.adopted, "prior": dict(marker.prior)}


def from_state(props: Mapping[str, Any], resource: str, thing: str) -> Marker | None:
    """The marker this stack's state says the host should carry (to write it again after it was removed)."""
    owner = props.get("owner")
    if not isinstance(owner, str):
        return None
    prior = props.get("prior")
    return Marker(owner, adopted=props.get("adopted") is True, prior=prior if isinstance(prior, dict) else {},
                  resource=resource, thing=thing)
