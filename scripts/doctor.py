"""`make doctor STACK=<name>`: the stack's read-only preflight, as a table, without running Pulumi's program.

    python scripts/doctor.py --stack sim            # from the project root, environment from scripts/env.sh
    python scripts/doctor.py --stack sim --json rows.json   # also every check as JSON (the acceptance report's table)

Reads the stack's configuration (secrets decrypted by the stack's secrets provider, never printed), probes every
host read-only and in parallel, prints one line per check (host, check, result, what to do) and exits 1 when
any check failed, 2 when the configuration itself is unusable, 0 when the lab is ready.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.config import NAMESPACE, ConfigurationError, parse_stack_config, plain_text_paths  # noqa: E402
from components.preflight import run_preflight  # noqa: E402


def read_config(stack: str, cwd: Path) -> tuple[dict[str, Any], set[str]]:
    """(raw wapconnector values, full keys that are secrets) of the stack, via the pulumi CLI."""
    def pulumi(*args: str) -> str:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"doctor: pulumi {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    pulumi("stack", "select", "--create", stack)
    values = json.loads(pulumi("config", "--json", "--show-secrets", "--stack", stack) or "{}")
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for full_key, entry in values.items():
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            continue
        if entry.get("secret"):
            secret_keys.add(full_key)
        if "objectValue" in entry:
            raw[key] = entry["objectValue"]
        else:
            value = entry.get("value")
            try:
                raw[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
            except json.JSONDecodeError:
                raw[key] = value
    return raw, secret_keys


def stack_file(stack: str, cwd: Path) -> Path | None:
    """The stack's Pulumi.<stack>.yaml (in the project's stackConfigDir): where plain-text passwords would be."""
    import yaml

    try:
        project = yaml.safe_load((cwd / "Pulumi.yaml").read_text()) or {}
    except OSError:
        return None
    path = cwd / str(project.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"
    return path if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--cwd", type=Path, default=ROOT, help="the Pulumi project directory (default: this one)")
    parser.add_argument("--json", type=Path, help="also write every check here: {summary, ok, rows: [{host, check, "
                                                  "status, result, todo}]}")
    args = parser.parse_args(argv)
    raw, secret_keys = read_config(args.stack, args.cwd)
    try:
        config = parse_stack_config(raw, secret_keys, plain_paths=plain_text_paths(stack_file(args.stack, args.cwd)),
                                    project_dir=args.cwd)
    except ConfigurationError as exc:
        print(f"doctor: stack {args.stack}: {exc}", file=sys.stderr)
        return 2
    if not config.deploys_lab:
        print(f"doctor: stack {args.stack} configures no hosts (PKI only): nothing to check")
        return 0
    print(f"doctor: stack {args.stack}: read-only checks of {len(config.hosts)} host(s) ...", flush=True)
    report = run_preflight(config, project_dir=args.cwd)
    print(report.table())
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps({"summary": report.summary(), "ok": report.ok,
                                         "rows": [dataclasses.asdict(r) for r in report.rows]}, indent=2) + "\n")
    if report.ok:
        print("doctor: ready: `make preview` shows the plan, `make up` applies it")
        return 0
    print("doctor: not ready: fix each failed check above, then run make doctor again (nothing was changed)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
