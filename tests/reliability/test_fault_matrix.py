"""The fault matrix, resource × operation × fault (tests/reliability/matrix.py), against labsim.

Each applicable cell drives the provider methods directly (what the Pulumi engine calls; an exception means the
engine records nothing), with the fault switched on in labsim for the host the operation talks to:

1. setup on a fresh lab (state reset to baseline): for read/update/delete the resource is created first; for
   update the host then drifts out of band so that the update has work to do. That setup is fault-free and the
   same for every fault, so it runs once per resource, operation kind and step budget, and later cells start
   from the hosts it left (labsim's saved state) and the outputs it returned;
2. the operation runs under the fault (its own fresh session cache, as a new `pulumi up` would) and must raise a
   ConnectorError whose message names the host, the step (one of the resource module's STEP_* names) and says
   what to do; for the command faults the targeted command must really have been reached;
3. the fault clears; the previous outputs must still describe the host (read works, for update/delete), then a
   rerun of the same operation converges: create/update leave read == desired (diff: no changes), delete leaves
   read == gone, with no manual surgery.

Not-applicable cells are listed in the table with their reason, and each reason is checked here (no remote call).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic import CreateResult

from labsim.hosts.wapconnector import CONNECTOR_PRODUCTS
from labsim.server import LabServer
from labsim.state import HostsPoint
from providers import azure_pack_connector as apc
from providers import bundle as B
from providers import certificate as C
from providers import connector_site as cs
from providers import tenant_api_trust as trust
from providers import tenant_api_update as update
from providers.errors import ConnectorError, StepTimedOut, TransportError
from providers.facts import locations, tenant_api
from providers.transport import Command, FakeTransport, HostConnection, PsrpTransport, SessionCache
from tests.lab_state import lab_runtime, lab_state
from tests.outs import outs_of
from tests.polling import listening, wait_for
from tests.reliability import figures
from tests.reliability.matrix import (
    NOT_APPLICABLE_FAULTS,
    NOT_APPLICABLE_OPS,
    NOT_REMOTE,
    REMOTE,
    TLS_PROBES,
    Cell,
    cells,
)

pytestmark = pytest.mark.sim

# Short timeouts keep the matrix fast: in the hang cells every step gets HANG_BUDGET (they wait for it), in the
# drop cells a larger one so that the dropped connection, not the timeout, ends the step.
HANG_BUDGET = 1.0
STEP_BUDGET = 5.0
DROP_BUDGET = 15.0
FAST = {"operation_timeout": 1, "read_timeout": 5, "connect_timeout": 2}
BACKOFF = 0.05  # the transport's retry backoff in the matrix (default 0.5 s): retries still happen, faster
SETTLE = 5.0  # how long a fault may take to switch on or off in the lab
SWITCH_POLL = 0.01  # how often to look (an in-memory list, one loopback connect, or the newest log rows)
# The bundle's packages (96 KiB each) still travel in several chunks, so create reaches Add-Content mid-file.
BUNDLE_CHUNK = 32 * 1024

STEPS: dict[str, tuple[str, ...]] = {
    "Certificate": C.STEPS,
    "ConnectorBundle": B.STEPS,
    "ConnectorSite": cs.STEPS,
    "TenantApiUpdate": update.UPDATE_STEPS,
    "TenantApiTrust": trust.TRUST_STEPS,
    "AzurePackConnector": apc.STEPS,
}

# Phrases that tell the user what to do (an error must carry at least one, outside the command text it quotes).
ADVICE = ("check ", "retry", "run again", "again", "`pulumi up`", "raise ", "set ", "use ", "look at", "fix ",
          "delete it", "trust", "make sure")


# ---------------------------------------------------------------------------------------------------------------
# The lab


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": 0.2}


@pytest.fixture(scope="module")
def fault_poll_seconds() -> float:
    """Every cell switches a fault on and off and waits until the lab applies it: a short poll keeps that wait
    short (each poll is one indexed query per host)."""
    return 0.02


def conn(server: LabServer, host: str, budget: float) -> dict[str, Any]:
    from tests.providers.conftest import host_connection

    steps = sorted({s for names in STEPS.values() for s in names})
    return host_connection(server, host, **FAST, step_timeout=budget, step_timeouts={s: budget for s in steps})


@contextlib.contextmanager
def fresh(*providers: Any) -> Iterator[PsrpTransport]:
    """A transport with its own session cache, what a new provider process (a new `pulumi up`) has, passed to
    ``providers``: the same provider objects (their state is their inputs) on that process's transport."""
    cache = SessionCache()
    t = PsrpTransport(cache, backoff=BACKOFF)
    for provider in providers:
        provider.__init__(t)
    try:
        yield t
    finally:
        cache.close_all()


