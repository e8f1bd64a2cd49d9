"""Fixtures shared by the reliability tests that switch faults on in labsim."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labsim.server import LabServer


@pytest.fixture(scope="module")
def fault_poll_seconds() -> float:
    """How often the module's labsim reads its fault table (labsim's own default is 0.2 s); a module that switches
    faults hundreds of times overrides it."""
    return 0.05


@pytest.fixture(scope="module")
def lab(labsim: LabServer, fault_poll_seconds: float) -> Iterator[LabServer]:
    """The module's labsim, polling its fault table every ``fault_poll_seconds``, so that a fault switched on or
    off takes effect before the next command."""
    import labsim.server as lab_server

    poll, lab_server.FAULT_POLL_SECONDS = lab_server.FAULT_POLL_SECONDS, fault_poll_seconds
    try:
        yield labsim
    finally:
        lab_server.FAULT_POLL_SECONDS = poll
