"""A team on one lab: two operators' checkouts at different paths share the stack's state, end to end (README:
"Team state on PostgreSQL").

One PostgreSQL server (Debian's binaries, started here on 127.0.0.1 with TLS, tests/e2e/postgres_server.py), one
labsim lab of one cloud (every resource type once) and two clones of this project (tests/e2e/team_checkouts.py)
serve the module. The backend URL is the documented one: no password in it (PGPASSWORD carries it),
`sslmode=verify-full` against the server's CA. The tests run in file order: the first operator deploys; the
teammate's refreshing preview plans nothing, its `up` writes to no host, `make fleet` shows the lab in sync; a
concurrent `up` is refused by the lock; the stack, as a deployment made before resources carried their CA by
content, moves to a file backend the two share and still reads clean from the other checkout; destroy.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.preflight import READ_COMMANDS
from labsim.runtime import Fault
from tests.e2e.postgres_server import PostgresServer, postgres_server
from tests.e2e.pulumi_cli import engine_missing
from tests.e2e.team_checkouts import LAB_DIR, STACK, Team, team_on_one_lab

pytestmark = pytest.mark.e2e

# Commands that only read (labsim records each command of a pipeline on its own): the resources' reads and the
# read-only preflight every preview and up runs first. Anything else changes a host.
READS = {c.lower() for c in ("Get-Item", "Get-ChildItem", "Get-Content", "Get-FileHash", "Get-ItemProperty",
                             "Get-Website", "Get-WebConfigurationProperty", "Get-Package", "Get-MgmtSvcSetting",
                             "Get-MgmtSvcDatabaseSetting", "Test-Path", "Select-Object", "Where-Object",
                             "ConvertTo-Json", "Measure-Object", *READ_COMMANDS)}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how an exported deployment marks a secret
CHANGED = re.compile(r"\b(created|updated|replaced|deleted)\b")


def writes(team: Team, after: int) -> list[str]:
    return [c for c in team.commands_after(after) if c.rsplit("\\", 1)[-1].lower() not in READS]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def team(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    with team_on_one_lab(tmp_path_factory.mktemp("team"),
                         {"PULUMI_BACKEND_URL": pg.url(), "PGPASSWORD": pg.password}) as team:
        yield team


def keys(pg: PostgresServer, like: str = "%") -> list[str]:
    return pg.sql(f"SELECT key FROM pulumi_state WHERE key LIKE '{like}' ORDER BY key").split()


def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_first_operator_deploys_into_postgres(team: Team, pg: PostgresServer) -> None:
    up = team.first.up()
    assert "error" not in up.output.lower(), up.output
    stack_keys = keys(pg, f"%/{STACK}.json")
    assert stack_keys, keys(pg)
    # The backend keeps each file of the DIY layout as a row: {"data": base64 of the checkpoint's JSON}.
    stored = json.loads(pg.sql(f"SELECT data FROM pulumi_state WHERE key = '{stack_keys[0]}'"))
    checkpoint = json.loads(base64.b64decode(stored["data"]))
    urns = {r["urn"] for r in checkpoint["checkpoint"]["latest"]["resources"]}
    exported = team.first.pulumi("stack", "export", "--show-secrets", check=True).stdout
    assert urns == {r["urn"] for r in json.loads(exported)["deployment"]["resources"]}
    # The whole one-cloud lab (the stack, its components and resources; provider instances aside).
    assert len([u for u in urns if "::pulumi:providers:" not in u]) >= 14, sorted(urns)
    # Nothing in the state says where the deploying checkout lives: the CA travels by content.
    assert str(team.first.root) not in exported
    conns = list(_connections(json.loads(exported)))
    assert len(conns) >= 10, conns
    assert [c for c in conns if "ca_file" in c or "BEGIN CERTIFICATE" not in c["ca_pem"]] == []


def test_whoami_prints_the_backend_url_without_a_password(team: Team, pg: PostgresServer) -> None:
    run = team.first.pulumi("whoami", "-v", check=True, with_stack=False)
    assert f"postgres://pulumi@127.0.0.1:{pg.port}/pulumi_state" in run.output, run.output
    assert pg.password not in run.output


def test_a_teammate_at_another_path_finds_the_lab_in_sync_and_writes_nothing(team: Team) -> None:
    second = team.second
    assert second.root != team.first.root
    mark = team.last_invocation_id()
    clean = second.pulumi("preview", "--refresh", "--expect-no-changes")
    assert clean.returncode == 0, clean.output
    up = second.up("--refresh")  # what `make up` runs
    assert not CHANGED.search(up.output), up.output
    assert writes(team, mark) == []
    assert team.commands_after(mark), "the refresh must have read the hosts"
    fleet = second.fleet_status()
    assert fleet.returncode == 0, fleet.output
    row = next(line for line in fleet.stdout.splitlines() if line.startswith(STACK + " "))
    assert "deployed" in row and row.rstrip().endswith("in sync"), fleet.output


def test_the_lock_refuses_a_teammates_concurrent_up_and_nothing_is_lost(team: Team, pg: PostgresServer) -> None:
    first, second = team.first, team.second
    history = len(first.pulumi("stack", "history", "--json", check=True).json())
    urns = {r["urn"] for r in first.resources()}
    team.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")  # work for the first up
    # A slow host keeps the first up (and its lock) busy long enough for the teammate to try theirs.
    team.runtime.state.set_fault(Fault(host=team.lab.host("wapcomputer1").name, kind="slow", seconds=0.4))
    done: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: done.update(run=first.up("--refresh", check=False)))
    worker.start()
    try:
        wait_for(lambda: keys(pg, "%/locks/%"), 60, "the first up to take the stack's lock")
        refused = second.up("--refresh", check=False)
    finally:
        worker.join(300)
        team.runtime.state.clear_faults()
    assert refused.returncode != 0
    assert "the stack is currently locked" in refused.output, refused.output
    assert done["run"].returncode == 0, done["run"].output
    assert "updated" in done["run"].output, done["run"].output

    # Nothing lost: the lock is gone, one more update in the history (the refused one left none), no pending
    # operation, every resource still in the state, the drift healed (the next test's previews are clean).
    assert keys(pg, "%/locks/%") == []
    assert len(first.pulumi("stack", "history", "--json", check=True).json()) == history + 1
    assert not first.pulumi("stack", "export", check=True).json()["deployment"].get("pending_operations")
    assert {r["urn"] for r in second.resources()} == urns
    assert team.snapshot("AzS-ERCS01")["pep"]["multicloud"] is True


def _as_deployed_before_ca_content(value: Any, ca_path: str) -> Any:
    """The exported deployment (secrets shown) as the code before CA content wrote it: every connection names its
    CA by the deploying checkout's absolute path (``ca_file``), and holds no ``ca_pem``. Connections that are
    secret outputs are JSON text inside their secret."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) and isinstance(value.get("plaintext"), str):
            inner = _as_deployed_before_ca_content(json.loads(value["plaintext"]), ca_path)
            return {**value, "plaintext": json.dumps(inner)}
        out = {k: _as_deployed_before_ca_content(v, ca_path) for k, v in value.items()}
        if isinstance(value.get("fqdn"), str) and "auth" in value:  # a connection
            del out["ca_pem"]
            out["ca_file"] = ca_path
        return out
    if isinstance(value, list):
        return [_as_deployed_before_ca_content(v, ca_path) for v in value]
    return value


