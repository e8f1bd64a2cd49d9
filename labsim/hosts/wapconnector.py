"""The WAPConnector package: its (unpublished, hence inferred) bundle layout, product codes and ports, the five
scripts as labsim runs them, and MSI removal: msiexec /x started by Start-Process, or PackageManagement on
PowerShell 5.0 and later (docs/host-contract.md §5-6, §9).

Every assumption about the real package is a constant in the first block of this module: change it here when
someone runs the real bundle against a real WAP.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from labsim.hosts import certs, files, iis, mgmtsvc, paths, registry
from labsim.hosts.base import CommandSpec, Ctx, Param, prop, table, wildcard
from labsim.lab import FQDN, Role
from labsim.runtime import PSObject, TerminatingError

# -- [inf] everything about the package ------------------------------------------------------------------------
CONNECTOR_PRODUCTS = (  # (site, https port, MSI file, product code, display name)
    ("MgmtSvc-Connector", 40005, "MgmtSvc-Connector.msi", "{7B0C4A64-2D1E-4F5A-9C3B-1E6D2A8F4C01}",
     "Windows Azure Pack Connector for Azure Stack - Connector"),
    ("MgmtSvc-ConnectorExtension", 40006, "MgmtSvc-ConnectorExtension.msi", "{7B0C4A64-2D1E-4F5A-9C3B-1E6D2A8F4C02}",
     "Windows Azure Pack Connector for Azure Stack - Extension"),
    ("MgmtSvc-ConnectorController", 40007, "MgmtSvc-ConnectorController.msi", "{7B0C4A64-2D1E-4F5A-9C3B-1E6D2A8F4C03}",
     "Windows Azure Pack Connector for Azure Stack - Controller"),
)
CONNECTOR_SITES = tuple(p[0] for p in CONNECTOR_PRODUCTS)
CONNECTOR_VERSION = "1.0.0.0"
TENANT_API_MSI = "MgmtSvc-TenantAPI.msi"
UPDATED_TENANT_API_CODE = "{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}"
UPDATED_TENANT_API_NAME = "Windows Azure Pack - Tenant API (Azure Stack Connector)"
UPDATED_TENANT_API_VERSION = "3.50.2000.0"
APP_SETTING_KEYS = ("TenantPortalFQDN", "TenantAPIFQDN", "AzureStackPortalFQDN")
TRUST_NAMESPACE = "TenantAPI"
TRUST_SETTING = "Authentication.IdentityProvider.Secondary"
SCRIPT_NAMES = ("Install-Connector.ps1", "Configure-Certificates.ps1", "Configure-WapConnector.ps1",
                "Update-TenantAPI.ps1", "Configure-TrustAzureStack.ps1")
URL_REWRITE_KEY = "SOFTWARE\\Microsoft\\IIS Extensions\\URL Rewrite"
UNINSTALL_KEY = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
MGMTSVC_KEY = "SOFTWARE\\Microsoft\\MgmtSvc"
_MSI_MAGIC = b"LABSIM-MSI "
_MSI_BODY_SIZE = 96 * 1024  # big enough that staging it takes several chunks


# -- the fake bundle ---------------------------------------------------------------------------------------------
def fake_msi(name: str, product_code: str, version: str) -> bytes:
    body = bytearray()
    block = hashlib.sha256(name.encode()).digest()
    while len(body) < _MSI_BODY_SIZE:
        body += block
        block = hashlib.sha256(block).digest()
    payload = bytes(body[:_MSI_BODY_SIZE])
    header = f"LABSIM-MSI {name} {product_code} {version} {hashlib.sha256(payload).hexdigest()}\n".encode()
    return header + payload


def parse_msi(data: bytes) -> dict[str, str] | None:
    """The fake MSI's header if the file is intact, else None (msiexec's 1620)."""
    if not data.startswith(_MSI_MAGIC) or b"\n" not in data:
        return None
    header, body = data.split(b"\n", 1)
    fields = header.decode("ascii", errors="replace").split(" ")
    if len(fields) != 5 or hashlib.sha256(body).hexdigest() != fields[4]:
        return None
    return {"name": fields[1], "product_code": fields[2], "version": fields[3]}


def make_bundle(directory: str | Path) -> Path:
    """Write a complete fake WAPConnector bundle under ``directory``/WAPConnector and return that folder."""
    root = Path(directory) / "WAPConnector"
    scripts, packages = root / "Setup" / "Scripts", root / "Setup" / "Packages"
    scripts.mkdir(parents=True, exist_ok=True)
    packages.mkdir(parents=True, exist_ok=True)
    for name in SCRIPT_NAMES:
        (scripts / name).write_text(f"# labsim stand-in for the WAPConnector's {name}; labsim runs its own model.\r\n")
    (packages / "Update-TenantAPI.ps1").write_text("# labsim stand-in for Update-TenantAPI.ps1\r\n")
    for site, _port, msi, code, _display in CONNECTOR_PRODUCTS:
        (packages / msi).write_bytes(fake_msi(site, code, CONNECTOR_VERSION))
    (packages / TENANT_API_MSI).write_bytes(fake_msi("MgmtSvc-TenantAPI", UPDATED_TENANT_API_CODE,
                                                     UPDATED_TENANT_API_VERSION))
    return root


def bundle_root(script_path: str) -> str:
    """The folder above Setup (the script lives in <root>\\Setup\\Scripts or <root>\\Setup\\Packages)."""
    return paths.parent(paths.parent(paths.parent(script_path)))


# -- shared checks ---------------------------------------------------------------------------------------------
def _script(ctx: Ctx) -> str:
    return paths.leaf(ctx.command_name)


def _require_role(ctx: Ctx, role: Role, site: str, what: str) -> None:
    doc = ctx.state.read().doc(ctx.host.name)
    if not ctx.host.has(role) or site.lower() not in doc.get("sites", {}):
        raise ctx.throw(f"{site} was not found on this computer. Run {_script(ctx)} on a Windows Azure Pack "
                        f"{what} computer.")


def _read_msi(ctx: Ctx, msi: str) -> dict[str, str]:
    path = paths.join(bundle_root(paths.parse(ctx.command_name, ctx.host.name).path), "Setup", "Packages", msi)
    data = files.read_bytes(ctx, path)
    if data is None:
        raise ctx.throw(f"Package not found: {path}")
    info = parse_msi(data)
    if info is None:
        raise ctx.throw(f"Installation of {path} failed: This installation package could not be opened. Verify that "
                        f"the package exists and that you can access it. (msiexec exit code 1620)")
    return info


def _add_uninstall_entry(doc: dict[str, Any], code: str, name: str, version: str, location: str) -> None:
    key = f"{UNINSTALL_KEY}\\{code}"
    registry.delete_key(doc, key)
    for value_name, value in (("DisplayName", name), ("DisplayVersion", version),
                              ("Publisher", "Microsoft Corporation"), ("InstallLocation", location),
                              ("UninstallString", f"MsiExec.exe /X{code}")):
        registry.set_value(doc, key, value_name, value)


def _connector_installed(doc: dict[str, Any]) -> bool:
    return all(s.lower() in doc.get("sites", {}) for s in CONNECTOR_SITES)


# -- the scripts --------------------------------------------------------------------------------------------------
def install_connector(ctx: Ctx, args: dict[str, Any]) -> None:
    _require_role(ctx, Role.WAP_TENANT_PORTAL, "MgmtSvc-TenantSite", "tenant portal")
    doc = ctx.state.read().doc(ctx.host.name)
    if not registry.key_exists(doc, URL_REWRITE_KEY):
        raise ctx.throw("The IIS URL Rewrite module is not installed. Install it from "
                        "https://www.iis.net/downloads/microsoft/url-rewrite and run Install-Connector.ps1 again.")
    packages = [(site, port, _read_msi(ctx, msi), display) for site, port, msi, _code, display in CONNECTOR_PRODUCTS]
    ctx.latency("Install-Connector")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        sites = doc.setdefault("sites", {})
        for site, port, info, display in packages:
            if site.lower() in sites:
                ctx.verbose(f"{display} is already installed.")
                continue
            ctx.verbose(f"Installing {display} ({info['product_code']})")
            new = iis.new_site(site, max([s["id"] for s in sites.values()] + [0]) + 1, port)
            new["appSettings"] = {k: "" for k in APP_SETTING_KEYS}
            sites[site.lower()] = new
            tx.make_dir(ctx.host.name, "C:\\inetpub")
            tx.make_dir(ctx.host.name, new["physicalPath"])
            _add_uninstall_entry(doc, info["product_code"], display, info["version"], new["physicalPath"])
            doc.setdefault("msi", {})[info["product_code"]] = {"site": site}
    ctx.verbose("Windows Azure Pack Connector installed.")


def configure_certificates(ctx: Ctx, args: dict[str, Any]) -> None:
    doc = ctx.state.read().doc(ctx.host.name)
    if not _connector_installed(doc):
        raise ctx.throw("The Windows Azure Pack Connector is not installed. Run Install-Connector.ps1 first.")
    thumb = args.get("Thumbprint")
    if not thumb:
        tenant = doc.get("sites", {}).get("mgmtsvc-tenantsite")
        https = [b for b in (tenant or {}).get("bindings", []) if b["protocol"] == "https" and b.get("certificateHash")]
        if not https:
            raise ctx.throw("No certificate is bound to MgmtSvc-TenantSite; pass -Thumbprint.")
        thumb = https[0]["certificateHash"]
    thumb = thumb.replace(" ", "").upper()
    entry = certs.find(doc, "My", thumb)
    if entry is None:
        raise ctx.throw(f"Certificate with thumbprint {thumb} was not found in Cert:\\LocalMachine\\My.")
    if not entry.get("key"):
        raise ctx.throw(f"Certificate {thumb} has no private key.")
    cert = certs.load(entry["der"])
    if certs.is_self_signed(cert):
        raise ctx.throw(f"Certificate {thumb} is self-signed; the Connector needs a certificate issued by a trusted "
                        f"certification authority.")
    if certs.expired(cert):
        raise ctx.throw(f"Certificate {thumb} expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
    ctx.latency("Configure-Certificates")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        for site in CONNECTOR_SITES:
            for b in doc["sites"][site.lower()]["bindings"]:
                if b["protocol"] == "https":
                    b["certificateHash"], b["certificateStoreName"] = thumb, "My"
            ctx.verbose(f"Bound certificate {thumb} to {site}.")


def configure_wap_connector(ctx: Ctx, args: dict[str, Any]) -> None:
    doc = ctx.state.read().doc(ctx.host.name)
    if not _connector_installed(doc):
        raise ctx.throw("The Windows Azure Pack Connector is not installed. Run Install-Connector.ps1 first.")
    for key in APP_SETTING_KEYS:
        if not FQDN.match(args[key]):
            raise ctx.throw(f"'{args[key]}' is not a valid FQDN for -{key}.")
    ctx.latency("Configure-WapConnector")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        for site in CONNECTOR_SITES:
            settings = doc["sites"][site.lower()].setdefault("appSettings", {})
            for key in APP_SETTING_KEYS:
                settings[key] = args[key]
    ctx.verbose("Updated the Connector web.config files.")


def update_tenant_api(ctx: Ctx, args: dict[str, Any]) -> None:
    _require_role(ctx, Role.WAP_TENANT_API, "MgmtSvc-TenantAPI", "Tenant API")
    info = _read_msi(ctx, TENANT_API_MSI)
    key = f"{MGMTSVC_KEY}\\TenantAPI"
    current = registry.values(ctx.state.read().doc(ctx.host.name), key).get("ProductCode")
    if current == info["product_code"]:
        ctx.verbose("The updated Tenant API is already installed.")
        return
    ctx.latency("Update-TenantAPI")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        if current:
            registry.delete_key(doc, f"{UNINSTALL_KEY}\\{current}")
        registry.set_value(doc, key, "ProductCode", info["product_code"])
        _add_uninstall_entry(doc, info["product_code"], UPDATED_TENANT_API_NAME, info["version"],
                             "C:\\inetpub\\MgmtSvc-TenantAPI")
        doc["sites"]["mgmtsvc-tenantapi"]["state"] = "Started"
    ctx.verbose("Tenant API updated; MgmtSvc-TenantAPI restarted.")


def parse_output_file(text: str) -> dict[str, str]:
    """Realm, Certificate (base64 DER) and Endpoint from an Add-AzurePackConnector output file (§8); ValueError.

    labsim's own reading, on purpose: the simulator does not borrow the providers' (providers/connector_output.py).
    tests/providers/test_connector_output.py holds both to one sample file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    partner = data.get("AuthenticationIdentityProviderPartner") if isinstance(data, dict) else None
    if not isinstance(partner, dict):
        raise ValueError("AuthenticationIdentityProviderPartner is missing")
    realm, cert_b64 = partner.get("Realm"), partner.get("Certificate")
    endpoint = data.get("AzurePackConnectorEndpoint")
    if not isinstance(realm, str) or not realm.startswith("https://"):
        raise ValueError("AuthenticationIdentityProviderPartner.Realm is not an https URL")
    if not isinstance(endpoint, str) or not endpoint.startswith("https://"):
        raise ValueError("AzurePackConnectorEndpoint is not an https URL")
    try:
        x509.load_der_x509_certificate(base64.b64decode(str(cert_b64), validate=True))
    except (ValueError, TypeError):
        raise ValueError("AuthenticationIdentityProviderPartner.Certificate is not a base64 DER certificate") from None
    return {"Realm": realm, "Certificate": str(cert_b64), "Endpoint": endpoint}


