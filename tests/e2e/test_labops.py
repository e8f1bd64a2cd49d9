"""labops end to end: the doctor (`make doctor`), the picture (`make graph`) and the fleet command on a deployed
lab, through the real Pulumi engine and Automation API. One labsim and one deployed stack serve the whole module,
in file order: the doctor first, on the lab as `up` left it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labops import fleet as labops_fleet
from labops import graph
from labops.stacks import SECRET_SIG, Project
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.e2e.pulumi_cli import engine_missing
from tests.polling import listening, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabStack]:
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

    def walk(value: Any) -> None:
        if isinstance(value, dict) and SECRET_SIG in value:  # a decrypted secret: its JSON plaintext
            value = json.loads(value["plaintext"])
            if isinstance(value, str) and len(value) > 3:
                found.append(value)
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and ("password" in key or "private_key" in key) and len(item) > 3:
                    found.append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith("{") and "password" in value:
            walk(json.loads(value))

    walk(lab.project.export(show_secrets=True))
    assert found, "the stack should hold passwords and keys"
    return found


def test_doctor_judges_the_deployed_connector_without_writing(lab: LabStack) -> None:
    """`make doctor` on the deployed lab (first: the lab is as `up` left it): each connector certificate bound is
    the stack's, and the WASP reaches each connector; every check passes and no host changes."""
    before = {h.name: lab.snapshot(h.name) for h in lab.lab.hosts}
    after = lab.doctor()
    assert after.returncode == 0, after.stdout + after.stderr
    assert [line for line in after.stdout.splitlines() if " FAIL " in line] == []
    thumbprints = {n: c["thumbprint"] for n, c in lab.outputs()["clouds"].items()}
    lines = after.stdout.splitlines()
    for host, cloud in (("wapcomputer1", "AzurePack_1"), ("wapcomputer2", "AzurePack_2")):
        cert = next(line for line in lines if line.startswith(host) and "connector certificate" in line)
        assert f"PASS bound {thumbprints[cloud]}" in cert and "server auth, key present" in cert, cert
        assert any(line.startswith("AzS-WASP01") and f"reaches {host}:40005" in line and "PASS" in line
                   for line in lines), after.stdout
    assert {h.name: lab.snapshot(h.name) for h in lab.lab.hosts} == before


