"""labsim's hosts behind a running server, and their state database, where tests read the invocation log and switch
faults on and off."""

from __future__ import annotations

from labsim.hosts import LabRuntime
from labsim.server import LabServer
from labsim.state import LabState


def lab_runtime(server: LabServer) -> LabRuntime:
    assert isinstance(server.runtime, LabRuntime), "this lab runs another runtime than labsim's hosts"
    return server.runtime


def lab_state(server: LabServer) -> LabState:
    return lab_runtime(server).state