def set_fault(server: LabServer, host: str, kind: str, command: str | None = None) -> None:
    from labsim.runtime import Fault

    lab_state(server).set_fault(Fault(host=server.lab.host(host).name, kind=kind, command=command))
    wait_for(lambda: any(f.kind == kind for f in server.faults_in_force(host)), f"{kind} on {host}", SETTLE,
             SWITCH_POLL)
    if kind == "down":
        wait_for(lambda: not host_listening(server, host), f"{host} to refuse connections", SETTLE, SWITCH_POLL)


def clear_faults(server: LabServer) -> None:
    faulty = {f.host for f in lab_state(server).faults()}
    lab_state(server).clear_faults()
    for h in server.lab.hosts:
        name = h.name
        if name in faulty or server.faults_in_force(name):
            wait_for(functools.partial(no_faults, server, name), f"faults of {name} to clear", SETTLE, SWITCH_POLL)
            if h.winrm.https_port is not None:
                wait_for(functools.partial(host_listening, server, name), f"{name} to listen again", SETTLE,
                         SWITCH_POLL)


def no_faults(server: LabServer, host: str) -> bool:
    return not server.faults_in_force(host)


def host_listening(server: LabServer, host: str) -> bool:
    return listening(*server.endpoint(host))


def last_id(server: LabServer) -> int:
    return lab_state(server).last_invocation_id()


def reached(server: LabServer, host: str, command: str, since: int) -> list[dict[str, Any]]:
    name = server.lab.host(host).name
    return [i for i in lab_state(server).invocations(name, after=since)
            if i["command"].lower() == command.lower() or i["command"].lower().endswith("\\" + command.lower())]


# ---------------------------------------------------------------------------------------------------------------
# One scenario per remote resource: desired inputs, preparation, an out-of-band drift for update


@dataclass
class Scenario:
    provider: Any
    props: Callable[[Any, float], dict[str, Any]]  # (server, step budget) -> desired inputs
    prepare: Callable[[Any], None] = lambda server: None
    drift: Callable[[Any, Any, Any, dict[str, Any]], None] = field(default=lambda server, p, created, props: None)


def _stage(host: str) -> Callable[[Any], None]:
    def prepare(server: LabServer) -> None:
        from tests.providers.conftest import stage_bundle

        stage_bundle(server, host)
    return prepare


