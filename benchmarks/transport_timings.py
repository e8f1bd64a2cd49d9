"""How long the transport's bounded waits take against labsim (not a test: it prints figures).

    .venv/bin/python benchmarks/transport_timings.py [--repeat 3]

The tests assert what these waits do (the pipeline stopped on the host, the number of attempts, the waits labsim
charged); how long they take depends on the machine's load, so it is measured here, over the real PsrpTransport
and labsim's default lab on loopback:

* a step over its budget: a hung command with ``step_timeouts`` of 1 s, until StepTimedOut (the overshoot is the
  poll and the stop);
* the success line: Add-AzurePackConnector on the privileged endpoint, until ``run_until`` returns (the host keeps
  polling for ``pep_polling_seconds`` after the line; the transport stops it);
* a silent host (accepts TCP, never answers TLS) with connect_timeout 1 s: an idempotent read's 3 attempts
  (backoff not slept);
* the connection-cost model at factor 1: a runspace pool open, then a reused pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labsim.runtime import Fault  # noqa: E402
from labsim.testing import simulated_lab  # noqa: E402
from providers.errors import StepTimedOut, TransportError  # noqa: E402
from providers.transport import Command, HostConnection, PsrpTransport, SessionCache  # noqa: E402

WAP, PEP = "wapcomputer2", "AzS-ERCS01"
POLLING = 30.0
SUCCESS = "Step 'Configure Azure Pack Connector' status: 'Success'"


def connection(server: Any, host: str, **overrides: Any) -> HostConnection:
    h = server.lab.host(host)
    address, port = server.endpoint(host)
    user = h.users[0]
    settings: dict[str, Any] = dict(fqdn=h.fqdn, address=address, port=port, https=True, auth="ntlm",
                                    ca_file=str(server.ca_file), username=user.name, password=user.password,
                                    operation_timeout=5, read_timeout=15, connect_timeout=5)
    if host == PEP:
        settings.update(auth="credssp", configuration_name="PrivilegedEndpoint")
    settings.update(overrides)
    return HostConnection(**settings)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextlib.contextmanager
def transport() -> Iterator[PsrpTransport]:
    cache = SessionCache()
    try:
        yield PsrpTransport(cache, sleep=lambda s: None)
    finally:
        cache.close_all()


def step_over_budget(server: Any) -> float:
    conn = connection(server, WAP, operation_timeout=1, read_timeout=5, step_timeouts={"slow step": 1.0})
    server.runtime.state.set_fault(Fault(host=WAP, kind="command_hang", command="Get-Website"))
    try:
        while not any(f.kind == "command_hang" for f in server.faults_in_force(WAP)):
            time.sleep(0.05)
        with transport() as t:
            started = time.perf_counter()
            try:
                t.run(conn, "slow step", Command("Get-Website"), timeout=600.0)
            except StepTimedOut:
                return time.perf_counter() - started
            raise SystemExit("the hung command was not stopped at its budget")
    finally:
        server.runtime.state.clear_faults()


def success_line(server: Any) -> float:
    conn = connection(server, PEP)
    clouds = [{"CloudName": "wapcloud1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"}]
    with transport() as t:
        t.run(conn, "warm up", Command("Get-AzureStackStampInformation"))  # the CredSSP pool: not measured
        return timed(lambda: t.run_until(conn, "add azure pack connector",
                                         Command("Add-AzurePackConnector", {"AzurePackClouds": clouds,
                                                                            "AzureStackCloudName": "AzureStack"}),
                                         SUCCESS, timeout=120))


def silent_host(server: Any) -> float:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(silent.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    conn = connection(server, WAP, address="127.0.0.1", port=silent.getsockname()[1], connect_timeout=1,
                      operation_timeout=1, read_timeout=600)
    try:
        with transport() as t:
            started = time.perf_counter()
            try:
                t.run(conn, "read something", Command("Get-Website"), idempotent=True)
            except TransportError:
                return time.perf_counter() - started
            raise SystemExit("a silent host answered")
    finally:
        with contextlib.suppress(OSError):
            silent.shutdown(socket.SHUT_RDWR)
        silent.close()
        for c in held:
            c.close()


def connection_costs(server: Any) -> tuple[float, float]:
    conn = connection(server, "wapcomputer1")
    read = Command("Get-ChildItem", {"Path": "C:\\"})
    with transport() as t:
        first = timed(lambda: t.run(conn, "read", read))
        again = timed(lambda: t.run(conn, "read", read))
    return first, again


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} s"
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}; n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {k: [] for k in ("budget", "success", "silent", "open", "reused")}
    with tempfile.TemporaryDirectory() as tmp:
        with simulated_lab(Path(tmp) / "lab", pep_polling_seconds=POLLING) as server:
            for _ in range(args.repeat):
                runs["budget"].append(step_over_budget(server))
                runs["success"].append(success_line(server))
                runs["silent"].append(silent_host(server))
        with simulated_lab(Path(tmp) / "costs", connection_cost_factor=1.0) as server:
            for _ in range(args.repeat):
                first, again = connection_costs(server)
                runs["open"].append(first)
                runs["reused"].append(again)
    print(f"transport timings against labsim ({args.repeat} runs each)")
    print(f"  step over its 1 s budget, until StepTimedOut: {summary(runs['budget'])}")
    print(f"  Add-AzurePackConnector until run_until returns at the success line (the host polls {POLLING:g} s "
          f"more): {summary(runs['success'])}")
    print(f"  silent host, connect_timeout 1 s, 3 attempts (backoff not slept): {summary(runs['silent'])}")
    print(f"  connection cost factor 1: first read (pool open, about 1 s charged) {summary(runs['open'])}; "
          f"reused pool (0.03 s charged) {summary(runs['reused'])}")


if __name__ == "__main__":
    main()
