"""PsrpTransport: the Transport over pypsrp 0.9.1. One call = one remote pipeline on a session of its
``SessionCache`` (:mod:`._sessions`); commands become pypsrp objects and results come back through :mod:`._wire`;
errors are translated by :mod:`._errors`; what is sent again, and when, is :mod:`._retry`'s rule.

pypsrp logs whole WSMan messages at DEBUG: every PsrpTransport keeps pypsrp's loggers (and those of the auth
libraries) at INFO or above, whatever the root logger says. Importing this module changes no logger.
"""

from __future__ import annotations

import atexit
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell

from .. import progress
from ..errors import ConnectorError, RemoteCommandFailed, StepTimedOut
from ._base import VerbosePredicate, check_errors, matcher, scrub, statement_boundary
from ._commands import Pipeline, Statements, describe, secrets_in, to_statements
from ._connection import HostConnection
from ._errors import translate
from ._result import Result
from ._retry import may_resend, retrying
from ._sessions import Session, SessionCache, close_at_exit
from ._wire import build, needs_key_exchange, read_result, to_wire

__all__ = ["PsrpTransport"]

log = logging.getLogger("providers.transport")


def _quiet_wire_loggers() -> None:
    """Never let a root logger at DEBUG turn on pypsrp's message dumps (called by every PsrpTransport)."""
    for name in ("pypsrp", "requests_credssp", "spnego"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


class PsrpTransport:
    """The Transport over pypsrp; its sessions live in ``cache``. Without one it makes its own and deletes those
    shells when the process exits; a caller that passes a cache closes it itself."""

    def __init__(self, cache: SessionCache | None = None, *, retries: int = 2, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        _quiet_wire_loggers()
        if cache is None:
            cache = SessionCache()
            atexit.register(close_at_exit, cache)
        self.cache = cache
        self.retries = retries  # extra attempts for idempotent steps
        self.backoff = backoff
        self._sleep = sleep

    def run(self, conn: HostConnection, step: str, statements: Statements, *, input: Sequence[Any] | None = None,
            timeout: float | None = None, idempotent: bool = False, accept_errors: bool = False) -> Result:
        pipelines = to_statements(statements)
        budget = conn.timeout_for(step, timeout)
        deadline = time.monotonic() + budget
        return retrying(lambda: self._run_once(conn, step, pipelines, input, deadline, budget, accept_errors,
                                               reopen_on_lost=idempotent),
                        host=conn.fqdn, step=step, idempotent=idempotent, retries=self.retries,
                        backoff=self.backoff, deadline=deadline, sleep=self._sleep)

    def run_until(self, conn: HostConnection, step: str, statements: Statements,
                  verbose_predicate: VerbosePredicate, timeout: float | None = None, *,
                  accept_errors: bool = False) -> Result:
        pipelines = to_statements(statements)
        budget = conn.timeout_for(step, timeout)
        return self._run_once(conn, step, pipelines, None, time.monotonic() + budget, budget, accept_errors,
                              reopen_on_lost=False, until=matcher(verbose_predicate))

    # -- one attempt -----------------------------------------------------------------------------------------
    def _run_once(self, conn: HostConnection, step: str, pipelines: tuple[Pipeline, ...], input: Any,
                  deadline: float, budget: float, accept_errors: bool, *, reopen_on_lost: bool,
                  until: Callable[[str], bool] | None = None) -> Result:
        secrets = secrets_in(pipelines) + ([conn.password.get_secret_value()] if conn.password else [])
        command_text = scrub(describe(pipelines), secrets)
        started = time.monotonic()
        report = progress.Step(conn.fqdn, step)  # live in `pulumi up` (a no-op outside the provider process)
        boundary = statement_boundary(conn, pipelines)
        session = self.cache.checkout(conn, step, read=reopen_on_lost)
        live: Session | None = session  # the session to discard if this attempt fails
        try:
            try:
                ps = self._start(session, pipelines, input, boundary)
            except Exception as exc:  # noqa: BLE001
                if not may_resend(exc, reused=session.reused, idempotent=reopen_on_lost):
                    raise
                log.info("%s: session gone (%s); reopening", conn.fqdn, type(exc).__name__)
                self.cache.discard(session)
                live = None
                session = live = self.cache.open_fresh(conn, step, read=reopen_on_lost)
                ps = self._start(session, pipelines, input, boundary)
            result, matched = self._collect(conn, step, session, ps, deadline, budget, command_text, until,
                                            report=report, secrets=secrets,
                                            split=(len(pipelines), boundary))
        except ConnectorError:
            if live is not None:
                self.cache.discard(live)
            raise
        except Exception as exc:  # noqa: BLE001 - translated: the session is no longer trustworthy
            if live is not None:
                self.cache.discard(live)
            raise translate(exc, conn, step) from exc
        self.cache.checkin(session)
        log.debug("%s, step '%s': %s in %.0f ms", conn.fqdn, step, command_text,
                  (time.monotonic() - started) * 1000)
        report.done()

        failed = ps.had_errors or ps.state == PSInvocationState.FAILED
        check_errors(conn, step, pipelines, result.errors, failed=failed and not matched,
                     accept_errors=accept_errors, secrets=secrets)
        if ps.state == PSInvocationState.STOPPED and not matched:
            raise RemoteCommandFailed(conn.fqdn, step, command=command_text,
                                      message="the pipeline was stopped on the host before it finished")
        if until is not None and not matched:
            raise RemoteCommandFailed(conn.fqdn, step, command=command_text,
                                      message="the command finished without printing the expected verbose line")
        return result

    def _start(self, session: Session, pipelines: Sequence[Pipeline], input: Any, boundary: str | None) -> PowerShell:
        if any(needs_key_exchange(v) for p in pipelines for c in p.commands for v in c.parameters.values()):
            session.pool.exchange_keys()  # SecureStrings need the session key; once per pool
        ps = build(session.pool, pipelines, boundary)
        wire_input = None if input is None else [to_wire(v) for v in input]
        # pypsrp sends a list (not a generator) as one batch of input objects; its annotation omits lists.
        ps.begin_invoke(input=wire_input if wire_input else None)  # type: ignore[arg-type]
        return ps

    def _collect(self, conn: HostConnection, step: str, session: Session, ps: PowerShell, deadline: float,
                 budget: float, command_text: str, until: Callable[[str], bool] | None, *,
                 report: progress.Step | None = None, secrets: Sequence[str] = (),
                 split: tuple[int, str | None] = (1, None)) -> tuple[Result, bool]:
        matched = False
        seen_verbose = 0
        reported = 0

        def show_progress() -> None:  # the host's new verbose lines and the elapsed time, scrubbed
            nonlocal reported
            if report is None or not report.enabled:
                return
            for record in ps.streams.verbose[reported:]:
                report.verbose(scrub(str(getattr(record, "message", "")), secrets))
            reported = len(ps.streams.verbose)
            report.tick()

        try:
            while ps.state == PSInvocationState.RUNNING:
                show_progress()
                if until is not None:
                    records = ps.streams.verbose
                    while seen_verbose < len(records):
                        if until(str(getattr(records[seen_verbose], "message", ""))):
                            matched = True
                            break
                        seen_verbose += 1
                    if matched:
                        ps.stop()  # the step is done; the command would keep polling for minutes
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    try:
                        ps.stop()
                    except Exception:  # noqa: BLE001 - the timeout is what the caller must hear about
                        log.info("%s: could not stop the timed-out pipeline cleanly", conn.fqdn)
                    raise StepTimedOut(conn.fqdn, step, seconds=budget, command=command_text,
                                       waiting_for="print the expected verbose line" if until else "finish")
                # Short polls while watching the verbose stream, so the success line is seen promptly.
                poll = min(conn.operation_timeout, 5 if until else conn.operation_timeout, math.ceil(remaining))
                if report is not None and report.enabled:
                    poll = min(poll, math.ceil(progress.TICK))  # progress at least every TICK seconds
                ps.poll_invoke(timeout=max(1, int(poll)))
            if until is not None and not matched:
                # The pipeline ended; the line may have come with the final batch.
                for record in ps.streams.verbose[seen_verbose:]:
                    if until(str(getattr(record, "message", ""))):
                        matched = True
                        break
                    seen_verbose += 1
            show_progress()
        finally:
            session.pool.pipelines.pop(ps.id, None)  # pypsrp never forgets a pipeline; keep the pool lean
        return read_result(ps, *split, verbose_upto=seen_verbose if matched else None), matched
