"""Issue 6, item 2: retries and timeouts.

* The audit: every remote call in providers/*.py (``transport().run(...)``, ``t.run(...)``, ``run_until``) states
  ``idempotent=`` explicitly, and AUDIT below says why that value is right. A new call, or a changed flag, fails
  here until the table (and so docs/reliability.md) says why.
* The behaviour, against labsim through the real PsrpTransport: idempotent steps retry transient errors with
  bounded exponential backoff and succeed once the fault clears; non-idempotent steps and non-transient errors
  are never retried; a hung step is stopped at its budget, and ``step_timeouts`` overrides one step by name.
"""

from __future__ import annotations

import ast
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labsim.server import LabServer
from providers.errors import AuthenticationFailed, StepTimedOut, TransportError
from providers.transport import Command, HostConnection, PsrpTransport, SessionCache
from tests.lab_state import lab_state
from tests.reliability import figures

REPO = Path(__file__).resolve().parents[2]

READ = "read: no side effect"
# key: module.function#n (n-th remote call in that function), grouped by verdict.
# Reads: retried on transient errors (idempotent=True), having no side effect.
READS = (
    "azure_pack_connector.read_observed#1",
    "azure_pack_connector.read_observed#2",
    "hostops.verify_hashes#1",
    "hostops.remove_folder_if_empty#1",
    "bundle.read_bundle_owned#1",
    "bundle.missing_ancestors#1",
    "certificate.read_certificate#1",
    "certificate._present_in_chain_stores#1",
    "certificate.chain_still_needed#1",
    "connector_site.read_site_owned#1",
    "connector_site.restore_prior#1",
    "connector_site.check_prerequisites#1",
    "tenant_api_update.read_tenant_api_owned#1",
    "hostops.require_file#1",
    "tenant_api_trust.discover_sql_server#1",
    "tenant_api_trust.read_trust_owned#1",
    "ownership.read#1",
)
# Writes retried on transient errors (idempotent=True): why the same write twice does no harm.
REPEATABLE: dict[str, str] = {
    "hostops.stage_bytes#1": "New-Item -ItemType Directory -Force",
    "hostops.remove_folder_if_empty#2":
        "Remove-Item -ErrorAction SilentlyContinue, without -Recurse, of a folder found empty",
    "bundle.remove_bundle#1": "Remove-Item -Recurse -Force; not-found is accepted",
    "bundle.remove_files#1": "Remove-Item of stale files; not-found is accepted",
    "bundle._remove_created#1": "Remove-Item -Recurse -ErrorAction SilentlyContinue: gone stays gone",
    "bundle.mark_created#1": "New-Item -Force of a folder and of an empty marker file",
    "bundle.unmark_created#1": "Remove-Item of the marker; not-found is accepted",
    "certificate._remove#1": "Remove-Item of a certificate; not-found is accepted",
    "certificate._import#2": "Remove-Item -Force of the staged file; not-found is accepted",
    "tenant_api_update.apply#2": "Start-Website: starting a started site is a no-op",
    "tenant_api_trust.set_trust_row#1":
        "Set-MgmtSvcDatabaseSetting of one value (empty: the row goes; an adopted row's prior value back): the same "
        "write twice",
    "ownership.write#1": "New-Item -Force of the marker folder and of the marker file with fixed content",
    "ownership.remove#1":
        "Remove-Item -ErrorAction SilentlyContinue, no -Recurse, of the marker or an emptied folder (gone stays "
        "gone), then a count",
    "ownership.remove#2": "Remove-Item -ErrorAction SilentlyContinue, no -Recurse, of the emptied marker root",
    "tenant_api_trust.remove_staged_file#1": "Remove-Item of a staged data file; not-found is accepted",
}
# Never retried (idempotent=False): why, and how the rerun converges instead.
NEVER_RETRIED: dict[str, str] = {
    "azure_pack_connector.disable#1":
        "the PEP cmdlet runs for minutes and may still run after a lost connection; delete's rerun converges",
    "certificate._import#1":
        "a lost reply may hide a finished import (chain certificates added); the rerun reads the store first",
    "connector_site.restore_prior#2":
        "Configure-Certificates.ps1 / Configure-WapConnector.ps1 rewrite bindings and web.config; never re-sent, "
        "delete's rerun reads first",
    "connector_site.uninstall#1":
        "msiexec /x runs for minutes; delete's rerun reads the products left and converges (1605: already gone)",
    "tenant_api_update.apply#1": "Update-TenantAPI.ps1 (an MSI patch, minutes): never re-sent; the rerun reads first",
    "tenant_api_trust.apply#1":
        "Configure-TrustAzureStack.ps1 (SQL writes): never re-sent; the rerun reads the trust row first",
}
# The rest: idempotent= as written (an expression, or run_until, which never retries), and why.
AS_WRITTEN: dict[str, tuple[str, str]] = {
    "azure_pack_connector.enable#1":
        ("run_until", "never retried: Add-AzurePackConnector runs for minutes and may still run after a lost "
                      "connection; create's rerun converges"),
    "hostops.stage_bytes#2":
        ("idempotent", "True only for batches without Add-Content: Set-Content truncates, Add-Content appends (a "
                       "resent chunk would be duplicated)"),
    "connector_site.run_steps#1":
        ('step.kind == "start"', "Start-Website only: the scripts (Install-Connector.ps1: three MSIs, minutes) may "
                                 "still run after a lost connection and a second copy would race them; the "
                                 "operation's rerun re-plans from the host"),
}
# The whole audit: key -> (idempotent as written, why).
AUDIT: dict[str, tuple[str, str]] = {
    **{k: ("True", READ) for k in READS},
    **{k: ("True", why) for k, why in REPEATABLE.items()},
    **{k: ("False", why) for k, why in NEVER_RETRIED.items()},
    **AS_WRITTEN,
}


