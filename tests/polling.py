"""Waiting for something a server does on its own thread, without asserting how long it took."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], what: str = "the condition", timeout: float = 30.0,
             interval: float = 0.05) -> None:
    """Return as soon as ``predicate()`` is true; fail the test, naming ``what``, if it is still false after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def listening(address: str, port: int) -> bool:
    """Whether a TCP connection to ``address:port`` is accepted now."""
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
