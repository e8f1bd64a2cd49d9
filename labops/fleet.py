"""`make fleet`: every lab stack of this project at a glance, and up / destroy for a chosen set, side by side.

    python -m labops.fleet status                         # every stack: state, resources, last update, drift
    python -m labops.fleet up sim sim-three --continue-on-error
    python -m labops.fleet up lab1 --skip-unreachable     # hosts the refresh cannot read are left for later
    python -m labops.fleet up lab1 --target URN [--target-dependents]
    python -m labops.fleet destroy sim-three --yes

Built on Pulumi's Automation API (labops.stacks). `status` runs one refreshing preview per deployed stack (read
only), several at once; each stack's drift is recorded for `make graph --no-refresh`. `up` is `pulumi up
--refresh` per stack, the stacks side by side; each stack's full output goes to .state/fleet/STACK.ACTION.log
(secrets shown as [secret]). A stack's errors and the program's own messages (the preflight's table) are
printed under its line. Exit status 0 only when every chosen stack succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from labops.stacks import DRIFT_DIR, ROOT, Collector, Drift, Project, Resource, read_resources, refreshing_preview

LOG_DIR = ROOT / ".state" / "fleet"


@dataclass
class StackStatus:
    name: str
    state: str
    resources: int | None = None
    last_update: str = "-"
    drift: Drift | None = None
    unreachable: dict[str, int] = field(default_factory=dict)  # host -> resources it could not read


@dataclass
class Outcome:
    """One stack's up or destroy."""

    name: str
    ok: bool
    changes: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)
    log: Path | None = None
    error: str | None = None


def unreachable_hosts(failed: dict[str, str], resources: Sequence[Resource]) -> dict[str, int]:
    """Hosts whose resources could not be read, with how many; the operator's machine when none is known."""
    by_urn = {r.urn: r for r in resources}
    hosts: dict[str, int] = {}
    for urn in failed:
        resource = by_urn.get(urn)
        host = resource.host if resource is not None and resource.host else "(no host)"
        hosts[host] = hosts.get(host, 0) + 1
    return dict(sorted(hosts.items()))


def excluded_by_hosts(hosts: Sequence[str], resources: Sequence[Resource]) -> list[str]:
    """Every resource that lives on one of ``hosts`` (their dependents are excluded by the engine)."""
    return sorted(r.urn for r in resources if r.custom and r.host in set(hosts))


def preflight_failures(messages: Sequence[str]) -> list[tuple[str, str]]:
    """(host, row) of every FAIL row of the preflight tables among a run's messages (components/preflight/report.py
    renders HOST, CHECK and RESULT columns; a result starts with PASS, FAIL, WARN or SKIP)."""
    rows = []
    for message in messages:
        lines = message.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("HOST") and " CHECK " in line and " RESULT" in line:
                check_at, result_at = line.index("CHECK"), line.index("RESULT")
                for row in lines[i + 1:]:
                    if not row.strip():
                        break
                    if row[result_at:].startswith("FAIL"):
                        rows.append((row[:check_at].strip(), row.strip()))
    return rows


def blocking_failures(rows: Sequence[tuple[str, str]], skipped: Sequence[str]) -> list[str]:
    """The failed rows that are not about a skipped host (by its config name or FQDN, as the row's host or
    named in the row, e.g. "AzS-WASP01  reaches wapcomputer2  FAIL ping wapcomputer2.contoso.com ...")."""
    names = {n.lower() for n in skipped}
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(n)}(?![\w-])" for n in sorted(names)), re.I) \
        if names else None
    return [row for host, row in rows
            if host.lower() not in names and not (pattern and pattern.search(row))]


def host_names(stack: auto.Stack, fqdns: Sequence[str]) -> list[str]:
    """The skipped hosts by FQDN and by the names the stack config gives them (``wapconnector:hosts``)."""
    names = set(fqdns)
    try:
        hosts = json.loads(stack.get_all_config().get("wapconnector:hosts", auto.ConfigValue("{}")).value or "{}")
    except (auto.CommandError, ValueError):
        hosts = {}
    for name, settings in hosts.items() if isinstance(hosts, dict) else ():
        fqdn = str((settings or {}).get("fqdn") or name).lower().rstrip(".")
        if fqdn in names:
            names.add(name)
    return sorted(names)


def _changes_text(changes: dict[str, int]) -> str:
    done = [f"{n} {op}" for op, n in sorted(changes.items()) if n and op != "same"]
    if changes.get("same"):
        done.append(f"{changes['same']} unchanged")
    return ", ".join(done) or "no changes"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


