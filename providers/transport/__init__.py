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

The modules are private; this face is the API. By job: ``_base`` (the protocol and the rules every transport
shares), ``_commands`` (what a caller passes), ``_connection`` (how to reach a host), ``_result`` (what comes
back), ``_fake`` (the in-memory transport), and the real one: ``_psrp`` (PsrpTransport), ``_sessions`` (the
session pool), ``_wire`` (values and pipelines to and from pypsrp), ``_errors`` (error translation), ``_retry``
(what is sent again, and when).

The conversions at the boundary are public too, so they can be checked on their own: ``to_statements`` and
``secrets_in`` (what a caller passes -> pipelines, and the secrets in them), ``to_wire`` / ``to_plain`` (Python
values <-> what pypsrp serializes / deserializes), ``error_info`` and ``translate`` (pypsrp's error records and
exceptions -> ``ErrorRecordInfo`` and the project's errors), ``make_wsman`` (the pypsrp WSMan for a connection).
The real transport's names load pypsrp on first use, so importing this package (the fake, the commands) does
not; constructing a ``PsrpTransport`` keeps pypsrp's loggers at INFO or above, whatever the root logger says.
"""

import importlib
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
    "locate_ca_file", "make_wsman", "process_sessions",
    "secrets_in", "to_plain", "to_statements", "to_wire", "translate",
]

# The real transport's names and their modules: pypsrp (and requests) load only when one is used.
_REAL = {"PsrpTransport": "_psrp", "SessionCache": "_sessions", "make_wsman": "_sessions",
         "process_sessions": "_sessions", "error_info": "_wire", "to_wire": "_wire", "translate": "_errors"}


def __getattr__(name: str) -> Any:
    if name in _REAL:
        return getattr(importlib.import_module(f".{_REAL[name]}", __name__), name)
    raise AttributeError(name)
