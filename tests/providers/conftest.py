"""Helpers that turn a labsim host into the ``connection`` dict a resource takes, and put the WAPConnector bundle
on a host's disk. The ``labsim`` and ``sim`` fixtures are in tests/conftest.py.

    conn = host_connection(labsim, "wapcomputer1")
    pep = host_connection(labsim, "AzS-ERCS01")        # credssp + PrivilegedEndpoint
"""

from __future__ import annotations

from typing import Any

from tests.lab_state import lab_state

PEP_ROLE = "privileged_endpoint"


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
        with lab_state(server).tx() as tx:
            parts = root.split("\\")
            for i in range(2, len(parts) + 1):
                tx.make_dir(name, "\\".join(parts[:i]))
            for path in sorted(local.rglob("*")):
                target = root + "\\" + "\\".join(path.relative_to(local).parts)
                if path.is_dir():
                    tx.make_dir(name, target)
                else:
                    tx.write_file(name, target, path.read_bytes())
