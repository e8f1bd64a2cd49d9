"""Helpers for provider tests against labsim: an administrator's out-of-band change, the lab's invocation log,
command faults (the ``labsim`` and ``sim`` fixtures are in tests/conftest.py).

    from tests.providers.labsim_helpers import admin, invocations, last_id
"""

from __future__ import annotations

import json
from typing import Any

from providers.transport import HostConnection
from tests.lab_state import lab_state


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
    return [i for i in lab_state(server).invocations(server.lab.host(host).name, command) if i["id"] > since]


def last_id(server: Any) -> int:
    return max([i["id"] for i in lab_state(server).invocations()] + [0])


def all_invocations_text(server: Any) -> str:
    return json.dumps(lab_state(server).invocations())


def set_fault(server: Any, host: str, kind: str, command: str) -> None:
    from labsim.runtime import Fault

    lab_state(server).set_fault(Fault(host=server.lab.host(host).name, kind=kind, command=command))


def clear_faults(server: Any, host: str) -> None:
    lab_state(server).clear_faults(server.lab.host(host).name)


def params(invocation: dict[str, Any]) -> dict[str, Any]:
    """An invocation record's parameters (recorded as [name, redacted value] pairs) as a dict."""
    return {n: v for n, v in invocation["parameters"]}