def configure_trust_azure_stack(ctx: Ctx, args: dict[str, Any]) -> None:
    if args.get("PromptForSqlCredential"):
        raise ctx.throw("-PromptForSqlCredential needs an interactive console; pass -SqlCredential instead.")
    _require_role(ctx, Role.WAP_TENANT_API, "MgmtSvc-TenantAPI", "Tenant API")
    sql_host = mgmtsvc.resolve_sql(ctx.lab, args["SqlServer"])
    if sql_host is None:
        raise ctx.throw(f"Cannot connect to SQL Server '{args['SqlServer']}': A network-related or instance-specific "
                        f"error occurred while establishing a connection to SQL Server.")
    credential = args.get("SqlCredential")
    try:
        mgmtsvc.sql_login(ctx, sql_host, credential["UserName"] if credential else None,
                          credential["Password"] if credential else None, need_sysadmin=True)
    except mgmtsvc.SqlLoginError as exc:
        raise ctx.throw(str(exc)) from None
    data = files.read_bytes(ctx, args["DataFile"])
    if data is None:
        raise ctx.throw(f"Data file not found: {args['DataFile']}")
    try:
        trust = parse_output_file(data.decode("utf-8-sig", errors="replace"))
    except ValueError as exc:
        raise ctx.throw(f"Data file {args['DataFile']} is not a valid Azure Pack Connector output file: "
                        f"{exc}") from None
    ctx.latency("Configure-TrustAzureStack")
    with ctx.state.tx() as tx:
        store = mgmtsvc.database(tx.doc(sql_host.name), mgmtsvc.STORE_DB)
        store.setdefault(TRUST_NAMESPACE, {})[TRUST_SETTING] = json.dumps(trust, separators=(",", ":"))
    ctx.verbose(f"Trust to {trust['Realm']} written to Microsoft.MgmtSvc.Store on {sql_host.name}.")


