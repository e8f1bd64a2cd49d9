"""Reading lab stacks through Pulumi's Automation API: which stacks exist, what each holds, and its drift.

Secrets: a resource's host comes from its ``connection`` input, whose ``fqdn`` is plain (only the password in
it is a secret), so :func:`read_resources` reads the state without decrypting it. Only for a state written
before that (whole connections secret) does it decrypt, in this process, keeping nothing but each ``fqdn``;
the decrypted deployment is never written, logged or returned. Drift comes from one refreshing
preview (reads every host, changes nothing), recorded per stack under ``.state/drift/`` so the picture can
show "drift as of the last refresh" without reaching the hosts again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

ROOT = Path(__file__).resolve().parents[1]
_SELECT_LOCK = threading.Lock()
DRIFT_DIR = ROOT / ".state" / "drift"

# How Pulumi marks a secret value in an exported deployment.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
# Ops a refreshing preview may plan for one resource, strongest first (a replace also shows its two halves).
_OP_RANK = ("replace", "create", "delete", "update", "same")
_OP_ALIASES = {"create-replacement": "replace", "delete-replaced": "replace", "discard": "delete"}


@dataclass(frozen=True)
class Project:
    """Where the Pulumi program lives and the environment each stack's commands run with."""

    work_dir: Path
    env_for: Callable[[str], dict[str, str]]

    @classmethod
    def checkout(cls) -> Project:
        """This checkout, with the environment `scripts/env.sh` gives each stack (so a simulator stack gets
        the lab-only passphrase exactly as `make up` does, and an operator's settings still win)."""
        return cls(ROOT, _env_sh)

    def workspace(self, stack: str = "") -> auto.LocalWorkspace:
        return auto.LocalWorkspace(work_dir=str(self.work_dir), env_vars=self.env_for(stack))

    def stack(self, name: str) -> auto.Stack:
        # Selecting writes the workspace's current-stack file: one at a time (every command names its stack).
        with _SELECT_LOCK:
            return auto.Stack.select(name, self.workspace(name))

    def config_stacks(self) -> list[str]:
        """Stacks that have a configuration file in the project's stack config dir."""
        settings = yaml.safe_load((self.work_dir / "Pulumi.yaml").read_text()) or {}
        config_dir = self.work_dir / settings.get("stackConfigDir", ".")
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml"))


def _env_sh(stack: str) -> dict[str, str]:
    proc = subprocess.run(["bash", "-c", '. scripts/env.sh && env -0'], cwd=ROOT, capture_output=True,
                          env={**os.environ, "STACK": stack or "sim"}, check=True)
    return dict(item.split("=", 1) for item in proc.stdout.decode().split("\0") if "=" in item)


# -- resources, without secrets ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """One resource of a stack's state, reduced to what a picture needs (nothing secret)."""

    urn: str
    name: str
    type: str
    parent: str | None
    dependencies: tuple[str, ...]
    host: str | None  # the connection's FQDN (lower-case); None for what runs on the operator's machine
    custom: bool      # a real resource (False: the stack, a component, a provider)


def _plain(value: Any) -> Any:
    """A decrypted secret's value; None for a secret still encrypted (nothing to read without the key)."""
    if isinstance(value, Mapping) and value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
        if "plaintext" not in value:
            return None
        return json.loads(value["plaintext"])
    return value


def host_of(props: Mapping[str, Any]) -> str | None:
    conn = _plain(props.get("connection"))
    fqdn = conn.get("fqdn") if isinstance(conn, Mapping) else None
    return fqdn.lower().rstrip(".") if isinstance(fqdn, str) else None


def resources_from_deployment(deployment: Mapping[str, Any]) -> list[Resource]:
    """Pure: the deployment's resources as :class:`Resource` (copying no property but each host's name)."""
    out = []
    for r in deployment.get("resources") or []:
        kind = r["type"]
        custom = bool(r.get("custom")) and not kind.startswith("pulumi:providers:")
        out.append(Resource(
            urn=r["urn"], name=r["urn"].rsplit("::", 1)[1], type=kind, parent=r.get("parent") or None,
            dependencies=tuple(r.get("dependencies") or ()),
            host=(host_of(r.get("outputs") or {}) or host_of(r.get("inputs") or {})) if custom else None,
            custom=custom))
    return out


def _opaque_connection(resource: Mapping[str, Any]) -> bool:
    """A connection stored wholly as a secret (states written before only its password was): no host to read."""
    return any(isinstance(props.get("connection"), Mapping) and SECRET_SIG in props["connection"]
               for props in (resource.get("inputs") or {}, resource.get("outputs") or {})) and \
        host_of(resource.get("inputs") or {}) is None and host_of(resource.get("outputs") or {}) is None


