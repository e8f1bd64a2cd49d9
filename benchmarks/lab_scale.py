"""Scale benchmark: a whole lab of N WAP clouds under the real Pulumi engine and labsim (not a test: it prints
figures; docs/performance.md holds the latest table).

    .venv/bin/python benchmarks/lab_scale.py [--clouds 2,6,12,20] [--factor 0.2] [--connection-cost 1]
    make bench N=2,6            # the same through make (BENCH_CLOUDS works too)

Each cloud has 2 tenant portal VMs, 2 Tenant API VMs and a SQL server, behind one Azure Stack (3 hosts). Per N:
labsim serves the lab in its own process (``labsim serve --background``); a throwaway project runs the checkout's
program with the project's engine settings (PULUMI_PARALLEL from scripts/env.sh). Measured, in this order:

* the factor-0 floor: ``up`` and ``destroy`` of the same lab with every step instant (``latency_factor: 0``,
  same connection costs), on its own labsim;
* ``up``, ``preview --refresh`` and ``destroy`` at ``--factor``, with labsim's counters read around the refresh:
  pipelines, commands (the invocation log) and runspace pool opens. The program runs a read-only preflight of
  every host before it registers anything (components/preflight/, in the program's own process), so the refresh's
  figures include it: it is measured on its own (``scripts/doctor.py``, the same probes) and shown apart;
* the critical path, computed from the stack's dependency graph (``pulumi stack export``) and labsim's latency
  profile (``labsim.hosts.latency``): the longest chain of step durations, for create and for delete;
* peak resident memory of the engine, the language host and every provider process (sampled every 0.25 s; RSS
  and PSS, which counts shared library pages once), and how many provider processes ran.

The goal ratios are up / (floor up + critical path) and destroy / (floor destroy + delete critical path).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from labsim.hosts.latency import PROFILE  # noqa: E402
from labsim.lab import Lab  # noqa: E402

DEFAULT_CLOUDS = (2, 6, 12, 20)
PEP_POLLING = 2.0
PASSWORDS = {"pep": "LabOnly-Pep-Bench!", "azs": "LabOnly-Azs-Bench!"}

# Which latency-profile steps each resource's create / delete runs, by the resource name's suffix (what the
# providers send to labsim: connector_site.py installs three MSIs and configures, its delete uninstalls the three
# packages; tenant_api_update.py's delete leaves the Tenant API as it is). "+polling" is pep_polling_seconds.
CREATE_STEPS: dict[str, tuple[str, ...]] = {
    "-connector-cert": ("Import-PfxCertificate",),
    "-connector-site": ("Install-Connector", "Configure-Certificates", "Configure-WapConnector"),
    "-tenant-api-update": ("Update-TenantAPI",),
    "-trust": ("Configure-TrustAzureStack",),
    "-multi-cloud": ("Add-AzurePackConnector", "+polling"),
}
DELETE_STEPS: dict[str, tuple[str, ...]] = {
    "-connector-site": ("msiexec /x",) * 3,
}


# -- the lab ------------------------------------------------------------------------------------------------------
def lab_data(clouds: int, factor: float, connection_cost: float) -> dict[str, Any]:
    """A labsim lab of ``clouds`` clouds (as labsim/labs/three-clouds.yaml, N times); addresses are placeholders
    that free_loopback_lab replaces."""
    hosts: list[dict[str, Any]] = [
        {"name": "AzS-ERCS01", "fqdn": "azs-ercs01.azurestack.local", "address": "127.0.0.2",
         "roles": ["privileged_endpoint"], "winrm": {"auth": ["credssp"]},
         "users": [{"name": "AZURESTACK\\CloudAdmin", "password": PASSWORDS["pep"]}]},
        {"name": "AzS-WASP01", "fqdn": "azs-wasp01.azurestack.local", "address": "127.0.0.3",
         "roles": ["azs_user_portal"],
         "users": [{"name": "AZURESTACK\\AzureStackAdmin", "password": PASSWORDS["azs"]}]},
        {"name": "AzS-HOST", "fqdn": "azs-host.azurestack.local", "address": "127.0.0.4",
         "roles": ["asdk_host"], "users": [{"name": "AZURESTACK\\AzureStackAdmin", "password": PASSWORDS["azs"]}]},
    ]
    cloud_list = []
    for c in range(1, clouds + 1):
        name = f"WapCloud{c}"
        cloud_list.append({"name": name, "tenant_portal_fqdn": f"tenant.cloud{c}.contoso.com",
                           "tenant_api_fqdn": f"tenantapi.cloud{c}.contoso.com"})
        user = [{"name": "CONTOSO\\WapAdmin", "password": f"LabOnly-Cloud{c}-Bench!"}]
        for i in (1, 2):
            hosts.append({"name": f"wap{c}-portal{i}", "fqdn": f"wap{c}-portal{i}.contoso.com",
                          "address": f"127.1.{c}.{i}", "roles": ["wap_tenant_portal"], "cloud": name, "users": user})
        for i in (1, 2):
            hosts.append({"name": f"wap{c}-api{i}", "fqdn": f"wap{c}-api{i}.contoso.com",
                          "address": f"127.1.{c}.{i + 2}", "roles": ["wap_tenant_api"], "cloud": name,
                          "wap": {"sql_server": f"wap{c}-sql"}, "users": user})
        hosts.append({"name": f"wap{c}-sql", "fqdn": f"wap{c}-sql.contoso.com", "address": f"127.1.{c}.5",
                      "roles": ["wap_sql"], "cloud": name, "users": [{**user[0], "sql_sysadmin": True}]})
    return {"name": f"bench-{clouds}", "azure_stack_cloud_name": "AzureStack",
            "azure_stack_portal_fqdn": "portal.local.azurestack.external",
            "adfs_fqdn": "adfs.local.azurestack.external",
            "settings": {"pep_polling_seconds": PEP_POLLING, "latency_factor": factor,
                         "connection_cost_factor": connection_cost},
            "clouds": cloud_list, "hosts": hosts}


def pulumi_env() -> dict[str, str]:
    """The engine settings the project's commands use (scripts/env.sh), PULUMI_PARALLEL above all."""
    out = subprocess.run(["bash", "-c", f". {ROOT}/scripts/env.sh >/dev/null && echo $PULUMI_PARALLEL"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return {"PULUMI_PARALLEL": out}


# -- processes and memory -----------------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _descendants(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        for k in kids.get(pid, []):
            out.append(k)
            todo.append(k)
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB; (0, 0) if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            values = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[0] in ("Rss:", "Pss:")}
        return values.get("Rss", 0), values.get("Pss", 0)
    except (OSError, ValueError, IndexError):
        return 0, 0


def _kind(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    text = b" ".join(argv)
    if b"pulumi.dynamic" in text:
        return "provider"
    if argv and argv[0].endswith(b"pulumi") and len(argv) > 1:
        return "engine"
    if b"pulumi-language-python" in text or b"__main__" in text or b"pulumi_language" in text or b"python" in argv[0]:
        return "program"
    return "other"


@dataclass
class ProcessWatch:
    """Samples every process below ``root`` (the pulumi CLI and what it starts) while a command runs."""

    root: int
    interval: float = 0.25
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    peak_by_kind_kb: dict[str, int] = field(default_factory=dict)
    providers_seen: set[int] = field(default_factory=set)
    max_providers: int = 0
    provider_rss_kb: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        total_rss = total_pss = providers = 0
        by_kind: dict[str, int] = {}
        for pid in [self.root, *_descendants(self.root)]:
            kind = _kind(pid)
            if kind is None:
                continue
            rss, pss = _memory_kb(pid)
            total_rss += rss
            total_pss += pss
            by_kind[kind] = by_kind.get(kind, 0) + rss
            if kind == "provider":
                providers += 1
                self.providers_seen.add(pid)
                self.provider_rss_kb.append(rss)
        self.peak_rss_kb = max(self.peak_rss_kb, total_rss)
        self.peak_pss_kb = max(self.peak_pss_kb, total_pss)
        self.max_providers = max(self.max_providers, providers)
        for kind, rss in by_kind.items():
            self.peak_by_kind_kb[kind] = max(self.peak_by_kind_kb.get(kind, 0), rss)


# -- one lab ------------------------------------------------------------------------------------------------------
@dataclass
class Measured:
    wall: float
    peak_rss_mib: float
    peak_pss_mib: float
    peak_by_kind_mib: dict[str, float]
    provider_processes: int
    max_provider_rss_mib: float


class BenchLab:
    """labsim (own process) + a throwaway Pulumi project for one lab."""

    def __init__(self, workdir: Path, clouds: int, factor: float, connection_cost: float) -> None:
        from labsim.hosts.wapconnector import make_bundle
        from labsim.stack_config import write_stack_config
        from labsim.testing import free_loopback_lab
        from tests.e2e.pulumi_cli import PulumiProject

        self.workdir = workdir
        workdir.mkdir(parents=True)
        self.lab = free_loopback_lab(Lab.model_validate(lab_data(clouds, factor, connection_cost)))
        self.lab_file = workdir / "lab.yaml"
        self.lab_file.write_text(yaml.safe_dump(self.lab.model_dump(mode="json"), sort_keys=False))
        self.state_dir = workdir / "labsim"
        self.state_dir.mkdir(parents=True)
        self._labsim("serve", "--background")
        self.project = PulumiProject(workdir / "pulumi", extra_env=pulumi_env())
        make_bundle(workdir / "bundle")
        write_stack_config(self.lab, self.lab_file, stack=self.project.stack, project_dir=self.project.project_dir,
                           state_dir=self.state_dir, bundle_dir=workdir / "bundle", env=self.project.env)

    def _labsim(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "labsim", "--lab", str(self.lab_file), "--state-dir",
                        str(self.state_dir), *args], cwd=ROOT, check=True, capture_output=True, text=True)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._labsim("stop")

    def run(self, *args: str) -> Measured:
        """One pulumi command, timed and watched; fails loudly if pulumi does."""
        env = self.project.env
        cmd = ["pulumi", *args, "--non-interactive", "--stack", self.project.stack]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.project.project_dir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        with ProcessWatch(proc.pid) as watch:
            output, _ = proc.communicate(timeout=3600)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-4000:]}")
        mib = lambda kb: round(kb / 1024, 1)  # noqa: E731
        return Measured(round(wall, 1), mib(watch.peak_rss_kb), mib(watch.peak_pss_kb),
                       {k: mib(v) for k, v in watch.peak_by_kind_kb.items()}, len(watch.providers_seen),
                       mib(max(watch.provider_rss_kb, default=0)))

    # -- labsim's figures ---------------------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        from labsim.state import LabState

        state = LabState.in_dir(self.state_dir)
        try:
            wire = state.wire_counts()
            commands = len(state.invocations())
        finally:
            state.close()
        return {"pool_open": sum(v.get("pool_open", 0) for v in wire.values()),
                "pipeline": sum(v.get("pipeline", 0) for v in wire.values()),
                "commands": commands, "hosts": {h: dict(v) for h, v in wire.items()}}

    def doctor(self) -> None:
        """The preflight on its own (what the program runs before registering resources); exit 1 = a FAIL row."""
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "doctor.py"), "--stack", self.project.stack,
                               "--cwd", str(self.project.project_dir)], env=self.project.env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"doctor exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    def resources(self) -> list[dict[str, Any]]:
        return self.project.export()["deployment"].get("resources") or []