def _connections(value: Any) -> Iterator[dict[str, Any]]:
    """Every connection in an exported deployment (secrets shown)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) and isinstance(value.get("plaintext"), str):
            yield from _connections(json.loads(value["plaintext"]))
            return
        if isinstance(value.get("fqdn"), str) and "auth" in value:
            yield value
        for v in value.values():
            yield from _connections(v)
    elif isinstance(value, list):
        for v in value:
            yield from _connections(v)


def test_a_stack_deployed_before_ca_content_moves_to_a_shared_file_backend_with_no_change(
        team: Team, tmp_path: Path) -> None:
    """Also the move between backends the README documents (export, import, preview clean)."""
    exported = team.first.pulumi("stack", "export", "--show-secrets", check=True).json()
    # Written by an operator whose checkout is gone from this machine (or was never on it): the teammate's
    # checkout has the CA file at the same place within the project.
    gone = f"/gone/alice/wap-connector/{LAB_DIR}/pki/ca.pem"
    legacy = json.dumps(_as_deployed_before_ca_content(exported, gone))
    conns = list(_connections(json.loads(legacy)))
    assert len(conns) >= 10 and all(c["ca_file"] == gone and "ca_pem" not in c for c in conns)
    state_file = tmp_path / "legacy.json"
    state_file.write_text(legacy)
    backend = tmp_path / "file-backend"
    backend.mkdir()
    first = team.first.with_backend(f"file://{backend}")
    second = team.second.with_backend(f"file://{backend}")
    first.pulumi("stack", "init", STACK, check=True, with_stack=False)  # the deploying operator moves it
    first.pulumi("stack", "import", "--file", str(state_file), check=True)
    stored = list(_connections(second.pulumi("stack", "export", "--show-secrets", check=True).json()))
    assert len(stored) == len(conns) and all(c["ca_file"] == gone and "ca_pem" not in c for c in stored)

    mark = team.last_invocation_id()
    clean = second.pulumi("preview", "--refresh", "--expect-no-changes")
    assert clean.returncode == 0, clean.output
    up = second.up("--refresh")
    assert not CHANGED.search(up.output), up.output
    assert writes(team, mark) == []
    # Destroy from the teammate's checkout, with connections that still name the gone checkout's file.
    second.pulumi("destroy", "--yes", "--skip-preview", check=True)
    assert second.resources() == []
    assert team.snapshot("wapcomputer1")["sites"] == team.runtime.snapshot(
        team.lab.host("wapcomputer1").name, baseline=True)["sites"]


def test_the_stack_leaves_postgres(team: Team, pg: PostgresServer) -> None:
    # Its resources were destroyed through the file backend: forget the PostgreSQL copy.
    team.second.pulumi("stack", "rm", "--force", "--yes", check=True)
    assert keys(pg, f"%/{STACK}.json") == []

