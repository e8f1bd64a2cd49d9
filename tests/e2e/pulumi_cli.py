"""Drives the real pulumi CLI (built by `make bootstrap`) on a throwaway copy of the project.

Each test gets its own file backend, PULUMI_HOME and stack config dir, so nothing touches the operator's
stacks. The program itself is the checkout's (symlinked), run through the real language host, and the
dynamic providers are imported from the checkout's ``providers`` package in a fresh process per command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PASSPHRASE = "e2e-test-passphrase-7f1c"


def engine_missing() -> str | None:
    for tool in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        if not (VENV_BIN / tool).exists():
            return f"{VENV_BIN / tool} is missing: run `make bootstrap` (make test does it)"
    return None


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_command(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = False, timeout: float = 300) -> Run:
    """``cmd`` in ``cwd`` with exactly ``env``; ``check``: a non-zero exit fails the test with the output."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    run = Run(cmd, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cwd}: {' '.join(cmd)} exited {proc.returncode}:\n{run.output}")
    return run


class PulumiProject:
    def __init__(self, workdir: Path, stack: str = "e2e", extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.stack = stack
        self.project_dir = workdir / "project"
        self.backend_dir = workdir / "backend"
        self.project_dir.mkdir(parents=True)
        self.backend_dir.mkdir()
        (self.project_dir / "stacks").mkdir()
        for name in ("__main__.py", "components", "providers"):
            (self.project_dir / name).symlink_to(ROOT / name)
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
        (self.project_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        self.env = {
            k: v for k, v in os.environ.items()
            if not k.startswith("PULUMI_") and k not in ("STACK", "VIRTUAL_ENV")
        }
        self.env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
            PULUMI_HOME=str(workdir / "pulumi-home"),
            PULUMI_BACKEND_URL=f"file://{self.backend_dir}",
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            PULUMI_PYTHON_CMD=str(VENV_BIN / "python"),
            # The providers package must resolve to this checkout in the program and the provider process.
            PYTHONPATH=str(ROOT),
        )
        self.env.update(extra_env or {})  # may replace a default (e.g. PULUMI_BACKEND_URL)
        self.run("stack", "init", stack, check=True, with_stack=False)

    @property
    def config_file(self) -> Path:
        return self.project_dir / "stacks" / f"Pulumi.{self.stack}.yaml"

    def set_config(self, values: dict[str, Any]) -> None:
        """Write the stack's wapconnector:* config (keeping the encryption salt pulumi wrote)."""
        doc = yaml.safe_load(self.config_file.read_text()) if self.config_file.exists() else {}
        doc = doc or {}
        doc["config"] = {f"wapconnector:{k}": v for k, v in values.items()}
        self.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    def run(self, *args: str, check: bool = False, with_stack: bool = True, timeout: float = 300) -> Run:
        cmd = ["pulumi", *args, "--non-interactive", *(["--stack", self.stack] if with_stack else [])]
        return run_command(cmd, self.project_dir, self.env, check, timeout)

    def up(self, *extra: str, check: bool = True) -> Run:
        return self.run("up", "--yes", "--skip-preview", *extra, check=check)

    def preview_json(self, *extra: str) -> dict[str, Any]:
        run = self.run("preview", "--json", *extra)
        assert run.returncode == 0, run.output
        return run.json()

    def export(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "export"] + (["--show-secrets"] if show_secrets else [])
        return self.run(*args, check=True).json()

    def resources(self, type_prefix: str = "pulumi-python:dynamic") -> list[dict[str, Any]]:
        deployment = self.export()["deployment"]
        return [r for r in deployment.get("resources") or [] if r["type"].startswith(type_prefix)]

    def state_files(self) -> list[Path]:
        """Every file the backend keeps: the stack, its backups and history checkpoints."""
        return [p for p in self.backend_dir.rglob("*") if p.is_file()]

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