# -- the critical path --------------------------------------------------------------------------------------------
def _weight(name: str, table: dict[str, tuple[str, ...]], factor: float) -> float:
    for suffix, steps in table.items():
        if name.endswith(suffix):
            return sum(PEP_POLLING if s == "+polling" else PROFILE[s] * factor for s in steps)
    return 0.0


def critical_paths(resources: list[dict[str, Any]], factor: float) -> tuple[float, float]:
    """(create, delete) critical path in seconds: the longest dependency chain weighted by step durations."""
    custom = {r["urn"]: r for r in resources if r.get("custom") and not r["type"].startswith("pulumi:providers:")}
    deps = {u: [d for d in r.get("dependencies") or [] if d in custom] for u, r in custom.items()}
    users: dict[str, list[str]] = {u: [] for u in custom}
    for u, ds in deps.items():
        for d in ds:
            users[d].append(u)

    def longest(edges: dict[str, list[str]], table: dict[str, tuple[str, ...]]) -> float:
        memo: dict[str, float] = {}

        def finish(u: str) -> float:  # when u is done, if everything runs as early as it may
            if u not in memo:
                memo[u] = max((finish(d) for d in edges[u]), default=0.0) + _weight(u.rsplit("::", 1)[1], table, factor)
            return memo[u]

        return max((finish(u) for u in custom), default=0.0)

    return round(longest(deps, CREATE_STEPS), 1), round(longest(users, DELETE_STEPS), 1)


