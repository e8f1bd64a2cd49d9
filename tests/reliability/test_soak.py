"""labsim under load: concurrent pools and pipelines with faults toggling.

8 worker threads, each with its own session cache (its own RunspacePool per host), run read pipelines
(Write-Output, Test-Path, Get-ChildItem Cert:, ConvertTo-Json) through the real PsrpTransport against four lab
hosts on loopback, while a toggler switches faults on and off (slow, command_error, down for about a second).
Every request is logged with its time span and outcome, every fault with its window. Then:
* no failed request that should have succeeded: a failure is excused only if it is exactly what a fault in force
  on that host during the request causes (``EXCUSES``: command_error -> RemoteCommandFailed of that command;
  down -> the host unreachable or the connection lost; slow -> StepTimedOut); any other failure, or a wrong result,
  counts against;
* no leaked shells: after the clients close, and at the latest after the reaper's idle timeout, every host's
  shell table is empty; the abandoned shells are counted as labsim's reaper reports closing them;
* flat memory, as counts: gc-tracked objects and Python's allocated blocks after warm-up vs. after the run with
  every client closed, within a bound that grows with the work done (``LEAK_OBJECTS_PER_PIPELINE`` on top of what
  the warm-up's first pipelines added once); with RELIABILITY_SOAK_TRACEMALLOC=1 also the traced bytes
  (``LEAK_BYTES_PER_PIPELINE`` on top of the baseline's measured jitter). The RSS of this process is recorded as a
  figure, not asserted: the allocator's arenas and thread stacks move it by a megabyte or more from run to run on a
  loaded machine (measured: the same code from 1.5 to 2.7 MiB against a 2.6 MiB bound), which is noise for a test.

Bounded in time (``RELIABILITY_SOAK_SECONDS``, default 20 s for `make test`; `make reliability` may set more) and in
count (``RELIABILITY_SOAK_MAX`` pipelines per worker), loopback only.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import logging
import os
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _pytest.logging import LogCaptureHandler

from labsim.runtime import Fault
from labsim.server import LabServer
from providers.errors import RemoteCommandFailed, StepTimedOut, TransportError
from providers.transport import Command, HostConnection, PsrpTransport, SessionCache
from tests.lab_state import lab_state
from tests.providers.conftest import host_connection
from tests.reliability import figures
from tests.reliability.corpus import lab

# Alone (make test runs it after the parallel run): a fault is excused only within GRACE of its window, which a
# loaded machine would stretch.
pytestmark = [pytest.mark.soak, pytest.mark.sim, pytest.mark.serial]

SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "20"))
MAX_PER_WORKER = int(os.environ.get("RELIABILITY_SOAK_MAX", "100000"))
WORKERS = 8
# The run lasts SECONDS and at least this many pipelines, however slowly a loaded machine serves them (up to
# STALL_GUARD seconds: workers that stop making progress fail the count).
MIN_PIPELINES = WORKERS * min(10, MAX_PER_WORKER)
STALL_GUARD = SECONDS + 120
HOSTS = ("wapcomputer1", "wapcomputer2", "AzS-HOST", "AzS-WASP01")
IDLE_SHELL_TIMEOUT = 3.0
GRACE = 0.6  # the server polls fault switches every 0.2 s; a request may straddle a switch
WARMUP = min(4.0, SECONDS / 5)
KINDS = ("down", "command_error", "slow")
# Memory: RSS of this process (server and clients), or traced allocations with RELIABILITY_SOAK_TRACEMALLOC=1
# (exact, but about 3.5 times slower). Growth allowed from the end of warm-up to the end, clients closed: the
# jitter of the idle baseline (measured), plus the one C-level cache that grows with the run (SQLite's page cache of
# the lab database, whose invocation log grows with every pipeline: at most `PRAGMA cache_size`), plus this many
# bytes per pipeline run, so a leak of one small object per pipeline (a dict, a parsed envelope) fails it while
# bounded caches and allocator noise do not. Python-level leaks are bounded exactly as well: gc-tracked objects and
# the interpreter's allocated blocks (``sys.getallocatedblocks``: strings and bytes too).
TRACEMALLOC = os.environ.get("RELIABILITY_SOAK_TRACEMALLOC") == "1"
LEAK_BYTES_PER_PIPELINE = 512
# gc-tracked objects allowed per pipeline on top of the warm-up's one-time fill (ElementTree's path cache,
# module-level caches): one object kept for every fourth pipeline fails it.
LEAK_OBJECTS_PER_PIPELINE = 0.25


def counting_reaped(original: Callable[[], list[str]], reaped: list[str]) -> Callable[[], list[str]]:
    """The service's reaper, the shell ids it closes also kept in ``reaped`` (the reaper then reports none)."""

    def reap_idle() -> list[str]:
        reaped.extend(original())
        return []

    return reap_idle