class Fleet:
    def __init__(self, project: Project, *, jobs: int = 4, log_dir: Path = LOG_DIR, drift_dir: Path = DRIFT_DIR,
                 prepare: Callable[[str], None] | None = None, out: Callable[[str], None] = print) -> None:
        self.project = project
        self.jobs = max(1, jobs)
        self.log_dir = log_dir
        self.drift_dir = drift_dir
        self.prepare = prepare or (lambda stack: None)
        self._out = out
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            self._out(text)

    def _map(self, fn: Callable[[str], Any], names: Sequence[str]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=min(self.jobs, max(1, len(names)))) as pool:
            return list(pool.map(fn, names))

    # -- status ------------------------------------------------------------------------------------------------
    def status(self, only: Sequence[str] = ()) -> list[StackStatus]:
        summaries = {s.name: s for s in self.project.workspace().list_stacks()}
        names = sorted(set(summaries) | set(self.project.config_stacks()))
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise SystemExit(f"fleet: error: no such stack: {', '.join(unknown)} (stacks: {', '.join(names)})")
            names = [n for n in names if n in only]

        def one(name: str) -> StackStatus:
            summary = summaries.get(name)
            if summary is None:
                return StackStatus(name, "no state (configuration only)")
            status = StackStatus(name, "deployed" if summary.resource_count else "empty",
                                 summary.resource_count or 0,
                                 f"{summary.last_update:%Y-%m-%d %H:%M} UTC" if summary.last_update else "-")
            if summary.update_in_progress:
                status.state = "update in progress"
            if summary.resource_count:
                self.prepare(name)
                stack = self.project.stack(name)
                status.drift = refreshing_preview(stack)
                status.drift.save(self.drift_dir)
                if status.drift.failed:
                    status.unreachable = unreachable_hosts(status.drift.failed, read_resources(stack))
            return status

        return self._map(one, names)

    def print_status(self, statuses: Sequence[StackStatus]) -> None:
        width = max([len(s.name) for s in statuses] + [5])
        self.say(f"{'STACK':<{width}}  {'STATE':<30}  {'RESOURCES':>9}  {'LAST UPDATE':<20}  DRIFT")
        for s in statuses:
            drift = s.drift.describe() if s.drift else "-"
            count = str(s.resources) if s.resources is not None else "-"
            self.say(f"{s.name:<{width}}  {s.state:<30}  {count:>9}  {s.last_update:<20}  {drift}")
            for host, n in s.unreachable.items():
                self.say(f"    not read: {host} ({n} resource{'s' if n != 1 else ''})")
            for message in (s.drift.messages if s.drift else []):
                self.say(_indent(message))

    # -- up / destroy ------------------------------------------------------------------------------------------
    def run(self, action: str, names: Sequence[str], *, targets: Sequence[str] = (), target_dependents: bool = False,
            continue_on_error: bool = False, skip_unreachable: bool = False) -> list[Outcome]:
        known = set(self.project.config_stacks()) | {s.name for s in self.project.workspace().list_stacks()}
        unknown = sorted(set(names) - known)
        if unknown:
            raise SystemExit(f"fleet: error: no such stack: {', '.join(unknown)}")
        self.log_dir.mkdir(parents=True, exist_ok=True)

        def one(name: str) -> Outcome:
            log = self.log_dir / f"{name}.{action}.log"
            outcome = Outcome(name, ok=False, log=log)
            try:
                self.prepare(name)
                stack = self.project.stack(name)
                exclude: list[str] = []
                if skip_unreachable and action == "up":
                    drift = refreshing_preview(stack)
                    if drift.failed:
                        resources = read_resources(stack)
                        outcome.skipped_hosts = [h for h in unreachable_hosts(drift.failed, resources)
                                                 if h != "(no host)"]
                        exclude = excluded_by_hosts(outcome.skipped_hosts, resources)
                        # Those hosts are left out knowingly: the program's preflight warns about them instead
                        # of stopping the run (this run only; the stack's own setting is not changed).
                        stack.workspace.env_vars = {**stack.workspace.env_vars, "WAPCONNECTOR_PREFLIGHT": "warn"}
                        # ...but a failed check about any other host still stops this stack, as it would have.
                        look = Collector()
                        with contextlib.suppress(auto.CommandError):
                            stack.preview(exclude=exclude or None, exclude_dependents=True if exclude else None,
                                          on_event=look, color="never")
                        blocking = blocking_failures(preflight_failures(look.messages),
                                                     host_names(stack, outcome.skipped_hosts))
                        if blocking:
                            outcome.messages = look.messages
                            outcome.error = ("the preflight failed on hosts that are not skipped; nothing was "
                                             "changed: " + " | ".join(blocking))[:600]
                            self.say(f"{name}: {action} FAILED: preflight")
                            return outcome
                seen = Collector()
                with log.open("w") as sink:
                    def write(line: str) -> None:
                        sink.write(line if line.endswith("\n") else line + "\n")

                    common: dict[str, Any] = dict(target=list(targets) or None,
                                                  target_dependents=target_dependents or None,
                                                  continue_on_error=continue_on_error or None, on_event=seen,
                                                  on_output=write, color="never", show_secrets=False)
                    try:
                        if action == "up":
                            stack.up(refresh=True, exclude=exclude or None,
                                     exclude_dependents=True if exclude else None, **common)
                        else:
                            stack.destroy(**common)
                        outcome.ok = True
                    except auto.CommandError as exc:
                        outcome.error = (str(exc).strip().splitlines() or ["failed"])[-1][:300]
                        write(str(exc))
                outcome.changes, outcome.failed, outcome.messages = seen.changes, seen.failed, seen.messages
            except (auto.CommandError, subprocess.CalledProcessError, SystemExit) as exc:
                outcome.error = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
            self.say(f"{name}: {action} {'succeeded' if outcome.ok else 'FAILED'}: {_changes_text(outcome.changes)}")
            return outcome

        return self._map(one, names)

    def print_outcomes(self, action: str, outcomes: Sequence[Outcome]) -> None:
        self.say("")
        for o in outcomes:
            self.say(f"{o.name}: {action} {'succeeded' if o.ok else 'FAILED'}; {_changes_text(o.changes)}"
                     f" (log: {o.log})")
            if o.skipped_hosts:
                self.say(f"    skipped, not reachable: {', '.join(o.skipped_hosts)}")
            for urn, message in o.failed.items():
                self.say(f"    {urn.rsplit('::', 1)[1]}: {message}")
            for message in o.messages:
                self.say(_indent(message))
            if not o.ok and not o.failed and not o.messages and o.error:
                self.say(f"    {o.error}")


