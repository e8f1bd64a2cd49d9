"""The known state every host starts from, built once from the lab file (docs/host-contract.md §3-5, §6b).

Product codes other than TenantAPI's UR9.1 code, the Store rows' values and the certificates are labsim's own
[inf]; their shapes follow docs/domain.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labsim.hosts import certs, iis, mgmtsvc, registry
from labsim.hosts.wapconnector import MGMTSVC_KEY, UNINSTALL_KEY, URL_REWRITE_KEY
from labsim.lab import Host, Lab, Role
from labsim.pki import LabCA
from labsim.state import Tx

UR91_TENANT_API_CODE = "{CF41308C-9BC3-46C1-8B39-135D00E491E8}"  # [pub]
# Versions nobody has published in a form labsim can check, in one place [inf]: the DisplayVersion WAP UR9.1
# shows (a lab file's `wap.version` overrides it), and how SPF and VMM name themselves in the Uninstall keys.
WAP_VERSION = "3.50.48.0"  # [inf] shown as DisplayVersion
SYSTEM_CENTER_PRODUCTS = {  # lab file key -> (product code, DisplayName) [inf]
    "spf_version": ("{B5A1E2C0-5C3D-4F6A-9E0B-7A1D2C3E4F51}", "System Center 2012 R2 Service Provider Foundation"),
    "vmm_version": ("{B5A1E2C0-5C3D-4F6A-9E0B-7A1D2C3E4F52}",
                    "System Center 2012 R2 Virtual Machine Manager Server"),
}
# (namespace, site, port, product code, display name); TenantAPI's code is public, the rest are labsim's [inf].
WAP_COMPONENTS: dict[str, tuple[str, str, int, str, str]] = {
    "TenantSite": ("TenantSite", "MgmtSvc-TenantSite", 30081, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E11}",
                   "Windows Azure Pack - Tenant Site - 2013"),
    "AuthSite": ("AuthSite", "MgmtSvc-AuthSite", 30071, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E12}",
                 "Windows Azure Pack - Tenant Authentication Site - 2013"),
    "TenantAPI": ("TenantAPI", "MgmtSvc-TenantAPI", 30005, UR91_TENANT_API_CODE,
                  "Windows Azure Pack - Tenant API - 2013"),
    "TenantPublicAPI": ("TenantPublicAPI", "MgmtSvc-TenantPublicAPI", 30006, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E14}",
                        "Windows Azure Pack - Tenant Public API - 2013"),
    "AdminAPI": ("AdminAPI", "MgmtSvc-AdminAPI", 30004, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E15}",
                 "Windows Azure Pack - Admin API - 2013"),
    "AdminSite": ("AdminSite", "MgmtSvc-AdminSite", 30091, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E16}",
                  "Windows Azure Pack - Admin Site - 2013"),
    "WindowsAuthSite": ("WindowsAuthSite", "MgmtSvc-WindowsAuthSite", 30072, "{A4F06A3B-6E77-4D3B-9F6E-3C1A9F2B7E17}",
                        "Windows Azure Pack - Admin Authentication Site - 2013"),
}


def components_of(host: Host) -> list[str]:
    out: list[str] = []
    if host.has(Role.WAP_TENANT_PORTAL):
        out += ["TenantSite", "AuthSite"]
    if host.has(Role.WAP_TENANT_API):
        out += ["TenantAPI", "TenantPublicAPI"]
    if host.has(Role.WAP_EXPRESS):
        out += ["AdminAPI", "AdminSite", "WindowsAuthSite"]
    return out


def self_signed(common_name: str, days: int = 825) -> tuple[x509.Certificate, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return cert, pem


def _wap(doc: dict[str, Any], tx: Tx, lab: Lab, host: Host, ca: LabCA) -> None:
    assert host.wap is not None
    if host.wap.tenant_site_certificate == "self_signed":
        cert, key_pem = self_signed(host.fqdn)
    else:
        cert_pem, key = ca.issue(host.fqdn, [host.fqdn, host.name.lower()])
        cert, key_pem = x509.load_pem_x509_certificate(cert_pem), key.decode()
    thumb = certs.add(doc, "My", cert, key_pem, friendly_name="Windows Azure Pack")
    sites: dict[str, Any] = {}
    tx.make_dir(host.name, "C:\\inetpub")
    for i, comp in enumerate(components_of(host), start=2):
        namespace, site, port, code, display = WAP_COMPONENTS[comp]
        if comp == "TenantSite":
            port = host.wap.tenant_site_port
        sites[site.lower()] = iis.new_site(site, i, port, thumb)
        tx.make_dir(host.name, f"C:\\inetpub\\{site}")
        registry.set_value(doc, f"{MGMTSVC_KEY}\\{namespace}", "ProductCode", code)
        for value_name, value in (("DisplayName", display), ("DisplayVersion", host.wap.version or WAP_VERSION),
                                  ("Publisher", "Microsoft Corporation"), ("InstallLocation", f"C:\\inetpub\\{site}"),
                                  ("UninstallString", f"MsiExec.exe /X{code}")):
            registry.set_value(doc, f"{UNINSTALL_KEY}\\{code}", value_name, value)
        settings: dict[str, str] = {}
        if namespace == "TenantAPI":
            settings["ManagementStore"] = (f"Data Source={host.wap.sql_server};Initial Catalog={mgmtsvc.STORE_DB};"
                                           f"Integrated Security=True")
        doc.setdefault("mgmtsvc", {})[namespace] = {"protected": True, "settings": settings}
    doc["sites"] = sites
    for knob, (code, display) in SYSTEM_CENTER_PRODUCTS.items():
        version = getattr(host.wap, knob)
        if version is not None:
            for value_name, value in (("DisplayName", display), ("DisplayVersion", version),
                                      ("Publisher", "Microsoft Corporation"),
                                      ("UninstallString", f"MsiExec.exe /X{code}")):
                registry.set_value(doc, f"{UNINSTALL_KEY}\\{code}", value_name, value)
    if host.wap.url_rewrite:
        registry.set_value(doc, URL_REWRITE_KEY, "Version", "7.2.1952")
        registry.set_value(doc, URL_REWRITE_KEY, "Install", 1)


WINDOWS_NT_KEY = "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
POWERSHELL_ENGINE_KEY = "SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine"


def _windows(doc: dict[str, Any], host: Host) -> None:
    """What the registry says of the host's Windows [pub]: ProductName / CurrentBuildNumber / CurrentVersion, and
    the PowerShell engine's PowerShellVersion (the key is named 3 for every version from 3.0 on)."""
    rel = host.release
    for name, value in (("ProductName", rel.product_name), ("CurrentBuildNumber", rel.build_number),
                        ("CurrentVersion", rel.current_version)):
        registry.set_value(doc, WINDOWS_NT_KEY, name, value)
    registry.set_value(doc, POWERSHELL_ENGINE_KEY, "PowerShellVersion", rel.powershell if rel.ps < (5, 0)
                  else rel.ps_version)
    registry.set_value(doc, POWERSHELL_ENGINE_KEY, "RuntimeVersion", "v4.0.30319")


