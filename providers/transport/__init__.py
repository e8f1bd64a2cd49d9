"""The transport boundary: run structured commands on a Windows host, get objects and streams back.

    from providers.transport import Command, HostConnection, PsrpTransport

    conn = HostConnection(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm",
                          username="CONTOSO\\\\admin", password="...", ca_file="lab-ca.pem")
    site = PsrpTransport().run(conn, "read connector site",
                               Command("Get-Website", {"Name": "MgmtSvc-Connector"})
                               | Command("ConvertTo-Json", {"Depth": 4}, ["Compress"]),
                               idempotent=True).json()

Providers take a ``Transport`` (the protocol) so unit tests pass a ``FakeTransport``. Only this package
imports pypsrp; its errors never escape (see ``providers.errors``). No PowerShell text is ever built.
"""

from typing import Any

from ._base import Transport, VerbosePredicate
from ._commands import Command, Credential, Pipeline, Secret, Statements, describe
from ._connection import PRIVILEGED_ENDPOINT, Auth, HostConnection
from ._fake import Call, Failure, FakeTransport
from ._result import ErrorRecordInfo, Output, Result

__all__ = [
    "PRIVILEGED_ENDPOINT", "Auth", "Call", "Command", "Credential", "ErrorRecordInfo", "Failure",
    "FakeTransport", "HostConnection", "Output", "Pipeline", "PsrpTransport", "Result", "Secret", "Statements",
    "Transport", "VerbosePredicate", "describe",
]


def __getattr__(name: str) -> Any:
    # pypsrp (and requests, cryptography) load only when the real transport is used.
    if name in ("PsrpTransport", "SESSIONS", "SessionCache"):
        from . import _psrp
        return getattr(_psrp, name)
    raise AttributeError(name)
