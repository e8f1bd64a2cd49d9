"""Properties: ConvertTo-Json always yields JSON that parses back to the input; concurrent pipelines on one
state database never lose or mix chunks."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labsim.hosts import LabRuntime
from labsim.hosts.paths import parse
from labsim.hosts.utility import to_json
from labsim.runtime import PSObject
from tests.labsim.hosts_helpers import WAP, cmd, run, session

pytestmark = pytest.mark.unit

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4).map(PSObject)), max_leaves=20)


def plain(v: object) -> object:
    if isinstance(v, PSObject):
        v = v.properties
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


@given(values, st.booleans())
@settings(max_examples=200, deadline=None)
def test_convert_to_json_parses_back(value: object, compress: bool) -> None:
    assert json.loads(to_json(value, 100, compress)) == plain(value)


@given(st.lists(st.text(alphabet="abcXYZ. -_", min_size=1, max_size=6).filter(lambda s: s.strip(". ")), max_size=5),
       st.sampled_from(["\\", "/"]))
def test_file_paths_are_canonical(parts: list[str], sep: str) -> None:
    raw = "c:" + sep + sep.join(parts)
    p = parse(raw, WAP)
    assert p.kind == "fs" and p.path.startswith("C:\\") and "/" not in p.path
    assert parse(p.path, WAP).path == p.path  # canonical form is a fixed point


def test_concurrent_chunked_writes_do_not_mix(rt: LabRuntime) -> None:
    s = session()
    run(rt, s, cmd("New-Item", Path="C:\\c", ItemType="Directory")).ok()
    payloads = {i: bytes([i]) * 5000 + bytes(range(256)) for i in range(6)}
    failures: list[str] = []

    def writer(i: int) -> None:
        data = payloads[i]
        for off in range(0, len(data), 700):
            name = "Set-Content" if off == 0 else "Add-Content"
            r = run(rt, s, cmd(name, Path=f"C:\\c\\{i}.bin", Value=data[off:off + 700], Encoding="Byte"))
            if r.error or r.errors:
                failures.append(str(r.error or r.errors))

    threads = [threading.Thread(target=writer, args=(i,)) for i in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    for i, data in payloads.items():
        assert run(rt, s, cmd("Get-Content", Path=f"C:\\c\\{i}.bin", Encoding="Byte", Raw=True)).ok().outputs == [data]
