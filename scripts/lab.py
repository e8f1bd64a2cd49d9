"""What `make up` / `make down` do around pulumi for a lab stack.

    python scripts/lab.py start STACK     # simulated stacks: serve labsim and make the connector bundle
    python scripts/lab.py stop STACK      # simulated stacks: stop labsim
    python scripts/lab.py summary STACK   # the operator's summary of a deployed stack

A stack is simulated when its configuration has ``wapconnector:labsim`` (written by `labsim stack-config`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def fail(message: str) -> None:
    print(f"lab: error: {message}", file=sys.stderr)
    sys.exit(1)


def stack_config(stack: str) -> dict[str, Any]:
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.exists():
        fail(f"no stack configuration {path.relative_to(ROOT)}; create it (README: Stacks) or pick STACK=...")
    doc = yaml.safe_load(path.read_text()) or {}
    return {k.partition(":")[2]: v for k, v in (doc.get("config") or {}).items() if k.startswith("wapconnector:")}


def labsim(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "labsim"), *args], cwd=ROOT, capture_output=True, text=True)
    if check and proc.returncode != 0:
        fail(f"labsim {' '.join(args)} failed:\n{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def serving(state_dir: Path) -> bool:
    """A labsim server wrote its server file in the state dir and its process is alive."""
    from labsim.cli import SERVER_FILE

    try:
        pid = int(json.loads((state_dir / SERVER_FILE).read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return False
    return True


def start(stack: str) -> None:
    config = stack_config(stack)
    sim = config.get("labsim")
    if not sim:
        print(f"lab: stack {stack} is not simulated: nothing to start")
        return
    lab, state_dir = str(ROOT / sim["lab"]), str(ROOT / sim["stateDir"])
    bundle = config.get("bundle", {}).get("sourceDir")
    if bundle and not (ROOT / bundle).exists():
        print(f"lab: writing the simulated WAPConnector bundle to {bundle}")
        made = Path(labsim("make-bundle", str((ROOT / bundle).parent)).stdout.strip())
        if made.resolve() != (ROOT / bundle).resolve():
            fail(f"labsim make-bundle wrote {made}, but wapconnector:bundle.sourceDir is {bundle}")
    if serving(Path(state_dir)):
        print(f"lab: labsim already serving {sim['lab']}")
        return
    print(f"lab: starting labsim for {sim['lab']} (state in {sim['stateDir']})")
    labsim("--lab", lab, "--state-dir", state_dir, "serve", "--background")


def stop(stack: str) -> None:
    sim = stack_config(stack).get("labsim")
    if sim:
        labsim("--lab", str(ROOT / sim["lab"]), "--state-dir", str(ROOT / sim["stateDir"]), "stop", check=False)
        print("lab: labsim stopped")


def summary(stack: str) -> None:
    env = dict(os.environ)
    proc = subprocess.run([str(BIN / "pulumi"), "stack", "output", "--json", "--stack", stack, "--non-interactive"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        fail(f"cannot read the stack's outputs: {proc.stderr.strip()}")
    outputs = json.loads(proc.stdout or "{}")
    print()
    print(f"Lab stack {stack}")
    if "azureStack" in outputs:
        azs = outputs["azureStack"]
        print(f"  Azure Stack cloud {azs.get('cloudName')}: portal {azs.get('portalFqdn')}, "
              f"multi-cloud mode {'on' if azs.get('multiCloudEnabled') else 'OFF'}")
    if outputs.get("caThumbprint"):
        print(f"  Lab CA {outputs.get('caThumbprint')} (expires {str(outputs.get('caExpiresAt', ''))[:10]})")
    clouds = outputs.get("clouds") or outputs.get("connectorCertificates") or {}
    for name, cloud in clouds.items():
        print(f"  WAP cloud {name}")
        for label, key in (("connector endpoint", "endpoint"), ("certificate source", "certificateSource"),
                           ("certificate", "thumbprint"),
                           ("certificate expires", "expiresAt"), ("trusted realm", "realm"),
                           ("tenant portal hosts", "tenantPortalHosts"), ("Tenant API hosts", "tenantApiHosts")):
            if cloud.get(key) is not None:
                value = cloud[key]
                value = ", ".join(value) if isinstance(value, list) else str(value)
                print(f"    {label:<20} {value[:10] if key == 'expiresAt' else value}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop", "summary"):
        fail("usage: lab.py start|stop|summary STACK")
    {"start": start, "stop": stop, "summary": summary}[sys.argv[1]](sys.argv[2])