# -- per N --------------------------------------------------------------------------------------------------------
def bench(clouds: int, factor: float, connection_cost: float, workdir: Path, floor: bool = True,
          log: Any = print) -> dict[str, Any]:
    record: dict[str, Any] = {"clouds": clouds, "factor": factor, "connection_cost": connection_cost,
                              "parallel": pulumi_env()["PULUMI_PARALLEL"], "cpus": os.cpu_count(),
                              "load_before": os.getloadavg()[0]}
    if floor:
        lab0 = BenchLab(workdir / "floor", clouds, 0.0, connection_cost)
        try:
            record["floor_up"] = lab0.run("up", "--yes", "--skip-preview").wall
            record["floor_destroy"] = lab0.run("destroy", "--yes", "--skip-preview").wall
        finally:
            lab0.close()
        log(f"  N={clouds}: floor up {record['floor_up']} s, destroy {record['floor_destroy']} s")
    lab = BenchLab(workdir / "lab", clouds, factor, connection_cost)
    try:
        record["hosts"] = len(lab.lab.hosts)
        up = lab.run("up", "--yes", "--skip-preview")
        resources = lab.resources()
        record["resources"] = len(resources)
        record["critical_path"], record["delete_critical_path"] = critical_paths(resources, factor)
        dynamic = [r for r in resources if r["type"].startswith("pulumi-python:dynamic")]
        record["remote_resources"] = sum(1 for r in dynamic if "connection" in (r.get("inputs") or {}))
        log(f"  N={clouds}: up {up.wall} s")
        before = lab.counters()
        started = time.monotonic()
        lab.doctor()
        record["preflight"] = round(time.monotonic() - started, 1)
        doctor = lab.counters()
        for kind, key in (("pipeline", "preflight_pipelines"), ("commands", "preflight_commands"),
                          ("pool_open", "preflight_pool_opens")):
            record[key] = doctor[kind] - before[kind]
        before = doctor
        refresh = lab.run("preview", "--refresh", "--expect-no-changes")
        after = lab.counters()
        log(f"  N={clouds}: preview --refresh {refresh.wall} s")
        destroy = lab.run("destroy", "--yes", "--skip-preview")
        destroyed = lab.counters()
        log(f"  N={clouds}: destroy {destroy.wall} s")
    finally:
        lab.close()
    hosts_read = [h for h in after["hosts"] if after["hosts"][h].get("pipeline", 0) >
                  before["hosts"].get(h, {}).get("pipeline", 0)]
    record.update(
        up=up.wall, preview_refresh=refresh.wall, destroy=destroy.wall,
        refresh_pipelines=after["pipeline"] - before["pipeline"],
        refresh_commands=after["commands"] - before["commands"],
        refresh_pool_opens=after["pool_open"] - before["pool_open"],
        refresh_hosts=len(hosts_read),
        destroy_pipelines=destroyed["pipeline"] - after["pipeline"],
        destroy_commands=destroyed["commands"] - after["commands"],
        destroy_pool_opens=destroyed["pool_open"] - after["pool_open"],
        refresh_pool_opens_by_host={h: n for h in after["hosts"] if (n := after["hosts"][h].get("pool_open", 0) -
                                                                    before["hosts"].get(h, {}).get("pool_open", 0))},
        peak_rss_mib=max(c.peak_rss_mib for c in (up, refresh, destroy)),
        peak_pss_mib=max(c.peak_pss_mib for c in (up, refresh, destroy)),
        memory_mib={name: {"rss": c.peak_rss_mib, "pss": c.peak_pss_mib, "providers": c.provider_processes}
                    for name, c in (("up", up), ("preview_refresh", refresh), ("destroy", destroy))},
        up_memory_mib=up.peak_by_kind_mib, provider_processes=up.provider_processes,
        max_provider_rss_mib=up.max_provider_rss_mib, load_after=os.getloadavg()[0],
    )
    if floor:
        record["up_ratio"] = round(record["up"] / (record["floor_up"] + record["critical_path"]), 2)
        destroy_floor = record["floor_destroy"] + record["delete_critical_path"]
        record["destroy_ratio"] = round(record["destroy"] / destroy_floor, 2)
    return record


