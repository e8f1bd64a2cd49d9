"""The seed's example lab on the real engine against labsim: up, idempotent, clean refresh, destroyed
back to every host's baseline."""

from __future__ import annotations

import pytest

from tests.e2e.lab_stack import lab_stack

pytestmark = pytest.mark.e2e

HOSTS = ("AzS-ERCS01", "AzS-WASP01", "AzS-HOST", "wapcomputer1", "wapcomputer2")
SHARE_FOLDER = ("share", r"\\su1fileserver\SU1_Infrastructure_1\AzurePackConnectorOutput")
UPDATED_TENANT_API = {
    ("registry", r"SOFTWARE\Microsoft\MgmtSvc\TenantAPI"),
    ("registry", r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{CF41308C-9BC3-46C1-8B39-135D00E491E8}"),
    ("registry", r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}"),
}
# What destroy cannot undo, and says so: Update-TenantAPI has no documented undo, and the PEP keeps its (now
# empty) output folder on the infrastructure share, seen from the PEP's and the ASDK host's side.
EXPECTED_LEFTOVERS = {"AzS-ERCS01": {SHARE_FOLDER}, "AzS-HOST": {SHARE_FOLDER},
                      "wapcomputer1": UPDATED_TENANT_API, "wapcomputer2": UPDATED_TENANT_API}


def leftovers(now: dict, baseline: dict) -> set[tuple[str, str]]:
    """(section, key) of every top-level entry of a host snapshot that differs from its baseline."""
    out = set()
    for section in set(now) | set(baseline):
        a, b = now.get(section), baseline.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            out |= {(section, k) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        elif a != b:
            out.add((section, "*"))
    return out


def test_seed_example_up_idempotent_refresh_clean_and_destroy_to_baseline(tmp_path) -> None:
    with lab_stack(tmp_path) as lab:
        up = lab.project.up()
        assert "error" not in up.output.lower(), up.output
        outputs = lab.project.run("stack", "output", "--json", check=True).json()
        clouds = outputs["clouds"]
        assert sorted(clouds) == ["AzurePack_1", "AzurePack_2"]
        assert clouds["AzurePack_1"]["endpoint"] == "https://wapcomputer1.contoso.com:40005"
        assert clouds["AzurePack_1"]["realm"].startswith("https://adfs.local.azurestack.external/adfs/")
        assert outputs["azureStack"]["multiCloudEnabled"] is True

        # The hosts really changed: connector bound to the stack's certificate, trust row, CA on AzS-WASP01.
        site = lab.project.resources("pulumi-python:dynamic")
        bound = {r["urn"].rsplit("::", 1)[1]: r["outputs"].get("bound_thumbprint") for r in site
                 if r["urn"].endswith("connector-site")}
        assert bound["lab-AzurePack_1-wapcomputer1-connector-site"] == clouds["AzurePack_1"]["thumbprint"]

        again = lab.project.up()
        assert "unchanged" in again.output, again.output
        assert "created" not in again.output and "updated" not in again.output, again.output
        clean = lab.project.run("preview", "--refresh", "--expect-no-changes")
        assert clean.returncode == 0, clean.output

        lab.project.run("destroy", "--yes", "--skip-preview", check=True)
        assert lab.project.resources(type_prefix="") == []
        for host in HOSTS:
            left = leftovers(lab.snapshot(host), lab.snapshot(host, baseline=True))
            assert left == EXPECTED_LEFTOVERS.get(host, set()), host