def sqlite_cache_limit(server: LabServer) -> int:
    """Bytes SQLite may keep in the page cache of the lab database's connection (PRAGMA cache_size)."""
    db = lab_state(server)._db
    pages = db.execute("PRAGMA cache_size").fetchone()[0]
    return -pages * 1024 if pages < 0 else pages * db.execute("PRAGMA page_size").fetchone()[0]


def blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


@dataclass(slots=True)  # one per pipeline, kept to the end: as small as it can be (see bookkeeping())
class Request:
    worker: int
    host: str
    command: str
    start: float
    end: float = 0.0
    outcome: str = "ok"  # ok | wrong | <exception class name>
    detail: str = ""


@dataclass
class Window:
    host: str
    kind: str
    command: str | None
    start: float
    end: float = float("inf")


@dataclass
class Soak:
    requests: list[Request] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def commands(rng: random.Random) -> tuple[Command, object]:
    token = f"soak-{rng.randrange(10**9)}"
    choice = rng.randrange(4)
    if choice == 0:
        return Command("Write-Output", {"InputObject": token}), [token]
    if choice == 1:
        return Command("Test-Path", {"Path": "C:\\"}), [True]
    if choice == 2:
        return Command("Get-ChildItem", {"Path": "Cert:\\LocalMachine\\Root"}), None  # the lab CA at least
    return Command("ConvertTo-Json", {"InputObject": {"t": token}}, ["Compress"]), [json.dumps({"t": token},
                                                                                               separators=(",", ":"))]


def worker(n: int, server: LabServer, soak: Soak, stop: threading.Event, caches: list[SessionCache]) -> None:
    rng = random.Random(n)
    host = HOSTS[n % len(HOSTS)]
    # tracemalloc makes everything several times slower: a wider budget there, so only faults explain a timeout.
    conn = HostConnection.parse(host_connection(server, host, step_timeout=30 if TRACEMALLOC else 8,
                                                operation_timeout=2, read_timeout=6,
                                                connect_timeout=2))
    cache = SessionCache()
    caches.append(cache)
    transport = PsrpTransport(cache, retries=2, backoff=0.3)
    for _ in range(MAX_PER_WORKER):
        if stop.is_set():
            break
        command, expected = commands(rng)
        req = Request(n, host, command.name, time.monotonic())
        try:
            out = transport.run(conn, "soak read", command, idempotent=True).output
            if expected is not None and out != expected:
                req.outcome, req.detail = "wrong", repr(out)[:200]
            elif expected is None and not out:
                req.outcome, req.detail = "wrong", "empty certificate store"
        except Exception as exc:  # noqa: BLE001 - classified afterwards
            req.outcome, req.detail = type(exc).__name__, str(exc)[:300]
        req.end = time.monotonic()
        with soak.lock:
            soak.requests.append(req)


def toggler(server: LabServer, soak: Soak, stop: threading.Event) -> None:
    rng = random.Random(42)
    state = lab_state(server)
    while not stop.wait(rng.uniform(0.4, 0.9)):
        host = rng.choice(HOSTS)
        kind = KINDS[len(soak.windows) % len(KINDS)]
        fault = Fault(host=server.lab.host(host).name, kind=kind,
                      command="Test-Path" if kind == "command_error" else None,
                      seconds=0.3 if kind == "slow" else 0.0,
                      message="soak: injected error" if kind == "command_error" else None)
        window = Window(host, kind, fault.command, time.monotonic())
        with soak.lock:
            soak.windows.append(window)
        state.set_fault(fault)
        stop.wait(rng.uniform(0.5, 1.2) if kind != "down" else rng.uniform(0.6, 1.0))
        state.clear_faults(fault.host)
        window.end = time.monotonic()
    state.clear_faults()


