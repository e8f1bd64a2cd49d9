"""Rebuild ``recordings/`` from pypsrp's recorded Windows exchanges.

pypsrp's test suite replays exchanges recorded against real Windows hosts (``tests/responses/*.yml`` in
jborean93/pypsrp; ``tests/tests_pypsrp/responses/`` in its 0.9.1 source distribution). Each file here is one reply
or one decoded PSRP message of one of those exchanges, verbatim, under a comment naming its source file and
exchange; ``extracts.toml`` says which exchange each file comes from. Run by hand when a recording is added:

    python -m tests.conformance.extract <pypsrp-0.9.1>/tests/tests_pypsrp/responses

Most sources were recorded on Windows Server 2016 (PowerShell 5.1.14393.2248), the version labsim models. The shell
Get, the Get of a deleted shell and the invalid OperationTimeout were recorded only on a later build (PowerShell
5.1.26236) and a partial Receive only on Windows Server 2019 (5.1.17763); their comments say so.
"""

from __future__ import annotations

import base64
import sys
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

RECORDINGS = Path(__file__).parent / "recordings"
_RSP = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
_CREATION = "{http://schemas.microsoft.com/powershell}creationXml"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Extract:
    name: str  # file under recordings/
    source: str  # file under pypsrp's responses folder
    exchange: int  # index in its messages list
    what: str  # one line: which part of the exchange, and why it is kept
    message_type: int | None = None  # a decoded PSRP message of this type (the nth of the exchange's reply)
    nth: int = 0
    side: str = "response"


# Which recording comes from which exchange: a table in extracts.toml.
EXTRACTS = tuple(Extract(**row) for row in tomllib.loads(
    (Path(__file__).parent / "extracts.toml").read_text(encoding="utf-8"))["extract"])


def _messages(envelopes: list[str]) -> list[tuple[int, bytes]]:
    """(message type, data) of every PSRP message in these envelopes, reassembled across fragments."""
    pending: dict[int, bytes] = {}
    out = []
    for text in envelopes:
        root = ET.fromstring(text)
        for el in root.iter():
            if el.tag not in (_RSP + "Stream", _RSP + "Arguments", _CREATION) or not el.text:
                continue
            blob, offset = base64.b64decode(el.text), 0
            while offset < len(blob):
                length = int.from_bytes(blob[offset + 17:offset + 21], "big")
                object_id, flags = int.from_bytes(blob[offset:offset + 8], "big"), blob[offset + 16]
                pending[object_id] = pending.get(object_id, b"") + blob[offset + 21:offset + 21 + length]
                offset += 21 + length
                if flags & 2:
                    raw = pending.pop(object_id)
                    out.append((int.from_bytes(raw[4:8], "little"), raw[40:]))
    return out


def extract(spec: Extract, responses: Path) -> str:
    import yaml  # a dev-time tool: pyyaml comes with the test dependencies

    exchanges = yaml.safe_load((responses / spec.source).read_text(encoding="utf-8"))["messages"]
    source = (f"source: jborean93/pypsrp tests/responses/{spec.source} (pypsrp 0.9.1: tests/tests_pypsrp/responses/), "
              f"exchange {spec.exchange}")
    if spec.message_type is None:
        text = exchanges[spec.exchange][spec.side]
        return f"<!-- {source}:\n     {spec.what}. Verbatim apart from this comment. -->\n{text}\n"
    # Messages may span exchanges: reassemble every reply up to this one, keep the ones this reply completes.
    before = len(_messages([e["response"] for e in exchanges[:spec.exchange] if e["response"].startswith("<")]))
    found = _messages([e["response"] for e in exchanges[:spec.exchange + 1] if e["response"].startswith("<")])
    mine = [data for kind, data in found[before:] if kind == spec.message_type]
    data = mine[spec.nth]
    bom = data.startswith(_BOM)
    body = data[len(_BOM):] if bom else data
    return (f"<!-- {source}:\n     {spec.what}. Decoded from the reply's rsp:Stream: message type "
            f"0x{spec.message_type:08X}, data begins with the UTF-8 BOM: {bom}. Verbatim apart from this comment. -->\n"
            f"{body.decode('utf-8')}\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    responses = Path(argv[0])
    for spec in EXTRACTS:
        (RECORDINGS / spec.name).write_text(extract(spec, responses), encoding="utf-8")
        print(f"{spec.name}: {spec.source} #{spec.exchange}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
