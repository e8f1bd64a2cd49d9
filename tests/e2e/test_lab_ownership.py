"""Adoption and ownership on the real engine against labsim (docs/ownership.md).

* A lab configured by hand to the article's end state (every step driven over PSRP as an administrator would,
  what `labsim exec` does) is adopted by a stack: the only writes its `up` sends are the ownership markers, a
  second `up` changes nothing, and `destroy` removes only the markers: every host is as the hand left it.
  Then the hand configuration differs (another Tenant API FQDN): `up` stops naming host, thing and field and
  writes nothing but markers; with `clouds[0].adopt` it takes the connector over, and `destroy` writes the
  hand's value back: every host is again as the hand left it.
* A second stack pointed at a lab a first stack manages is refused, naming the owner, never touches the first
  stack's things, and its `destroy` leaves them; the first stack still manages them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.preflight import READ_COMMANDS
from labsim.stack_config import write_stack_config
from providers.facts.tenant_api import parse_data_source
from providers.ownership import MARKER_ROOT, is_marker_path
from providers.transport import Secret
from tests.e2e.lab_stack import LabStack, lab_stack
from tests.e2e.pulumi_cli import PulumiProject

pytestmark = pytest.mark.e2e

HOSTS = ("AzS-ERCS01", "AzS-WASP01", "AzS-HOST", "wapcomputer1", "wapcomputer2")
CLOUD_OF = {"wapcomputer1": "AzurePack_1", "wapcomputer2": "AzurePack_2"}
BUNDLE = r"C:\temp\WAPConnector"
OUTPUT_FOLDER = r"\\su1fileserver\SU1_Infrastructure_1\AzurePackConnectorOutput"
PORTAL_FQDN = "portal.local.azurestack.external"
# `pulumi destroy` of everything but the lab PKI (and the component above it).
KEEP_PKI = ("--exclude", "**wapconnector:lab:Pki**", "--exclude", "**wapconnector:lab:Lab::lab")
# Commands that only read (labsim's invocation log records each command of a pipeline on its own).
READS = {"get-item", "get-childitem", "get-content", "get-filehash", "get-itemproperty", "get-website",
         "get-webconfigurationproperty", "get-package", "get-mgmtsvcsetting", "get-mgmtsvcdatabasesetting",
         "test-path", "select-object", "where-object", "convertto-json", "measure-object",
         # and the read-only preflight every up runs first
         *(c.lower() for c in READ_COMMANDS)}


def writes(lab: LabStack, after: int) -> list[dict[str, Any]]:
    return [i for i in lab.invocations(after=after) if i["command"].rsplit("\\", 1)[-1].lower() not in READS]


def marker_path_of(invocation: dict[str, Any]) -> str | None:
    params = invocation["parameters"]  # [[name, value], ...] as bound, or a dict
    pairs = params.items() if isinstance(params, dict) else [p for p in params if isinstance(p, list) and len(p) == 2]
    path = next((v for k, v in pairs if str(k).lower() == "path"), None)
    return path if is_marker_path(path) or path == MARKER_ROOT else None


def without_markers(snapshot: dict[str, Any]) -> dict[str, Any]:
    out = dict(snapshot)
    for section in ("files", "share"):
        if section in out:
            out[section] = {k: v for k, v in out[section].items()
                            if not (is_marker_path(k) or k.lower() == MARKER_ROOT.lower())}
    return out


def site_settings(lab: LabStack, host: str) -> dict[str, str]:
    rows = lab.admin(host, "Get-WebConfigurationProperty", PSPath=r"IIS:\Sites\MgmtSvc-Connector",
                     Filter="appSettings/add", Name=".")
    return {r["key"]: r["value"] for r in rows}


def snapshots(lab: LabStack) -> dict[str, dict[str, Any]]:
    return {h: lab.snapshot(h) for h in HOSTS}


# -- the operator's hand configuration (Microsoft's article, step by step) ------------------------------------------

def mint_certificates(lab: LabStack) -> dict[str, dict[str, Any]]:
    """The stack's own lab PKI, created alone (`pulumi up --target`, which changes no host): the CA and each
    cloud's connector certificate, as an operator would mint them to install by hand."""
    lab.project.run("up", "--yes", "--skip-preview", "--target", "**wapconnector:lab:Pki**", "--target",
                    "**wapconnector:lab:Lab::lab", check=True)
    # The program's read-only preflight looks at every host first; nothing else may reach one.
    assert writes(lab, 0) == [], "minting certificates wrote to a host"
    def plain(value: Any) -> Any:  # `stack export --show-secrets` keeps secrets as {<sig>: ..., plaintext: <json>}
        return json.loads(value["plaintext"]) if isinstance(value, dict) and "plaintext" in value else value

    return {r["urn"].rsplit("::", 1)[1]: {k: plain(v) for k, v in r["outputs"].items()}
            for r in lab.project.export(show_secrets=True)["deployment"]["resources"]
            if r.get("outputs", {}).get("cert_pem")}


