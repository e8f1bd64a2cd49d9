"""When a step is sent again. Two rules, both decided here:

- **Resend on a fresh session** (:func:`may_resend`): a reused session found dead before the command started.
  A request the host refused (the shell is gone, or its auth context with the dropped TCP connection) proves the
  command never ran, so any step is resent; a lost connection only may have, so only idempotent steps are.
- **Retry** (:func:`retrying`): an idempotent step (a read, or a write that converges) that failed with a
  transient error (``ConnectorError.transient``) runs again, after ``backoff``, ``2 * backoff``, ... seconds, at
  most ``retries`` more times and never past the step's deadline. Anything else is reported at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

from ..errors import ConnectorError

__all__ = ["SHELL_GONE", "may_resend", "retrying"]

log = logging.getLogger("providers.transport")
T = TypeVar("T")

# WSMan fault codes that mean "this shell no longer exists on the server".
SHELL_GONE = {
    0x8033805B,  # ERROR_WSMAN_UNEXPECTED_SELECTORS: "the shell was not found on the server"
    0x80338029,  # ERROR_WSMAN_OPERATION_TIMEDOUT on a shell-level request (pool timed out)
}


def retrying(attempt: Callable[[], T], *, host: str, step: str, idempotent: bool, retries: int, backoff: float,
             deadline: float, sleep: Callable[[float], None]) -> T:
    """``attempt()``, run again on a transient ConnectorError while the retry rule allows."""
    failures = 0
    while True:
        try:
            return attempt()
        except ConnectorError as exc:
            failures += 1
            delay = backoff * 2 ** (failures - 1)
            if not (idempotent and exc.transient and failures <= retries and time.monotonic() + delay < deadline):
                raise
            log.info("%s, step '%s': %s; retry %d of %d in %.1f s", host, step, type(exc).__name__, failures,
                     retries, delay)
            sleep(delay)


def may_resend(exc: BaseException, *, reused: bool, idempotent: bool) -> bool:
    """Whether a command that failed to start on a session may be sent again on a fresh one."""
    return reused and (_rejected_unrun(exc) or (idempotent and _is_connection_lost(exc)))


def _rejected_unrun(exc: BaseException) -> bool:
    """The host refused the request without running anything: the shell is gone, or (over http with message
    encryption) the kept-alive TCP connection was dropped and the new one lacks the old auth context, which the
    host answers with 401/400. A fresh session settles it: a real credential problem fails again there."""
    if isinstance(exc, WSManFaultError):
        return exc.code in SHELL_GONE
    if isinstance(exc, AuthenticationError):
        return True
    return isinstance(exc, WinRMTransportError) and exc.code in (400, 401)


def _is_connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout)) and not \
        isinstance(exc, requests.exceptions.SSLError)