def _sql(doc: dict[str, Any], lab: Lab, host: Host) -> None:
    portal = next((h for h in lab.hosts if h.has(Role.WAP_TENANT_PORTAL)
                   and h.wap and h.wap.sql_server and h.wap.sql_server.lower() in (host.name.lower(), host.fqdn)),
                  host)
    auth_cert, _ = self_signed(f"MgmtSvc-AuthSite {portal.fqdn}")
    cert_b64 = base64.b64encode(auth_cert.public_bytes(serialization.Encoding.DER)).decode()

    def idp(port: int) -> str:
        url = f"https://{portal.fqdn}:{port}/"
        return json.dumps({"Realm": url, "Endpoint": url, "Certificate": cert_b64}, separators=(",", ":"))

    store = mgmtsvc.database(doc, mgmtsvc.STORE_DB)
    store["TenantAPI"] = {"Authentication.IdentityProvider": idp(30071)}
    store["AdminAPI"] = {"Authentication.IdentityProvider": idp(30072)}
    mgmtsvc.database(doc, mgmtsvc.PORTAL_CONFIG_DB)["TenantSite"] = {
        "Authentication.IdentityProvider.Primary": idp(30071)}


def build(lab: Lab, ca: LabCA) -> Callable[[Tx], None]:
    """The seeding callback for LabState.seed."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)

    def seed(tx: Tx) -> None:
        for host in lab.hosts:
            doc: dict[str, Any] = {"certs": {s: {} for s in ("My", "CA", "Root", "WebHosting")}, "registry": {}}
            if host.has(Role.PRIVILEGED_ENDPOINT):
                token, _ = self_signed(f"ADFS Signing - {lab.adfs_fqdn}", days=365)
                doc = {"pep": {"multicloud": False, "clouds": [], "azure_stack_cloud_name": None,
                               "realm": f"https://{lab.adfs_fqdn}/adfs/{uuid.uuid4()}/",
                               "deployment_id": str(uuid.uuid4()),
                               "token_signing_der": base64.b64encode(
                                   token.public_bytes(serialization.Encoding.DER)).decode()}}
                tx.put_doc(host.name, doc)
                continue
            certs.add(doc, "Root", ca_cert)
            _windows(doc, host)
            # Folders every Windows host has (the system temp folder; ProgramData for per-machine tool state).
            for folder in ("C:\\Windows", "C:\\Windows\\Temp", "C:\\ProgramData"):
                tx.make_dir(host.name, folder)
            if host.is_wap:
                _wap(doc, tx, lab, host, ca)
            if host.has(Role.WAP_SQL):
                _sql(doc, lab, host)
            tx.put_doc(host.name, doc)

    return seed
