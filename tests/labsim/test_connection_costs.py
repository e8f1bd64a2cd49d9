"""labsim's connection-cost model and wire counters: a runspace pool open and a pipeline cost what
``settings.connection_cost_factor`` says, and both are counted per host in the state, so a client's session reuse
shows in figures (benchmarks/lab_scale.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsim.hosts.latency import connection_cost
from labsim.server import LabServer
from labsim.testing import simulated_lab
from providers.transport import Command, HostConnection, PsrpTransport, SessionCache
from tests.lab_state import lab_state

pytestmark = pytest.mark.sim

HOST = "wapcomputer1"


def connect(server: LabServer) -> HostConnection:
    host = server.lab.host(HOST)
    address, port = server.endpoint(HOST)
    return HostConnection(fqdn=host.fqdn, address=address, port=port, auth="ntlm", username=host.users[0].name,
                          password=host.users[0].password, ca_file=str(server.ca_file))


@pytest.mark.parametrize("factor", [0.0, 0.5])
def test_pool_opens_and_pipelines_are_counted_and_charged(tmp_path: Path, factor: float,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import labsim.server

    charged: list[tuple[str, float]] = []  # what the hosts waited for, in order (the waits themselves are real)

    def cost(kind: str, factor: float) -> float:
        seconds = connection_cost(kind, factor)
        charged.append((kind, seconds))
        return seconds

    monkeypatch.setattr(labsim.server, "connection_cost", cost)
    with simulated_lab(tmp_path, connection_cost_factor=factor) as server:
        cache = SessionCache()
        transport = PsrpTransport(cache)
        conn = connect(server)
        try:
            for _ in range(3):
                transport.run(conn, "read", Command("Get-ChildItem", {"Path": r"C:\\"}))
        finally:
            cache.close_all()
        name = server.lab.host(HOST).name
        counts = lab_state(server).wire_counts()
        assert counts == {name: {"pool_open": 1, "pipeline": 3}}
        assert len(lab_state(server).invocations(name)) == 3  # one command per pipeline here
        if factor:  # the open: about a second on Windows; then, reused, the pipeline cost only
            assert charged == [("pool_open", 1.0 * factor)] + [("pipeline", 0.03 * factor)] * 3
        else:
            assert charged == []
