"""PipelineIterationInfo in labsim's records, against the recorded Windows exchanges: one counter per pipeline
position plus one, as many as Windows sends for a pipeline of the same length. A client that indexes the list by
position (as PowerShell's own formatting does) needs the length, not only the member's presence."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from pypsrp.powershell import PowerShell, RunspacePool

from labsim.wsman import WSManService
from tests.conformance.clixml_shape import recording
from tests.conformance.test_wire_conformance import (
    ERROR_RECORD,
    PEP,
    VERBOSE_RECORD,
    WAP,
    _command_messages,
    _run,
    _wsman,
    lab_runtime,  # noqa: F401 - the module's lab, a fixture
)

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(120)]


def counters(xml: str | bytes, member: str) -> list[str]:
    root = ET.fromstring(xml.decode("utf-8-sig") if isinstance(xml, bytes) else xml.strip())
    lst = root.find(f"MS/Obj[@N='{member}']/LST")
    assert lst is not None, f"{member} has no list"
    return [el.tag for el in lst]


def integer(xml: str | bytes, member: str) -> int:
    root = ET.fromstring(xml.decode("utf-8-sig") if isinstance(xml, bytes) else xml.strip())
    return int(root.find(f"MS/I32[@N='{member}']").text)


def test_a_verbose_record_counts_like_windows(lab_runtime):  # noqa: F811
    service = WSManService(PEP, PEP + ".azurestack.local", lab_runtime, privileged_endpoint=True,
                           operation_timeout=2.0)
    try:
        wsman, transport = _wsman(service, "AZURESTACK\\CloudAdmin")
        with RunspacePool(wsman, configuration_name="PrivilegedEndpoint") as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Add-AzurePackConnector").add_parameter("DisableMultiCloud", True)
            ps.invoke()
    finally:
        service.close()
    [ours, *_] = _command_messages(transport, VERBOSE_RECORD)
    windows = recording("verbose_record.xml")
    # The same pipeline length as the recording's, so the same number of counters, all Int32.
    assert integer(ours, "InvocationInfo_PipelineLength") == integer(windows, "InvocationInfo_PipelineLength") == 1
    for member in ("InvocationInfo_PipelineIterationInfo", "InformationalRecord_PipelineIterationInfo"):
        assert counters(ours, member) == counters(windows, member) == ["I32", "I32"], member


def test_an_error_record_counts_like_windows(lab_runtime):  # noqa: F811
    """error_record.xml: a one-statement pipeline's record carries two counters in PipelineIterationInfo."""
    service = WSManService(WAP, WAP + ".contoso.local", lab_runtime, operation_timeout=2.0)
    try:
        wsman, transport = _wsman(service, "CONTOSO\\WapAdmin")
        with RunspacePool(wsman) as pool:
            _run(pool, "Get-Item", Path="C:\\missing")
    finally:
        service.close()
    [ours] = _command_messages(transport, ERROR_RECORD)
    assert counters(ours, "PipelineIterationInfo") == counters(recording("error_record.xml"),
                                                               "PipelineIterationInfo") == ["I32", "I32"]
    assert len(counters(ours, "InvocationInfo_PipelineIterationInfo")) == integer(
        ours, "InvocationInfo_PipelineLength") + 1
