"""Fixtures shared by the reliability tests that switch faults on in labsim."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labsim.server import LabServer


@pytest.fixture(scope="module")
def lab(labsim: LabServer) -> Iterator[LabServer]:
    """The module's labsim, polling its fault table every 0.05 s (default 0.2 s), so that a fault switched on or
    off takes effect before the next command."""
    import labsim.server as lab_server

    poll, lab_server.FAULT_POLL_SECONDS = lab_server.FAULT_POLL_SECONDS, 0.05
    try:
        yield labsim
    finally:
        lab_server.FAULT_POLL_SECONDS = poll
