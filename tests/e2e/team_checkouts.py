"""Two operators' checkouts of this project at different paths, sharing one lab and one state backend.

Each checkout is what `git clone` gives a teammate: the project's files (tracked, and new ones not ignored, as in
this working tree), with its own ``.venv`` (here a link to this checkout's: the engine binaries and the Python
packages are reused, nothing is rebuilt) and its own PULUMI_HOME. Every command runs with the checkout as its
working directory and no PYTHONPATH, so the program and the provider processes import *that* checkout's code.

The first operator writes the stack file (`labsim stack-config`, as `make up` does) with the lab's CA and the
WAPConnector bundle inside the checkout (``.labsim/``); the teammate gets the same stack file, CA file and
bundle at the same project-relative paths, as git or the lab's shared folder would give them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labsim.hosts import LabRuntime
from labsim.hosts.wapconnector import make_bundle
from labsim.lab import DEFAULT_LAB, Lab, Role, load_lab
from labsim.stack_config import write_stack_config
from labsim.testing import free_loopback_lab, start_labsim
from tests.e2e.lab_stack import TEST_PROVIDER_PROCESSES
from tests.e2e.pulumi_cli import PASSPHRASE, ROOT, VENV_BIN, Run, run_command

STACK = "team"
LAB_DIR = Path(".labsim") / "lab"  # labsim's state (its CA under pki/), relative to a checkout
BUNDLE_DIR = Path(".labsim") / "bundle"


def one_cloud_lab() -> Lab:
    """The seed's example lab with its first cloud only: every resource type once (Azure Stack side, one WAP
    Express computer as tenant portal and Tenant API VM), on free loopback addresses."""
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    cloud = data["clouds"][0]["name"]
    data["clouds"] = data["clouds"][:1]
    data["hosts"] = [h for h in data["hosts"] if h.get("cloud") in (None, cloud)]
    data.setdefault("settings", {})["pep_polling_seconds"] = 0.5  # the PEP cmdlet's polling after success
    return free_loopback_lab(Lab.model_validate(data))


def copy_checkout(dest: Path) -> Path:
    """A clone of this checkout at ``dest``: its files as in the working tree, and ``.venv`` linked."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a file deleted in the working tree but still tracked is not cloned
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


@dataclass
class Checkout:
    """One operator's clone; ``env`` points at the shared backend."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def pulumi(self, *args: str, check: bool = False, with_stack: bool = True, timeout: float = 300) -> Run:
        cmd = ["pulumi", *args, "--non-interactive", *(["--stack", STACK] if with_stack else [])]
        return run_command(cmd, self.root, self.env, check, timeout)

    def up(self, *extra: str, check: bool = True) -> Run:
        return self.pulumi("up", "--yes", "--skip-preview", *extra, check=check)

    def fleet_status(self) -> Run:
        """`make fleet` (python -m labops.fleet status) from this checkout, for the team's stack."""
        return run_command([str(self.root / ".venv" / "bin" / "python"), "-m", "labops.fleet", "status", STACK],
                           self.root, self.env)

    def resources(self) -> list[dict[str, Any]]:
        deployment = self.pulumi("stack", "export", check=True).json()["deployment"]
        return [r for r in deployment.get("resources") or [] if r["type"].startswith("pulumi-python:dynamic")]

    def with_backend(self, url: str, **extra: str) -> Checkout:
        """The same checkout pointed at another backend (the team moved its state)."""
        env = {k: v for k, v in self.env.items() if k != "PGPASSWORD"}
        return Checkout(self.root, {**env, "PULUMI_BACKEND_URL": url, **extra})


def checkout_env(root: Path, backend_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PULUMI_") and k not in ("STACK", "VIRTUAL_ENV", "PYTHONPATH", "WAPC_ROOT")}
    env.update(
        PATH=f"{root / '.venv' / 'bin'}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_HOME=str(root / ".state" / "pulumi-home"),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_PYTHON_CMD=str(root / ".venv" / "bin" / "python"),
    )
    env.update(backend_env)
    return env


@dataclass
class Team:
    first: Checkout  # deployed the lab
    second: Checkout  # a teammate's clone at another path
    lab: Lab
    server: Any

    @property
    def runtime(self) -> LabRuntime:
        return self.server.runtime

    def last_invocation_id(self) -> int:
        return self.runtime.state.last_invocation_id()

    def commands_after(self, mark: int) -> list[str]:
        return [i["command"] for i in self.runtime.state.invocations(after=mark)]

    def snapshot(self, host: str) -> dict[str, Any]:
        return self.runtime.snapshot(self.lab.host(host).name)

    def admin(self, host: str, cmdlet: str, *switches: str, **params: Any) -> Any:
        """An administrator's out-of-band change (as `labsim exec` does it)."""
        from providers.transport import Command, HostConnection, PsrpTransport

        h = self.lab.host(host)
        address, port = self.server.endpoint(h.name)
        pep = h.has(Role.PRIVILEGED_ENDPOINT)
        conn = {"fqdn": h.fqdn, "address": address, "port": port, "ca_file": str(self.server.ca_file),
                "auth": "credssp" if pep else "ntlm", "username": h.users[0].name, "password": h.users[0].password,
                **({"configuration_name": "PrivilegedEndpoint"} if pep else {})}
        return PsrpTransport().run(HostConnection.parse(conn), "out-of-band change",
                                   Command(cmdlet, params, switches)).output


@contextlib.contextmanager
def team_on_one_lab(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[Team]:
    """labsim serving a one-cloud lab whose state lives in the first checkout; two checkouts at different depths
    of ``tmp_path``, both on ``backend_env``'s backend; the stack configured (not deployed)."""
    first_root = copy_checkout(tmp_path / "alice" / "wap-connector")
    second_root = copy_checkout(tmp_path / "bob" / "src" / "work" / "wap-connector")
    first = Checkout(first_root, checkout_env(first_root, backend_env))
    second = Checkout(second_root, checkout_env(second_root, backend_env))
    lab = one_cloud_lab()
    lab_file = first_root / LAB_DIR.parent / "lab.yaml"
    lab_file.parent.mkdir(parents=True, exist_ok=True)
    lab_file.write_text(yaml.safe_dump(lab.model_dump(mode="json"), sort_keys=False))
    with start_labsim(lab, LabRuntime.open, first_root / LAB_DIR) as server:
        make_bundle(first_root / BUNDLE_DIR)
        write_stack_config(lab, lab_file, stack=STACK, project_dir=first_root, state_dir=first_root / LAB_DIR,
                           bundle_dir=first_root / BUNDLE_DIR, env=first.env)
        # One lab for the team, served from the first checkout: no `make` of the teammate's starts another.
        stack_file = first_root / "stacks" / f"Pulumi.{STACK}.yaml"
        doc = yaml.safe_load(stack_file.read_text())
        del doc["config"]["wapconnector:labsim"]
        doc["config"]["wapconnector:providerProcesses"] = TEST_PROVIDER_PROCESSES
        stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        # What the teammate has too: the stack file from git, the lab's CA and the bundle at the same places.
        for rel in (Path("stacks") / f"Pulumi.{STACK}.yaml", LAB_DIR / "pki" / "ca.pem"):
            (second_root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(first_root / rel, second_root / rel)
        shutil.copytree(first_root / BUNDLE_DIR, second_root / BUNDLE_DIR)
        yield Team(first, second, lab, server)
