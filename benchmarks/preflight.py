"""Benchmark of the preflight on a large simulated lab (not a test: it prints figures).

    .venv/bin/python benchmarks/preflight.py [--clouds 32] [--workers 16]

The lab: the Azure Stack side (PEP, AzS-WASP01, the share host) and per cloud one tenant portal VM, one Tenant API
VM and one SQL server (--clouds 32 gives 99 hosts; the 67 with a role in the stack are probed, the SQL servers
are asked through their Tenant API VMs). labsim serves it in its own process; the preflight runs here
as `make doctor` and the program run it. Prints the wall time of a cold run (every runspace pool opened) and of
a warm one (pools reused, as the program's second pass in the same process would), the pipelines per host and
the number of checks.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def big_lab(clouds: int) -> dict[str, Any]:
    from labsim.lab import Lab
    from labsim.testing import free_loopback_lab

    user = [{"name": "CONTOSO\\Admin", "password": "LabOnly-Bench-1!", "sql_sysadmin": True}]
    hosts: list[dict[str, Any]] = [
        {"name": "AzS-ERCS01", "fqdn": "azs-ercs01.azurestack.local", "address": "127.0.0.2",
         "roles": ["privileged_endpoint"], "winrm": {"auth": ["credssp"]}, "users": user},
        {"name": "AzS-WASP01", "fqdn": "azs-wasp01.azurestack.local", "address": "127.0.0.3",
         "roles": ["azs_user_portal"], "users": user},
        {"name": "AzS-HOST", "fqdn": "azs-host.azurestack.local", "address": "127.0.0.4", "roles": ["asdk_host"],
         "users": user},
    ]
    for i in range(clouds):
        c = f"Cloud{i}"
        hosts += [
            {"name": f"c{i}-portal", "fqdn": f"c{i}-portal.contoso.com", "address": "127.0.0.5",
             "roles": ["wap_tenant_portal"], "cloud": c, "users": user},
            {"name": f"c{i}-api", "fqdn": f"c{i}-api.contoso.com", "address": "127.0.0.5", "roles": ["wap_tenant_api"],
             "cloud": c, "wap": {"sql_server": f"c{i}-sql"}, "users": user},
            {"name": f"c{i}-sql", "fqdn": f"c{i}-sql.contoso.com", "address": "127.0.0.5", "roles": ["wap_sql"],
             "cloud": c, "users": user},
        ]
    for n, h in enumerate(hosts):  # distinct placeholders; free_loopback_lab picks the real addresses
        h["address"] = f"127.0.{n // 250 + 1}.{n % 250 + 2}"
    lab = {"name": "bench-preflight", "hosts": hosts, "clouds": [{"name": f"Cloud{i}"} for i in range(clouds)]}
    return free_loopback_lab(Lab.model_validate(lab)).model_dump(mode="json")


def serve(lab_json: dict[str, Any], state_dir: str, ready: Any, stop: Any) -> None:
    from labsim.hosts import LabRuntime
    from labsim.lab import Lab
    from labsim.testing import start_labsim

    with start_labsim(Lab.model_validate(lab_json), LabRuntime.open, Path(state_dir)):
        ready.set()
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clouds", type=int, default=32)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    from components.preflight import run_preflight
    from labsim.hosts.wapconnector import make_bundle
    from providers.transport import PsrpTransport
    from tests.preflight.helpers import config_for

    data = big_lab(args.clouds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        make_bundle(tmp_path / "bundle")
        ctx = mp.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        server = ctx.Process(target=serve, args=(data, str(tmp_path / "labsim"), ready, stop), daemon=True)
        server.start()
        try:
            if not ready.wait(120):
                raise SystemExit("labsim did not start")
            from labsim.lab import Lab

            config = config_for(Lab.model_validate(data), tmp_path, tmp_path / "labsim")
            real = PsrpTransport()
            calls: dict[str, int] = {}

            class Counting:
                def run(self, conn, step, statements, **kw):  # noqa: ANN001, ANN003, ANN201
                    calls[conn.fqdn] = calls.get(conn.fqdn, 0) + 1
                    return real.run(conn, step, statements, **kw)

                def run_until(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
                    return real.run_until(*a, **kw)

            for label in ("cold", "warm"):
                calls.clear()
                t0 = time.monotonic()
                report = run_preflight(config, transport=Counting(), project_dir=tmp_path, max_workers=args.workers)
                wall = time.monotonic() - t0
                per_host = sorted(calls.values())
                print(f"preflight {label}: {len(config.hosts)} hosts, {len(report.rows)} checks, "
                      f"{len(report.failures)} failed, {wall:.2f} s wall, pipelines per host: min {per_host[0]} "
                      f"max {per_host[-1]} total {sum(per_host)} (workers {args.workers})")
        finally:
            stop.set()
            server.join(30)


if __name__ == "__main__":
    main()