def stage(lab: LabStack, host: str, path: str, data: bytes) -> None:
    lab.admin(host, "Set-Content", Path=path, Value=data, Encoding="Byte")


def configure_by_hand(lab: LabStack, certs: dict[str, dict[str, Any]], bundle_dir: Path) -> None:
    ca = certs["lab-ca"]
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    # Configure Azure Stack: the CA into AzS-WASP01's CA store (certutil -addstore CA), multi-cloud mode on the PEP.
    der = x509.load_pem_x509_certificate(ca["cert_pem"].encode()).public_bytes(Encoding.DER)
    stage(lab, "AzS-WASP01", r"C:\Windows\Temp\lab-ca.cer", der)
    lab.admin("AzS-WASP01", "Import-Certificate", FilePath=r"C:\Windows\Temp\lab-ca.cer",
              CertStoreLocation=r"Cert:\LocalMachine\CA")
    lab.admin("AzS-WASP01", "Remove-Item", Path=r"C:\Windows\Temp\lab-ca.cer")
    clouds = [{"CloudName": c, "CloudEndpoint": f"https://{lab.lab.host(h).fqdn}:40005"} for h, c in CLOUD_OF.items()]
    lab.admin("AzS-ERCS01", "Add-AzurePackConnector", AzurePackClouds=clouds, AzureStackCloudName="AzureStack")
    outputs = {}
    for entry in lab.admin("AzS-HOST", "Get-ChildItem", Path=OUTPUT_FOLDER, Filter="AzurePack-*.txt"):
        text = lab.admin("AzS-HOST", "Get-Content", "Raw", Path=entry["FullName"])[0]
        outputs[json.loads(text)["CloudName"]] = (entry["Name"], text)

    # Configure Windows Azure Pack, on each WAP Express computer (tenant portal and Tenant API at once).
    for host, cloud in CLOUD_OF.items():
        fqdn = lab.lab.host(host).fqdn
        for path in sorted(p for p in bundle_dir.rglob("*")):
            rel = path.relative_to(bundle_dir).as_posix().replace("/", "\\")
            if path.is_dir():
                lab.admin(host, "New-Item", "Force", Path=f"{BUNDLE}\\{rel}", ItemType="Directory")
            else:
                stage(lab, host, f"{BUNDLE}\\{rel}", path.read_bytes())
        cert = certs[f"lab-{cloud}-connector"]
        stage(lab, host, r"C:\Windows\Temp\connector.pfx", __import__("base64").b64decode(cert["pfx_base64"]))
        lab.admin(host, "Import-PfxCertificate", FilePath=r"C:\Windows\Temp\connector.pfx",
                  CertStoreLocation=r"Cert:\LocalMachine\My", Password=Secret(cert["pfx_password"]))
        lab.admin(host, "Remove-Item", Path=r"C:\Windows\Temp\connector.pfx")
        scripts = f"{BUNDLE}\\Setup\\Scripts"
        lab.admin(host, f"{scripts}\\Install-Connector.ps1")
        lab.admin(host, f"{scripts}\\Configure-Certificates.ps1", Thumbprint=cert["thumbprint"])
        lab.admin(host, f"{scripts}\\Configure-WapConnector.ps1", TenantPortalFQDN=fqdn, TenantAPIFQDN=fqdn,
                  AzureStackPortalFQDN=PORTAL_FQDN)
        lab.admin(host, f"{BUNDLE}\\Setup\\Packages\\Update-TenantAPI.ps1")
        name, text = outputs[cloud]
        stage(lab, host, f"{BUNDLE}\\{name}", text.encode("utf-8"))
        store = lab.admin(host, "Get-MgmtSvcSetting", Namespace="TenantAPI", Name="ManagementStore")[0]["Value"]
        lab.admin(host, f"{scripts}\\Configure-TrustAzureStack.ps1", SqlServer=parse_data_source(store),
                  DataFile=f"{BUNDLE}\\{name}")


# -- the tests ----------------------------------------------------------------------------------------------------

