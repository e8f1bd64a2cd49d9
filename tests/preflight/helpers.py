"""A labsim lab and the validated stack configuration that points at it, without the Pulumi CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, StackConfig, parse_stack_config
from labsim.hosts import LabRuntime
from labsim.hosts.wapconnector import make_bundle
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.server import LabServer
from labsim.stack_config import stack_config
from labsim.testing import free_loopback_lab, start_labsim


def lab_data(lab: Lab | None = None) -> dict[str, Any]:
    return free_loopback_lab(lab or load_lab(DEFAULT_LAB)).model_dump(mode="json")


def config_for(lab: Lab, tmp_path: Path, state_dir: Path, edit: Callable[[dict[str, Any]], None] | None = None,
               **overrides: Any) -> StackConfig:
    plain, secrets = stack_config(lab, state_dir=state_dir, bundle_dir=tmp_path / "bundle", project_dir=tmp_path)
    raw: dict[str, Any] = {k.split(":", 1)[1]: v for k, v in plain.items()}
    for path, value in secrets.items():
        _, name, _ = path.split(":", 1)[1].split(".")
        raw["credentials"][name]["password"] = value
    raw.update(overrides)
    if edit:
        edit(raw)
    return parse_stack_config(raw)


@contextlib.contextmanager
def served(tmp_path: Path, data: dict[str, Any]) -> Iterator[tuple[LabServer, Lab]]:
    lab = Lab.model_validate(data)
    make_bundle(tmp_path / "bundle")
    with start_labsim(lab, LabRuntime.open, tmp_path / "labsim") as server:
        yield server, lab


__all__ = ["NAMESPACE", "config_for", "lab_data", "served"]