# What each fault can make a read pipeline fail with, and nothing else. ``down`` closes the host's listeners: a
# new connection is refused (HostUnreachable), one in flight is cut (TransportError), or the retries run out of
# the step's budget while it stays down (StepTimedOut). ``slow`` only delays. ``command_error`` fails the command
# it names.
EXCUSES: dict[str, tuple[str, ...]] = {
    "down": ("HostUnreachable", "TransportError", "StepTimedOut"),
    "slow": ("StepTimedOut",),
    "command_error": ("RemoteCommandFailed",),
}


def excused_by(req: Request, windows: list[Window]) -> str | None:
    """The kind of the fault that explains this failure, or None."""
    for w in windows:
        if w.host != req.host or req.end < w.start or req.start > w.end + GRACE:
            continue
        if req.outcome in EXCUSES[w.kind] and (w.command is None or req.command == w.command):
            return w.kind
    return None


def objects(caplog: pytest.LogCaptureFixture) -> collections.Counter:
    """gc-tracked objects by type: a leak of requests, shells or pipelines shows here whatever the allocator does."""
    # pytest keeps every LogRecord of the test, with the frames of its exc_info, in its capture handlers (caplog's
    # and the report's): not labsim's memory.
    caplog.clear()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogCaptureHandler):
            handler.reset()
    gc.collect()
    counts = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    # Not the system under test: pytest's log capture keeps every LogRecord (with its exc_info frames), and this
    # test keeps its own Request log.
    for k in ("logging.LogRecord", f"{__name__}.Request", f"{__name__}.Window"):
        counts.pop(k, None)
    return counts


SNAPSHOTS: list = []


def bookkeeping(requests: list[Request]) -> int:
    """Bytes this test holds for its own request log (in the process's RSS, not labsim's or the client's)."""
    size = sys.getsizeof(requests)
    for r in requests:
        size += sys.getsizeof(r) + sys.getsizeof(r.start) + sys.getsizeof(r.end)
        size += sys.getsizeof(r.detail) if r.detail else 0
    return size


def idle_jitter(samples: int = 5) -> int:
    """Spread of the idle measure (nothing running, clients closed): the noise any bound must allow."""
    values = []
    for _ in range(samples):
        time.sleep(0.1)
        values.append(memory())
    return max(values) - min(values)


