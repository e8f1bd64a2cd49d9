"""The lab CA and its certificates on the real engine, through up / preview / replace / destroy.

The first two tests share one deployment (a module fixture), in file order: the first only reads its state, the
second takes it through idempotence, a replacement and destroy."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.pulumi_cli import PASSPHRASE, PulumiProject, Run, engine_missing

pytestmark = pytest.mark.e2e

Deployed = tuple[PulumiProject, Run]  # the project, and the output of its first `up`
CONFIG: dict[str, Any] = {
    "ca": {"commonName": "E2E Lab Root CA", "keyType": "ecdsa-p256", "validityDays": 3650},
    "clouds": [
        {"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"},
        {"name": "AzurePack_2", "connectorFqdn": "wapcomputer2.contoso.com"},
    ],
}


def _steps(preview: dict) -> dict[str, list[str]]:
    """op -> names of the custom resources it applies to (the stack itself excluded)."""
    out: dict[str, list[str]] = {}
    for step in preview.get("steps", []):
        urn = step["urn"]
        if "pulumi-python:dynamic" in urn:
            out.setdefault(step["op"], []).append(urn.rsplit("::", 1)[1])
    return out


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """The CA and two certificates deployed once, with the first `up`'s output."""
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    project = PulumiProject(tmp_path_factory.mktemp("pki"))
    project.set_config(CONFIG)
    return project, project.up()


def test_providers_are_pickled_by_reference_and_load_in_a_fresh_process(deployed: Deployed) -> None:
    project, _ = deployed
    state = project.export(show_secrets=True)["deployment"]["resources"]
    pki = [r for r in state if r["type"] in ("pulumi-python:dynamic/wapconnector:CertificateAuthority",
                                             "pulumi-python:dynamic/wapconnector:IssuedCertificate")]
    assert len(pki) == 3
    for res in pki:
        pickled = res["outputs"]["__provider"]
        pickled = pickled.get("plaintext", pickled) if isinstance(pickled, dict) else pickled
        raw = base64.b64decode(pickled.strip('"'))
        assert b"providers.pki" in raw  # a reference to the importable module, not the class body
        # A brand-new interpreter, outside the project, unpickles it to the module's class.
        code = ("import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
                "print(type(p).__module__, type(p).__name__)")
        loaded = subprocess.run([sys.executable, "-c", code], input=base64.b64encode(raw).decode(), capture_output=True,
                                text=True, cwd="/", check=True)
        assert loaded.stdout.split()[0] == "providers.pki"
    # The next test's destroy loads them in a new CLI process, from the state alone.


def test_up_is_idempotent_replaces_one_certificate_and_destroys(deployed: Deployed) -> None:
    project, up = deployed
    assert "5 created" in up.output, up.output  # stack, component, CA, two certificates
    names = sorted(r["urn"].rsplit("::", 1)[1] for r in project.resources())
    assert names == ["lab-AzurePack_1-connector", "lab-AzurePack_2-connector", "lab-ca"]

    again = project.up()
    assert "5 unchanged" in again.output and "created" not in again.output, again.output
    assert project.run("preview", "--expect-no-changes").returncode == 0

    # A changed SAN replaces exactly that certificate and nothing else.
    changed = {**CONFIG,
               "clouds": [{"name": "AzurePack_1", "connectorFqdn": "tenant1.contoso.com"}, CONFIG["clouds"][1]]}
    project.set_config(changed)
    steps = _steps(project.preview_json())
    assert steps.get("replace") == ["lab-AzurePack_1-connector"], steps
    assert set(steps) <= {"replace", "same"}, steps
    before = {r["urn"]: r["outputs"]["thumbprint"] for r in project.resources()}
    project.up()
    after = {r["urn"]: r["outputs"]["thumbprint"] for r in project.resources()}
    assert [u for u in after if after[u] != before[u]] == [u for u in after if u.endswith("AzurePack_1-connector")]

    # destroy is a new CLI process, so a new provider process that only has the pickles from the state.
    destroy = project.run("destroy", "--yes", "--skip-preview", check=True)
    assert "deleted" in destroy.output
    assert project.resources(type_prefix="") == []

    # Nothing the backend keeps (stack, backups, history) holds a private key, a PFX password or the passphrase.
    files = project.state_files()
    assert len(files) > 3
    for path in files:
        text = path.read_bytes()
        assert b"PRIVATE KEY" not in text, path
        assert PASSPHRASE.encode() not in text, path


def test_bad_stack_config_stops_before_anything_is_created(project: PulumiProject) -> None:
    project.set_config({
        "ca": {"commonName": "CA", "keyType": "dsa-1024"},
        "clouds": [
            {"name": "AzurePack_1", "connectorFqdn": "not a host name"},
            {"name": "azurepack_1", "connectorFqdn": "wap.contoso.com"},
        ],
    })
    run = project.up(check=False)
    assert run.returncode != 0
    out = run.output
    assert "wapconnector:ca.keyType" in out, out
    assert "wapconnector:clouds[0].connectorFqdn" in out and "not a fully qualified domain name" in out, out
    assert "cloud names must be unique" in out, out
    assert "Traceback" not in out, out
    assert project.resources(type_prefix="pulumi-python") == []