def read_resources(stack: auto.Stack) -> list[Resource]:
    """The stack's resources, read without decrypting anything: each connection's ``fqdn`` is a plain input
    (only its password is a secret). A state written before that keeps whole connections secret; only then is
    the state decrypted, in this process, and reduced at once (export_stack runs `stack export --show-secrets`)."""
    ws = stack.workspace
    env = {**os.environ, **(getattr(ws, "env_vars", None) or {})}
    proc = subprocess.run(["pulumi", "stack", "export", "--stack", stack.name, "--non-interactive"],
                          cwd=ws.work_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise auto.CommandError(auto.CommandResult(stdout=proc.stdout, stderr=proc.stderr, code=proc.returncode))
    deployment = json.loads(proc.stdout).get("deployment") or {}
    if any(_opaque_connection(r) for r in deployment.get("resources") or []):
        deployment = stack.export_stack().deployment or {}
    return resources_from_deployment(deployment)


# -- what a run said ------------------------------------------------------------------------------------------

_ENGINE_NOISE = re.compile(r"^(update|preview|refresh|destroy) failed$|^\d+ errors?$")


class Collector:
    """Engine events of one run (preview, up, destroy) reduced to what an operator reads: the op planned or done
    per resource, the first line of each resource's error, and the program's own messages in full (the
    preflight's table is one of them)."""

    def __init__(self) -> None:
        self.ops: dict[str, str] = {}
        self.diffs: dict[str, list[str]] = {}
        self.failed: dict[str, str] = {}
        self.messages: list[str] = []
        self.changes: dict[str, int] = {}

    def __call__(self, event: auto.EngineEvent) -> None:
        if event.resource_pre_event:
            meta = event.resource_pre_event.metadata
            op = meta.op.value
            if op in ("refresh", "read") or meta.type == "pulumi:pulumi:Stack":
                return
            self.ops[meta.urn] = _stronger(self.ops.get(meta.urn), op)
            if meta.diffs:
                self.diffs[meta.urn] = sorted(set(self.diffs.get(meta.urn, [])) | set(meta.diffs))
        elif event.diagnostic_event and event.diagnostic_event.severity in ("error", "warning"):
            diag = event.diagnostic_event
            message = diag.message.strip()
            if not message or _ENGINE_NOISE.match(message):
                return
            if diag.urn and "::pulumi:pulumi:Stack::" not in diag.urn and diag.severity == "error":
                self.failed.setdefault(diag.urn, message.splitlines()[0])
            elif message not in self.messages:
                self.messages.append(message)
        elif event.summary_event:
            self.changes = {str(k): int(v) for k, v in (event.summary_event.resource_changes or {}).items()}


# -- drift ---------------------------------------------------------------------------------------------------

@dataclass
class Drift:
    """What one refreshing preview said: per resource URN the op it plans (``same`` when in sync)."""

    stack: str
    refreshed_at: str
    ok: bool
    ops: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, list[str]] = field(default_factory=dict)  # changed property names, when the provider says
    error: str | None = None
    failed: dict[str, str] = field(default_factory=dict)  # URN -> the first line of its error (a host not read)
    messages: list[str] = field(default_factory=list)     # the program's own errors/warnings (preflight table)

    @property
    def changes(self) -> Counter[str]:
        return Counter(op for op in self.ops.values() if op != "same")

    def describe(self) -> str:
        if not self.ok:
            return f"unknown: {self.error}"
        if not self.changes:
            return "in sync"
        return "drift: " + ", ".join(f"{n} to {op}" for op, n in sorted(self.changes.items()))

    def save(self, directory: Path = DRIFT_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.stack}.json"
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, stack: str, directory: Path = DRIFT_DIR) -> Drift | None:
        path = directory / f"{stack}.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def _stronger(a: str | None, b: str) -> str:
    b = _OP_ALIASES.get(b, b)
    if a is None:
        return b
    rank = {op: i for i, op in enumerate(_OP_RANK)}
    return a if rank.get(a, len(rank)) <= rank.get(b, len(rank)) else b


def refreshing_preview(stack: auto.Stack) -> Drift:
    """`pulumi preview --refresh` through the Automation API: reads every host, changes nothing."""
    seen = Collector()
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        stack.preview(refresh=True, on_event=seen, color="never")
    except auto.CommandError as exc:
        reasons = [f"{urn.rsplit('::', 1)[1]}: {msg}" for urn, msg in seen.failed.items()] + seen.messages
        first = reasons[0].splitlines()[0] if reasons else (str(exc).strip().splitlines() or ["failed"])[-1]
        return Drift(stack.name, at, ok=False, ops=seen.ops, diffs=seen.diffs, error=first[:300],
                     failed=seen.failed, messages=seen.messages)
    return Drift(stack.name, at, ok=True, ops=seen.ops, diffs=seen.diffs, messages=seen.messages)
