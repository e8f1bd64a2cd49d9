"""The transport boundary: run structured commands on a Windows host, get objects and streams back.

    from providers.transport import Command, HostConnection, PsrpTransport

    conn = HostConnection(fqdn="wap01.contoso.local", address="127.0.10.4", auth="ntlm",
                          username="CONTOSO\\\\admin", password="...", ca_pem=Path("lab-ca.pem").read_text())
    site = PsrpTransport().run(conn, "read connector site",
                               Command("Get-Website", {"Name": "MgmtSvc-Connector"})
                               | Command("ConvertTo-Json", {"Depth": 4}, ["Compress"]),
                               idempotent=True).json()

Providers take a ``Transport`` (the protocol) so unit tests pass a ``FakeTransport``. Only this package
imports pypsrp; its errors never escape (see ``providers.errors``). No PowerShell text is ever built.

The conversions at the boundary are public too, so they can be checked on their own: ``to_statements`` and
``secrets_in`` (what a caller passes -> pipelines, and the secrets in them), ``to_wire`` / ``to_plain`` (Python
values <-> what pypsrp serializes / deserializes), ``error_info`` and ``translate`` (pypsrp's error records and
exceptions -> ``ErrorRecordInfo`` and the project's errors), ``make_wsman`` (the pypsrp WSMan for a connection).
Importing the real transport also keeps pypsrp's loggers at INFO or above, whatever the root logger says.
"""

from typing import Any

from ._base import Transport, VerbosePredicate
from ._commands import Command, Credential, Pipeline, Secret, Statements, describe, secrets_in, to_statements
from ._connection import PRIVILEGED_ENDPOINT, Auth, HostConnection, comparable_settings, locate_ca_file
from ._fake import Call, Failure, FakeTransport
from ._result import ErrorRecordInfo, Output, Result, to_plain

__all__ = [
    "PRIVILEGED_ENDPOINT", "Auth", "Call", "Command", "Credential", "ErrorRecordInfo", "Failure",
    "FakeTransport", "HostConnection", "Output", "Pipeline", "PsrpTransport", "Result", "Secret", "Statements",
    "SessionCache", "Transport", "VerbosePredicate", "comparable_settings", "describe", "error_info",
    "locate_ca_file", "make_wsman",
    "secrets_in", "to_plain", "to_statements", "to_wire", "translate",
]

_REAL = ("PsrpTransport", "SessionCache", "error_info", "make_wsman", "to_wire", "translate")


def __getattr__(name: str) -> Any:
    # pypsrp (and requests, cryptography) load only when the real transport is used.
    if name in _REAL:
        from . import _psrp
        return getattr(_psrp, name)
    raise AttributeError(name)