def memory() -> int:
    gc.collect()
    if TRACEMALLOC:  # allocations made anywhere but in this test's own bookkeeping and pytest
        snap = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, "*/_pytest/*"),
            tracemalloc.Filter(False, tracemalloc.__file__)])
        SNAPSHOTS.append(snap)
        return sum(stat.size for stat in snap.statistics("filename"))
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def pytest_log_capture_off() -> Iterator[None]:
    """pytest keeps every captured LogRecord (pypsrp logs a few INFO records per pipeline) until the test ends:
    tens of MiB over a long soak, held by the harness, not by labsim or the client. Records are still created and
    emitted as in a provider process; pytest's handlers just drop them."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, LogCaptureHandler)]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels, strict=True):
            h.setLevel(level)


def test_soak_concurrent_pools_with_faults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert issubclass(StepTimedOut, Exception) and issubclass(TransportError, Exception) \
        and RemoteCommandFailed is not None
    soak = Soak()
    stop = threading.Event()
    caches: list[SessionCache] = []
    if TRACEMALLOC:
        tracemalloc.start(4)
    try:
        with pytest_log_capture_off(), \
                lab(tmp_path, idle_shell_timeout=IDLE_SHELL_TIMEOUT, operation_timeout=2.0) as server:
            def start_workers(stop_event: threading.Event, into: list[SessionCache]) -> list[threading.Thread]:
                ts = [threading.Thread(target=worker, args=(n, server, soak, stop_event, into), name=f"soak-{n}",
                                       daemon=True) for n in range(WORKERS)]
                for t in ts:
                    t.start()
                return ts

            objs_cold = objects(caplog)  # before any pipeline: what the warm-up adds once is measured
            blocks_cold = blocks()
            cache_limit = sqlite_cache_limit(server)
            # Warm-up: the same load with every kind of fault once (the fault paths fill their one-time caches
            # too: tracebacks read source lines, error records parse), then every client closed: the baseline has
            # the same (zero) clients as the end.
            warm_stop, warm_caches = threading.Event(), list[SessionCache]()
            warm = start_workers(warm_stop, warm_caches)
            warm_faults = threading.Thread(target=toggler, args=(server, soak, warm_stop), daemon=True)
            warm_faults.start()
            warm_started = time.monotonic()
            while time.monotonic() - warm_started < WARMUP or len({w.kind for w in soak.windows}) < len(KINDS):
                time.sleep(0.1)
            warm_stop.set()
            for t in warm + [warm_faults]:
                t.join(30)
            for cache in warm_caches:
                cache.close_all()
            warm_caches.clear()
            lab_state(server).clear_faults()
            time.sleep(0.5)  # the fault watcher resumes suspended listeners
            objs_warm = objects(caplog)  # (first: it also drops pytest's captured log records)
            blocks_warm = blocks()
            warm_requests = len(soak.requests)
            jitter = idle_jitter()
            mem_warm = memory()

            started = time.monotonic()
            threads = start_workers(stop, caches)
            faults = threading.Thread(target=toggler, args=(server, soak, stop), name="soak-faults", daemon=True)
            faults.start()
            samples = []
            def running() -> float:
                return time.monotonic() - started

            while running() < SECONDS or (len(soak.requests) - warm_requests < MIN_PIPELINES
                                          and running() < STALL_GUARD):
                time.sleep(min(1.0, max(0.1, SECONDS - running())))
                samples.append(memory())
            stop.set()
            for t in threads + [faults]:
                t.join(30)
            assert not [t.name for t in threads + [faults] if t.is_alive()], "a soak thread hung"
            duration = time.monotonic() - started
            lab_state(server).clear_faults()
            time.sleep(0.5)  # the fault watcher resumes suspended listeners

            for cache in caches:
                cache.close_all()
            leaked_after_close = {h: len(server.service(h).shell_ids) for h in HOSTS}
            # Clients that vanish without deleting their shell (a killed provider): the reaper must clear them.
            # Counted from labsim: the shell ids its reaper reports closing.
            reaped: list[str] = []
            for h in HOSTS:
                service = server.service(h)
                service.reap_idle = counting_reaped(service.reap_idle, reaped)
            before = {sid for h in HOSTS for sid in server.service(h).shell_ids}
            abandoned = [SessionCache().checkout(HostConnection.parse(host_connection(server, h)), "abandon")
                         for h in HOSTS]
            abandoned_ids = {sid for h in HOSTS for sid in server.service(h).shell_ids} - before
            assert len(abandoned_ids) == len(HOSTS), abandoned_ids
            deadline = time.monotonic() + IDLE_SHELL_TIMEOUT + 5
            while time.monotonic() < deadline and any(server.service(h).shell_ids for h in HOSTS):
                time.sleep(0.25)
            left = {h: server.service(h).shell_ids for h in HOSTS}
            del abandoned
            caches.clear()
            time.sleep(0.3)
            mem_mid = samples[len(samples) // 2] if samples else mem_warm
            objs_end = objects(caplog)
            blocks_end = blocks()
            mem_end = memory()
            top = SNAPSHOTS[-1].compare_to(SNAPSHOTS[0], "traceback")[:6] if TRACEMALLOC else []
            if TRACEMALLOC:
                figures.record("soak", "traced_top_growth", " | ".join(
                    f"{st.size_diff // 1024} KiB at {' < '.join(str(f) for f in list(st.traceback)[::-1][:4])}"
                    for st in top))
            SNAPSHOTS.clear()
    finally:
        stop.set()
        if TRACEMALLOC:
            tracemalloc.stop()

    reqs = soak.requests[warm_requests:]
    failed = [r for r in soak.requests if r.outcome != "ok"]  # warm-up included: the same rules
    excused: dict[str, int] = {}
    wrong = []
    for r in failed:
        kind = excused_by(r, soak.windows)
        if kind is None:
            wrong.append(r)
        else:
            excused[f"{kind}: {r.outcome}"] = excused.get(f"{kind}: {r.outcome}", 0) + 1
    by_kind: dict[str, int] = {}
    for w in soak.windows:
        by_kind[w.kind] = by_kind.get(w.kind, 0) + 1
    growth = mem_end - mem_warm
    obj_growth = sum(objs_end.values()) - sum(objs_warm.values())
    one_time_fill = max(0, sum(objs_warm.values()) - sum(objs_cold.values()))
    object_bound = one_time_fill + LEAK_OBJECTS_PER_PIPELINE * len(reqs)
    memory_bound = jitter + cache_limit + LEAK_BYTES_PER_PIPELINE * len(reqs)
    # Blocks are not all objects (an object may own several): allowed 4 blocks per object the bound allows.
    blocks_fill = max(0, blocks_warm - blocks_cold)
    blocks_bound = blocks_fill + 4 * LEAK_OBJECTS_PER_PIPELINE * len(reqs)
    # The request log of this test holds a few blocks per request: not the system's.
    blocks_growth = blocks_end - blocks_warm - 3 * len(reqs)
    top_growers = sorted(((objs_end[k] - objs_warm[k], k) for k in objs_end if objs_end[k] > objs_warm[k]),
                         reverse=True)[:8]

    figures.record("soak", "iterations", len(reqs))
    figures.record("soak", "workers", WORKERS)
    figures.record("soak", "duration_s", round(duration, 1))
    figures.record("soak", "pipelines_per_s", round(len(reqs) / duration, 1))
    figures.record("soak", "fault_windows", ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    figures.record("soak", "failures_excused_by_a_fault", ", ".join(f"{k} {v}" for k, v in sorted(excused.items()))
                   or "none")
    figures.record("soak", "failures", len(wrong))
    figures.record("soak", "shells_left_after_close", sum(leaked_after_close.values()))
    figures.record("soak", "abandoned_shells", len(abandoned_ids))
    figures.record("soak", "abandoned_shells_reaped_by_labsim", len(abandoned_ids & set(reaped)))
    figures.record("soak", "shells_left_after_reaper", sum(len(v) for v in left.values()))
    what = "traced" if TRACEMALLOC else "rss"
    figures.record("soak", "memory_measure", "tracemalloc (server + clients)" if TRACEMALLOC
                   else "RSS of the test process (in-process server + clients)")
    figures.record("soak", f"{what}_after_warmup_mib", round(mem_warm / 2**20, 1))
    figures.record("soak", f"{what}_mid_run_mib", round(mem_mid / 2**20, 1))
    if samples:  # a leak keeps the same slope; bounded caches and allocator arenas flatten out
        quarters = [samples[min(len(samples) - 1, round(len(samples) * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
        figures.record("soak", f"{what}_by_quarter_of_run_mib", " / ".join(f"{m / 2**20:.1f}" for m in quarters))
    figures.record("soak", f"{what}_end_mib", round(mem_end / 2**20, 1))
    figures.record("soak", f"{what}_growth_kib", round(growth / 1024))
    held = 0
    if not TRACEMALLOC:  # tracemalloc already leaves out this test's own allocations
        held = bookkeeping(soak.requests)
        figures.record("soak", "test_request_log_kib", round(held / 1024))
        figures.record("soak", "rss_growth_less_request_log_kib", round((growth - held) / 1024))
    figures.record("soak", f"{what}_idle_jitter_kib", round(jitter / 1024))
    figures.record("soak", f"{what}_growth_bound_kib (jitter + SQLite page cache {cache_limit // 1024} KiB + "
                           f"{LEAK_BYTES_PER_PIPELINE} B per pipeline)", round(memory_bound / 1024))
    figures.record("soak", "gc_objects_after_warmup", sum(objs_warm.values()))
    figures.record("soak", "gc_objects_growth", obj_growth)
    figures.record("soak", f"gc_objects_growth_bound (warm-up fill {one_time_fill} + {LEAK_OBJECTS_PER_PIPELINE} "
                           f"per pipeline)", round(object_bound))
    figures.record("soak", "python_blocks_growth", blocks_growth)
    figures.record("soak", f"python_blocks_growth_bound (warm-up fill {blocks_fill} + "
                           f"{4 * LEAK_OBJECTS_PER_PIPELINE:g} per pipeline)", round(blocks_bound))
    figures.record("soak", "gc_top_growers", ", ".join(f"{k} +{n}" for n, k in top_growers[:5]))

    assert len(reqs) >= MIN_PIPELINES, f"only {len(reqs)} pipelines: the workers stalled"
    assert all(by_kind.get(k, 0) >= 2 for k in KINDS), by_kind  # each kind in the warm-up and in the run
    assert not wrong, [(r.host, r.command, r.outcome, r.detail) for r in wrong[:10]]
    assert all(not v for v in left.values()), left
    assert abandoned_ids <= set(reaped), (abandoned_ids, reaped)
    if TRACEMALLOC:  # traced bytes are a count of what Python holds; RSS is only a figure (see the docstring)
        assert growth - held < memory_bound, (growth, held, memory_bound, [str(s) for s in top])
    assert obj_growth < object_bound, (obj_growth, object_bound, top_growers)
    assert blocks_growth < blocks_bound, (blocks_growth, blocks_bound)
