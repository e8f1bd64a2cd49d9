"""PipelineIterationInfo in labsim's records, against the recorded Windows exchanges: one counter per pipeline
position plus one, as many as Windows sends for a pipeline of the same length. A client that indexes the list by
position (as PowerShell's own formatting does) needs the length, not only the member's presence."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from .clixml_shape import recording
from .wire import Wire, capture

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def wire(tmp_path_factory) -> Wire:
    return capture(tmp_path_factory.mktemp("iteration-info"))


def _root(xml: str | bytes) -> ET.Element:
    text = xml.decode("utf-8-sig") if isinstance(xml, bytes) else xml.split("-->", 1)[-1]
    return ET.fromstring(text.strip())


def counters(xml: str | bytes, member: str) -> list[str]:
    lst = _root(xml).find(f"MS/Obj[@N='{member}']/LST")
    assert lst is not None, f"{member} has no list"
    return [el.tag for el in lst]


def integer(xml: str | bytes, member: str) -> int:
    return int(_root(xml).find(f"MS/I32[@N='{member}']").text)


def test_a_verbose_record_counts_like_windows(wire: Wire) -> None:
    ours, windows = wire.message("verbose"), recording("verbose_record.xml")
    # The same pipeline length as the recording's, so the same number of counters, all Int32.
    assert integer(ours, "InvocationInfo_PipelineLength") == integer(windows, "InvocationInfo_PipelineLength") == 1
    for member in ("InvocationInfo_PipelineIterationInfo", "InformationalRecord_PipelineIterationInfo"):
        assert counters(ours, member) == counters(windows, member) == ["I32", "I32"], member


def test_an_error_record_counts_like_windows(wire: Wire) -> None:
    """error_record.xml: a one-statement pipeline's record carries two counters in PipelineIterationInfo."""
    ours = wire.message("cmdlet_error")
    assert counters(ours, "PipelineIterationInfo") == counters(recording("error_record.xml"),
                                                               "PipelineIterationInfo") == ["I32", "I32"]
    assert len(counters(ours, "InvocationInfo_PipelineIterationInfo")) == integer(
        ours, "InvocationInfo_PipelineLength") + 1
