"""The state database of a running labsim, where tests read the invocation log and switch faults on and off."""

from __future__ import annotations

from labsim.hosts import LabRuntime
from labsim.server import LabServer
from labsim.state import LabState


def lab_state(server: LabServer) -> LabState:
    assert isinstance(server.runtime, LabRuntime), "this lab runs another runtime than labsim's hosts"
    return server.runtime.state
