"""labsim against recorded Windows exchanges, aspect by aspect (``aspects.py`` lists them with their recordings;
``wire.py`` drives labsim through the same exchanges with the same pypsrp client). An aspect labsim does not match
yet is expected to fail, with its reason: when labsim comes to match it, that test fails until the list says so.
"""

from __future__ import annotations

import os

import pytest

from labsim.records import exception_types

from .aspects import ASPECTS, Aspect
from .wire import Wire, capture

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def shared_wire(tmp_path_factory: pytest.TempPathFactory) -> Wire:
    return capture(tmp_path_factory.mktemp("conformance"))


@pytest.fixture
def wire(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Wire:
    """The module's one capture; a capture of its own per test while mutmut learns which tests call which labsim
    function (it credits a call to the test running when it happens, and the module's capture happens in the first
    test alone: every other aspect would go unrun against a labsim mutant)."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        return capture(tmp_path_factory.mktemp("conformance"))
    wire: Wire = request.getfixturevalue("shared_wire")
    return wire


def _param(a: Aspect) -> pytest.ParameterSet:
    marks = [pytest.mark.xfail(strict=True, reason=a.differs)] if a.differs else []
    return pytest.param(a, id=a.name, marks=marks)


@pytest.mark.parametrize("aspect", [_param(a) for a in ASPECTS])
def test_aspect(aspect: Aspect, wire: Wire) -> None:
    aspect.check(wire)


def test_aspect_names_are_unique_and_name_their_recordings() -> None:
    from .clixml_shape import RECORDINGS

    assert len({a.name for a in ASPECTS}) == len(ASPECTS)
    for a in ASPECTS:
        for name in a.recording.split(","):
            text = (RECORDINGS / name).read_text(encoding="utf-8")
            assert text.startswith("<!-- source: jborean93/pypsrp tests/responses/"), name


def test_cmdlet_error_record_values_a_client_reads(wire: Wire) -> None:
    """The values the providers act on, as Windows fills them for Get-Item on a missing path."""
    [err] = wire.errors["cmdlet"]
    assert (err.target_name, err.target_type) == ("C:\\missing", "String")
    assert err.command_name == "Get-Item"
    assert err.fq_error == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    assert err.exception.types[:4] == ["System.Management.Automation.ItemNotFoundException",
                                       "System.Management.Automation.SessionStateException",
                                       "System.Management.Automation.RuntimeException",
                                       "System.SystemException"]
    assert err.exception.adapted_properties["ItemName"] == "C:\\missing"
    assert err.exception.adapted_properties["WasThrownFromThrowStatement"] is False


def test_exceptions_outside_powershell_have_no_runtime_exception_in_their_chain() -> None:
    # As the recording's WriteErrorException: a plain SystemException.
    assert "System.Management.Automation.RuntimeException" not in exception_types("System.IO.IOException")
    assert "System.Management.Automation.RuntimeException" not in exception_types(
        "System.ComponentModel.Win32Exception")
    assert exception_types("Microsoft.PowerShell.Commands.WriteErrorException") == [
        "Microsoft.PowerShell.Commands.WriteErrorException", "System.SystemException", "System.Exception",
        "System.Object"]


def test_every_recording_comes_from_the_exchange_extracts_toml_names() -> None:
    from .extract import EXTRACTS, RECORDINGS

    assert sorted(e.name for e in EXTRACTS) == sorted(p.name for p in RECORDINGS.glob("*.xml"))
    for e in EXTRACTS:
        first, second = (RECORDINGS / e.name).read_text(encoding="utf-8").splitlines()[:2]
        assert first.startswith(f"<!-- source: jborean93/pypsrp tests/responses/{e.source} "), e.name
        assert first.endswith(f", exchange {e.exchange}:"), e.name
        assert second.strip().startswith(e.what + "."), e.name
        if e.message_type is not None:
            assert f"message type 0x{e.message_type:08X}" in second, e.name