SCRIPTS = table(
    CommandSpec("Install-Connector.ps1", install_connector, kind="ExternalScript"),
    CommandSpec("Configure-Certificates.ps1", configure_certificates, (Param("Thumbprint", position=0),),
                kind="ExternalScript"),
    CommandSpec("Configure-WapConnector.ps1", configure_wap_connector, (
        Param("TenantPortalFQDN", mandatory=True, position=0), Param("TenantAPIFQDN", mandatory=True, position=1),
        Param("AzureStackPortalFQDN", mandatory=True, position=2)), kind="ExternalScript"),
    CommandSpec("Update-TenantAPI.ps1", update_tenant_api, kind="ExternalScript"),
    CommandSpec("Configure-TrustAzureStack.ps1", configure_trust_azure_stack, (
        Param("SqlServer", mandatory=True, position=0), Param("DataFile", mandatory=True, position=1),
        Param("SqlCredential", "credential"), Param("PromptForSqlCredential", "switch")), kind="ExternalScript"),
)


# -- PackageManagement: Get-Package / Uninstall-Package --------------------------------------------------------------
_PKG_IMPL = "Microsoft.PowerShell.PackageManagement.Cmdlets."


def _package_object(code: str, values: dict[str, Any]) -> PSObject:
    return PSObject({"Name": values.get("DisplayName", code), "Version": values.get("DisplayVersion", ""),
                     "ProviderName": "msi", "Source": "", "Status": "Installed", "FastPackageReference": code,
                     "TagId": code}, ["Microsoft.PackageManagement.Packaging.SoftwareIdentity", "System.Object"],
                    values.get("DisplayName", code))


