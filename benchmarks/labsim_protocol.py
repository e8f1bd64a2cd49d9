"""Benchmark of labsim's protocol layer with the real pypsrp client (not a test: it prints figures).

    .venv/bin/python benchmarks/labsim_protocol.py [--auth negotiate] [--http] [--pools 5] [--pipelines 100]

The server runs in its own process (as labsim does in real use), the clients in another process with one
thread per runspace pool, so the two do not share a GIL. Prints the runspace pool open time and the pipelines per
second across all pools (each pipeline: Command + Receive of one trivial cmdlet).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labsim.lab import Lab  # noqa: E402
from labsim.runtime import Command, Fault, HttpsBinding, PipelineSink, Session  # noqa: E402

USER, PASSWORD = "CONTOSO\\BenchAdmin", "LabOnly-Bench-1!"


class EchoRuntime:
    """Echoes positional arguments: the cheapest possible host behaviour, so the protocol cost shows."""

    def run_pipeline(self, session: Session, statements: list[list[Command]], input: list[Any],
                     sink: PipelineSink) -> None:
        for statement in statements:
            for cmd in statement:
                for name, value in cmd.parameters:
                    if name is None:
                        sink.output(value)

    def https_bindings(self) -> list[HttpsBinding]:
        return []

    def faults(self, host: str) -> list[Fault]:
        return []


def bench_lab() -> Lab:
    from labsim.testing import free_loopback_lab

    return free_loopback_lab(Lab.model_validate({
        "name": "bench",
        "hosts": [{"name": "BENCH01", "fqdn": "bench01.contoso.com", "address": "127.0.0.2",
                   "roles": ["azs_user_portal"], "users": [{"name": USER, "password": PASSWORD}]}],
    }))


def serve(lab_json: str, state_dir: str, ready: Any, stop: Any) -> None:
    from labsim.server import LabServer

    lab = Lab.model_validate_json(lab_json)
    with LabServer(lab, EchoRuntime(), Path(state_dir)) as server:
        ready.put(str(server.ca_file))
        stop.wait()


def _wsman(args: argparse.Namespace, address: str, port: int, ca_file: str) -> Any:
    from pypsrp.wsman import WSMan

    return WSMan(address, port=port, ssl=not args.http, auth=args.auth, username=USER, password=PASSWORD,
                 # pypsrp hands cert_validation to requests' `verify`, which takes a CA file; its hint says bool.
                 cert_validation=ca_file,  # type: ignore[arg-type]
                 encryption="never" if args.auth == "basic" and args.http else "auto")


def _open_pool(args: argparse.Namespace, address: str, port: int, ca_file: str) -> tuple[Any, float]:
    from pypsrp.powershell import RunspacePool

    started = time.perf_counter()
    pool = RunspacePool(_wsman(args, address, port, ca_file))
    pool.open()
    return pool, time.perf_counter() - started


def _drive(pool: Any, pipelines: int) -> None:
    from pypsrp.powershell import PowerShell

    for i in range(pipelines):
        out = PowerShell(pool).add_cmdlet("Echo").add_argument(i).invoke()
        if out != [i]:
            raise AssertionError(f"pipeline {i} returned {out!r}")


def _warm_up(args: argparse.Namespace, address: str, port: int, ca_file: str) -> None:
    # Imports, the first TLS/CredSSP context: not measured.
    pool, _ = _open_pool(args, address, port, ca_file)
    _drive(pool, 1)
    pool.close()


def _run_in_threads(args: argparse.Namespace, address: str, port: int,
                    ca_file: str) -> tuple[list[float], float, list[BaseException]]:
    _warm_up(args, address, port, ca_file)
    opened = [_open_pool(args, address, port, ca_file) for _ in range(args.pools)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(args.pools + 1)

    def drive(pool: Any) -> None:
        barrier.wait()
        try:
            _drive(pool, args.pipelines)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(p,)) for p, _ in opened]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for pool, _ in opened:
        pool.close()
    return [t for _, t in opened], elapsed, errors


def _client_process(args: argparse.Namespace, address: str, port: int, ca_file: str, barrier: Any,
                    results: Any) -> None:
    try:
        _warm_up(args, address, port, ca_file)
        pool, open_time = _open_pool(args, address, port, ca_file)
        barrier.wait()
        _drive(pool, args.pipelines)
        pool.close()
        results.put((open_time, None))
    except BaseException as exc:  # noqa: BLE001
        barrier.abort()
        results.put((0.0, repr(exc)))


def _run_in_processes(ctx: Any, args: argparse.Namespace, address: str, port: int,
                      ca_file: str) -> tuple[list[float], float, list[BaseException]]:
    barrier, results = ctx.Barrier(args.pools + 1), ctx.Queue()
    procs = [ctx.Process(target=_client_process, args=(args, address, port, ca_file, barrier, results))
             for _ in range(args.pools)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(10)
    errors: list[BaseException] = [RuntimeError(err) for _, err in outcomes if err]
    return [t for t, _ in outcomes], elapsed, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth", default="negotiate", choices=["basic", "negotiate", "ntlm", "credssp"])
    parser.add_argument("--http", action="store_true", help="plain HTTP (with message encryption) instead of HTTPS")
    parser.add_argument("--pools", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=100, help="pipelines per pool")
    parser.add_argument("--processes", action="store_true",
                        help="one client process per pool (the client is pure Python too: threads share a GIL)")
    args = parser.parse_args()

    lab = bench_lab()
    host = lab.hosts[0]
    port = host.winrm.http_port if args.http else host.winrm.https_port
    if port is None:
        raise SystemExit(f"the bench lab's host {host.name} has no {'http' if args.http else 'https'} listener")
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as state_dir:
        proc = ctx.Process(target=serve, args=(lab.model_dump_json(), state_dir, ready, stop), daemon=True)
        proc.start()
        ca_file = ready.get(timeout=60)

        if args.processes:
            results = _run_in_processes(ctx, args, host.address, port, ca_file)
        else:
            results = _run_in_threads(args, host.address, port, ca_file)
        stop.set()
        proc.join(10)

    open_times, elapsed, errors = results
    if errors:
        raise SystemExit(f"benchmark failed: {errors[0]!r}")
    total = args.pools * args.pipelines
    transport = "http+encryption" if args.http and args.auth != "basic" else ("http" if args.http else "https")
    clients = "one client process per pool" if args.processes else "client threads in one process"
    print(f"labsim protocol benchmark ({args.auth} over {transport}, {args.pools} pools x {args.pipelines} "
          f"pipelines, {clients})")
    print(f"  runspace pool open: mean {statistics.mean(open_times) * 1000:.1f} ms, "
          f"min {min(open_times) * 1000:.1f} ms, max {max(open_times) * 1000:.1f} ms")
    print(f"  pipelines: {total} in {elapsed:.2f} s = {total / elapsed:.0f} pipelines/s")


if __name__ == "__main__":
    main()
