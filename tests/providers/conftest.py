"""Shared labsim fixtures for provider tests (sim tier): a lab on free loopback addresses per test module, and
helpers that turn a lab host into the ``connection`` dict a resource takes.

    def test_x(labsim):                      # module-scoped LabServer on the default lab
        conn = host_connection(labsim, "wapcomputer1")
        pep = host_connection(labsim, "AzS-ERCS01")        # credssp + PrivilegedEndpoint

A module that needs other lab settings starts its own: ``with lab_server(tmp, pep_polling_seconds=30) as s``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PEP_ROLE = "privileged_endpoint"
# Small by default: a test that must prove Add-AzurePackConnector returns at its success line sets it high.
DEFAULT_PEP_POLLING_SECONDS = 3.0


@contextlib.contextmanager
def lab_server(state_dir: Path, **settings: Any) -> Iterator[Any]:
    """labsim's default lab on free loopback addresses with ``settings`` (LabSettings fields) applied."""
    from labsim.hosts import LabRuntime
    from labsim.lab import DEFAULT_LAB, Lab, load_lab
    from labsim.testing import free_loopback_lab, start_labsim

    data = free_loopback_lab(load_lab(DEFAULT_LAB)).model_dump(mode="json")
    data.setdefault("settings", {}).update({"pep_polling_seconds": DEFAULT_PEP_POLLING_SECONDS, **settings})
    lab = Lab.model_validate(data)
    with start_labsim(lab, LabRuntime.open, state_dir) as server:
        yield server


@pytest.fixture(scope="module")
def labsim(tmp_path_factory) -> Iterator[Any]:
    with lab_server(tmp_path_factory.mktemp("labsim")) as server:
        yield server


def host_connection(server: Any, host: str, **overrides: Any) -> dict[str, Any]:
    """The connection dict of a lab host (its first user, https with the lab CA). The privileged endpoint gets
    CredSSP and the PrivilegedEndpoint configuration, as the seed reaches it."""
    h = server.lab.host(host)
    address, port = server.endpoint(host)
    user = h.users[0]
    conn: dict[str, Any] = {"fqdn": h.fqdn, "address": address, "port": port, "https": True,
                            "ca_file": str(server.ca_file), "auth": "ntlm", "username": user.name,
                            "password": user.password, "operation_timeout": 5, "read_timeout": 15,
                            "connect_timeout": 5}
    if any(str(getattr(r, "value", r)) == PEP_ROLE for r in h.roles):
        conn.update(auth="credssp", configuration_name="PrivilegedEndpoint")
    conn.update(overrides)
    return conn


def stage_bundle(server: Any, host: str, root: str = r"C:\temp\WAPConnector") -> None:
    """Put labsim's fake WAPConnector bundle on a host's disk directly in the lab state (what ConnectorBundle
    does over the wire), for tests of the resources that run its scripts."""
    import tempfile

    from labsim.hosts.wapconnector import make_bundle

    name = server.lab.host(host).name
    with tempfile.TemporaryDirectory() as tmp:
        local = make_bundle(tmp)
        with server.runtime.state.tx() as tx:
            parts = root.split("\\")
            for i in range(2, len(parts) + 1):
                tx.make_dir(name, "\\".join(parts[:i]))
            for path in sorted(local.rglob("*")):
                target = root + "\\" + "\\".join(path.relative_to(local).parts)
                if path.is_dir():
                    tx.make_dir(name, target)
                else:
                    tx.write_file(name, target, path.read_bytes())
