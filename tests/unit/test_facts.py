"""The facts (providers/facts): each one's statements only read, and its parser turns what Windows writes into
the typed value, absent and malformed answers included. Resources and preflight parse with these same facts."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from providers.facts import Fact, json_records, records
from providers.facts.certstore import (
    InstalledCertificate,
    StoreCertificate,
    StoreCertificates,
    StoreListing,
    TrustedSubjects,
)
from providers.facts.files import FileHash, FileText, ListedFile, OutputFolder, PathExists, TreeHashes
from providers.facts.iis import AppSettings, HttpsBinding, Website, Websites
from providers.facts.locations import OUTPUT_FOLDER, UNINSTALL_KEY, URL_REWRITE_KEY
from providers.facts.network import Ping, TcpPort
from providers.facts.products import InstalledProducts, Product
from providers.facts.system import CommandAvailable, FreeSpace, HostWindows, UrlRewrite, WindowsVersion
from providers.facts.tenant_api import (
    ManagementStore,
    Sysadmin,
    TenantApiProduct,
    TrustData,
    TrustRow,
    TrustSetting,
    valid_server,
)
from providers.transport import Credential, Secret

pytestmark = pytest.mark.unit

THUMB = "AB" * 20
SITES_JSON = json.dumps([
    {"name": "MgmtSvc-Connector", "state": "Started", "bindings": {"Collection": [
        {"protocol": "http", "bindingInformation": "*:80:"},
        {"protocol": "https", "bindingInformation": "*:40005:", "certificateHash": THUMB.lower()}]}},
    {"name": "MgmtSvc-ConnectorExtension", "state": "Stopped", "bindings": []},
    {"Name": "MgmtSvc-TenantSite", "State": "Started",
     "bindings": [{"protocol": "https", "bindingInformation": "*:30081:"}]},
])
TRUST_VALUE = json.dumps({"Realm": "urn:realm", "Endpoint": "https://e"})

CASES: list[tuple[str, Fact[Any], list[Any], Any]] = [
    ("sites with bindings", Websites(like="MgmtSvc-*", bindings=True), [SITES_JSON], (
        Website("MgmtSvc-Connector", "Started", THUMB, 40005), Website("MgmtSvc-ConnectorExtension", "Stopped"),
        Website("MgmtSvc-TenantSite", "Started", "", 30081))),
    ("one site as a JSON object", Websites(bindings=True), ['{"name": "A", "state": "Started"}'],
     (Website("A", "Started"),)),
    ("no site", Websites(like="MgmtSvc-*", bindings=True), [], ()),
    ("sites as objects", Websites(), [{"name": "MgmtSvc-TenantAPI", "state": "Started"}, "noise", None],
     (Website("MgmtSvc-TenantAPI", "Started"),)),
    ("appSettings", AppSettings("MgmtSvc-Connector"),
     ['[{"key": "TenantPortalFQDN", "value": "t.contoso.com"}, {"key": "Empty", "value": null}, {"value": "x"}]'],
     {"TenantPortalFQDN": "t.contoso.com", "Empty": ""}),
    ("no https binding", HttpsBinding("MgmtSvc-Connector"), [], None),
    ("binding without certificate", HttpsBinding("MgmtSvc-Connector"), [{"certificateHash": None}], ""),
    ("bound certificate", HttpsBinding("MgmtSvc-Connector"), [{"certificateHash": THUMB}], THUMB),
    ("products", InstalledProducts(), [{"DisplayName": "Windows Azure Pack - Tenant Site", "DisplayVersion":
                                        "3.50.48.0"}, {"DisplayName": None, "DisplayVersion": 7}],
     (Product("Windows Azure Pack - Tenant Site", "3.50.48.0"), Product("", None))),
    ("products with codes", InstalledProducts(like="X - *", codes=True),
     ['{"PSChildName": "{C0DE}", "DisplayName": "X - A", "DisplayVersion": "1.0"}'],
     (Product("X - A", "1.0", "{C0DE}"),)),
    ("a store", StoreListing("My"), [{"Thumbprint": THUMB, "Subject": "CN=a"}, True], ({"Thumbprint": THUMB,
                                                                                         "Subject": "CN=a"},)),
    ("trusted issuers", TrustedSubjects(), [{"Subject": "CN=Root"}, {"Subject": "CN=Issuing"}],
     {"CN=Root", "CN=Issuing"}),
    ("certificate found", InstalledCertificate("CA", THUMB, raw_data=True),
     [{"Thumbprint": THUMB.lower(), "HasPrivateKey": False, "NotAfter": "/Date(1798761600000)/", "RawData": "AAE="}],
     StoreCertificate("CA", False, "2027-01-01T00:00:00+00:00", b"\x00\x01")),
    ("another certificate", InstalledCertificate("My", THUMB), [{"Thumbprint": "CD" * 20}], None),
    ("certificate with a DateTime", InstalledCertificate("My", THUMB),
     [{"Thumbprint": THUMB, "HasPrivateKey": True, "NotAfter": dt.datetime(2027, 1, 1)}],
     StoreCertificate("My", True, "2027-01-01T00:00:00+00:00")),
    ("Windows and PowerShell", WindowsVersion(),
     [{"ProductName": "Windows Server 2012 R2 Datacenter", "CurrentBuildNumber": "9600"}, {"PowerShellVersion": "4.0"}],
     HostWindows("Windows Server 2012 R2 Datacenter", "9600", "4.0")),
    ("no PowerShell engine key", WindowsVersion(), [{"ProductName": "W", "CurrentBuildNumber": None}],
     HostWindows("W", None, None)),
    ("URL Rewrite", UrlRewrite(), [{"Version": "7.2.1952"}], "7.2.1952"),
    ("no URL Rewrite", UrlRewrite(), [{"Version": ""}], None),
    ("free space", FreeSpace("C"), [{"Name": "C", "Free": 2 ** 30}], 2 ** 30),
    ("no drive", FreeSpace("Q"), [], None),
    ("PEP cmdlet", CommandAvailable("Add-AzurePackConnector"), [{"Name": "add-azurepackconnector"}], True),
    ("PEP without it", CommandAvailable("Add-AzurePackConnector"), [{"Name": "Get-AzureStackLog"}], False),
    ("ManagementStore", ManagementStore(), [{"Name": "ManagementStore", "Value": "Data Source=sql01\\WAP;x=y"}],
     "sql01\\WAP"),
    ("ManagementStore naming no server", ManagementStore(select=True),
     [{"Name": "ManagementStore", "Value": "Initial Catalog=x"}], None),
    ("trust row", TrustSetting("sql01"), [{"Name": "Authentication.IdentityProvider.Secondary", "Value": TRUST_VALUE}],
     TrustRow(TRUST_VALUE, TrustData("urn:realm", "https://e"))),
    ("garbled trust row", TrustSetting("sql01"), [{"Name": "authentication.identityprovider.secondary",
                                                   "Value": "garbage"}], TrustRow("garbage", TrustData(""))),
    ("no trust row", TrustSetting("sql01"), [{"Name": "Authentication.IdentityProvider", "Value": "{}"}], None),
    ("Tenant API product", TenantApiProduct(), [{"ProductCode": "{cf41308c-9bc3}"}], "{CF41308C-9BC3}"),
    ("no Tenant API", TenantApiProduct(), [], None),
    ("sysadmin", Sysadmin("sql01"), [{"IsSysadmin": 1}], True),
    ("not sysadmin", Sysadmin("sql01"), [{"IsSysadmin": 0}], False),
    ("file hash", FileHash("C:\\x.txt"), [{"Hash": "ab12", "Path": "C:\\x.txt"}], "AB12"),
    ("no file", FileHash("C:\\x.txt"), [], None),
    ("tree", TreeHashes("C:\\temp\\WAPConnector"),
     [{"Path": "Microsoft.PowerShell.Core\\FileSystem::C:\\temp\\WAPConnector\\Setup\\a.ps1", "Hash": "aa"},
      {"Path": "C:\\elsewhere\\b.ps1", "Hash": "bb"}, {"Path": "C:\\temp\\WAPConnector\\c", "Hash": None}],
     {"Setup/a.ps1": "AA"}),
    ("output folder", OutputFolder(), [{"Name": "AzurePack-1.txt", "FullName": OUTPUT_FOLDER + "\\AzurePack-1.txt",
                                        "LastWriteTimeUtc": "2026"}, {"Name": "no FullName"}],
     (ListedFile("AzurePack-1.txt", OUTPUT_FOLDER + "\\AzurePack-1.txt", "2026"),)),
    ("file text", FileText("C:\\a.txt"), ["{}"], "{}"),
    ("file gone", FileText("C:\\a.txt"), [], None),
    ("path", PathExists("\\\\share"), [True], True),
    ("ping", Ping("h.contoso.com"), [False], False),
    ("port said nothing", TcpPort("h.contoso.com", 40005), [], None),
]


@pytest.mark.parametrize(("fact", "objects", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_fact_parses_what_windows_writes(fact: Fact[Any], objects: list[Any], expected: Any) -> None:
    assert fact.parse(objects) == expected


READS = {"Get-Website", "Get-WebConfigurationProperty", "Get-WebBinding", "Get-ChildItem", "Get-ItemProperty",
         "Get-Item", "Get-Command", "Get-PSDrive", "Get-MgmtSvcSetting", "Get-MgmtSvcDatabaseSetting", "Get-FileHash",
         "Get-Content", "Test-Path", "Test-Connection", "Test-NetConnection", "Invoke-Sqlcmd", "Select-Object",
         "Where-Object", "ConvertTo-Json"}


@pytest.mark.parametrize("fact", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_fact_only_reads(fact: Fact[Any]) -> None:
    names = {c.name for p in fact.statements() for c in p.commands}
    assert names <= READS


def test_a_read_names_its_key_once() -> None:
    products = InstalledProducts().statements()[0].commands[0]
    assert products.parameters == {"Path": UNINSTALL_KEY}
    assert UrlRewrite().statements()[0].commands[0].parameters["Path"] == URL_REWRITE_KEY


def test_json_reads_refuse_what_is_not_json() -> None:
    with pytest.raises(ValueError):
        Websites(bindings=True).parse(["<html>"])
    with pytest.raises(ValueError):
        json_records([{"name": "an object, not text"}])
    assert records([{"A": 1}, 2]) == [{"a": 1}]


def test_sysadmin_asks_as_the_configured_login_without_showing_its_password() -> None:
    cred = Credential("trustops", Secret("LabOnly-1!"))
    (pipeline,) = Sysadmin("sql01", cred).statements()
    assert pipeline.commands[0].parameters["Credential"] == cred
    assert "LabOnly-1!" not in str(pipeline)
    assert "Credential" not in Sysadmin("sql01").statements()[0].commands[0].parameters


@pytest.mark.parametrize(("server", "valid"), [("sql01\\WAP", "sql01\\WAP"), ("bad;name", None), (None, None)])
def test_a_named_server_is_used_only_when_it_is_a_sql_server_name(server: str | None, valid: str | None) -> None:
    assert valid_server(server) == valid


def test_store_certificates_are_the_certificates_themselves() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.cert_factory import org_ca

    ca = org_ca("Fabrikam Root CA")
    der = ca.cert.public_bytes(Encoding.DER)
    objects = [{"Thumbprint": ca.thumbprint, "RawData": der}, {"Thumbprint": "X", "RawData": "not base64!"},
               {"Thumbprint": "Y", "RawData": "AAE="}, "noise"]
    assert StoreCertificates("My").parse(objects) == (ca.cert,)
    (listing,) = StoreCertificates("My").statements()
    (one,) = StoreCertificates("CA", ca.thumbprint).statements()
    assert [c.name for c in listing.commands] == ["Get-ChildItem", "Select-Object"]
    assert one.commands[0].name == "Get-Item" and one.commands[0].parameters["Path"].endswith(ca.thumbprint)
