"""Team state: a lab stack kept in PostgreSQL, end to end (README: "Team state on PostgreSQL").

One PostgreSQL server (Debian's binaries, started here on 127.0.0.1 with TLS, tests/e2e/postgres_server.py) and
one labsim serve the module. The backend URL is the documented one: no password in it (PGPASSWORD carries it),
`sslmode=verify-full` against the server's CA. The tests run in file order: up, preview, a refused concurrent
up, a move to another backend, destroy.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from labsim.runtime import Fault
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.e2e.postgres_server import PostgresServer, postgres_server
from tests.e2e.pulumi_cli import PulumiProject, engine_missing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def lab(pg: PostgresServer, tmp_path_factory) -> Iterator[LabStack]:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    env = {"PULUMI_BACKEND_URL": pg.url(), "PGPASSWORD": pg.password}
    with lab_stack(tmp_path_factory.mktemp("pg-lab"), project_env=env) as lab:
        yield lab


def keys(pg: PostgresServer, like: str = "%") -> list[str]:
    return pg.sql(f"SELECT key FROM pulumi_state WHERE key LIKE '{like}' ORDER BY key").split()


def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_up_and_preview_keep_the_state_in_postgres(lab: LabStack, pg: PostgresServer) -> None:
    up = lab.project.up()
    assert "error" not in up.output.lower(), up.output
    lab.assert_clean()  # preview --refresh --expect-no-changes, read from PostgreSQL
    stack_keys = keys(pg, f"%/{lab.project.stack}.json")
    assert stack_keys, keys(pg)
    # The backend keeps each file of the DIY layout as a row: {"data": base64 of the checkpoint's JSON}.
    stored = json.loads(pg.sql(f"SELECT data FROM pulumi_state WHERE key = '{stack_keys[0]}'"))
    checkpoint = json.loads(base64.b64decode(stored["data"]))
    urns = {r["urn"] for r in checkpoint["checkpoint"]["latest"]["resources"]}
    assert urns == {r["urn"] for r in lab.project.export()["deployment"]["resources"]} and len(urns) > 20
    assert lab.project.state_files() == []  # nothing went to the file backend


def test_whoami_prints_the_backend_url_without_a_password(lab: LabStack, pg: PostgresServer) -> None:
    run = lab.project.run("whoami", "-v", check=True, with_stack=False)
    assert f"postgres://pulumi@127.0.0.1:{pg.port}/pulumi_state" in run.output, run.output
    assert pg.password not in run.output


def test_a_second_concurrent_up_is_refused_by_the_lock_and_nothing_is_lost(lab: LabStack, pg: PostgresServer) -> None:
    history = len(lab.project.run("stack", "history", "--json", check=True).json())
    urns = {r["urn"] for r in lab.project.resources()}
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")  # work for the first up
    # A slow host keeps the first up (and its lock) busy long enough to try a second one.
    lab.runtime.state.set_fault(Fault(host=lab.lab.host("wapcomputer1").name, kind="slow", seconds=0.4))
    first: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: first.update(run=lab.project.up("--refresh", check=False)))
    worker.start()
    try:
        wait_for(lambda: keys(pg, "%/locks/%"), 60, "the first up to take the stack's lock")
        second = lab.project.up("--refresh", check=False)
    finally:
        worker.join(300)
        lab.runtime.state.clear_faults()
    assert second.returncode != 0
    assert "the stack is currently locked" in second.output, second.output
    assert first["run"].returncode == 0, first["run"].output
    assert "updated" in first["run"].output, first["run"].output

    # Nothing lost: the lock is gone, one more update in the history (the refused one left none), no pending
    # operation, every resource still in the state, the drift healed, the next preview clean.
    assert keys(pg, "%/locks/%") == []
    assert len(lab.project.run("stack", "history", "--json", check=True).json()) == history + 1
    deployment = lab.project.export()["deployment"]
    assert not deployment.get("pending_operations")
    assert {r["urn"] for r in lab.project.resources()} == urns
    assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is True
    lab.assert_clean()


def test_a_stack_moves_to_another_backend_with_export_and_import(lab: LabStack, tmp_path) -> None:
    exported = tmp_path / "stack.json"
    lab.project.run("stack", "export", "--file", str(exported), check=True)
    assert lab.project.run("stack", "export", check=True).stdout.count("ciphertext") > 0  # secrets stay encrypted
    # The same project and stack config (its encryption salt) against a file backend.
    moved = PulumiProject.__new__(PulumiProject)
    moved.__dict__.update(lab.project.__dict__)
    moved.backend_dir = tmp_path / "file-backend"
    moved.backend_dir.mkdir()
    moved.env = {k: v for k, v in lab.project.env.items() if k != "PGPASSWORD"}
    moved.env["PULUMI_BACKEND_URL"] = f"file://{moved.backend_dir}"
    moved.run("stack", "init", moved.stack, check=True, with_stack=False)
    moved.run("stack", "import", "--file", str(exported), check=True)
    assert {r["urn"] for r in moved.resources()} == {r["urn"] for r in lab.project.resources()}
    run = moved.run("preview", "--refresh", "--expect-no-changes")
    assert run.returncode == 0, run.output


def test_destroy_from_postgres_returns_the_hosts_to_their_baseline(lab: LabStack, pg: PostgresServer) -> None:
    lab.project.run("destroy", "--yes", "--skip-preview", check=True)
    assert lab.project.resources() == []
    for host in ("wapcomputer1", "wapcomputer2"):
        assert lab.snapshot(host)["sites"] == lab.snapshot(host, baseline=True)["sites"]
    lab.project.run("stack", "rm", "--yes", check=True)
    assert keys(pg, f"%/{lab.project.stack}.json") == []