def test_graph_shows_hosts_resources_and_drift_without_secrets_or_touching_hosts(
        lab: LabStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi import automation as auto

    def decrypting_export(*_: object) -> None:
        raise AssertionError("the graph decrypted the state: only the password is secret, the fqdn is plain")

    monkeypatch.setattr(auto.Stack, "export_stack", decrypting_export)
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
    assert by_name["multi-cloud"][2] == "drift: update (multi_cloud_enabled)"  # the field the provider names
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


# -- the fleet command -----------------------------------------------------------------------------------------

PKI_ONLY = {
    "ca": {"commonName": "Fleet Test Root CA", "keyType": "ecdsa-p256", "validityDays": 3650},
    "clouds": [{"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"}],
}


def write_config(lab: LabStack, stack: str, values: dict) -> None:
    path = lab.project.project_dir / "stacks" / f"Pulumi.{stack}.yaml"
    doc = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    doc["config"] = {f"wapconnector:{k}": v for k, v in values.items()}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def fleet(lab: LabStack, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = labops_fleet.main(["--log-dir", str(tmp_path / "logs"), "--drift-dir", str(tmp_path / "drift"), *args],
                             project=project_of(lab))
    return code, capsys.readouterr().out


def rows(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines() if line and not line.startswith((" ", "STACK"))}


def test_fleet_status_lists_every_stack_with_its_state_and_drift(lab: LabStack, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lab.project.run("stack", "init", "pki", check=True, with_stack=False)  # a second stack, not deployed yet
    write_config(lab, "pki", PKI_ONLY)
    write_config(lab, "spare", PKI_ONLY)  # configured, never initialised
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")
    before = {h.name: lab.snapshot(h.name) for h in lab.lab.hosts}

    code, out = fleet(lab, tmp_path, capsys, "status")

    assert code == 0, out
    table = rows(out)
    assert set(table) == {lab.project.stack, "pki", "spare"}, out
    assert re.search(r"deployed\s+\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+drift: \d+ to update$",
                     table[lab.project.stack])
    assert "empty" in table["pki"] and "no state (configuration only)" in table["spare"]
    assert {h.name: lab.snapshot(h.name) for h in lab.lab.hosts} == before  # read-only
    recorded = json.loads((tmp_path / "drift" / f"{lab.project.stack}.json").read_text())
    assert "update" in recorded["ops"].values()


def test_fleet_up_finishes_the_reachable_hosts_when_one_is_down(lab: LabStack, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from labsim.runtime import Fault

    down = lab.lab.host("wapcomputer2")
    address, port = lab.server.endpoint(down.name)
    lab.runtime.state.set_fault(Fault(host=down.name, kind="down"))
    wait_for(lambda: not listening(address, port), "wapcomputer2's listener to go down", timeout=15)
    try:
        # Plain up: the stack with the down host fails as a whole (its refresh cannot read wapcomputer2, so not
        # even the reachable privileged endpoint is healed); the other stack is done regardless.
        code, out = fleet(lab, tmp_path, capsys, "up", lab.project.stack, "pki", "--continue-on-error")
        assert code == 1
        assert re.search(rf"^{lab.project.stack}: up FAILED", out, re.M), out
        assert re.search(r"^pki: up succeeded; \d+ create", out, re.M), out
        assert down.fqdn in out, out
        assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is False
        pki = lab.project.run("stack", "export", "--stack", "pki", with_stack=False, check=True).json()
        assert any(r["type"].endswith(":CertificateAuthority") for r in pki["deployment"]["resources"])

        # The picture says which resources could not be read: every one on wapcomputer2, and only those.
        out_file = tmp_path / "down.svg"
        graph.main(["--stack", lab.project.stack, "--out", str(out_file), "--drift-dir", str(tmp_path)],
                   project=project_of(lab))
        dot = out_file.with_suffix(".dot").read_text()
        clusters = dict(re.findall(r'subgraph cluster_\d+ \{\n\s+label="([^"]+)";[^\n]*\n((?:\s+r\d+ \[[^\n]*\n)+)',
                                   dot))
        down_cluster = clusters[down.fqdn.lower()]
        assert down_cluster.count("not read") == down_cluster.count(" [label=") > 0
        assert sum(body.count("not read") for body in clusters.values()) == down_cluster.count("not read")

        # --skip-unreachable: the resources on wapcomputer2 (and what depends on them) are left out; the rest
        # is refreshed and healed.
        before = lab.snapshot(down.name)
        code, out = fleet(lab, tmp_path, capsys, "up", lab.project.stack, "--skip-unreachable", "--continue-on-error")
        assert code == 0, out
        assert f"skipped, not reachable: {down.fqdn.lower()}" in out, out
        # The program's preflight table is shown under the stack: the skipped host's checks failed, as warnings.
        assert re.search(r"^\s+preflight: .*failed", out, re.M), out
        assert re.search(rf"^\s+{down.name}\s+reachable\s+FAIL", out, re.M), out
        assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is True
        assert lab.snapshot(down.name) == before
    finally:
        lab.runtime.state.clear_faults()
    wait_for(lambda: listening(address, port), "wapcomputer2's listener to come back", timeout=15)

    # --target passes through: only the named resource is refreshed and brought back.
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", "DisableMultiCloud")
    pep = next(r["urn"] for r in lab.project.resources() if r["urn"].endswith("::lab-multi-cloud"))
    code, out = fleet(lab, tmp_path, capsys, "up", lab.project.stack, "--target", pep)
    assert code == 0 and re.search(rf"^{lab.project.stack}: up succeeded; 1 update", out, re.M), out
    assert lab.snapshot("AzS-ERCS01")["pep"]["multicloud"] is True

    code, out = fleet(lab, tmp_path, capsys, "up", lab.project.stack)
    assert code == 0, out
    lab.assert_clean()

    code, out = fleet(lab, tmp_path, capsys, "destroy", "pki", "--yes")
    assert code == 0 and re.search(r"^pki: destroy succeeded; \d+ delete", out, re.M), out
    assert lab.project.run("stack", "export", "--stack", "pki", with_stack=False, check=True) \
        .json()["deployment"].get("resources") in (None, [])
