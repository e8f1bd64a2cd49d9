"""The seed's example lab on the real engine against labsim: up, idempotent, clean refresh, destroyed
back to every host's baseline; and the same lab with its WAP computers on every Windows they run on (2012 R2 with
PowerShell 4.0 in the seed's lab, 2016, 2012 R2 with WMF 5.1), where nothing sent is missing on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsim import windows
from labsim.hosts.wapconnector import CONNECTOR_PRODUCTS
from labsim.lab import DEFAULT_LAB, load_lab
from tests.e2e.lab_stack import LabStack, lab_stack

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


def missing_on_the_host(lab: LabStack) -> list[str]:
    """Every command labsim ran (or refused) that the host's Windows PowerShell lacks, by labsim's invocation log."""
    out = []
    for inv in lab.invocations():
        host = lab.lab.host(inv["host"])
        if inv["configuration"] == "PrivilegedEndpoint" or inv["command"].lower().endswith(".ps1"):
            continue
        name = inv["command"]
        if not windows.cmdlet_exists(name, host.release):
            out.append(f"{host.name}: {name}")
        out += [f"{host.name}: {name} -{p}" for p, _ in inv["parameters"]
                if p and not windows.parameter_exists(name, p, host.release)]
    return out


def test_seed_example_up_idempotent_refresh_clean_and_destroy_to_baseline(tmp_path: Path) -> None:
    with lab_stack(tmp_path, provider_processes=None) as lab:
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

        # Idempotent: a refreshing preview plans nothing (exit 0 with --expect-no-changes).
        clean = lab.project.run("preview", "--refresh", "--expect-no-changes")
        assert clean.returncode == 0, clean.output

        destroy_to_baseline(lab)
        assert lab.lab.host("wapcomputer1").release == windows.WS2012R2
        assert missing_on_the_host(lab) == []


def destroy_to_baseline(lab: LabStack) -> None:
    lab.project.run("destroy", "--yes", "--skip-preview", check=True)
    assert lab.project.resources(type_prefix="") == []
    for host in HOSTS:
        left = leftovers(lab.snapshot(host), lab.snapshot(host, baseline=True))
        assert left == EXPECTED_LEFTOVERS.get(host, set()), host


@pytest.mark.parametrize("lab_file, releases", [
    ("seed-2016.yaml", (windows.WS2016, windows.WS2016)),
    ("seed-mixed.yaml", (windows.WS2012R2, windows.WS2012R2_WMF51)),
])
def test_every_windows_up_drift_heal_clean_and_destroy(tmp_path: Path, lab_file: str,
                                                       releases: tuple[windows.WindowsRelease, ...]) -> None:
    """One compact lifecycle per shipped lab: up, an administrator removes a connector product with
    PackageManagement (wapcomputer2 runs PowerShell 5.1), `up --refresh` heals only that, a clean refresh, and
    destroy back to the baseline."""
    with lab_stack(tmp_path, load_lab(Path(DEFAULT_LAB).with_name(lab_file))) as lab:
        assert (lab.lab.host("wapcomputer1").release, lab.lab.host("wapcomputer2").release) == releases
        lab.project.up()
        _site, _port, _msi, _code, display = CONNECTOR_PRODUCTS[1]
        lab.admin("wapcomputer2", "Uninstall-Package", "Force", Name=display, ProviderName="msi")
        mark = lab.last_invocation_id()
        healed = lab.project.up("--refresh")
        assert "updated" in healed.output, healed.output
        installs = [i["host"] for i in lab.invocations(after=mark) if i["command"].endswith("Install-Connector.ps1")]
        assert installs == ["wapcomputer2"]
        lab.assert_clean()
        destroy_to_baseline(lab)
        assert missing_on_the_host(lab) == []
