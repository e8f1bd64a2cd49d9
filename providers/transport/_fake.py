"""An in-memory transport for unit tests of resources (like httpx's MockTransport).

    transport = FakeTransport({
        "Get-Website -Name 'MgmtSvc-Connector' | ConvertTo-Json -Depth 4 -Compress": ['{"state":"Started"}'],
        "Remove-Website -Name 'MgmtSvc-Connector'": Failure("no such site", error_id="NoWebsiteFound"),
    })
    # or: FakeTransport(lambda call: Result(output=[...]))

Keys are the display form of the commands (``describe()``; secrets show as '****') or Command/Pipeline
objects. Responses are a Result (``outputs``: one per statement of the call), a list (the output of a
one-statement call), a Failure (a terminating error), a ConnectorError
instance (raised as is), or a function of the Call returning one of those. Error records in a Result and
Failures go through the same checks as the real transport, so providers see the same errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConnectorError, RemoteCommandFailed, StepTimedOut
from ._base import VerbosePredicate, check_errors, matcher, statement_boundary
from ._commands import Pipeline, Statements, describe, secrets_in, to_statements
from ._connection import HostConnection
from ._result import ErrorRecordInfo, Result

__all__ = ["Call", "Failure", "FakeTransport"]


@dataclass(frozen=True)
class Failure:
    """A response that ends the pipeline Failed, like a terminating error on the host."""

    message: str
    error_id: str = ""
    category: str = "NotSpecified"
    # Records written before the failure (non-terminating errors).
    errors: Sequence[ErrorRecordInfo] = ()


@dataclass(frozen=True)
class Call:
    """One recorded call."""

    host: str
    step: str
    statements: tuple[Pipeline, ...]
    kind: str = "run"  # or "run_until"
    input: tuple[Any, ...] | None = None
    timeout: float | None = None
    idempotent: bool = False
    conn: HostConnection | None = field(default=None, compare=False, repr=False)

    @property
    def command(self) -> str:
        """Display form (secrets masked), the same string table keys use."""
        return describe(self.statements)

    @property
    def names(self) -> list[str]:
        """Command names in order, for quick assertions."""
        return [c.name for p in self.statements for c in p.commands]


Response = Any
Handler = Callable[[Call], Response]


class FakeTransport:
    """Answers from a handler function or a table; records every call in ``calls`` (thread-safe)."""

    def __init__(self, responses: Handler | Mapping[Any, Response] | None = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._handler: Handler | None = None
        self._table: dict[str, Response] = {}
        if callable(responses):
            self._handler = responses
        elif responses is not None:
            for key, value in responses.items():
                self.expect(key, value)

    def expect(self, statements: str | Statements, response: Response) -> FakeTransport:
        key = statements if isinstance(statements, str) else describe(statements)
        with self._lock:
            self._table[key] = response
        return self

    @property
    def commands(self) -> list[str]:
        """Display forms of every call so far."""
        with self._lock:
            return [c.command for c in self.calls]

    # -- Transport --------------------------------------------------------------------------------------------
    def run(self, conn: HostConnection, step: str, statements: Statements, *, input: Sequence[Any] | None = None,
            timeout: float | None = None, idempotent: bool = False, accept_errors: bool = False) -> Result:
        call = self._record(conn, step, statements, "run", input, timeout, idempotent)
        result = self._respond(call)
        check_errors(conn, step, call.statements, result.errors, failed=False, accept_errors=accept_errors,
                     secrets=secrets_in(call.statements))
        return result

    def run_until(self, conn: HostConnection, step: str, statements: Statements,
                  verbose_predicate: VerbosePredicate, timeout: float | None = None, *,
                  accept_errors: bool = False) -> Result:
        match = matcher(verbose_predicate)
        call = self._record(conn, step, statements, "run_until", None, timeout, False)
        result = self._respond(call)
        # The real transport stops at the first matching verbose record: what came after is never seen.
        for i, line in enumerate(result.verbose):
            if match(line):
                check_errors(conn, step, call.statements, result.errors, failed=False,
                             accept_errors=accept_errors, secrets=secrets_in(call.statements))
                return Result(outputs=result.outputs, errors=result.errors, verbose=result.verbose[: i + 1],
                              warnings=result.warnings, information=result.information, stopped=True)
        if result.stopped:  # the test says: the pipeline never finished and never printed the line
            raise StepTimedOut(conn.fqdn, step, seconds=conn.timeout_for(step, timeout),
                               waiting_for="print the expected verbose line", command=call.command)
        check_errors(conn, step, call.statements, result.errors, failed=False, accept_errors=accept_errors)
        raise RemoteCommandFailed(conn.fqdn, step, command=call.command,
                                  message="the command finished without printing the expected verbose line")

    # -- internals --------------------------------------------------------------------------------------------
    def _record(self, conn: HostConnection, step: str, statements: Statements, kind: str,
                input: Sequence[Any] | None, timeout: float | None, idempotent: bool) -> Call:
        if not isinstance(conn, HostConnection):
            raise TypeError("conn must be a HostConnection")
        pipelines = to_statements(statements)
        statement_boundary(conn, pipelines)  # the same refusal as the real transport's
        call = Call(conn.fqdn, step, pipelines, kind,
                    tuple(input) if input is not None else None, timeout, idempotent, conn)
        with self._lock:
            self.calls.append(call)
        return call

    def _respond(self, call: Call) -> Result:
        if self._handler is not None:
            response = self._handler(call)
        else:
            with self._lock:
                if call.command not in self._table:
                    known = "\n  ".join(self._table) or "(none)"
                    raise AssertionError(f"FakeTransport: unexpected command on {call.host} (step "
                                         f"'{call.step}'):\n  {call.command}\nexpected one of:\n  {known}")
                response = self._table[call.command]
        if callable(response) and not isinstance(response, (Result, Failure, ConnectorError)):
            response = response(call)
        if isinstance(response, ConnectorError):
            raise response
        if isinstance(response, Failure):
            records = [*response.errors, ErrorRecordInfo(response.message, response.error_id, response.category)]
            conn = call.conn
            assert conn is not None
            check_errors(conn, call.step, call.statements, records, failed=True, accept_errors=False,
                         secrets=secrets_in(call.statements))
        count = len(call.statements)
        if response is None:
            return Result(outputs=[[] for _ in range(count)])
        if isinstance(response, list):
            response = Result(output=response)
        if isinstance(response, Result):
            if len(response.outputs) == count:
                return response
            if not any(response.outputs):  # no output at all: any number of statements wrote nothing
                return Result(outputs=[[] for _ in range(count)], errors=response.errors, verbose=response.verbose,
                              warnings=response.warnings, information=response.information,
                              stopped=response.stopped)
            raise TypeError(f"FakeTransport: the call ran {count} statement(s); answer with Result(outputs=[...]), "
                            f"one output per statement (got {len(response.outputs)})")
        raise TypeError(f"FakeTransport: cannot answer with {type(response).__name__}")