HEADER = ("| N clouds | hosts | resources | provider processes | `up` | factor-0 `up` | critical path | up ratio "
          "| `preview --refresh` | `destroy` | factor-0 `destroy` | delete critical path | destroy ratio "
          "| pipelines / commands / pool opens per refresh, preflight excluded (remote resources, hosts) "
          "| the preflight alone: wall, pipelines / commands / pool opens "
          "| peak RSS (PSS) MiB: up / preview --refresh / destroy |\n"
          "|" + "---|" * 16)


def row(r: dict[str, Any]) -> str:
    g = lambda k: r.get(k, "—")  # noqa: E731
    mem = [(r["memory_mib"][c]["rss"], r["memory_mib"][c]["pss"]) for c in ("up", "preview_refresh", "destroy")]
    return (f"| {r['clouds']} | {r['hosts']} | {r['resources']} | {r['provider_processes']} | {r['up']} s "
            f"| {g('floor_up')} s | {r['critical_path']} s | {g('up_ratio')} | {r['preview_refresh']} s "
            f"| {r['destroy']} s | {g('floor_destroy')} s | {r['delete_critical_path']} s | {g('destroy_ratio')} "
            f"| {r['refresh_pipelines'] - r['preflight_pipelines']} / {r['refresh_commands'] - r['preflight_commands']}"
            f" / {r['refresh_pool_opens'] - r['preflight_pool_opens']} ({r['remote_resources']}, {r['refresh_hosts']}) "
            f"| {r['preflight']} s, {r['preflight_pipelines']} / {r['preflight_commands']}"
            f" / {r['preflight_pool_opens']} "
            f"| {' / '.join(f'{m[0]:.0f} ({m[1]:.0f})' for m in mem)} |")


