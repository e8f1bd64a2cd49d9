"""Helpers for tests that run labsim on loopback.

    from labsim.testing import free_loopback_lab, start_labsim

    def test_something(tmp_path):
        lab = free_loopback_lab(load_lab(DEFAULT_LAB))
        with start_labsim(lab, lambda lab, state_dir: MyRuntime(lab, state_dir), tmp_path) as server:
            address, port = server.endpoint("wapcomputer1")
            ...  # pypsrp WSMan(address, port=port, cert_validation=str(server.ca_file), ...)

``free_loopback_lab`` moves every host to its own random 127.x.y.z address with free ports, so test runs in
parallel (or next to a running labsim) never collide.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from labsim.hosts import LabRuntime
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.runtime import HostRuntime
from labsim.server import LabServer

RuntimeFactory = Callable[[Lab, Path], HostRuntime]


def _free_port(address: str, taken: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
            port = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError(f"no free port on {address}")


def free_loopback_lab(lab: Lab, *, rng: random.Random | None = None) -> Lab:
    """A copy of ``lab`` with every host on a distinct random loopback address and free WinRM ports (a host
    keeps only the listeners it had: a None port stays None)."""
    rng = rng or random.SystemRandom()
    data = lab.model_dump(mode="json")
    used: set[str] = set()
    for host in data["hosts"]:
        while True:
            address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
            if address not in used:
                used.add(address)
                break
        host["address"] = address
        taken: set[int] = set()
        winrm = host.setdefault("winrm", {})
        for key in ("https_port", "http_port"):
            if winrm.get(key) is not None:
                winrm[key] = _free_port(address, taken)
    return Lab.model_validate(data)


@contextlib.contextmanager
def start_labsim(lab: Lab, runtime_factory: RuntimeFactory, state_dir: Path, *,
                 allow_unencrypted: bool = True) -> Iterator[LabServer]:
    """Run a LabServer for ``lab`` with the runtime ``runtime_factory(lab, state_dir)``; stop it afterwards.
    Pass a lab from :func:`free_loopback_lab` unless the test really needs fixed addresses."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    runtime = runtime_factory(lab, state_dir)
    server = LabServer(lab, runtime, state_dir, allow_unencrypted=allow_unencrypted)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def simulated_lab(state_dir: Path, lab: Lab | None = None, **settings: Any) -> Iterator[LabServer]:
    """The whole simulator for a test: ``lab`` (default: the packaged seed example) on free loopback addresses,
    with LabSettings overrides (e.g. ``pep_polling_seconds=2``), the real host runtime, stopped afterwards."""

    data = free_loopback_lab(lab or load_lab(DEFAULT_LAB)).model_dump(mode="json")
    data.setdefault("settings", {}).update(settings)
    with start_labsim(Lab.model_validate(data), LabRuntime.open, state_dir) as server:
        yield server


def labsim_fixture(scope: Literal["session", "package", "module", "class", "function"] = "function",
                   **settings: Any) -> Any:  # a pytest fixture (pytest is imported only by tests)
    """A pytest fixture running :func:`simulated_lab`; in a conftest.py: ``labsim = labsim_fixture("module")``."""
    import pytest

    @pytest.fixture(scope=scope)
    def _labsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
        with simulated_lab(tmp_path_factory.mktemp("labsim"), **settings) as server:
            yield server

    return _labsim
