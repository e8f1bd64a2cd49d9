"""Progress of long steps, live in `pulumi up`: each step's start, its elapsed time, the host's verbose lines.

The Python SDK gives a dynamic provider no progress API: ``pulumi.log`` inside the provider process falls back to
stderr, which the engine shows as diagnostics of no resource. But the engine starts every provider plugin with
its own address as the first argument (pkg/resource/plugin/provider_plugin.go: ``[]string{host.ServerAddr()}``;
the launcher passes it on to ``python -m pulumi.dynamic``, whose ``sys.argv[1]`` it is), and its Engine service's
``Log`` takes a resource URN and ``ephemeral`` (pkg/host/host_server.go: ephemeral goes to ``LogStatus``): the
status line native providers use. This module sends there, for the resource whose operation the current thread
serves (:class:`providers.base.LabProvider` sets it), and does nothing anywhere else (unit tests, the program).

Status lines (ephemeral) show the step running, its elapsed time every :data:`TICK` seconds and each verbose line
the host printed; a step that took :data:`LONG` seconds or more leaves one info line (kept in the diagnostics).
Callers pass text already scrubbed of secrets (the transport does).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

log = logging.getLogger(__name__)

TICK = 5.0  # seconds between elapsed-time status lines of a running step
LONG = 10.0  # a step at least this long leaves an info line with its duration
MAX_LINE = 240

_ADDRESS = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\]|[0-9.]+):\d+$")


class Sink(Protocol):
    def __call__(self, urn: str, message: str, *, ephemeral: bool) -> None: ...


_local = threading.local()
_engine_lock = threading.Lock()
_engine: Any = None  # the Engine stub, once per process; never on a provider object (they are pickled)
_sink_override: Sink | None = None


def engine_address(argv: list[str] | None = None) -> str | None:
    """The engine's address when this process is a dynamic provider plugin started by the engine."""
    argv = sys.argv if argv is None else argv
    if len(argv) >= 2 and argv[0].replace("\\", "/").endswith("pulumi/dynamic/__main__.py") and _ADDRESS.match(argv[1]):
        return argv[1]
    return None


def _engine_log(urn: str, message: str, *, ephemeral: bool) -> None:
    global _engine
    address = engine_address()
    if address is None:
        return
    from pulumi.runtime.proto import engine_pb2

    with _engine_lock:
        if _engine is None:
            import grpc
            from pulumi.runtime.proto import engine_pb2_grpc

            _engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(address))
        stub = _engine
    stub.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn, ephemeral=ephemeral),
             timeout=5)


@contextlib.contextmanager
def sink(s: Sink | None) -> Iterator[None]:
    """Send progress to ``s`` instead of the engine (tests)."""
    global _sink_override
    previous, _sink_override = _sink_override, s
    try:
        yield
    finally:
        _sink_override = previous


@contextlib.contextmanager
def for_resource(urn: str | None) -> Iterator[None]:
    """Progress reported in this block belongs to ``urn`` (None: not reported)."""
    previous = getattr(_local, "urn", None), getattr(_local, "shown", False)
    _local.urn, _local.shown = urn, False
    try:
        yield
    finally:
        if _local.shown:
            _send("", ephemeral=True)  # clear the status line: the operation is over
        _local.urn, _local.shown = previous


def active() -> bool:
    return bool(getattr(_local, "urn", None)) and (_sink_override is not None or engine_address() is not None)


def _send(message: str, *, ephemeral: bool) -> None:
    urn = getattr(_local, "urn", None)
    if not urn:
        return
    text = " ".join(message.split())
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE - 1] + "…"
    _local.shown = True
    try:
        (_sink_override or _engine_log)(urn, text, ephemeral=ephemeral)
    except Exception as exc:  # noqa: BLE001 - progress must never fail a step
        log.debug("progress not reported: %s", type(exc).__name__)


def status(message: str) -> None:
    """An ephemeral status line of the current resource (the live view; not kept in the diagnostics)."""
    _send(message, ephemeral=True)


def info(message: str) -> None:
    """An info line of the current resource, kept in the diagnostics at the end."""
    _send(message, ephemeral=False)


class Step:
    """One step on one host: started now; :meth:`verbose` for each host line, :meth:`tick` while it runs."""

    def __init__(self, host: str, step: str, *, clock: Any = time.monotonic) -> None:
        self.host, self.step, self._clock = host, step, clock
        self.started = self._clock()
        self._last = self.started
        self.enabled = active()
        if self.enabled:
            status(f"{host}: {step}")

    def elapsed(self) -> float:
        return self._clock() - self.started

    def verbose(self, line: str) -> None:
        if self.enabled and line.strip():
            self._last = self._clock()
            status(f"{self.host}: {line}")

    def tick(self) -> None:
        if self.enabled and self._clock() - self._last >= TICK:
            self._last = self._clock()
            status(f"{self.host}: {self.step} ({self.elapsed():.0f} s)")

    def done(self) -> None:
        if self.enabled and self.elapsed() >= LONG:
            info(f"{self.host}: {self.step} took {self.elapsed():.0f} s")
