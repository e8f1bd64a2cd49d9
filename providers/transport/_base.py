"""The transport interface, and the rules every implementation shares (error checking, scrubbing, statement
boundaries, matching the verbose stream)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, Union

from ..errors import RemoteCommandFailed
from ._commands import Pipeline, Statements, describe
from ._connection import PRIVILEGED_ENDPOINT, HostConnection
from ._result import ErrorRecordInfo, Result

__all__ = ["VerbosePredicate", "Transport", "check_errors", "matcher", "scrub", "statement_boundary"]

VerbosePredicate = Union[str, "re.Pattern[str]", Callable[[str], bool]]


class Transport(Protocol):  # pragma: no mutate block - declarations only: a Protocol's bodies never run
    """Run structured commands on a host; get objects and streams back.

    Both methods raise only :mod:`providers.errors` errors: RemoteCommandFailed when the pipeline ends Failed
    or writes error records (unless ``accept_errors``), StepTimedOut when ``timeout`` passes, the
    TransportError family when the host cannot be talked to."""

    def run(self, conn: HostConnection, step: str, statements: Statements, *, input: Sequence[Any] | None = None,
            timeout: float | None = None, idempotent: bool = False, accept_errors: bool = False) -> Result:
        """Run ``statements`` (one command, a pipeline, or several statements) in one remote pipeline.

        ``step`` names the procedure step in messages; ``timeout`` is the step's default budget (the host's
        ``step_timeouts[step]`` overrides it); ``idempotent`` allows bounded retries of transient failures
        (reads, converging writes); ``accept_errors`` returns non-terminating error records in
        ``Result.errors`` instead of raising."""
        ...

    def run_until(self, conn: HostConnection, step: str, statements: Statements,
                  verbose_predicate: VerbosePredicate, timeout: float | None = None, *,
                  accept_errors: bool = False) -> Result:
        """Start ``statements`` and watch the verbose stream; as soon as a record matches
        ``verbose_predicate`` (a substring, a compiled regex or a function), stop the pipeline and return
        (``Result.stopped`` is True when it was still running). If the pipeline ends first without a match,
        raise RemoteCommandFailed; if ``timeout`` passes, stop it and raise StepTimedOut."""
        ...


#: Written between statements so that each statement's output comes back apart (``Result.outputs``).
BOUNDARY_PREFIX = "wapconnector:end-of-statement:"


def statement_boundary(conn: HostConnection, pipelines: Sequence[Pipeline]) -> str | None:
    """The text that separates the statements' outputs of one call (a fresh one per call, so no output object
    can match it by chance); None for one statement. The privileged endpoint (a NoLanguage JEA endpoint without
    Write-Output) takes one statement per call."""
    if len(pipelines) <= 1:
        return None
    if conn.configuration_name == PRIVILEGED_ENDPOINT:
        raise ValueError(f"{conn.fqdn}: the {PRIVILEGED_ENDPOINT} endpoint runs one statement per call, got "
                         f"{len(pipelines)}")
    return BOUNDARY_PREFIX + uuid.uuid4().hex


def matcher(predicate: VerbosePredicate) -> Callable[[str], bool]:
    if isinstance(predicate, str):
        return lambda line: predicate in line
    if isinstance(predicate, re.Pattern):
        return lambda line: predicate.search(line) is not None
    if callable(predicate):
        return predicate
    raise TypeError("verbose_predicate is a str, a compiled regex or a function of one str")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask every secret that was sent, should the host echo one back in a message."""
    for s in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(s, "****")
    return text


def check_errors(conn: HostConnection, step: str, statements: Statements, errors: list[ErrorRecordInfo],
                 *, failed: bool, accept_errors: bool, secrets: Iterable[str] = ()) -> None:
    """Raise RemoteCommandFailed for a Failed pipeline (always) or error records (unless accepted).

    For a Failed pipeline the terminating error is the last record; otherwise report the first one."""
    if not failed and (accept_errors or not errors):
        return
    secrets = list(secrets)
    if errors:
        record = errors[-1] if failed else errors[0]
    else:
        record = ErrorRecordInfo(message="the pipeline failed without an error record")
    raise RemoteCommandFailed(
        conn.fqdn, step, command=scrub(describe(statements), secrets), message=scrub(record.message, secrets),
        error_id=record.error_id or None, category=record.category, terminating=failed,
        more_errors=len(errors) - 1 if errors else 0,
        target=scrub(record.target, secrets) if record.target else None, failed_command=record.command)
