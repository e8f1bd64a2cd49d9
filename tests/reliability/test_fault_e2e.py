"""The fault matrix end to end: one cell per fault kind through the real Pulumi CLI on the seed lab.

One stack, one host under fault (wapcomputer2, whose resources start with the Certificate's read, `Get-Item`):
for each fault kind in turn `pulumi up` must fail, naming the host, the step and what to do, while everything
else in the lab still gets deployed; after the last fault clears, one `pulumi up` converges and
`pulumi preview --refresh --expect-no-changes` is clean: no manual surgery on state or hosts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability import figures
from tests.reliability.matrix import FAULTS

pytestmark = [pytest.mark.e2e, pytest.mark.sim]

HOST = "wapcomputer2"
COMMAND = "Get-Item"  # the first command of Certificate create (its read), before anything is written
HANG_BUDGET = 2.0
ADVICE = ("check ", "retry", "again", "set ", "use ", "look at", "fix ")


def _wait(pred: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _set(lab: Any, kind: str, command: str | None = None) -> None:
    from labsim.runtime import Fault

    lab.runtime.state.set_fault(Fault(host=lab.lab.host(HOST).name, kind=kind, command=command))
    _wait(lambda: any(f.kind == kind for f in lab.server.faults_in_force(HOST)), kind)


def _clear(lab: Any) -> None:
    lab.runtime.state.clear_faults()
    _wait(lambda: not lab.server.faults_in_force(HOST), "faults to clear")
    time.sleep(0.3)  # the listeners come back within one poll


def _short_timeouts(lab: Any) -> None:
    """The faulted host gets short WSMan polls and a short budget for the certificate read (the hang cell)."""
    from providers import certificate as C

    doc = yaml.safe_load(lab.project.config_file.read_text())
    hosts = doc["config"]["wapconnector:hosts"]
    entry = hosts[HOST] if HOST in hosts else next(v for k, v in hosts.items() if k.lower() == HOST.lower())
    entry.update(operation_timeout=1, read_timeout=5, step_timeouts={C.STEP_READ: HANG_BUDGET})
    lab.project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))


def _up_under(lab: Any, fault: str) -> str:
    if fault == "drop":
        _set(lab, "command_hang", COMMAND)
        mark = lab.last_invocation_id()
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.update(run=lab.project.up(check=False)), daemon=True)
        worker.start()
        _wait(lambda: any(i["outcome"] == "running" for i in lab.invocations(HOST, COMMAND, after=mark)),
              f"{COMMAND} to run", timeout=120)
        _set(lab, "down")
        worker.join(300)
        run = box["run"]
    else:
        if fault in ("command_error", "command_terminating", "command_hang"):
            _set(lab, fault, COMMAND)
        else:
            _set(lab, fault)
        run = lab.project.up(check=False)
    _clear(lab)
    assert run.returncode != 0, f"{fault}: pulumi up succeeded under the fault:\n{run.output[-3000:]}"
    return run.output


def test_one_cell_per_fault_kind_through_the_cli(tmp_path: Path) -> None:
    from tests.e2e.lab_stack import lab_stack
    from tests.e2e.pulumi_cli import engine_missing

    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    fqdn = None
    started = time.monotonic()
    with lab_stack(tmp_path, pep_polling_seconds=0.5) as lab:
        fqdn = lab.lab.host(HOST).fqdn
        _short_timeouts(lab)
        # These cells are about how a resource fails under each fault: preflight (which would stop `up` before any
        # resource under a host-level fault) only warns here.
        lab.set_preflight("warn")
        for fault in FAULTS:
            t0 = time.monotonic()
            output = _up_under(lab, fault)
            # The provider's error line: host, step and what to do, on one line (Pulumi prints it as is).
            lines = [ln for ln in output.splitlines() if fqdn in ln and "step '" in ln]
            assert lines, f"{fault}: no error line names {fqdn} and a step:\n{output[-3000:]}"
            assert any(any(a in ln.split("`")[-1].lower() for a in ADVICE) for ln in lines), \
                f"{fault}: the error does not say what to do:\n" + "\n".join(lines)
            figures.record("fault_matrix", f"e2e:{fault}", f"pass ({time.monotonic() - t0:.0f} s)")
        lab.project.up()  # the rerun after the faults: converges without manual surgery
        lab.assert_clean()
    figures.record("fault_matrix", "e2e_cells", len(FAULTS))
    figures.record("fault_matrix", "e2e_seconds", round(time.monotonic() - started, 1))
