"""Helpers for provider tests against labsim: an administrator's out-of-band change, the lab's invocation log,
command faults (conftest.py's ``labsim`` fixture gives a module-scoped LabServer on the default lab).

    from tests.providers.labsim_helpers import sim_a, admin, invocations, last_id  # noqa: F401 (fixture)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from providers.remote import use_transport
from providers.transport import HostConnection


@pytest.fixture
def sim_a(labsim) -> Iterator[Any]:
    """Provider methods talk to labsim over loopback through the real PsrpTransport (fresh session cache)."""
    from providers.transport import PsrpTransport, SessionCache

    cache = SessionCache()
    with use_transport(PsrpTransport(cache)) as t:
        yield t
    labsim.runtime.state.clear_faults()
    cache.close_all()


def conn_dict(server: Any, host: str, **overrides: Any) -> dict[str, Any]:
    from tests.providers.conftest import host_connection

    return host_connection(server, host, **overrides)


def admin(server: Any, host: str, step: str, statements: Any, **kw: Any) -> Any:
    """An administrator's out-of-band change, over PSRP with structured commands, on its own session."""
    from providers.transport import PsrpTransport, SessionCache

    cache = SessionCache()
    try:
        return PsrpTransport(cache).run(HostConnection.parse(conn_dict(server, host)), f"admin: {step}", statements,
                                        **kw)
    finally:
        cache.close_all()


def invocations(server: Any, host: str, command: str | None = None, since: int = 0) -> list[dict[str, Any]]:
    return [i for i in server.runtime.state.invocations(server.lab.host(host).name, command) if i["id"] > since]


def last_id(server: Any) -> int:
    return max([i["id"] for i in server.runtime.state.invocations()] + [0])


def all_invocations_text(server: Any) -> str:
    return json.dumps(server.runtime.state.invocations())


def set_fault(server: Any, host: str, kind: str, command: str) -> None:
    from labsim.runtime import Fault

    server.runtime.state.set_fault(Fault(host=server.lab.host(host).name, kind=kind, command=command))


def clear_faults(server: Any, host: str) -> None:
    server.runtime.state.clear_faults(server.lab.host(host).name)


def params(invocation: dict[str, Any]) -> dict[str, Any]:
    """An invocation record's parameters (recorded as [name, redacted value] pairs) as a dict."""
    return {n: v for n, v in invocation["parameters"]}