def test_a_lab_configured_by_hand_is_adopted_with_only_marker_writes_and_destroy_leaves_it_as_it_was(
        tmp_path: Path) -> None:
    with lab_stack(tmp_path) as lab:
        certs = mint_certificates(lab)
        configure_by_hand(lab, certs, tmp_path / "bundle" / "WAPConnector")
        hand = snapshots(lab)

        mark = lab.last_invocation_id()
        up = lab.project.up()
        assert "error" not in up.output.lower(), up.output
        sent = writes(lab, mark)
        assert sent, "the adoption wrote no marker"
        not_markers = [(w["host"], w["command"], w["parameters"]) for w in sent
                       if w["command"] != "New-Item" or marker_path_of(w) is None]
        assert not_markers == [], not_markers
        remote = [r for r in lab.project.resources() if "connection" in (r.get("inputs") or {})]
        assert remote and all(r["outputs"]["adopted"] is True for r in remote), \
            [(r["urn"], r["outputs"].get("adopted")) for r in remote]
        assert {r["outputs"]["observed_owner"] for r in remote} == {f"wapconnector/{lab.project.stack}"}
        # Every thing carries a marker (one file each), and nothing else changed on any host.
        markers = {h: sorted(k for k in snap["files"] if is_marker_path(k) and k.endswith(".json"))
                   for h, snap in snapshots(lab).items()}
        assert sum(len(m) for m in markers.values()) == len(remote), markers
        assert {h: without_markers(s) for h, s in snapshots(lab).items()} == hand

        mark = lab.last_invocation_id()
        again = lab.project.up()
        assert "created" not in again.output and "updated" not in again.output, again.output
        assert writes(lab, mark) == []
        lab.assert_clean()

        # Destroy of everything on the hosts (the lab PKI is kept for the second half: the hand configuration
        # uses its certificates).
        mark = lab.last_invocation_id()
        lab.project.run("destroy", "--yes", "--skip-preview", *KEEP_PKI, check=True)
        removed = [(w["host"], w["command"], w["parameters"]) for w in writes(lab, mark)
                   if w["command"] != "Remove-Item" or marker_path_of(w) is None]
        assert removed == [], removed
        assert snapshots(lab) == hand

        # The hand configuration differs from the stack's (another Tenant API FQDN on wapcomputer1): refused,
        # naming the host, the thing and the field, with nothing written to that connector.
        fqdn = lab.lab.host("wapcomputer1").fqdn
        other = "api.contoso.com"
        lab.admin("wapcomputer1", rf"{BUNDLE}\Setup\Scripts\Configure-WapConnector.ps1", TenantPortalFQDN=fqdn,
                  TenantAPIFQDN=other, AzureStackPortalFQDN=PORTAL_FQDN)
        differing = snapshots(lab)
        mark = lab.last_invocation_id()
        refused = lab.project.up(check=False)
        assert refused.returncode != 0
        assert f"{fqdn}: the WAP connector" in refused.output and \
            f"tenant_api_fqdn is '{other}', this stack wants '{fqdn}'" in refused.output, refused.output
        leaked = [(w["host"], w["command"], w["parameters"]) for w in writes(lab, mark) if marker_path_of(w) is None]
        assert leaked == [], leaked
        assert {h: without_markers(s) for h, s in snapshots(lab).items()} == differing

        # Adoption asked for that cloud only (wapconnector:clouds[0].adopt): taken over and configured; destroy
        # writes the hand's FQDN back and leaves everything else as the hand made it.
        doc = yaml.safe_load(lab.project.config_file.read_text())
        doc["config"]["wapconnector:clouds"][0]["adopt"] = True
        lab.project.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        mark = lab.last_invocation_id()
        lab.project.up()
        assert site_settings(lab, "wapcomputer1")["TenantAPIFQDN"] == fqdn
        changed = [(w["host"], w["command"]) for w in writes(lab, mark) if marker_path_of(w) is None]
        assert changed == [("wapcomputer1", rf"{BUNDLE}\Setup\Scripts\Configure-WapConnector.ps1")], changed
        lab.project.run("destroy", "--yes", "--skip-preview", check=True)
        assert site_settings(lab, "wapcomputer1")["TenantAPIFQDN"] == other
        assert snapshots(lab) == differing


def test_a_second_stack_is_refused_naming_the_owner_and_its_destroy_leaves_the_first_stacks_things(
        tmp_path: Path) -> None:
    with lab_stack(tmp_path) as lab:
        lab.project.up()
        first = snapshots(lab)
        owner = f"wapconnector/{lab.project.stack}"

        second = PulumiProject(tmp_path / "second", stack="e2e-second")
        write_stack_config(lab.lab, lab.lab_file, stack=second.stack, project_dir=second.project_dir,
                           state_dir=tmp_path / "labsim", bundle_dir=tmp_path / "bundle", env=second.env)
        mark = lab.last_invocation_id()
        run = second.up(check=False)
        assert run.returncode != 0
        assert f"is owned by stack {owner}; stack wapconnector/e2e-second will not change or delete it" in \
            run.output, run.output
        # It changed nothing of the first stack's: no procedure step ran, no binding, trust row or connector moved.
        steps = [w["command"] for w in writes(lab, mark) if w["command"].lower().endswith(".ps1")
                 or w["command"] in ("Add-AzurePackConnector", "Set-MgmtSvcDatabaseSetting", "Start-Process")]
        assert steps == [], steps
        now = snapshots(lab)
        for host in ("wapcomputer1", "wapcomputer2"):
            assert now[host]["sites"] == first[host]["sites"] and now[host]["sql"] == first[host]["sql"], host
        assert now["AzS-ERCS01"]["pep"] == first["AzS-ERCS01"]["pep"]

        second.run("destroy", "--yes", "--skip-preview", check=True)
        assert snapshots(lab) == first  # what the second stack added of its own is gone; nothing else moved
        lab.assert_clean()  # the first stack still manages everything
