"""WAP hosts: certificates, the WAPConnector scripts' preconditions and effects, MgmtSvc settings, MSI removal."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from labsim.hosts import LabRuntime
from labsim.hosts.baseline import self_signed
from labsim.hosts.wapconnector import CONNECTOR_PRODUCTS, UPDATED_TENANT_API_CODE, fake_msi
from labsim.runtime import Command, SecretStr
from tests.cert_factory import private_key
from tests.labsim.hosts_helpers import (
    ASDK,
    BUNDLE_ROOT,
    PEP,
    SCRIPTS,
    WAP,
    WASP,
    Result,
    cmd,
    default_lab,
    pep_session,
    run,
    session,
    stage_bundle,
    stage_file,
)

pytestmark = pytest.mark.unit
CONNECTOR_SITES = ("MgmtSvc-Connector", "MgmtSvc-ConnectorExtension", "MgmtSvc-ConnectorController")
TENANT_API_KEY = "HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI"
STORE_CS = "Data Source=wapcomputer1;Initial Catalog=Microsoft.MgmtSvc.Store;Integrated Security=True"


def script(name: str, **params: Any) -> Command:
    return cmd(f"{SCRIPTS}\\{name}", **params)


def pfx_bytes(cert: x509.Certificate, key_pem: bytes, password: str) -> bytes:
    key = private_key(key_pem)
    return pkcs12.serialize_key_and_certificates(b"lab", key, cert, None,
                                                 serialization.BestAvailableEncryption(password.encode()))


def import_pfx(rt: LabRuntime, tmp_path: Path, cert: x509.Certificate, key_pem: bytes,
               password: str = "pfx-pass") -> Result:
    local = tmp_path / "c.pfx"
    local.write_bytes(pfx_bytes(cert, key_pem, password))
    run(rt, session(), cmd("New-Item", Path="C:\\temp", ItemType="Directory", Force=True)).ok()
    stage_file(rt, session(), local, "C:\\temp\\c.pfx")
    return run(rt, session(), cmd("Import-PfxCertificate", FilePath="C:\\temp\\c.pfx",
                                  CertStoreLocation="Cert:\\LocalMachine\\My", Password=SecretStr(password)))


def issued(rt: LabRuntime, **kw: Any) -> tuple[x509.Certificate, bytes]:
    cert_pem, key_pem = rt.ca.issue("connector.contoso.com", ["connector.contoso.com"], **kw)
    return x509.load_pem_x509_certificate(cert_pem), key_pem


def website(rt: LabRuntime, name: str) -> dict[str, Any] | None:
    out = run(rt, session(), cmd("Get-Website", Name=name)).ok().outputs
    return out[0].properties if out else None


def output_file(rt: LabRuntime, tmp_path: Path, endpoint: str = "https://wapcomputer1.contoso.com:40005") -> str:
    """Enable multi-cloud on the PEP and copy its output file to the WAP host (what providers do)."""
    run(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=[{"CloudName": "AzurePack_1",
                                                                        "CloudEndpoint": endpoint}],
                               AzureStackCloudName="AzureStack")).ok()
    asdk = session(ASDK, "AZURESTACK\\AzureStackAdmin")
    share = "\\\\su1fileserver\\SU1_Infrastructure_1\\AzurePackConnectorOutput"
    files = run(rt, asdk, cmd("Get-ChildItem", Path=share)).ok().outputs
    text = run(rt, asdk, cmd("Get-Content", Path=files[0].properties["FullName"], Raw=True)).ok().outputs[0]
    local = tmp_path / "out.txt"
    local.write_text(text)
    stage_file(rt, session(), local, f"{BUNDLE_ROOT}\\AzurePack.txt")
    return f"{BUNDLE_ROOT}\\AzurePack.txt"


# -- certificates -------------------------------------------------------------------------------------------------
def test_import_pfx_certificate_with_key(rt: LabRuntime, tmp_path: Path) -> None:
    cert, key = issued(rt)
    out = import_pfx(rt, tmp_path, cert, key).ok().outputs[0].properties
    assert out["HasPrivateKey"] is True and out["Subject"] == "CN=connector.contoso.com"
    assert out["Issuer"] != out["Subject"] and out["DnsNameList"][0].properties["Unicode"] == "connector.contoso.com"
    thumbs = [o.properties["Thumbprint"] for o in
              run(rt, session(), cmd("Get-ChildItem", Path="Cert:\\LocalMachine\\My")).ok().outputs]
    assert out["Thumbprint"] in thumbs


def test_import_pfx_wrong_password(rt: LabRuntime, tmp_path: Path) -> None:
    cert, key = issued(rt)
    local = tmp_path / "c.pfx"
    local.write_bytes(pfx_bytes(cert, key, "right"))
    stage_file(rt, session(), local, "C:\\c.pfx")
    r = run(rt, session(), cmd("Import-PfxCertificate", FilePath="C:\\c.pfx",
                               CertStoreLocation="Cert:\\LocalMachine\\My", Password=SecretStr("wrong")))
    assert r.failed().message.startswith("The PFX file you are trying to import requires either a different password")
    assert r.failed().error_id == ("System.ComponentModel.Win32Exception,"
                                "Microsoft.CertificateServices.Commands.ImportPfxCertificate")


def test_password_must_be_a_secure_string(rt: LabRuntime) -> None:
    r = run(rt, session(), cmd("Import-PfxCertificate", FilePath="C:\\c.pfx",
                               CertStoreLocation="Cert:\\LocalMachine\\My", Password="plain"))
    assert r.failed().error_id.startswith("ParameterArgumentTransformationError,")


def test_ca_certificate_on_the_user_portal_vm_import_test_remove(rt: LabRuntime, tmp_path: Path) -> None:
    wasp = session(WASP, "AZURESTACK\\AzureStackAdmin")
    local = tmp_path / "ca.cer"
    local.write_bytes(x509.load_pem_x509_certificate(rt.ca.cert_pem).public_bytes(serialization.Encoding.DER))
    stage_file(rt, wasp, local, "C:\\ca.cer")
    thumb = run(rt, wasp, cmd("Import-Certificate", FilePath="C:\\ca.cer", CertStoreLocation="Cert:\\LocalMachine\\CA")
                ).ok().outputs[0].properties["Thumbprint"]
    path = f"Cert:\\LocalMachine\\CA\\{thumb}"
    assert run(rt, wasp, cmd("Test-Path", Path=path)).ok().outputs == [True]
    run(rt, wasp, cmd("Remove-Item", Path=path)).ok()
    assert run(rt, wasp, cmd("Test-Path", Path=path)).ok().outputs == [False]
    assert run(rt, wasp, cmd("Remove-Item", Path=path)).errors[0]["error_id"].startswith("PathNotFound,")


# -- Install-Connector --------------------------------------------------------------------------------------------
def test_scripts_are_commands_only_once_staged(rt: LabRuntime) -> None:
    r = run(rt, session(), script("Install-Connector.ps1"))
    assert r.failed().error_id == "CommandNotFoundException"
    assert f"'{SCRIPTS}\\Install-Connector.ps1'" in r.failed().message


def test_install_connector_creates_three_started_sites_without_certificate(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    r = run(rt, session(), script("Install-Connector.ps1")).ok()
    assert r.sink.verboses[-1] == "Windows Azure Pack Connector installed."
    ports = {}
    for name in CONNECTOR_SITES:
        site = website(rt, name)
        assert site is not None
        assert site["state"] == "Started" and site["physicalPath"] == f"C:\\inetpub\\{name}"
        b = site["bindings"].properties["Collection"][0].properties
        assert b["protocol"] == "https" and b["certificateHash"] == ""
        ports[name] = b["bindingInformation"]
    assert ports["MgmtSvc-Connector"] == "*:40005:"
    assert run(rt, session(), cmd("Test-Path", Path="C:\\inetpub\\MgmtSvc-Connector")).outputs == [True]
    assert len([n for n in products(rt).values() if n.startswith("Windows Azure Pack Connector")]) == 3
    before = rt.snapshot(WAP)
    run(rt, session(), script("Install-Connector.ps1")).ok()  # a re-run changes nothing
    assert rt.snapshot(WAP)["sites"] == before["sites"]


def test_install_connector_needs_url_rewrite(tmp_path: Path) -> None:
    rt = LabRuntime.open(default_lab(url_rewrite=False), tmp_path / "s")
    stage_bundle(rt, tmp_path)
    r = run(rt, session(), script("Install-Connector.ps1"))
    assert r.failed().message.startswith("The IIS URL Rewrite module is not installed.")
    assert r.failed().error_id == r.failed().message and r.failed().category == 14  # a script's throw
    assert website(rt, "MgmtSvc-Connector") is None


def test_install_connector_needs_the_msis(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    run(rt, session(), cmd("Remove-Item", Path=f"{BUNDLE_ROOT}\\Setup\\Packages\\MgmtSvc-ConnectorController.msi")).ok()
    r = run(rt, session(), script("Install-Connector.ps1"))
    assert r.failed().message == f"Package not found: {BUNDLE_ROOT}\\Setup\\Packages\\MgmtSvc-ConnectorController.msi"
    assert website(rt, "MgmtSvc-Connector") is None  # nothing half-installed


def test_install_connector_refuses_a_truncated_msi(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    msi = fake_msi("MgmtSvc-Connector", "{7B0C4A64-2D1E-4F5A-9C3B-1E6D2A8F4C01}", "1.0.0.0")
    run(rt, session(), cmd("Set-Content", Path=f"{BUNDLE_ROOT}\\Setup\\Packages\\MgmtSvc-Connector.msi",
                           Value=msi[:-10], Encoding="Byte")).ok()
    r = run(rt, session(), script("Install-Connector.ps1"))
    assert "(msiexec exit code 1620)" in r.failed().message


def test_install_connector_only_on_a_tenant_portal(tmp_path: Path) -> None:
    data = default_lab().model_dump(mode="json")
    data["hosts"][3]["roles"] = ["wap_tenant_api", "wap_sql"]
    from labsim.lab import Lab

    rt = LabRuntime.open(Lab.model_validate(data), tmp_path / "s")
    stage_bundle(rt, tmp_path)
    r = run(rt, session(), script("Install-Connector.ps1"))
    assert r.failed().message.startswith("MgmtSvc-TenantSite was not found on this computer.")


# -- Configure-Certificates --------------------------------------------------------------------------------------
@pytest.fixture
def installed(rt: LabRuntime, tmp_path: Path) -> LabRuntime:
    stage_bundle(rt, tmp_path)
    run(rt, session(), script("Install-Connector.ps1")).ok()
    return rt


def connector_hash(rt: LabRuntime) -> str:
    out = run(rt, session(), cmd("Get-WebBinding", Name="MgmtSvc-Connector", Protocol="https")).ok().outputs
    return out[0].properties["certificateHash"]


def test_configure_certificates_before_install(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    r = run(rt, session(), script("Configure-Certificates.ps1"))
    assert r.failed().message == "The Windows Azure Pack Connector is not installed. Run Install-Connector.ps1 first."


def test_configure_certificates_defaults_to_the_tenant_site_certificate(installed: LabRuntime) -> None:
    rt = installed
    tenant = run(rt, session(), cmd("Get-WebBinding", Name="MgmtSvc-TenantSite", Protocol="https")).ok().outputs
    run(rt, session(), script("Configure-Certificates.ps1")).ok()
    assert connector_hash(rt) == tenant[0].properties["certificateHash"] != ""
    served = {(b.host, b.port): b for b in rt.https_bindings()}
    assert served[(WAP, 40005)].thumbprint == connector_hash(rt)
    assert b"BEGIN CERTIFICATE" in served[(WAP, 40005)].cert_pem and b"PRIVATE KEY" in served[(WAP, 40005)].key_pem
    run(rt, session(), cmd("Stop-Website", Name="MgmtSvc-Connector")).ok()
    assert (WAP, 40005) not in {(b.host, b.port) for b in rt.https_bindings()}  # a stopped site does not listen


def test_configure_certificates_with_an_imported_certificate(installed: LabRuntime, tmp_path: Path) -> None:
    rt = installed
    cert, key = issued(rt)
    thumb = import_pfx(rt, tmp_path, cert, key).ok().outputs[0].properties["Thumbprint"]
    run(rt, session(), script("Configure-Certificates.ps1", Thumbprint=thumb.lower())).ok()
    assert connector_hash(rt) == thumb
    assert {b.port for b in rt.https_bindings() if b.thumbprint == thumb} == {40005, 40006, 40007}


def test_configure_certificates_unknown_thumbprint(installed: LabRuntime) -> None:
    r = run(installed, session(), script("Configure-Certificates.ps1", Thumbprint="AB" * 20))
    assert r.failed().message == f"Certificate with thumbprint {'AB' * 20} was not found in Cert:\\LocalMachine\\My."


def test_configure_certificates_needs_a_private_key(installed: LabRuntime, tmp_path: Path) -> None:
    rt = installed
    cert, _ = issued(rt)
    local = tmp_path / "c.cer"
    local.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    stage_file(rt, session(), local, "C:\\c.cer")
    thumb = run(rt, session(), cmd("Import-Certificate", FilePath="C:\\c.cer",
                                   CertStoreLocation="Cert:\\LocalMachine\\My")).ok().outputs[0].properties["Thumbprint"]
    r = run(rt, session(), script("Configure-Certificates.ps1", Thumbprint=thumb))
    assert r.failed().message == f"Certificate {thumb} has no private key."


def test_configure_certificates_refuses_self_signed(installed: LabRuntime, tmp_path: Path) -> None:
    rt = installed
    cert, key = self_signed("wapcomputer1.contoso.com")
    thumb = import_pfx(rt, tmp_path, cert, key.encode()).ok().outputs[0].properties["Thumbprint"]
    r = run(rt, session(), script("Configure-Certificates.ps1", Thumbprint=thumb))
    assert "is self-signed" in r.failed().message and connector_hash(rt) == ""


def test_configure_certificates_refuses_the_default_self_signed_wap_certificate(tmp_path: Path) -> None:
    rt = LabRuntime.open(default_lab(tenant_site_certificate="self_signed"), tmp_path / "s")
    stage_bundle(rt, tmp_path)
    run(rt, session(), script("Install-Connector.ps1")).ok()
    assert "is self-signed" in run(rt, session(), script("Configure-Certificates.ps1")).failed().message


def test_configure_certificates_refuses_expired(installed: LabRuntime, tmp_path: Path) -> None:
    rt = installed
    cert, key = issued(rt, not_after=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    thumb = import_pfx(rt, tmp_path, cert, key).ok().outputs[0].properties["Thumbprint"]
    r = run(rt, session(), script("Configure-Certificates.ps1", Thumbprint=thumb))
    assert r.failed().message.startswith(f"Certificate {thumb} expired on ")


# -- Configure-WapConnector --------------------------------------------------------------------------------------
def test_configure_wap_connector_writes_app_settings(installed: LabRuntime) -> None:
    rt = installed
    run(rt, session(), script("Configure-WapConnector.ps1", TenantPortalFQDN="wapcomputer1.contoso.com",
                              TenantAPIFQDN="wapcomputer1.contoso.com",
                              AzureStackPortalFQDN="portal.local.azurestack.external")).ok()
    out = run(rt, session(), cmd("Get-WebConfigurationProperty", PSPath="IIS:\\Sites\\MgmtSvc-Connector",
                                 Filter="appSettings/add", Name=".")).ok().outputs
    assert {o.properties["key"]: o.properties["value"] for o in out} == {
        "AzureStackPortalFQDN": "portal.local.azurestack.external", "TenantAPIFQDN": "wapcomputer1.contoso.com",
        "TenantPortalFQDN": "wapcomputer1.contoso.com"}
    one = run(rt, session(), cmd("Get-WebConfigurationProperty", PSPath="IIS:\\Sites\\MgmtSvc-Connector",
                                 Filter="appSettings/add[@key='AzureStackPortalFQDN']", Name="value")).ok().outputs
    assert [o.properties["Value"] for o in one] == ["portal.local.azurestack.external"]


def test_configure_wap_connector_preconditions(installed: LabRuntime) -> None:
    r = run(installed, session(), script("Configure-WapConnector.ps1", TenantPortalFQDN="not a name",
                                         TenantAPIFQDN="a.b", AzureStackPortalFQDN="c.d"))
    assert r.failed().message == "'not a name' is not a valid FQDN for -TenantPortalFQDN."
    r = run(installed, session(), script("Configure-WapConnector.ps1", TenantPortalFQDN="a.b"))
    assert r.failed().message == ("Cannot process command because of one or more missing mandatory parameters: "
                               "TenantAPIFQDN AzureStackPortalFQDN.")


# -- Update-TenantAPI ------------------------------------------------------------------------------------------------
def product_code(rt: LabRuntime) -> str:
    out = run(rt, session(), cmd("Get-ItemProperty", Path=TENANT_API_KEY, Name="ProductCode")).ok().outputs
    return out[0].properties["ProductCode"]


@pytest.mark.parametrize("folder", ["Packages", "Scripts"])
def test_update_tenant_api_changes_product_code_and_keeps_the_site(rt: LabRuntime, tmp_path: Path, folder: str) -> None:
    stage_bundle(rt, tmp_path)
    if folder == "Scripts":  # the article shows both places
        run(rt, session(), cmd("Remove-Item", Path=f"{BUNDLE_ROOT}\\Setup\\Packages\\Update-TenantAPI.ps1")).ok()
    run(rt, session(), cmd(f"{BUNDLE_ROOT}\\Setup\\{folder}\\Update-TenantAPI.ps1")).ok()
    assert product_code(rt) == UPDATED_TENANT_API_CODE
    site = website(rt, "MgmtSvc-TenantAPI")
    assert site is not None
    assert site["state"] == "Started"
    assert site["bindings"].properties["Collection"][0].properties["bindingInformation"] == "*:30005:"
    codes = list(products(rt))
    assert UPDATED_TENANT_API_CODE in codes and "{CF41308C-9BC3-46C1-8B39-135D00E491E8}" not in codes


def test_update_tenant_api_needs_its_msi(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    run(rt, session(), cmd("Remove-Item", Path=f"{BUNDLE_ROOT}\\Setup\\Packages\\MgmtSvc-TenantAPI.msi")).ok()
    r = run(rt, session(), cmd(f"{BUNDLE_ROOT}\\Setup\\Packages\\Update-TenantAPI.ps1"))
    assert r.failed().message.startswith("Package not found: ")
    assert product_code(rt) == "{CF41308C-9BC3-46C1-8B39-135D00E491E8}"


# -- Configure-TrustAzureStack -----------------------------------------------------------------------------------------
def trust_rows(rt: LabRuntime, **cs: Any) -> list[Any]:
    return run(rt, session(), cmd("Get-MgmtSvcDatabaseSetting", Namespace="TenantAPI",
                                  Name=["Authentication.IdentityProvider.Secondary"],
                                  ConnectionString=STORE_CS)).ok().outputs


def test_configure_trust_writes_the_realm_into_the_store(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    data_file = output_file(rt, tmp_path)
    assert trust_rows(rt) == []
    run(rt, session(), script("Configure-TrustAzureStack.ps1", SqlServer="wapcomputer1", DataFile=data_file)).ok()
    row = trust_rows(rt)[0].properties
    value = json.loads(row["Value"])
    realm = rt.snapshot(PEP)["pep"]["realm"]
    assert value["Realm"] == realm and value["Endpoint"] == "https://wapcomputer1.contoso.com:40005"
    x509.load_der_x509_certificate(base64.b64decode(value["Certificate"]))
    # undo [inf]: an empty value deletes the row
    run(rt, session(), cmd("Set-MgmtSvcDatabaseSetting", Namespace="TenantAPI",
                           Name="Authentication.IdentityProvider.Secondary", Value="", ConnectionString=STORE_CS,
                           Force=True)).ok()
    assert trust_rows(rt) == []


def test_configure_trust_needs_sysadmin_or_a_sql_credential(tmp_path: Path) -> None:
    data = default_lab().model_dump(mode="json")
    data["hosts"][3]["users"] = [{"name": "CONTOSO\\WapAdmin", "password": "p1", "sql_sysadmin": False},
                                 {"name": "sa", "password": "sa-pass", "sql_sysadmin": True}]
    from labsim.lab import Lab

    rt = LabRuntime.open(Lab.model_validate(data), tmp_path / "s")
    stage_bundle(rt, tmp_path)
    data_file = output_file(rt, tmp_path)
    r = run(rt, session(), script("Configure-TrustAzureStack.ps1", SqlServer="wapcomputer1", DataFile=data_file))
    assert r.failed().message == ("The current user 'CONTOSO\\WapAdmin' does not have sysadmin access to "
                               "Microsoft.MgmtSvc.Store on 'wapcomputer1'. Run as a sysadmin or pass -SqlCredential.")
    bad = {"UserName": "sa", "Password": SecretStr("nope")}
    r = run(rt, session(), script("Configure-TrustAzureStack.ps1", SqlServer="wapcomputer1", DataFile=data_file,
                                  SqlCredential=bad))
    assert r.failed().message == "Login failed for user 'sa'."
    good = {"UserName": "sa", "Password": SecretStr("sa-pass")}
    run(rt, session(), script("Configure-TrustAzureStack.ps1", SqlServer="wapcomputer1.contoso.com\\MSSQLSERVER",
                              DataFile=data_file, SqlCredential=good)).ok()
    assert "sa-pass" not in json.dumps(rt.state.invocations(WAP))


def test_configure_trust_other_preconditions(rt: LabRuntime, tmp_path: Path) -> None:
    stage_bundle(rt, tmp_path)
    trust = "Configure-TrustAzureStack.ps1"
    r = run(rt, session(), script(trust, SqlServer="nosuchsql", DataFile="C:\\x.txt"))
    assert r.failed().message.startswith("Cannot connect to SQL Server 'nosuchsql'")
    r = run(rt, session(), script(trust, SqlServer="wapcomputer1", DataFile="C:\\x.txt"))
    assert r.failed().message == "Data file not found: C:\\x.txt"
    run(rt, session(), cmd("Set-Content", Path="C:\\bad.txt", Value="AzurePackConnectorEndpoint=x")).ok()
    r = run(rt, session(), script(trust, SqlServer="wapcomputer1", DataFile="C:\\bad.txt"))
    assert r.failed().message.startswith(
        "Data file C:\\bad.txt is not a valid Azure Pack Connector output file: not JSON")
    r = run(rt, session(), script(trust, SqlServer="wapcomputer1", DataFile="C:\\bad.txt", PromptForSqlCredential=True))
    assert r.failed().message == "-PromptForSqlCredential needs an interactive console; pass -SqlCredential instead."
    assert trust_rows(rt) == []


# -- MgmtSvc settings, MSI removal -------------------------------------------------------------------------------------
def products(rt: Any) -> dict[str, str]:
    """ProductCode -> DisplayName from the Uninstall keys, as the providers read them."""
    r = run(rt, session(), cmd("Get-ChildItem", Path="HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"),
            cmd("Get-ItemProperty")).ok()
    return {o.properties["PSChildName"]: o.properties.get("DisplayName") for o in r.outputs}


def test_management_store_and_protection(rt: LabRuntime) -> None:
    out = run(rt, session(), cmd("Get-MgmtSvcSetting", Namespace="TenantAPI", Name="ManagementStore")).ok().outputs
    assert out[0].properties["Value"].startswith("Data Source=wapcomputer1;Initial Catalog=Microsoft.MgmtSvc.Store")
    assert run(rt, session(), cmd("Test-MgmtSvcProtectedConfiguration", Namespace="TenantAPI")).ok().outputs == [True]
    run(rt, session(), cmd("Unprotect-MgmtSvcConfiguration", Namespace="TenantAPI")).ok()
    assert run(rt, session(), cmd("Test-MgmtSvcProtectedConfiguration", Namespace="TenantAPI")).ok().outputs == [False]
    assert run(rt, session(), cmd("Get-MgmtSvcSetting", Namespace="Nope")).failed().error_id == "InvalidNamespace"


def msiexec_uninstall(code: str, *extra: str, wait: bool = True) -> Any:
    return cmd("Start-Process", FilePath="msiexec.exe", ArgumentList=["/x", code, "/qn", *extra], Wait=wait,
               PassThru=True)


def test_msiexec_removes_a_connector_product_and_its_site(installed: LabRuntime) -> None:
    rt = installed
    controller = CONNECTOR_PRODUCTS[2][3]
    r = run(rt, session(), msiexec_uninstall(controller, "/norestart")).ok()
    assert [(o.properties["ProcessName"], o.properties["HasExited"], o.properties["ExitCode"]) for o in r.outputs] \
        == [("msiexec", True, 0)]
    assert website(rt, "MgmtSvc-ConnectorController") is None and website(rt, "MgmtSvc-Connector") is not None
    assert run(rt, session(), cmd("Test-Path", Path="C:\\inetpub\\MgmtSvc-ConnectorController")).outputs == [False]
    assert controller not in products(rt)
    again = run(rt, session(), msiexec_uninstall(controller)).ok().outputs  # gone already: msiexec's 1605
    assert again[0].properties["ExitCode"] == 1605
    r = run(rt, session(), msiexec_uninstall("{CF41308C-9BC3-46C1-8B39-135D00E491E8}"))
    assert r.failed().message == "labsim simulates uninstalling only the Connector packages."
    r = run(rt, session(), cmd("Start-Process", FilePath="cmd.exe", ArgumentList=["/c", "del"]))
    assert r.failed().error_id == "LabsimUnsupportedProcess"
    assert run(rt, session(), cmd("Start-Process", FilePath="msiexec.exe", ArgumentList=["/x", controller])).failed() \
        .error_id == "LabsimUnsupportedProcess"  # not quiet: a dialog nobody can answer in a remote session