def _packages(doc: dict[str, Any]) -> list[PSObject]:
    out = []
    for key in registry.subkeys(doc, UNINSTALL_KEY):
        code = paths.leaf(key)
        out.append(_package_object(code, registry.values(doc, key)))
    return sorted(out, key=lambda p: (str(p.properties["Name"]).lower(), p.properties["FastPackageReference"]))


def get_package(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    if args.get("ProviderName", "msi").lower() != "msi":
        return []
    pkgs = _packages(ctx.state.read().doc(ctx.host.name))
    if "Name" not in args:
        return pkgs
    out = []
    for name in args["Name"]:
        hit = [p for p in pkgs if wildcard(name, str(p.properties["Name"]))]
        if not hit and not any(c in name for c in "*?["):
            ctx.error(f"No package found for '{name}'.", error_id=f"NoMatchFound,{_PKG_IMPL}GetPackage",
                      category=13, target=name)
        out += [p for p in hit if p not in out]
    return out


MSI_SUCCESS, MSI_REBOOT_REQUIRED, MSI_UNKNOWN_PRODUCT = 0, 3010, 1605  # [doc] Windows Installer error codes


def remove_product(ctx: Ctx, code: str) -> int:
    """What ``msiexec /x {code} /qn`` does to the host: the product's site, files and Uninstall key go; the
    exit code (1605: no such product installed)."""
    doc = ctx.state.read().doc(ctx.host.name)
    if not registry.key_exists(doc, f"{UNINSTALL_KEY}\\{code}"):
        return MSI_UNKNOWN_PRODUCT
    site = doc.get("msi", {}).get(code, {}).get("site")
    if site is None:
        raise TerminatingError("labsim simulates uninstalling only the Connector packages.",
                               error_id="LabsimUnsupportedUninstall", category=11)
    ctx.latency("msiexec /x")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        info = doc["sites"].pop(site.lower(), None)
        if info:
            tx.remove(ctx.host.name, info["physicalPath"], recurse=True)
        registry.delete_key(doc, f"{UNINSTALL_KEY}\\{code}")
        del doc["msi"][code]
        if not doc["msi"]:  # as before the first install: no record at all
            del doc["msi"]
    return MSI_SUCCESS


def _msiexec_uninstall(arguments: list[str]) -> str | None:
    """The product code of ``/x {code} /qn ...`` (also /uninstall, /x{code}, /quiet); None for anything else."""
    words = [w for a in arguments for w in str(a).split()]
    lowered = [w.lower() for w in words]
    if not {"/qn", "/quiet"} & set(lowered):
        return None
    for i, w in enumerate(lowered):
        if w in ("/x", "/uninstall") and i + 1 < len(words):
            return words[i + 1].upper()
        if w.startswith("/x{"):
            return words[i][2:].upper()
    return None


def start_process(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    """Start-Process of msiexec.exe removing one product quietly (the one program labsim runs): with -Wait it
    returns once msiexec has exited; -PassThru writes the Process object, ExitCode included."""
    program = paths.leaf(args["FilePath"].replace("/", "\\")).lower()
    code = _msiexec_uninstall(args.get("ArgumentList") or []) if program in ("msiexec", "msiexec.exe") else None
    if code is None:
        raise TerminatingError("labsim runs only msiexec.exe /x {ProductCode} /qn with Start-Process.",
                               error_id="LabsimUnsupportedProcess", category=11)
    exit_code = remove_product(ctx, code)
    if not args.get("PassThru"):
        return []
    waited = bool(args.get("Wait"))
    return [PSObject({"Id": 4000 + sum(code.encode()) % 4000, "ProcessName": "msiexec", "HasExited": waited,
                      "ExitCode": exit_code if waited else None},
                     ["System.Diagnostics.Process", "System.ComponentModel.Component", "System.MarshalByRefObject",
                      "System.Object"], "System.Diagnostics.Process (msiexec)")]


PROCESS_COMMANDS = table(
    CommandSpec("Start-Process", start_process, (
        Param("FilePath", mandatory=True, position=0), Param("ArgumentList", "str[]", position=1),
        Param("Wait", "switch"), Param("PassThru", "switch"), Param("NoNewWindow", "switch")),
        impl="Microsoft.PowerShell.Commands.StartProcessCommand", module="Microsoft.PowerShell.Management"),
)


def uninstall_package(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    targets = [args["InputObject"]] if "InputObject" in args else list(ctx.input)
    if "Name" in args:
        targets += get_package(ctx, {"Name": args["Name"]})
    removed = []
    for target in targets:
        code = prop(target, "FastPackageReference") or prop(target, "TagId")
        doc = ctx.state.read().doc(ctx.host.name)
        if not code or not registry.key_exists(doc, f"{UNINSTALL_KEY}\\{code}"):
            ctx.error(f"No package found for '{prop(target, 'Name', target)}'.",
                      error_id=f"NoMatchFound,{_PKG_IMPL}UninstallPackage", category=13, target=str(code))
            continue
        values = registry.values(doc, f"{UNINSTALL_KEY}\\{code}")
        remove_product(ctx, code)
        removed.append(_package_object(code, values))
        ctx.verbose(f"Uninstalled {values.get('DisplayName', code)}.")
    return removed


PACKAGE_COMMANDS = table(
    CommandSpec("Get-Package", get_package, (Param("Name", "str[]", position=0), Param("ProviderName")),
                impl=_PKG_IMPL + "GetPackage", module="PackageManagement"),
    CommandSpec("Uninstall-Package", uninstall_package, (
        Param("InputObject", "any", position=0, sets=("Object",)), Param("Name", "str[]", sets=("Name",)),
        Param("ProviderName", sets=("Name",)), Param("Force", "switch")),
        impl=_PKG_IMPL + "UninstallPackage", module="PackageManagement", input_mode="all"),
)