def _make_defaults(args: argparse.Namespace) -> bool:
    """The run is what `make bench N=...` runs (only N differs from the defaults)."""
    return (args.factor, args.connection_cost, args.no_floor) == (0.2, 1.0, False)


def keep(path: Path, record: dict[str, Any], command: str) -> None:
    """Put ``record`` into the committed figures file, replacing the record of the same N and keeping the others
    (each names its own commit and command: a page may show N measured at different commits)."""
    from scripts import provenance

    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"records": []}
    stamped = {**record, "provenance": provenance.stamp(command, provenance.PERFORMANCE_CODE)}
    data["records"] = sorted([r for r in data["records"] if r["clouds"] != record["clouds"]] + [stamped],
                             key=lambda r: r["clouds"])
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def parse_clouds(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clouds", default=os.environ.get("BENCH_CLOUDS") or ",".join(map(str, DEFAULT_CLOUDS)),
                    help="comma-separated N (default: BENCH_CLOUDS or 2,6,12,20)")
    ap.add_argument("--factor", type=float, default=0.2, help="labsim latency_factor (default 0.2)")
    ap.add_argument("--connection-cost", type=float, default=1.0,
                    help="labsim connection_cost_factor: 1 = a pool open ~1 s, a pipeline ~30 ms (default 1)")
    ap.add_argument("--no-floor", action="store_true", help="skip the factor-0 runs (no ratios)")
    ap.add_argument("--json", type=Path, default=ROOT / ".state" / "bench" / "lab_scale.jsonl",
                    help="append one JSON line per N here")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the labs here (default: a temp dir, removed)")
    ap.add_argument("--figures", type=Path, default=None,
                    help="also keep each N's record, with the commit and command that measured it, in this file "
                         "(make bench: docs/performance-figures.json, which scripts/performance_report.py renders)")
    args = ap.parse_args(argv)
    records = []
    print(f"lab scale benchmark: N = {args.clouds}, latency_factor {args.factor}, connection_cost_factor "
          f"{args.connection_cost}, PULUMI_PARALLEL {pulumi_env()['PULUMI_PARALLEL']}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for n in parse_clouds(args.clouds):
        work = Path(tempfile.mkdtemp(prefix=f"bench-{n}-", dir=args.workdir))
        try:
            record = bench(n, args.factor, args.connection_cost, work, floor=not args.no_floor,
                           log=lambda m: print(m, flush=True))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        records.append(record)
        with args.json.open("a") as f:
            f.write(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}) + "\n")
        if args.figures is not None:
            keep(args.figures, record, f"make bench N={n}" if _make_defaults(args) else
                 f"python benchmarks/lab_scale.py {' '.join(argv if argv is not None else sys.argv[1:])}")
        print(json.dumps(record), flush=True)
    print()
    print(HEADER)
    for r in records:
        print(row(r))
    return records


if __name__ == "__main__":
    main()