def _delete_out_of_band(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
    p.delete(created.id, outs_of(created))  # an administrator undid it by hand


def _admin(server: LabServer, host: str, step: str, statements: Any) -> None:
    with fresh() as t:
        t.run(HostConnection.parse(conn(server, host, 30.0)), f"admin: {step}", statements)


def certificate(tmp: Path) -> Scenario:
    from tests.cert_factory import make_ca, make_leaf

    leaf = make_leaf(make_ca("Matrix CA"), names=("wapcomputer1.contoso.com",))

    def props(server: LabServer, budget: float) -> dict[str, Any]:
        return {"connection": conn(server, "wapcomputer1", budget), "store": "My", "cert_pem": leaf.pem,
                "pfx_base64": leaf.pfx_base64("Pfx-Pass-123"), "pfx_password": "Pfx-Pass-123",
                "serves_fqdns": ["wapcomputer1.contoso.com"], "expiry_threshold_days": 30, "staging_dir": "C:\\temp"}
    return Scenario(C.CertificateProvider(), props, drift=_delete_out_of_band)


def bundle(tmp: Path) -> Scenario:
    from labsim.hosts.wapconnector import make_bundle

    root = make_bundle(tmp / "bundle")

    def props(server: LabServer, budget: float) -> dict[str, Any]:
        return {"connection": conn(server, "wapcomputer2", budget), "source_dir": str(root),
                "destination": "C:\\temp\\WAPConnector", "chunk_size": BUNDLE_CHUNK, "files": B.hash_tree(root)}

    def drift(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
        _admin(server, "wapcomputer2", "edit a staged file", Command("Set-Content", {
            "Path": "C:\\temp\\WAPConnector\\Setup\\Scripts\\Update-TenantAPI.ps1", "Value": "tampered"}))
    return Scenario(B.ConnectorBundleProvider(), props, drift=drift)


def connector_site(tmp: Path) -> Scenario:
    def props(server: LabServer, budget: float) -> dict[str, Any]:
        fqdn = server.lab.host("wapcomputer1").fqdn
        result = cs.check({"connection": conn(server, "wapcomputer1", budget), "tenant_portal_fqdn": fqdn,
                           "tenant_api_fqdn": fqdn, "azure_stack_portal_fqdn": "portal.local.azurestack.external"})
        assert result.failures == []
        return result.inputs

    def drift(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
        _admin(server, "wapcomputer1", "uninstall a connector package",
               cs.uninstall_statements([CONNECTOR_PRODUCTS[1][3]]))
    return Scenario(cs.ConnectorSiteProvider(), props, prepare=_stage("wapcomputer1"), drift=drift)


def tenant_api_update(tmp: Path) -> Scenario:
    def props(server: LabServer, budget: float) -> dict[str, Any]:
        return {"connection": conn(server, "wapcomputer1", budget), "bundle_path": "C:\\temp\\WAPConnector",
                "script_folder": "Packages", "expected_product_code": None}

    def drift(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
        _admin(server, "wapcomputer1", "stop the Tenant API site",
               Command("Stop-Website", {"Name": locations.TENANT_API_SITE}))
    return Scenario(update.TenantApiUpdateProvider(), props, prepare=_stage("wapcomputer1"), drift=drift)


def tenant_api_trust(tmp: Path) -> Scenario:
    from tests.providers.test_tenant_api_trust import data_file

    def props(server: LabServer, budget: float) -> dict[str, Any]:
        return {"connection": conn(server, "wapcomputer1", budget), "data_file_content": data_file(),
                "data_file_name": "AzurePack-06-27-15-50.txt", "bundle_path": "C:\\temp\\WAPConnector",
                "sql_server": None, "sql_credential": None, "realm": None}

    def drift(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
        _admin(server, "wapcomputer1", "delete the trust row", Command("Set-MgmtSvcDatabaseSetting", {
            "ConnectionString": tenant_api.store_connection_string("wapcomputer1"),
            "Namespace": tenant_api.TRUST_NAMESPACE,
            "Name": tenant_api.TRUST_SETTING, "Value": ""}, ["Force"]))
    return Scenario(trust.TenantApiTrustProvider(), props, prepare=_stage("wapcomputer1"), drift=drift)


def azure_pack_connector(tmp: Path) -> Scenario:
    def props(server: LabServer, budget: float) -> dict[str, Any]:
        result = apc.check({
            "connection": conn(server, "AzS-ERCS01", budget), "share_connection": conn(server, "AzS-HOST", budget),
            "azure_stack_cloud_name": "AzureStack", "timeout_seconds": budget,
            "clouds": [{"cloud_name": "AzurePack_1", "cloud_endpoint": "https://wapcomputer1.contoso.com:40005"}]})
        assert result.failures == []
        return result.inputs

    def drift(server: LabServer, p: Any, created: Any, props: dict[str, Any]) -> None:
        _admin(server, "AzS-ERCS01", "disable multi-cloud", apc.disable_command())
    return Scenario(apc.AzurePackConnectorProvider(), props, drift=drift)


SCENARIOS: dict[str, Callable[[Path], Scenario]] = {
    "Certificate": certificate, "ConnectorBundle": bundle, "ConnectorSite": connector_site,
    "TenantApiUpdate": tenant_api_update, "TenantApiTrust": tenant_api_trust,
    "AzurePackConnector": azure_pack_connector,
}


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    """One scenario per resource for the module: its certificate and bundle are made once."""
    return {name: make(tmp_path_factory.mktemp(name)) for name, make in SCENARIOS.items()}


@dataclass(frozen=True)
class Setup:
    """A fault-free setup's result: the hosts as it left them, what create returned and the outputs the operation
    starts from (after the drift, for update)."""

    hosts: HostsPoint
    id: str
    outs: dict[str, Any]
    olds: dict[str, Any]

    def state(self) -> tuple[CreateResult, dict[str, Any]]:
        """(create's result, the operation's old outputs) as a cell gets them: its own copies, as Pulumi hands every
        operation the outputs it read from the state."""
        return CreateResult(self.id, copy.deepcopy(self.outs)), copy.deepcopy(self.olds)


@pytest.fixture(scope="module")
def setups() -> dict[tuple[str, bool, float], Setup]:
    """Setups by (resource, with drift, step budget): the budget is in the connection the outputs carry."""
    return {}


def set_up(server: LabServer, sc: Scenario, cell: Cell, props: dict[str, Any], budget: float,
           done: dict[tuple[str, bool, float], Setup]) -> tuple[CreateResult, dict[str, Any]]:
    """The resource created from baseline (and for update drifted out of band), on a fresh transport; the first
    cell of a kind runs it, the others get the hosts it left back."""
    key = (cell.resource, cell.operation == "update", budget)
    if key in done:
        lab_state(server).restore_hosts(done[key].hosts)
        return done[key].state()
    lab_state(server).reset()
    sc.prepare(server)
    p = sc.provider
    with fresh(p):
        created = p.create(props)
        olds = outs_of(created)
        if cell.operation == "update":
            sc.drift(server, p, created, props)
            read = p.read(created.id, outs_of(created))
            olds = outs_of(read) if read.id else outs_of(created)
            assert p.diff(created.id, olds, props).changes or not read.id, f"{cell.id}: the drift made no change"
    done[key] = Setup(lab_state(server).save_hosts(), created.id, copy.deepcopy(outs_of(created)), copy.deepcopy(olds))
    return done[key].state()


# ---------------------------------------------------------------------------------------------------------------
# Checks


def assert_clear_error(exc: BaseException, cell: Cell, fqdn: str) -> None:
    assert isinstance(exc, ConnectorError), f"{cell.id}: not a project error: {type(exc).__name__}: {exc}"
    text = str(exc)
    assert fqdn in text, f"{cell.id}: the message does not name the host {fqdn}: {text}"
    assert exc.step in STEPS[cell.resource], \
        f"{cell.id}: step {exc.step!r} is not one of the resource's STEP_* names {STEPS[cell.resource]}"
    assert f"step '{exc.step}'" in text, f"{cell.id}: the message does not name the step: {text}"
    advice = text.replace(getattr(exc, "command", None) or "\0", "").lower()
    assert any(a in advice for a in ADVICE), f"{cell.id}: the message does not say what to do: {text}"


def assert_converged(p: Any, id_: str, outs: dict[str, Any], props: dict[str, Any], cell: Cell) -> None:
    read = p.read(id_, outs)
    assert read.id == id_, f"{cell.id}: after the rerun read says the resource is gone"
    diff = p.diff(id_, outs_of(read), props)
    assert diff.changes is False, f"{cell.id}: after the rerun the host still differs from the desired state"


def fault_expectation(cell: Cell, exc: BaseException) -> None:
    if cell.fault in ("down", "drop", "wsman_fault"):
        assert isinstance(exc, TransportError) and exc.transient, f"{cell.id}: {type(exc).__name__}: {exc}"
    if cell.fault == "auth_broken":
        assert type(exc).__name__ == "AuthenticationFailed", f"{cell.id}: {type(exc).__name__}: {exc}"
    if cell.fault == "command_hang":
        assert isinstance(exc, StepTimedOut), f"{cell.id}: {type(exc).__name__}: {exc}"
        assert exc.seconds == HANG_BUDGET


#: Resources whose delete undoes their create (TenantApiUpdate has no documented undo).
LEAVES_HOST_AS_FOUND = ("Certificate", "ConnectorBundle", "ConnectorSite", "TenantApiTrust", "AzurePackConnector")


def _hosts_of(resource: str) -> tuple[str, ...]:
    return tuple(sorted({t.host for t in REMOTE[resource].values()}))


_REFERENCE: dict[str, dict] = {}


def reference(server: LabServer, sc: Scenario, resource: str) -> dict:
    """The hosts after a fault-free create and delete from baseline (what a failed create plus its rerun and a
    delete must also leave). Computed once per resource; leaves the lab at baseline."""
    if resource not in _REFERENCE:
        lab_state(server).reset()
        sc.prepare(server)
        props = sc.props(server, STEP_BUDGET)
        with fresh(sc.provider):
            created = sc.provider.create(props)
            sc.provider.delete(created.id, outs_of(created))
        _REFERENCE[resource] = {h: lab_runtime(server).snapshot(server.lab.host(h).name) for h in _hosts_of(resource)}
        lab_state(server).reset()
    return _REFERENCE[resource]


def _differences(before: dict, after: dict) -> list[str]:
    out = []
    for host in before:
        for key in sorted(set(before[host]) | set(after[host])):
            if before[host].get(key) != after[host].get(key):
                b, a = before[host].get(key), after[host].get(key)
                if isinstance(b, dict) and isinstance(a, dict):
                    out += [f"{host}.{key}.{k}" for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)]
                else:
                    out.append(f"{host}.{key}")
    return out[:20]


# ---------------------------------------------------------------------------------------------------------------
# The cells

CELLS = cells()
APPLICABLE = [c for c in CELLS if c.applicable and c.resource in REMOTE]
TLS_APPLICABLE = [c for c in CELLS if c.applicable and c.resource in TLS_PROBES]
NOT_APPLICABLE = [c for c in CELLS if not c.applicable]
NOT_APPLICABLE_BY_FAULT = [c for c in NOT_APPLICABLE if (c.resource, c.fault) in NOT_APPLICABLE_FAULTS
                           and (c.resource, c.operation) not in NOT_APPLICABLE_OPS]


def run_faulted(server: LabServer, cell: Cell, provider: Any, operation: Callable[[], Any]) -> BaseException | None:
    """Run ``operation`` (of ``provider``) with the cell's fault in force on the target host; return what it
    raised."""
    target = REMOTE[cell.resource][cell.operation]
    if cell.fault in ("down", "auth_broken", "wsman_fault"):
        set_fault(server, target.host, cell.fault)
    elif cell.fault in ("command_error", "command_terminating", "command_hang"):
        set_fault(server, target.host, cell.fault, target.command)
    elif cell.fault == "drop":
        set_fault(server, target.host, "command_hang", target.command)
        box: dict[str, BaseException | None] = {"exc": None}
        mark = last_id(server)

        def work() -> None:
            try:
                operation()
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                box["exc"] = exc

        with fresh(provider):
            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            wait_for(lambda: any(i["outcome"] == "running" for i in reached(server, target.host, target.command, mark))
                     or not worker.is_alive(), f"{target.command} to start", DROP_BUDGET, SWITCH_POLL)
            assert worker.is_alive(), f"{cell.id}: the operation ended before {target.command} ran: {box['exc']}"
            set_fault(server, target.host, "down")
            worker.join(DROP_BUDGET + 10)
            assert not worker.is_alive(), f"{cell.id}: the operation did not notice the dropped connection"
        return box["exc"]
    with fresh(provider):
        try:
            operation()
        except BaseException as exc:  # noqa: BLE001
            return exc
    return None


@pytest.mark.parametrize("cell", APPLICABLE, ids=lambda c: c.id)
def test_fault_cell(lab: LabServer, scenarios: dict[str, Scenario], setups: dict[tuple[str, bool, float], Setup],
                    cell: Cell) -> None:
    started = time.monotonic()
    server = lab
    lab_state(server).reset()
    clear_faults(server)
    sc = scenarios[cell.resource]
    budget = {"drop": DROP_BUDGET, "command_hang": HANG_BUDGET}.get(cell.fault, STEP_BUDGET)
    props = sc.props(server, budget)
    p = sc.provider
    target = REMOTE[cell.resource][cell.operation]
    fqdn = server.lab.host(target.host).fqdn

    created: Any = None  # the resource created before the faulted operation (none when that is create)
    olds = None
    if cell.operation == "create":
        sc.prepare(server)
    else:
        created, olds = set_up(server, sc, cell, props, budget, setups)

    operation: Callable[[], Any] = {
        "create": lambda: p.create(props),
        "read": lambda: p.read(created.id, outs_of(created)),
        "update": lambda: p.update(created.id, olds, props),
        "delete": lambda: p.delete(created.id, outs_of(created)),
    }[cell.operation]

    mark = last_id(server)
    try:
        exc = run_faulted(server, cell, p, operation)
    finally:
        clear_faults(server)
    assert exc is not None, f"{cell.id}: the operation succeeded under the fault (Pulumi would record it)"
    assert_clear_error(exc, cell, fqdn)
    fault_expectation(cell, exc)
    if cell.fault.startswith("command_") or cell.fault == "drop":
        assert reached(server, target.host, target.command, mark), \
            f"{cell.id}: the operation never reached {target.command}: the fault tested nothing"

    with fresh(p):
        if cell.operation == "create":
            result = p.create(props)
            assert_converged(p, result.id, outs_of(result), props, cell)
            if cell.resource in LEAVES_HOST_AS_FOUND:
                # The failed attempt must not change what the resource owns: its destroy still leaves the hosts
                # as they were before the first attempt (nothing adopted, no folder forgotten).
                p.delete(result.id, outs_of(result))
                after = {h: lab_runtime(server).snapshot(server.lab.host(h).name) for h in _hosts_of(cell.resource)}
                clean = reference(server, sc, cell.resource)
                assert after == clean, f"{cell.id}: after the rerun and a delete the hosts differ from a fault-free " \
                    f"create and delete: {_differences(clean, after)}"
        elif cell.operation == "read":
            assert_converged(p, created.id, outs_of(created), props, cell)
        elif cell.operation == "update":
            p.read(created.id, olds)  # the previous outputs still reach and describe the host
            result = p.update(created.id, olds, props)
            assert_converged(p, created.id, outs_of(result), props, cell)
        else:
            p.read(created.id, outs_of(created))  # the previous outputs are still usable (gone or present)
            p.delete(created.id, outs_of(created))
            assert p.read(created.id, outs_of(created)).id == "", f"{cell.id}: delete rerun left the resource"
    figures.record("fault_matrix", f"cell:{cell.id}", "pass")
    figures.record("fault_matrix", "cell_seconds", round(time.monotonic() - started, 2), add=True)


# ---------------------------------------------------------------------------------------------------------------
# EndpointCheck: TLS from the operator's machine to the connector site labsim serves on wapcomputer1:40005


@pytest.fixture(scope="module")
def bound_site() -> dict[str, Setup]:
    """The connector site bound by a ConnectorSite create from baseline, once for the module."""
    return {}


def endpoint_check_props(server: LabServer, wait_seconds: float, done: dict[str, Setup]) -> dict[str, Any]:
    """Bind the connector site (ConnectorSite create, the tenant site's certificate) and return EndpointCheck
    inputs expecting the bound certificate, trusted through the lab CA."""
    from providers.endpoint_check import EndpointCheckProvider

    host = TLS_PROBES["EndpointCheck"]
    if "site" in done:
        lab_state(server).restore_hosts(done["site"].hosts)
    else:
        sc = connector_site(Path("."))
        sc.prepare(server)
        with fresh(sc.provider):
            site = sc.provider.create(sc.props(server, STEP_BUDGET))
        done["site"] = Setup(lab_state(server).save_hosts(), site.id, outs_of(site), outs_of(site))
    site = done["site"].state()[0]
    result = EndpointCheckProvider().check({}, {
        "fqdn": server.lab.host(host).fqdn, "port": locations.CONNECTOR_PORT,
        "connect_address": server.lab.host(host).address, "ca_pem": Path(server.ca_file).read_text(),
        "expected_thumbprint": outs_of(site)["bound_thumbprint"], "wait_seconds": wait_seconds})
    assert result.failures == [], result.failures
    return result.inputs


def _endpoint_operation(p: Any, cell: Cell, props: dict[str, Any]) -> Callable[[], Any]:
    if cell.operation == "create":
        return lambda: p.create(props)
    created = p.create({**props, "wait_seconds": 15.0})  # the site's listener starts within a poll
    return lambda: p.update(created.id, outs_of(created), props)


@pytest.mark.parametrize("cell", TLS_APPLICABLE, ids=lambda c: c.id)
def test_endpoint_check_cell(lab: LabServer, bound_site: dict[str, Setup], cell: Cell) -> None:
    from providers.endpoint_check import EndpointCheckFailed, EndpointCheckProvider

    started = time.monotonic()
    server = lab
    lab_state(server).reset()
    clear_faults(server)
    props = endpoint_check_props(server, 0.0, bound_site)
    p = EndpointCheckProvider()
    operation = _endpoint_operation(p, cell, props)
    host = TLS_PROBES[cell.resource]
    try:
        set_fault(server, host, cell.fault)
        assert cell.fault == "down"
        address = server.lab.host(host).address
        wait_for(lambda: not listening(address, locations.CONNECTOR_PORT), "the connector site to close", SETTLE)
        with pytest.raises(EndpointCheckFailed) as err:
            operation()
    finally:
        clear_faults(server)
    msg = str(err.value)
    fqdn = server.lab.host(host).fqdn
    assert fqdn in msg and "does not answer TLS" in msg and "check" in msg.lower(), msg
    # The rerun converges once the host is back (the listener reopens within a poll: the check's own wait).
    result = (p.create({**props, "wait_seconds": 15.0}) if cell.operation == "create"
              else p.update(f"{fqdn}:{locations.CONNECTOR_PORT}", props, {**props, "wait_seconds": 15.0}))
    outs = outs_of(result)
    assert outs["served_thumbprint"] == props["expected_thumbprint"].upper(), outs
    figures.record("fault_matrix", f"cell:{cell.id}", "pass")
    figures.record("fault_matrix", "cell_seconds", round(time.monotonic() - started, 2), add=True)


@pytest.mark.parametrize("cell", NOT_APPLICABLE_BY_FAULT, ids=lambda c: c.id)
def test_fault_that_does_not_reach_the_endpoint_check(lab: LabServer, bound_site: dict[str, Setup], cell: Cell) -> None:
    """The n/a reason checked: with the fault in force on the probed host, the probe passes."""
    from providers.endpoint_check import EndpointCheckProvider

    server = lab
    lab_state(server).reset()
    clear_faults(server)
    props = endpoint_check_props(server, 15.0, bound_site)
    p = EndpointCheckProvider()
    host = TLS_PROBES[cell.resource]
    kind = "command_hang" if cell.fault == "drop" else cell.fault
    command = "Get-Website" if kind.startswith("command_") else None
    p.create(props)  # the listener is up before the fault goes on
    try:
        set_fault(server, host, kind, command)
        outs = outs_of(_endpoint_operation(p, cell, {**props, "wait_seconds": 0.0})())
    finally:
        clear_faults(server)
    assert outs["served_thumbprint"] == props["expected_thumbprint"].upper()
    figures.record("fault_matrix", f"cell:{cell.id}", f"n/a: {cell.reason}")


def _makes_no_remote_call(cell: Cell) -> None:
    """Prove a not-applicable reason: the resource/operation never asks for the transport."""
    if cell.resource in NOT_REMOTE:
        import importlib

        module = {"CertificateAuthority": "providers.pki", "IssuedCertificate": "providers.pki"}[cell.resource]
        source_file = importlib.import_module(module).__file__
        assert source_file is not None
        source = Path(source_file).read_text()
        assert "transport()" not in source and "providers.transport" not in source, \
            f"{cell.id}: {module} talks to a host after all; move the cell into the matrix"
        return
    assert (cell.resource, cell.operation) in NOT_APPLICABLE_OPS
    if cell.resource == "EndpointCheck":  # read and delete open no connection: nothing listens on the address
        from providers.endpoint_check import EndpointCheckProvider

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: a connection would be refused
            props = {"fqdn": "wapcomputer1.contoso.com", "port": port, "connect_address": "127.0.0.1",
                     "ca_pem": "x", "expected_thumbprint": "AB" * 20, "wait_seconds": 0.0}
            # EndpointCheck has no WinRM transport at all; a TLS connection would be refused here.
            if cell.operation == "read":
                assert outs_of(EndpointCheckProvider().read("id", props)) == props
            else:
                EndpointCheckProvider().delete("id", props)
        return
    fake = FakeTransport({})
    provider = {"TenantApiUpdate": update.TenantApiUpdateProvider}[cell.resource](fake)
    props = {"connection": {"fqdn": "wapcomputer1.contoso.com", "auth": "ntlm", "username": "u", "password": "p"},
             "bundle_path": "C:\\temp\\WAPConnector", "script_folder": "Packages", "expected_product_code": None}
    getattr(provider, cell.operation)("id", props)
    assert fake.calls == [], f"{cell.id}: {cell.operation} made remote calls; move the cell into the matrix"


@pytest.mark.parametrize("cell", [c for c in NOT_APPLICABLE if c not in NOT_APPLICABLE_BY_FAULT], ids=lambda c: c.id)
def test_not_applicable_cell(cell: Cell) -> None:
    assert cell.reason
    _makes_no_remote_call(cell)
    figures.record("fault_matrix", f"cell:{cell.id}", f"n/a: {cell.reason}")


def test_matrix_shape() -> None:
    """Every remote resource has a target for every operation unless that operation is declared n/a."""
    for resource, targets in REMOTE.items():
        for op in ("create", "read", "update", "delete"):
            assert op in targets or (resource, op) in NOT_APPLICABLE_OPS, (resource, op)
    assert len(CELLS) == len({c.id for c in CELLS})  # the page counts cells by their status, one per id