def remote_calls() -> dict[str, str | None]:
    """module.function#n -> the idempotent argument as written ('run_until' for run_until, None if absent)."""
    found: dict[str, str | None] = {}
    for path in sorted((REPO / "providers").glob("*.py")):
        found.update(_remote_calls_in(path))
    return found


def _remote_calls_in(path: Path) -> dict[str, str | None]:
    src = path.read_text()
    found: dict[str, str | None] = {}
    counts: dict[str, int] = {}

    def walk(node: ast.AST, fn: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else fn
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr in ("run", "run_until"):
                target = child.func.value
                if (isinstance(target, ast.Call) and getattr(target.func, "id", "") == "transport") \
                        or (isinstance(target, ast.Name) and target.id == "t"):
                    key = f"{path.stem}.{name}"
                    counts[key] = counts.get(key, 0) + 1
                    kw: dict[str | None, str | None] = {k.arg: ast.get_source_segment(src, k.value)
                                                        for k in child.keywords}
                    found[f"{key}#{counts[key]}"] = "run_until" if child.func.attr == "run_until" \
                        else kw.get("idempotent")
            walk(child, name)

    walk(ast.parse(src), None)
    return found


@pytest.mark.unit
def test_every_remote_call_states_and_justifies_its_idempotency() -> None:
    calls = remote_calls()
    implicit = [k for k, v in calls.items() if v is None]
    assert not implicit, f"remote calls without an explicit idempotent=: {implicit}"
    unknown = sorted(set(calls) - set(AUDIT))
    assert not unknown, f"remote calls not in the audit table (say why they are or are not idempotent): {unknown}"
    stale = sorted(set(AUDIT) - set(calls))
    assert not stale, f"audit entries for calls that no longer exist: {stale}"
    changed = {k: (calls[k], AUDIT[k][0]) for k in calls if calls[k] != AUDIT[k][0]}
    assert not changed, f"idempotent= differs from the audit (as written, audited): {changed}"
    for key, (flag, why) in AUDIT.items():
        figures.record("retries_timeouts", f"call:{key}", f"{flag}: {why}")
    figures.record("retries_timeouts", "remote_calls_audited", len(calls))
    figures.record("retries_timeouts", "calls_retried_on_transient_errors", sum(v == "True" for v in calls.values()))
    figures.record("retries_timeouts", "calls_never_retried",
                   sum(v in ("False", "run_until") for v in calls.values()))


@pytest.mark.unit
def test_every_step_name_is_exported_and_documented() -> None:
    from providers import azure_pack_connector as apc
    from providers import bundle as B
    from providers import certificate as C
    from providers import connector_site as cs
    from providers import tenant_api_trust as trust
    from providers import tenant_api_update as update

    for module in (apc, B, C, cs):
        declared = {v for k, v in vars(module).items() if k.startswith("STEP_") and isinstance(v, str)}
        assert declared == set(module.STEPS), f"{module.__name__}.STEPS misses {declared - set(module.STEPS)}"
    for module, steps in ((update, update.UPDATE_STEPS), (trust, trust.TRUST_STEPS)):
        declared = {v for k, v in vars(module).items() if k.startswith("STEP_") and isinstance(v, str)}
        assert declared == set(steps)
    doc = (REPO / "docs" / "reliability.md").read_text()
    for module in (apc, B, C, cs):
        for step in module.STEPS:
            assert f"`{step}`" in doc, f"docs/reliability.md does not list step {step!r}: run `make reliability`"


@pytest.mark.unit
def test_step_timeouts_override_one_step_by_name() -> None:
    c = HostConnection.parse({"fqdn": "h.contoso.com", "auth": "ntlm", "username": "u", "password": "p",
                              "step_timeouts": {"install the connector (Install-Connector.ps1)": 30}})
    assert c.timeout_for("install the connector (Install-Connector.ps1)", 1200.0) == 30
    assert c.timeout_for("read the connector sites", None) == 300.0
    assert c.timeout_for("update Tenant API (Update-TenantAPI.ps1)", 900.0) == 900.0


# ---------------------------------------------------------------------------------------------------------------
# Behaviour against labsim


@pytest.fixture
def host(lab: LabServer) -> Iterator[HostConnection]:
    from tests.providers.conftest import host_connection

    yield HostConnection.parse(host_connection(lab, "wapcomputer2", operation_timeout=1, read_timeout=5))
    lab_state(lab).clear_faults()
    _wait(lambda: not lab.faults_in_force("wapcomputer2"))


def _wait(pred: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _fault(lab: Any, kind: str, command: str | None = None) -> None:
    from labsim.runtime import Fault

    lab_state(lab).set_fault(Fault(host="wapcomputer2", kind=kind, command=command))
    _wait(lambda: any(f.kind == kind for f in lab.faults_in_force("wapcomputer2")))


class Sleeps:
    """The transport's sleep, recorded; optionally clears the faults at the first backoff (the fault 'goes away')."""

    def __init__(self, lab: Any = None) -> None:
        self.lab = lab
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.lab is not None and len(self.delays) == 1:
            lab_state(self.lab).clear_faults()
            _wait(lambda: not self.lab.faults_in_force("wapcomputer2"))


READ_CMD = Command("Test-Path", {"Path": "C:\\Windows"})


@pytest.mark.sim
def test_idempotent_read_retries_a_transient_fault_and_succeeds(lab: LabServer, host: HostConnection) -> None:
    sleeps = Sleeps(lab)
    t = PsrpTransport(SessionCache(), sleep=sleeps)
    _fault(lab, "wsman_fault")
    assert t.run(host, "read something", READ_CMD, idempotent=True).single() is True
    assert sleeps.delays == [0.5]
    figures.record("retries_timeouts", "transient_fault_then_read_succeeded",
                   f"yes ({len(sleeps.delays)} retry after {', '.join(f'{d:g} s' for d in sleeps.delays)})")


@pytest.mark.sim
def test_retries_are_bounded_with_exponential_backoff(lab: LabServer, host: HostConnection) -> None:
    sleeps = Sleeps()
    t = PsrpTransport(SessionCache(), sleep=sleeps)
    _fault(lab, "wsman_fault")
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        t.run(host, "read something", READ_CMD, idempotent=True)
    assert sleeps.delays == [0.5, 1.0], "two retries, backoff doubling"
    assert "wapcomputer2.contoso.com" in str(err.value) and "retry" in str(err.value)
    figures.record("retries_timeouts", "max_attempts_per_idempotent_step", 1 + len(sleeps.delays))
    figures.record("retries_timeouts", "persistent_fault_3_attempts_s (backoff not slept)",
                   round(time.monotonic() - started, 2))


@pytest.mark.sim
@pytest.mark.parametrize("kind, idempotent", [("wsman_fault", False), ("auth_broken", True)])
def test_mutations_and_non_transient_errors_are_not_retried(lab: LabServer, host: HostConnection, kind: str,
                                                            idempotent: bool) -> None:
    sleeps = Sleeps()
    t = PsrpTransport(SessionCache(), sleep=sleeps)
    _fault(lab, kind)
    mark = lab_state(lab).last_invocation_id()
    write = Command("New-Item", {"Path": "C:\\temp\\retry-probe", "ItemType": "Directory"}, ["Force"])
    with pytest.raises(AuthenticationFailed if kind == "auth_broken" else TransportError):
        t.run(host, "write something", write, idempotent=idempotent)
    assert sleeps.delays == [], "never retried"
    assert not lab_state(lab).invocations("wapcomputer2", after=mark)


@pytest.mark.sim
def test_a_hung_step_is_stopped_at_its_per_step_budget(lab: LabServer) -> None:
    from tests.providers.conftest import host_connection

    conn = HostConnection.parse(host_connection(lab, "wapcomputer2", operation_timeout=1, read_timeout=5,
                                                step_timeouts={"slow step": 1.0}))
    _fault(lab, "command_hang", "Get-Website")
    t = PsrpTransport(SessionCache(), sleep=Sleeps())
    started = time.monotonic()
    try:
        with pytest.raises(StepTimedOut) as err:
            t.run(conn, "slow step", Command("Get-Website"), timeout=600.0, idempotent=True)
    finally:
        lab_state(lab).clear_faults()
    elapsed = time.monotonic() - started
    assert err.value.seconds == 1.0, "step_timeouts beat the caller's 600 s default"
    assert "step_timeouts" in str(err.value) and "slow step" in str(err.value)
    # The pipeline was stopped on the host, not left running.
    _wait(lambda: lab_state(lab).invocations("wapcomputer2", "Get-Website")[-1]["outcome"] == "stopped")
    figures.record("retries_timeouts", "hung_step_stopped_after_s", round(elapsed, 2))


@pytest.mark.sim
def test_a_silent_host_costs_at_most_the_connect_timeout_per_attempt(lab: LabServer) -> None:
    """A host that accepts TCP but never answers (a hung WinRM service, a half-dead VM): each attempt is bounded by
    connect_timeout (urllib3 applies it to the TLS handshake too), so an idempotent read gives up after 3 of them.
    The read timeout is set far beyond what the worker is given: only connect_timeout can end an attempt in time."""
    import socket

    from tests.providers.conftest import host_connection

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:  # takes each connection and never says a word (no TLS ServerHello)
        with contextlib.suppress(OSError):
            while True:
                accepted.append(silent.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        conn = HostConnection.parse(host_connection(lab, "wapcomputer2", address="127.0.0.1",
                                                    port=silent.getsockname()[1], connect_timeout=1,
                                                    operation_timeout=1, read_timeout=600))
        sleeps = Sleeps()
        t = PsrpTransport(SessionCache(), sleep=sleeps)
        started = time.monotonic()
        box: dict[str, BaseException] = {}

        def go() -> None:
            try:
                t.run(conn, "read something", READ_CMD, idempotent=True)
            except BaseException as exc:  # noqa: BLE001
                box["exc"] = exc

        worker = threading.Thread(target=go, daemon=True)
        worker.start()
        worker.join(120)  # a hang guard: three 1 s attempts, or one read_timeout of 600 s
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(OSError):
            silent.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        silent.close()
        for c in accepted:
            c.close()
    assert not worker.is_alive(), "a silent host blocked the step"
    assert isinstance(box.get("exc"), TransportError), box
    assert "wapcomputer2.contoso.com" in str(box["exc"]) and "read something" in str(box["exc"])
    assert len(sleeps.delays) == 2 and len(accepted) == 3, (sleeps.delays, len(accepted))  # 3 attempts, each cut off
    figures.record("retries_timeouts", "silent_host_3_attempts_s (connect_timeout 1 s, backoff not slept)",
                   round(elapsed, 2))
