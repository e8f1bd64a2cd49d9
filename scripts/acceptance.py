"""`make acceptance STACK=<lab>`: does this code work against that lab? A report an operator can attach to a
change ticket.

Read-only by default, nothing on any host changes:
  1. doctor       scripts/doctor.py, what `make doctor` runs: the read-only check of every host of the stack;
  2. preview      `pulumi preview --refresh`: every resource read from its host, the plan that would follow;
  3. reads        every resource's read compared with its expected shape: the refreshed outputs carry every
                  output the stack recorded, with the same JSON type (values may differ: that is drift, step 2).

With the explicit opt-in (`make acceptance STACK=<lab> CYCLE=yes`, or `--cycle`) the full cycle follows, each
step checked: up (deploy or converge), an idempotent preview, drift (one connector site stopped out of band, as an
administrator would, and the preview must name it), heal (`up --refresh`, then a clean preview), destroy
(`pulumi destroy`; the stack then holds no resource). The cycle changes the lab: only run it where that is agreed.

    python scripts/acceptance.py --stack sim [--cycle] [--report PATH]
    # tests: --pulumi <pulumi binary> --cwd <project dir> (with the project's environment) runs a throwaway stack

The report (Markdown, plus the same data as JSON next to it) goes to `.state/acceptance/<stack>-<UTC time>.md`
unless --report says otherwise. Exit status 0 when every check passed, 1 otherwise. No secret is ever written:
outputs are compared by key and type only, and pulumi runs without --show-secrets except to read the one
connection the drift step needs, which never leaves this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIPPED"
_IGNORED_OUTPUTS = ("__provider",)  # the dynamic provider's pickled code: not a read result


@dataclass
class Check:
    name: str
    result: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class ResourceRead:
    name: str
    type: str
    read: str  # "read" | "gone" (the host no longer has it) | "not read"
    shape: str  # "ok" | what differs
    plan: str  # the op the refreshing preview planned ("same" when in sync)


@dataclass
class Report:
    stack: str
    mode: str
    started: str
    commit: str
    pulumi: str
    checks: list[Check] = field(default_factory=list)
    resources: list[ResourceRead] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: The doctor's checks, one row each ({host, check, status, result, todo}): a table of their own.
    doctor: list[dict[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.result != FAIL for c in self.checks)


class Pulumi:
    """Runs the pulumi CLI on one stack: through scripts/pulumi.sh (the operator's way) or, for tests, a given
    binary in a given project directory with the caller's environment."""

    def __init__(self, stack: str, binary: str | None, cwd: Path | None) -> None:
        self.stack = stack
        self.binary = binary
        self.cwd = cwd or ROOT

    def run(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        if self.binary:
            cmd = [self.binary, *args, "--stack", self.stack, "--non-interactive"]
            env = dict(os.environ)
        else:
            cmd = [str(ROOT / "scripts" / "pulumi.sh"), *args]
            env = dict(os.environ, STACK=self.stack)
        return subprocess.run(cmd, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _git_commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _json_type(value: Any) -> str:
    if value == "[secret]":  # how a preview shows a secret output
        return "secret"
    if isinstance(value, dict):
        return "secret" if value.get("4dabf18193072939515e22adb298388d") else "object"
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array",
            type(None): "null"}.get(type(value), type(value).__name__)


def shape_difference(expected: dict[str, Any], read: dict[str, Any]) -> str:
    """'ok', or what the read lacks / types differently compared with the outputs the stack recorded."""
    problems = []
    for key, value in expected.items():
        if key in _IGNORED_OUTPUTS:
            continue
        if key not in read:
            problems.append(f"{key} missing")
        elif None in (value, read[key]) or "secret" in (_json_type(value), _json_type(read[key])):
            continue  # a secret's type is not shown; a null has none
        elif _json_type(value) != _json_type(read[key]):
            problems.append(f"{key} is {_json_type(read[key])}, expected {_json_type(value)}")
    return "ok" if not problems else "; ".join(problems)


# -- steps ------------------------------------------------------------------------------------------------------
def step(report: Report, name: str, fn: Any, *args: Any) -> Any:
    t0 = time.monotonic()
    try:
        result, detail, value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, and the report says why
        result, detail, value = FAIL, f"{type(exc).__name__}: {exc}", None
    report.checks.append(Check(name, result, detail, round(time.monotonic() - t0, 1)))
    print(f"acceptance: {name}: {result}{' - ' + detail.splitlines()[0] if detail else ''}", flush=True)
    return value


def doctor(pulumi: Pulumi, report: Report) -> tuple[str, str, None]:
    """The stack's read-only preflight (scripts/doctor.py, what `make doctor` runs): every host reachable, the
    procedure's prerequisites in place. Its table goes into the report."""
    script = ROOT / "scripts" / "doctor.py"
    if not script.exists():
        report.missing.append("doctor: scripts/doctor.py is not in this checkout; the refreshing preview and the "
                              "reads below still ran")
        return SKIP, "scripts/doctor.py is not in this checkout", None
    with tempfile.TemporaryDirectory(prefix="acceptance-doctor-") as tmp:
        rows_file = Path(tmp) / "doctor.json"
        proc = subprocess.run([sys.executable, str(script), "--stack", pulumi.stack, "--cwd", str(pulumi.cwd),
                               "--json", str(rows_file)],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800,
                              env=dict(os.environ) if pulumi.binary else dict(os.environ, STACK=pulumi.stack))
        checked = json.loads(rows_file.read_text()) if rows_file.exists() else None
    result = PASS if proc.returncode == 0 else FAIL
    if checked is None:  # it stopped before checking any host (the configuration): what it said
        return result, _tail(proc.stdout + proc.stderr, 40), None
    report.doctor = checked["rows"]
    return result, f"{checked['summary']} (table: Doctor, below)", None


def exported(pulumi: Pulumi) -> dict[str, dict[str, Any]]:
    """{urn: resource} of the stack's current state (secrets stay encrypted)."""
    proc = pulumi.run("stack", "export")
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi stack export failed:\n{_tail(proc.stderr)}")
    deployment = json.loads(proc.stdout).get("deployment") or {}
    return {r["urn"]: r for r in deployment.get("resources") or []
            if r.get("custom") and not r["type"].startswith("pulumi:providers:")}


def refreshing_preview(pulumi: Pulumi) -> tuple[str, str, dict[str, Any]]:
    proc = pulumi.run("preview", "--refresh", "--json")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return FAIL, _tail(proc.stdout + proc.stderr), {}
    errors = [d.get("message", "") for d in data.get("diagnostics") or [] if d.get("severity") == "error"]
    if proc.returncode != 0 or errors:
        return FAIL, "\n".join(errors) or _tail(proc.stderr), data
    changes = [(s["op"], s["urn"].rsplit("::", 1)[1]) for s in data.get("steps") or []
               if s["op"] not in ("same", "refresh") and not s["urn"].split("::")[-2].endswith("pulumi:pulumi:Stack")]
    detail = "in sync: no change planned" if not changes else \
        "would change: " + ", ".join(f"{name} ({op})" for op, name in changes)
    return PASS, detail, data


def reads(report: Report, state: dict[str, dict[str, Any]], preview: dict[str, Any]) -> tuple[str, str, None]:
    """Every resource the stack holds was read by the refresh and its read has the recorded outputs' shape."""
    steps: dict[str, list[dict[str, Any]]] = {}
    for s in preview.get("steps") or []:
        steps.setdefault(s["urn"], []).append(s)
    bad = 0
    for urn, resource in state.items():
        name, rtype = urn.rsplit("::", 1)[1], resource["type"]
        mine = steps.get(urn, [])
        plan = next((s["op"] for s in mine if s["op"] != "refresh"), "same")
        refreshed = next((s.get("newState") for s in mine if s["op"] == "refresh"), None)
        if refreshed is None:
            refreshed = next((s.get("oldState") for s in mine if s["op"] != "refresh" and s.get("oldState")), None)
        if plan in ("create", "create-replacement") and refreshed is None:
            report.resources.append(ResourceRead(name, rtype, "gone", "-", plan))
            bad += 1
            continue
        if refreshed is None:
            report.resources.append(ResourceRead(name, rtype, "not read", "-", plan))
            bad += 1
            continue
        shape = shape_difference(resource.get("outputs") or {}, refreshed.get("outputs") or {})
        bad += shape != "ok"
        report.resources.append(ResourceRead(name, rtype, "read", shape, plan))
    if not state:
        return SKIP, "the stack holds no resource yet: nothing to read (deploy first, or run with CYCLE=yes)", None
    ok = len(state) - bad
    return (PASS if bad == 0 else FAIL), f"{ok}/{len(state)} resources read with their expected shape", None


def up(pulumi: Pulumi) -> tuple[str, str, None]:
    proc = pulumi.run("up", "--refresh", "--yes", "--skip-preview")
    return (PASS if proc.returncode == 0 else FAIL), _tail(proc.stdout + proc.stderr, 4), None


def clean_preview(pulumi: Pulumi) -> tuple[str, str, None]:
    proc = pulumi.run("preview", "--refresh", "--expect-no-changes")
    return ((PASS, "no change planned", None) if proc.returncode == 0
            else (FAIL, _tail(proc.stdout + proc.stderr), None))


def drift(pulumi: Pulumi) -> tuple[str, str, None]:
    """Stop one connector site out of band, as an administrator would; the refreshing preview must plan to heal
    exactly that resource."""
    from providers.facts.locations import CONNECTOR_SITE
    from providers.transport import Command, HostConnection, PsrpTransport

    proc = pulumi.run("stack", "export", "--show-secrets")
    if proc.returncode != 0:
        return FAIL, _tail(proc.stderr), None
    sites = [r for r in json.loads(proc.stdout)["deployment"].get("resources") or []
             if r.get("custom") and r["type"].endswith("ConnectorSite")]
    if not sites:
        return SKIP, "the stack has no ConnectorSite to drift", None
    site = sites[0]
    conn = HostConnection.parse(_plain((site.get("inputs") or {})["connection"]))
    PsrpTransport().run(conn, "acceptance: drift", Command("Stop-Website", {"Name": CONNECTOR_SITE}))
    name = site["urn"].rsplit("::", 1)[1]
    planned = refreshing_preview(pulumi)[2]
    ops = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in planned.get("steps") or []
           if s["op"] not in ("same", "refresh")}
    if ops.get(name) not in ("update", "replace", "create-replacement"):
        shown = ops or "nothing"
        return FAIL, f"stopped {CONNECTOR_SITE} on {conn.fqdn}, but the preview planned {shown}", None
    return PASS, f"stopped {CONNECTOR_SITE} on {conn.fqdn}; the preview plans {name} ({ops[name]})", None


def _plain(value: Any) -> Any:
    """A state value with Pulumi's secret wrappers removed (export --show-secrets writes them as plaintext)."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") and "plaintext" in value:
            return _plain(json.loads(value["plaintext"]))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def destroy(pulumi: Pulumi) -> tuple[str, str, None]:
    proc = pulumi.run("destroy", "--yes", "--skip-preview")
    if proc.returncode != 0:
        return FAIL, _tail(proc.stdout + proc.stderr), None
    left = exported(pulumi)
    if left:
        return FAIL, "still in the stack: " + ", ".join(u.rsplit("::", 1)[1] for u in left), None
    return PASS, "every resource destroyed; the stack is empty", None


# -- report --------------------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    """One Markdown table cell: pipes escaped, line breaks kept as <br>."""
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def render(report: Report) -> str:
    lines = [f"# Acceptance report: stack `{report.stack}`", "",
             f"- result: **{'PASS' if report.passed else 'FAIL'}**",
             f"- mode: {report.mode}",
             f"- started (UTC): {report.started}",
             f"- code: commit {report.commit}; {report.pulumi}", "",
             "## Checks", "", "| check | result | seconds | detail |", "|---|---|---|---|"]
    for c in report.checks:
        lines.append(f"| {c.name} | {c.result} | {c.seconds:g} | {_cell(c.detail)} |")
    if report.doctor:
        lines += ["", "## Doctor", "", "The read-only check of every host (`make doctor`).", "",
                  "| host | check | result | detail | what to do |", "|---|---|---|---|---|"]
        lines += [f"| {' | '.join(_cell(r.get(k, '')) for k in ('host', 'check', 'status', 'result', 'todo'))} |"
                  for r in report.doctor]
    lines += ["", "## Every resource's read", "",
              "Read by `pulumi preview --refresh` from its host; shape: the read carries every output the stack "
              "recorded, with the same type; plan: what the preview would do (same = in sync).", "",
              "| resource | type | read | shape | plan |", "|---|---|---|---|---|"]
    for r in report.resources:
        lines.append(f"| {r.name} | {r.type.rsplit(':', 1)[-1]} | {r.read} | {r.shape} | {r.plan} |")
    if not report.resources:
        lines.append("| (none) | | | | |")
    if report.missing:
        lines += ["", "## Not covered by this run", ""] + [f"- {m}" for m in report.missing]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", default=os.environ.get("STACK", "sim"))
    ap.add_argument("--cycle", action="store_true", help="also run up / drift / heal / destroy (changes the lab)")
    ap.add_argument("--report", type=Path, help="where to write the Markdown report (JSON next to it)")
    ap.add_argument("--pulumi", help="pulumi binary to run directly (tests); default scripts/pulumi.sh")
    ap.add_argument("--cwd", type=Path, help="the project directory for --pulumi")
    args = ap.parse_args(argv)

    pulumi = Pulumi(args.stack, args.pulumi, args.cwd)
    version = subprocess.run([args.pulumi or str(ROOT / ".venv" / "bin" / "pulumi"), "version"],
                             capture_output=True, text=True)
    started = dt.datetime.now(dt.UTC)
    report = Report(args.stack, "full cycle (up / drift / heal / destroy)" if args.cycle else "read-only",
                    started.strftime("%Y-%m-%d %H:%M:%S"), _git_commit(), f"pulumi {version.stdout.strip()}")

    if args.cycle:
        step(report, "up: deploy or converge", up, pulumi)
    step(report, "doctor: every host reachable and as expected (read-only)", doctor, pulumi, report)
    state = step(report, "state: the stack's resources", lambda: (PASS, "", exported(pulumi))) or {}
    report.checks[-1].detail = f"{len(state)} resources"
    preview = step(report, "preview --refresh: read every resource, plan", refreshing_preview, pulumi) or {}
    step(report, "reads: every resource read with its expected shape", reads, report, state, preview)
    if args.cycle:
        step(report, "idempotent: a second preview plans nothing", clean_preview, pulumi)
        step(report, "drift: an out-of-band change is seen", drift, pulumi)
        step(report, "heal: up --refresh repairs it", up, pulumi)
        step(report, "healed: the preview plans nothing", clean_preview, pulumi)
        step(report, "destroy: every resource removed", destroy, pulumi)
    else:
        report.missing.append("the up / drift / heal / destroy cycle (opt in with CYCLE=yes; it changes the lab)")

    path = args.report or ROOT / ".state" / "acceptance" / f"{args.stack}-{started.strftime('%Y%m%dT%H%M%SZ')}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report))
    path.with_suffix(".json").write_text(json.dumps(asdict(report) | {"passed": report.passed}, indent=2) + "\n")
    print(f"acceptance: {'PASS' if report.passed else 'FAIL'}; report: {path}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
