"""labops end to end: the picture (`make graph`) and the fleet command on a deployed lab, through the real
Pulumi engine and Automation API. One labsim and one deployed stack serve the whole module."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from labops import graph
from labops.stacks import Project
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.e2e.pulumi_cli import engine_missing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LabStack]:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    with lab_stack(tmp_path_factory.mktemp("labops")) as lab:
        lab.project.up()
        yield lab


def project_of(lab: LabStack) -> Project:
    return Project(lab.project.project_dir, lambda stack: dict(lab.project.env))


def secrets_of(lab: LabStack) -> list[str]:
    """Every password and private key the stack holds, as the state decrypts them."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and ("password" in key or "private_key" in key) and len(item) > 3:
                    found.append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith("{") and "password" in value:
            import json

            walk(json.loads(value))

    walk(lab.project.export(show_secrets=True))
    assert found, "the stack should hold passwords and keys"
    return found


def test_graph_shows_hosts_resources_and_drift_without_secrets_or_touching_hosts(lab: LabStack, tmp_path) -> None:
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")  # drift on the privileged endpoint
    hosts = [h.name for h in lab.lab.hosts]
    before = {h: lab.snapshot(h) for h in hosts}
    mark = lab.last_invocation_id()

    out = tmp_path / "lab.svg"
    assert graph.main(["--stack", lab.project.stack, "--out", str(out), "--drift-dir", str(tmp_path)],
                      project=project_of(lab)) == 0

    # Read-only: the refresh reached the hosts and changed none of them.
    assert {h: lab.snapshot(h) for h in hosts} == before
    assert lab.invocations(after=mark), "the refresh should have read the hosts"
    dot = out.with_suffix(".dot").read_text()
    svg = out.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    for secret in secrets_of(lab):
        assert secret not in dot and secret not in svg

    clusters = set(re.findall(r'subgraph cluster_\d+ \{\n\s+label="([^"]+)"', dot))
    reached = {lab.lab.host(h).fqdn.lower() for h in ("AzS-ERCS01", "AzS-WASP01", "wapcomputer1", "wapcomputer2")}
    assert clusters == {"operator's machine"} | reached
    labels = dict(re.findall(r'^\s+(r\d+) \[label="((?:[^"\\]|\\.)*)"', dot, re.M))
    assert len(labels) == len(lab.project.resources())
    by_name = {label.split("\\n")[0]: label.split("\\n") for label in labels.values()}
    assert by_name["multi-cloud"][2] == "drift: update"
    assert by_name["connector-site"][2] == "in sync" and by_name["ca"][2] == "in sync"
    assert re.search(r"lab stack \w+: drift: \d+ to update \(refresh of ", dot)
    assert len(re.findall(r"^\s+r\d+ -> r\d+;", dot, re.M)) >= len(labels) - 2

    # --no-refresh draws the recorded drift without reaching any host.
    mark = lab.last_invocation_id()
    again = tmp_path / "again.dot"
    graph.main(["--stack", lab.project.stack, "--out", str(again), "--no-refresh", "--drift-dir", str(tmp_path)],
               project=project_of(lab))
    assert lab.invocations(after=mark) == []
    assert again.read_text() == dot

    lab.project.up()  # heal, for the next test
