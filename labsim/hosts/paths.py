"""PowerShell provider paths as labsim understands them: file system, the infrastructure share, registry,
certificate store and IIS sites (docs/host-contract.md §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from labsim.state import SHARE_HOST

SHARE_ROOT = "\\\\su1fileserver\\SU1_Infrastructure_1"
CERT_STORES = ("My", "CA", "Root", "WebHosting")

_FS_PSPATH = "microsoft.powershell.core\\filesystem::"
_REG_PSPATH = "microsoft.powershell.core\\registry::"
_CERT_PSPATH = "microsoft.powershell.security\\certificate::"


@dataclass(frozen=True)
class ItemPath:
    kind: str  # fs | reg | cert | iis | unknown
    raw: str
    fs_host: str = ""  # fs: host name or SHARE_HOST
    path: str = ""  # fs: canonical full path; reg: key below HKLM ("" = HKLM itself); iis: site name
    store: str = ""  # cert: store name ("" = LocalMachine itself)
    thumbprint: str = ""  # cert

    @property
    def is_root(self) -> bool:
        return self.kind == "fs" and (self.path.endswith(":\\") or self.path.lower() == SHARE_ROOT.lower())


def _parts(s: str) -> list[str]:
    return [p for p in re.split(r"[\\/]+", s) if p and p != "."]


def parse(raw: str, host_name: str) -> ItemPath:
    s = raw.strip()
    low = s.lower()
    for prefix in (_FS_PSPATH,):
        if low.startswith(prefix):
            s, low = s[len(prefix):], low[len(prefix):]
    if low.startswith(_REG_PSPATH):
        s, low = s[len(_REG_PSPATH):], low[len(_REG_PSPATH):]
    if low.startswith("registry::"):
        s, low = s[len("registry::"):], low[len("registry::"):]
    if low.startswith(_CERT_PSPATH):
        s = "Cert:\\" + s[len(_CERT_PSPATH):]
        low = s.lower()
    if re.match(r"^[a-z]:([\\/]|$)", low):
        parts = _parts(s[2:])
        return ItemPath("fs", raw, host_name, s[0].upper() + ":\\" + "\\".join(parts))
    if low.startswith(("\\\\", "//")):
        parts = _parts(s)
        if len(parts) >= 2 and parts[0].lower() == "su1fileserver" and parts[1].lower() == "su1_infrastructure_1":
            return ItemPath("fs", raw, SHARE_HOST,
                            "\\\\" + "\\".join(["su1fileserver", "SU1_Infrastructure_1", *parts[2:]]))
        return ItemPath("unknown", raw)
    for prefix in ("hklm:", "hkey_local_machine"):
        if low.startswith(prefix):
            return ItemPath("reg", raw, path="\\".join(_parts(s[len(prefix):])))
    if low.startswith("cert:"):
        parts = _parts(s[5:])
        if not parts:
            return ItemPath("cert", raw, store="")
        if parts[0].lower() != "localmachine" or len(parts) > 3:
            return ItemPath("unknown", raw)
        store = ""
        if len(parts) >= 2:
            hit = [st for st in CERT_STORES if st.lower() == parts[1].lower()]
            if not hit:
                return ItemPath("unknown", raw)
            store = hit[0]
        return ItemPath("cert", raw, store=store, thumbprint=parts[2].upper() if len(parts) == 3 else "")
    if low.startswith("iis:"):
        parts = _parts(s[4:])
        if len(parts) == 2 and parts[0].lower() == "sites":
            return ItemPath("iis", raw, path=parts[1])
        if len(parts) == 1 and parts[0].lower() == "sites":
            return ItemPath("iis", raw, path="")
        return ItemPath("unknown", raw)
    return ItemPath("unknown", raw)


def parent(path: str) -> str:
    """Parent of a canonical file system path ('' for a root)."""
    if path.endswith(":\\") or path.lower() == SHARE_ROOT.lower():
        return ""
    head = path.rsplit("\\", 1)[0]
    return head + "\\" if re.fullmatch(r"[A-Z]:", head) else head


def leaf(path: str) -> str:
    return path.rstrip("\\").rsplit("\\", 1)[-1]


def join(*parts: str) -> str:
    out = parts[0].rstrip("\\")
    for p in parts[1:]:
        out += "\\" + p.strip("\\")
    return out