def _start_labsim(stack: str) -> None:
    """Simulated stacks of this checkout get labsim first, as `make up` does (a no-op for real labs)."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "lab.py"), "start", stack], check=True,
                   stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None, project: Project | None = None,
         prepare: Callable[[str], None] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labops.fleet", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=4, help="stacks handled at once (default 4)")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--drift-dir", type=Path, default=DRIFT_DIR, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="every stack (or those named): state and drift")
    status.add_argument("stacks", nargs="*")
    for action in ("up", "destroy"):
        p = sub.add_parser(action, help=f"pulumi {action} on the named stacks, side by side")
        p.add_argument("stacks", nargs="+")
        p.add_argument("--target", action="append", default=[], metavar="URN",
                       help="only these resources (repeatable; `pulumi stack --show-urns` lists them)")
        p.add_argument("--target-dependents", action="store_true", help="with --target: also what depends on them")
        p.add_argument("--continue-on-error", action="store_true",
                       help="keep going with everything that does not depend on a failed resource")
        if action == "up":
            p.add_argument("--skip-unreachable", action="store_true",
                           help="refresh first; leave out the resources on hosts that cannot be read (and what "
                                "depends on them), so the reachable hosts are finished")
        else:
            p.add_argument("--yes", action="store_true", help="required: destroy really removes what the stack made")
    args = parser.parse_args(argv)

    fleet = Fleet(project or Project.checkout(), jobs=args.jobs, log_dir=args.log_dir, drift_dir=args.drift_dir,
                  prepare=prepare if project else (prepare or _start_labsim))
    if args.command == "status":
        statuses = fleet.status(args.stacks)
        fleet.print_status(statuses)
        return 0 if all(s.drift is None or s.drift.ok for s in statuses) else 1
    if args.command == "destroy" and not args.yes:
        parser.error("destroy removes what each stack created on its hosts: add --yes")
    outcomes = fleet.run(args.command, args.stacks, targets=args.target, target_dependents=args.target_dependents,
                         continue_on_error=args.continue_on_error,
                         skip_unreachable=getattr(args, "skip_unreachable", False))
    fleet.print_outcomes(args.command, outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
