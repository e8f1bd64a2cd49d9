"""Structural views of WSMan replies and PSRP messages, for comparing labsim with recorded Windows exchanges.

A *shape* keeps what a client depends on (element names, attributes, object type names, member names and their
CLIXML types, dictionary keys) and drops values (ids, times, texts), so comparisons survive harmless changes.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).parent / "recordings"
RSP = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
UTF8_BOM = b"\xef\xbb\xbf"


def recording(name: str) -> str:
    return (RECORDINGS / name).read_text(encoding="utf-8")


# -- CLIXML ---------------------------------------------------------------------------------------------------
class _Doc:
    def __init__(self, root: ET.Element) -> None:
        self.objects = {el.get("RefId"): el for el in root.iter("Obj") if el.get("RefId") is not None}
        self.type_names = {el.get("RefId"): tuple(t.text or "" for t in el.findall("T"))
                           for el in root.iter("TN")}

    def types(self, obj: ET.Element) -> tuple[str, ...]:
        tn = obj.find("TN")
        if tn is not None:
            return tuple(t.text or "" for t in tn.findall("T"))
        ref = obj.find("TNRef")
        return self.type_names.get(ref.get("RefId"), ()) if ref is not None else ()

    def shape(self, el: ET.Element) -> tuple:
        if el.tag == "Ref":
            el = self.objects[el.get("RefId")]
        if el.tag != "Obj":
            return (el.tag,)
        parts: list[tuple] = [("TN", self.types(el)), ("ToString", el.find("ToString") is not None)]
        for section in ("Props", "MS"):
            sec = el.find(section)
            if sec is not None:
                parts.append((section, tuple((c.get("N"), self.shape(c)) for c in sec)))
        for container in ("LST", "IE", "QUE", "STK"):
            if el.find(container) is not None:
                parts.append((container,))
        dct = el.find("DCT")
        if dct is not None:
            parts.append(("DCT", tuple((_child(en, "*[@N='Key']").text, self.shape(_child(en, "*[@N='Value']")))
                                      for en in dct.findall("En"))))
        enum_value = [c.tag for c in el if c.tag in ("I32", "I64", "U32")]
        if enum_value:
            parts.append(("value", enum_value[0]))
        return ("Obj", tuple(parts))


def _child(el: ET.Element, path: str) -> ET.Element:
    found = el.find(path)
    assert found is not None, f"no {path} in <{el.tag}>"
    return found


def clixml_shape(xml_text: str | bytes) -> tuple:
    if isinstance(xml_text, bytes):
        xml_text = xml_text.decode("utf-8-sig")
    root = ET.fromstring(xml_text.strip())
    return _Doc(root).shape(root)


def part(shape: tuple, name: str) -> Any:
    """One part of an Obj shape: 'TN', 'ToString', 'Props', 'MS', 'DCT'."""
    for p in shape[1]:
        if p[0] == name:
            return p[1] if len(p) > 1 else True
    return None


def members(shape: tuple, section: str = "MS") -> dict[str, tuple]:
    return dict(part(shape, section) or ())


def values(xml_text: str | bytes) -> dict[str, object]:
    """A record's values by member path (``Exception.HResult``, ``InvocationInfo.HistoryId``, a dictionary's entry
    as ``PSVersionTable[PSVersion]``): a primitive as (CLIXML tag, text), an object's ToString and type names as
    ``path#ToString`` and ``path#types``, a list's items as ``path#items``; what a shape leaves out."""
    if isinstance(xml_text, bytes):
        xml_text = xml_text.decode("utf-8-sig")
    root = ET.fromstring(xml_text.strip())
    doc = _Doc(root)
    out: dict[str, object] = {}

    def text(s: str | None) -> str | None:  # CLIXML's escapes decoded, as a client reads them ([MS-PSRP] 2.2.5.3.2)
        return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), s) if s is not None else None

    def value(el: ET.Element, path: str) -> None:
        if el.tag == "Ref":
            el = doc.objects[el.get("RefId")]
        if el.tag != "Obj":
            out[path] = (el.tag, text(el.text))
            return
        out[path + "#ToString"] = text(el.findtext("ToString"))
        out[path + "#types"] = doc.types(el)
        lst = el.find("LST")
        if lst is not None:
            out[path + "#items"] = [(item.tag, item.text) for item in lst]
        for entry in el.findall("DCT/En"):
            key, item = entry.find("*[@N='Key']"), entry.find("*[@N='Value']")
            if key is not None and item is not None:
                value(item, f"{path}[{key.text}]")
        for section in ("Props", "MS"):
            for member in el.findall(f"{section}/*"):
                value(member, f"{path}.{member.get('N')}" if path else member.get("N") or "")

    value(root, "")
    return out


# -- WSMan and PSRP framing ------------------------------------------------------------------------------------
def element_paths(el: ET.Element, prefix: str = "") -> list[str]:
    """Every element below ``el`` as a path of tag names (namespaced), with its attribute names."""
    out = []
    for child in el:
        path = f"{prefix}/{child.tag}"
        attrs = ",".join(sorted(child.attrib))
        out.append(f"{path}[{attrs}]" if attrs else path)
        out += element_paths(child, path)
    return out


@dataclass
class Fragment:
    object_id: int
    fragment_id: int
    start: bool
    end: bool
    data: bytes

    @property
    def size(self) -> int:
        return 21 + len(self.data)


def fragments(blob: bytes) -> list[Fragment]:
    out, offset = [], 0
    while offset < len(blob):
        length = int.from_bytes(blob[offset + 17:offset + 21], "big")
        flags = blob[offset + 16]
        out.append(Fragment(int.from_bytes(blob[offset:offset + 8], "big"),
                            int.from_bytes(blob[offset + 8:offset + 16], "big"), bool(flags & 1), bool(flags & 2),
                            blob[offset + 21:offset + 21 + length]))
        offset += 21 + length
    return out


@dataclass
class Message:
    message_type: int
    data: bytes  # the message data, BOM included when sent


def stream_blobs(reply: bytes) -> list[bytes]:
    root = ET.fromstring(reply)
    return [base64.b64decode(s.text or "") for s in root.iter(f"{RSP}Stream")]


def messages(replies: list[bytes]) -> list[Message]:
    """Reassemble every PSRP message carried by the rsp:Stream elements of these Receive replies."""
    pending: dict[int, bytes] = {}
    out = []
    for reply in replies:
        for blob in stream_blobs(reply):
            for frag in fragments(blob):
                pending[frag.object_id] = pending.get(frag.object_id, b"") + frag.data
                if frag.end:
                    raw = pending.pop(frag.object_id)
                    out.append(Message(int.from_bytes(raw[4:8], "little"), raw[40:]))
    return out
