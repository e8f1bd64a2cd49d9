"""The registry of a lab host: HKEY_LOCAL_MACHINE as the host's state document keeps it (``doc["registry"]``: the
lower-cased key path -> ``{"path": the path as created, "values": {name: value}}``), and the RegistryKey object
PowerShell's registry provider returns for a key. The cmdlets over registry paths (Get-Item, Get-ChildItem,
New-Item, Remove-Item, the ItemProperty cmdlets) are in :mod:`labsim.hosts.files`, with the other providers'."""

from __future__ import annotations

from typing import Any

from labsim.hosts import paths
from labsim.runtime import PSObject


def _keys(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.setdefault("registry", {})


def key_exists(doc: dict[str, Any], key: str) -> bool:
    """Whether ``key`` (or a key below it) exists; the root ("") always does."""
    low = key.lower()
    if low == "":
        return True
    r = doc.get("registry", {})
    return low in r or any(k.startswith(low + "\\") for k in r)


def create_key(doc: dict[str, Any], key: str) -> None:
    _keys(doc).setdefault(key.lower(), {"path": key, "values": {}})


def set_value(doc: dict[str, Any], key: str, name: str, value: Any) -> None:
    """Set a value, creating the key if needed."""
    create_key(doc, key)
    _keys(doc)[key.lower()]["values"][name] = value


def values(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of the key's values (none for a key that does not exist)."""
    return dict(doc.get("registry", {}).get(key.lower(), {}).get("values", {}))


def delete_value(doc: dict[str, Any], key: str, name: str) -> None:
    del _keys(doc)[key.lower()]["values"][name]


def delete_key(doc: dict[str, Any], key: str) -> None:
    """Remove the key and every key below it."""
    low = key.lower()
    for k in [k for k in _keys(doc) if k == low or k.startswith(low + "\\")]:
        del _keys(doc)[k]


def subkeys(doc: dict[str, Any], key: str) -> list[str]:
    """Full paths of the direct subkeys of ``key`` (canonical case)."""
    low = key.lower()
    prefix = low + "\\" if low else ""
    out: dict[str, str] = {}
    for k, entry in doc.get("registry", {}).items():
        if k.startswith(prefix) and k != low:
            depth = len(prefix.split("\\")) if prefix else 1
            full = "\\".join(entry["path"].split("\\")[:depth])
            out.setdefault(full.lower(), full)
    return [out[k] for k in sorted(out)]


def pspath(key: str) -> str:
    return "Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE" + ("\\" + key if key else "")


def key_object(doc: dict[str, Any], key: str) -> PSObject:
    """The Microsoft.Win32.RegistryKey Get-Item returns for ``key``."""
    found = values(doc, key)
    name = "HKEY_LOCAL_MACHINE" + ("\\" + key if key else "")
    return PSObject({"Name": name, "PSChildName": paths.leaf(key) if key else "HKEY_LOCAL_MACHINE",
                     "PSPath": pspath(key), "Property": list(found), "SubKeyCount": len(subkeys(doc, key)),
                     "ValueCount": len(found)}, ["Microsoft.Win32.RegistryKey", "System.MarshalByRefObject",
                                                 "System.Object"], name)
