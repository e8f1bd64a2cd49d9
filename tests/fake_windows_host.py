"""A tiny in-memory Windows host for the providers' unit tests (every resource, and ownership).

``FakeWindowsHost`` answers the structured commands those providers send (per docs/host-contract.md) from an
in-memory model of the host, command by command through each pipeline, as a FakeTransport handler; so
create/read/update/delete can be exercised end to end without sockets. One host plays every role the tests need: a
WAP computer (files, certificate stores, the Tenant API's registry key, site and settings, the connector's IIS sites,
packages and appSettings and its three setup scripts) and Azure Stack (the PEP's Add-AzurePackConnector writing its
output files into the share's folder, plain files here). Faults are injected the way labsim's are
(docs/labsim.md): ``fail`` (a terminating error), ``fail_after`` (after N good runs), ``noop`` (reports success,
does nothing) and ``corrupt`` (an upload that arrives with a byte lost); ``reply`` answers a command with a given
Result. It is deliberately small: labsim is the faithful simulator.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from labsim import windows
from providers.connector_site import APP_SETTING_KEYS, CONNECTOR_PACKAGES
from providers.facts.locations import ADD_CONNECTOR_CMDLET as ADD_CONNECTOR
from providers.facts.locations import CONNECTOR_SITE, CONNECTOR_SITES, OUTPUT_FOLDER, TENANT_SITE, UNINSTALL_KEY
from providers.transport import Call, Credential, ErrorRecordInfo, Failure, FakeTransport, Result, Secret

UR91 = "{CF41308C-9BC3-46C1-8B39-135D00E491E8}"
CONNECTOR_TENANT_API = "{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}"
# The connector's sites, packages and appSettings, the PEP's cmdlet and the share's folder: the names the
# providers use (docs/host-contract.md §5-§7); their https ports from 40005.
CONNECTOR_OUTPUT = OUTPUT_FOLDER
# The connector products' codes, as their Uninstall keys are named (the fake's own).
PRODUCT_CODES = {pkg: f"{{7B0C4A64-0000-4000-8000-00000000000{i}}}" for i, pkg in enumerate(CONNECTOR_PACKAGES, 1)}
WINDOWS_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
POWERSHELL_KEY = r"HKLM:\SOFTWARE\Microsoft\PowerShell\3\PowerShellEngine"


def _not_found(path: str, cmd: str) -> ErrorRecordInfo:
    return ErrorRecordInfo(f"Cannot find path '{path}' because it does not exist.", f"PathNotFound,{cmd}",
                           "ObjectNotFound", target=path)


class FakeWindowsHost:
    """State: ``files`` (lower-case path -> (path, bytes)), ``dirs`` (lower-case paths of folders and registry
    keys), ``certs`` ((store, thumb) -> has_key), ``product_code``, ``site_state`` (the tenant site's),
    ``tenant_thumb`` (its https binding), ``sites`` (the connector's: name -> {state, thumb, port}), ``packages``,
    ``app_settings`` (the connector site's), ``rows`` ((ns, name) -> value), ``sql_server``; ``ran`` lists the
    changes run (scripts by leaf name, Start-Website, "msiexec /x"); ``release`` its Windows (Windows Server 2012 R2
    with its in-box PowerShell 4.0 by default): a cmdlet that release lacks is not recognized, as there.
    ``transport`` is a FakeTransport that this host answers."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.dirs: set[str] = set()
        self.certs: dict[tuple[str, str], bool] = {}
        self.product_code: str | None = UR91
        self.site_state: str | None = "Started"
        self.rows: dict[tuple[str, str], str] = {}
        self.sql_server = "wapcomputer1"
        self.tenant_thumb = ""
        self.sites: dict[str, dict[str, Any]] = {}
        self.packages: set[str] = set()
        self.app_settings: dict[str, str] = {}
        self.ran: list[str] = []
        self.release = windows.WS2012R2  # what its registry says, and which cmdlets it has (labsim/windows.py)
        self.pfx_passwords: list[str] = []
        self.script_params: list[dict[str, Any]] = []
        self.fail: dict[str, Failure] = {}          # command name -> terminating failure (every time)
        self.fail_after: dict[str, int] = {}        # command name -> fail after N successful runs
        self.noop: set[str] = set()                 # command names that report success and do nothing
        self.corrupt: set[str] = set()              # Set-Content / Add-Content: the last byte of each upload is lost
        self.reply: dict[str, Any] = {}             # command name -> the whole answer (a Result or a Failure)
        self._runs: dict[str, int] = {}
        self.transport = FakeTransport(self.handle)

    # -- helpers for tests --------------------------------------------------------------------------------------
    def put_file(self, path: str, data: bytes) -> None:
        self.files[path.lower()] = (path, data)

    def file(self, path: str) -> bytes | None:
        entry = self.files.get(path.lower())
        return entry[1] if entry else None

    def remove_file(self, path: str) -> None:
        self.files.pop(path.lower(), None)

    def files_in(self, folder: str) -> dict[str, str]:
        """The text of each file directly in ``folder``, by file name."""
        root = folder.rstrip("\\").lower() + "\\"
        return {v[0][len(root):]: v[1].decode("utf-8") for k, v in self.files.items()
                if k.startswith(root) and "\\" not in k[len(root):]}

    def clear_folder(self, folder: str) -> None:
        """Remove the files directly in ``folder`` (the folder stays)."""
        for name in self.files_in(folder):
            self.remove_file(folder + "\\" + name)

    def install_connector(self) -> None:
        """What Install-Connector.ps1 leaves: the three sites (no certificate bound yet) and packages; the
        connector site's appSettings empty when the site is new."""
        for i, (site, pkg) in enumerate(zip(CONNECTOR_SITES, CONNECTOR_PACKAGES, strict=True)):
            if site not in self.sites:
                self.sites[site] = {"state": "Started", "thumb": "", "port": 40005 + i}
                if site == CONNECTOR_SITE:
                    self.app_settings = {k: "" for k in APP_SETTING_KEYS.values()}
            self.packages.add(pkg)

    def site(self, name: str) -> dict[str, Any]:
        return self.sites[name]

    # -- the handler ---------------------------------------------------------------------------------------------
    def __call__(self, call: Call) -> Any:
        return self.handle(call)

    def handle(self, call: Call) -> Any:
        outputs: list[list[Any]] = []
        errors: list[ErrorRecordInfo] = []
        verbose: list[str] = []
        for pipeline in call.statements:
            flow: list[Any] | None = None
            for cmd in pipeline.commands:
                name = cmd.name
                key = name.rsplit("\\", 1)[-1].lower()
                self._runs[key] = self._runs.get(key, 0) + 1
                if key in {k.lower() for k in self.reply}:
                    return next(v for k, v in self.reply.items() if k.lower() == key)
                if key in {k.lower() for k in self.fail}:
                    return next(v for k, v in self.fail.items() if k.lower() == key)
                limit = {k.lower(): v for k, v in self.fail_after.items()}.get(key)
                if limit is not None and self._runs[key] > limit:
                    return Failure(f"injected failure of {name}", f"LabsimFault,{name}", "InvalidOperation")
                if windows.cmdlet_known(name) and not windows.cmdlet_exists(name, self.release):
                    return Failure(f"The term '{name}' is not recognized as the name of a cmdlet, function, script "
                                   f"file, or operable program. Check the spelling of the name, or if a path was "
                                   f"included, verify that the path is correct and try again.",
                                   "CommandNotFoundException", "ObjectNotFound")
                p = dict(cmd.parameters)
                if key in {k.lower() for k in self.noop}:
                    flow = []
                    continue
                if key in {k.lower() for k in self.corrupt} and isinstance(p.get("Value"), bytes):
                    p["Value"] = p["Value"][:-1]
                before = len(errors)
                flow = self._run(name, key, p, set(s.lower() for s in cmd.switches), flow, errors, verbose)
                if str(p.get("ErrorAction", "")).lower() in ("silentlycontinue", "ignore"):
                    del errors[before:]
                if isinstance(flow, Failure):
                    return flow
            outputs.append(flow or [])
        return Result(outputs=outputs, errors=errors, verbose=verbose)

    def _run(self, name: str, key: str, p: dict[str, Any], switches: set[str], flow: list[Any] | None,
             errors: list[ErrorRecordInfo], verbose: list[str]) -> Any:
        paths = p.get("Path")
        paths = list(paths) if isinstance(paths, (list, tuple)) else ([paths] if paths is not None else [])
        if key == "new-item":
            path = paths[0]
            if p.get("ItemType") == "Directory":
                self.dirs.add(path.lower())
            else:
                value = p.get("Value")
                self.put_file(path, value.encode("utf-8") if isinstance(value, str) else b"")
            return []
        if key == "get-content":  # the ownership marker's read (providers/ownership.py)
            data = self.file(paths[0])
            if data is None:
                errors.append(_not_found(paths[0], "Get-Content"))
                return []
            return [data.decode("utf-8")]
        if key in ("set-content", "add-content"):
            assert p.get("Encoding") == "Byte" and isinstance(p.get("Value"), bytes), p
            path = paths[0]
            old = self.file(path) or b"" if key == "add-content" else b""
            self.put_file(path, old + p["Value"])
            return []
        if key == "get-filehash":
            if not paths and flow is not None:
                paths = [o["FullName"] for o in flow]
            out = []
            for path in paths:
                data = self.file(path)
                if data is None:
                    errors.append(_not_found(path, "Get-FileHash"))
                    continue
                out.append({"Algorithm": "SHA256", "Hash": hashlib.sha256(data).hexdigest().upper(),
                            "Path": self.files[path.lower()][0]})
            return out
        if key == "get-childitem" and paths[0].lower() == UNINSTALL_KEY.lower():
            return [{"PSChildName": PRODUCT_CODES[pkg], "PSPath": f"{UNINSTALL_KEY}\\{PRODUCT_CODES[pkg]}"}
                    for pkg in sorted(self.packages)]
        if key == "get-childitem":
            root = paths[0].rstrip("\\").lower()
            if root not in self.dirs and not any(k.startswith(root + "\\") for k in self.files):
                errors.append(_not_found(paths[0], "Get-ChildItem"))
                return []
            pattern = str(p.get("Filter") or "*").lower()
            return [{"Name": v[0].rsplit("\\", 1)[-1], "FullName": v[0], "Length": len(v[1]),
                     "LastWriteTimeUtc": "2026-01-01T00:00:00Z"} for k, v in sorted(self.files.items())
                    if k.startswith(root + "\\") and fnmatch.fnmatch(k.rsplit("\\", 1)[-1], pattern)]
        if key == "remove-item":
            for path in paths:
                low = path.lower()
                if low.startswith("cert:\\"):
                    store, thumb = path.split("\\")[2], path.split("\\")[3]
                    if self.certs.pop((store, thumb.upper()), None) is None:
                        errors.append(_not_found(path, "Remove-Item"))
                    continue
                hit = [k for k in self.files if k == low or k.startswith(low + "\\")]
                if not hit and low not in self.dirs:
                    errors.append(_not_found(path, "Remove-Item"))
                for k in hit:
                    del self.files[k]
                self.dirs = {d for d in self.dirs if not (d == low or d.startswith(low + "\\"))}
            return []
        if key == "test-path":
            return [self.file(x) is not None or x.lower() in self.dirs
                    or (x.lower().startswith("cert:\\") and (x.split("\\")[2], x.split("\\")[-1].upper()) in self.certs)
                    for x in paths]
        if key == "measure-object":
            return [{"Count": len(flow or [])}]
        if key == "get-item":
            found: list[dict[str, object]] = []
            for path in paths:
                store, thumb = path.split("\\")[2], path.split("\\")[3].upper()
                if (store, thumb) not in self.certs:
                    errors.append(_not_found(path, "Get-Item"))
                    continue
                found.append({"Thumbprint": thumb, "HasPrivateKey": self.certs[(store, thumb)],
                              "NotAfter": "2030-01-01T00:00:00Z",
                              "PSPath": f"Microsoft.PowerShell.Security\\Certificate::LocalMachine\\{store}\\{thumb}"})
            return found
        if key == "select-object":
            return [{k: o.get(k) for k in p["Property"]} for o in flow or []]
        if key in ("import-pfxcertificate", "import-certificate"):
            data = self.file(p["FilePath"])
            if data is None:
                return Failure("The system cannot find the file specified.", "System.IO.FileNotFoundException")
            store = p["CertStoreLocation"].split("\\")[-1]
            if key == "import-pfxcertificate":
                password = p["Password"]
                assert isinstance(password, Secret)
                self.pfx_passwords.append(password.reveal())
                try:
                    _key, pfx_cert, _chain = pkcs12.load_key_and_certificates(data, password.reveal().encode())
                except ValueError:
                    return Failure("The PFX file you are trying to import requires either a different password",
                                   "System.ComponentModel.Win32Exception")
                assert pfx_cert is not None
                cert = pfx_cert
                has_key = True
            else:
                cert = x509.load_der_x509_certificate(data)
                has_key = False
            thumb = cert.fingerprint(hashes.SHA1()).hex().upper()
            self.certs[(store, thumb)] = has_key
            return [{"Thumbprint": thumb}]
        if key == "get-itemproperty" and not paths:  # an Uninstall key piped in: its values
            names = {code: pkg for pkg, code in PRODUCT_CODES.items()}
            return [{"PSChildName": o["PSChildName"], "DisplayName": names[o["PSChildName"]],
                     "DisplayVersion": "1.0.0.0"} for o in flow or []]
        if key == "get-itemproperty" and paths[0].lower() == WINDOWS_KEY.lower():
            return [{"ProductName": self.release.product_name, "CurrentBuildNumber": self.release.build_number}]
        if key == "get-itemproperty" and paths[0].lower() == POWERSHELL_KEY.lower():
            return [{"PowerShellVersion": self.release.powershell}]
        if key == "get-itemproperty":
            if self.product_code is None:
                errors.append(_not_found(paths[0], "Get-ItemProperty"))
                return []
            return [{"ProductCode": self.product_code, "PSPath": "x"}]
        if key == "get-website" and "Name" in p:
            return [] if self.site_state is None else [{"name": p["Name"], "state": self.site_state}]
        if key == "get-website":
            tenant = _site_json(TENANT_SITE, self.site_state or "", self.tenant_thumb, 30081)
            sites = [] if self.site_state is None else [tenant]
            return sites + [_site_json(n, s["state"], s["thumb"], s["port"]) for n, s in self.sites.items()]
        if key == "where-object":  # -Property X -Value pattern -Like
            assert "like" in switches, switches
            return [o for o in flow or [] if fnmatch.fnmatch(str(o.get(p["Property"], "")).lower(),
                                                             str(p["Value"]).lower())]
        if key == "convertto-json":  # one object alone is written as an object, as PowerShell does
            items = flow or []
            if not items:
                return []
            return [json.dumps(items[0] if len(items) == 1 else items, separators=(",", ":"))]
        if key == "start-website":
            self.ran.append("Start-Website")
            if p["Name"] in self.sites:
                self.sites[p["Name"]]["state"] = "Started"
            else:
                self.site_state = "Started"
            return []
        if key == "get-webconfigurationproperty":  # the connector site's appSettings
            site = p["PSPath"].rsplit("\\", 1)[-1]
            if site not in self.sites:
                errors.append(ErrorRecordInfo(f"Cannot find path '{p['PSPath']}'", "PathNotFound,Microsoft.IIs",
                                              "ObjectNotFound"))
                return []
            return [{"key": k, "value": v} for k, v in self.app_settings.items()]
        if key == "start-process":  # msiexec /x {code} /qn: a connector product takes its site with it
            assert p["FilePath"] == "msiexec.exe" and "wait" in switches and "passthru" in switches, (p, switches)
            args = list(p["ArgumentList"])
            assert args[0] == "/x" and "/qn" in args, args
            self.ran.append("msiexec /x")
            pkg = next((k for k, v in PRODUCT_CODES.items() if v == args[1]), None)
            if pkg is None or pkg not in self.packages:
                return [{"ExitCode": 1605}]
            self.packages.discard(pkg)
            self.sites.pop(CONNECTOR_SITES[CONNECTOR_PACKAGES.index(pkg)], None)
            if not self.packages:
                self.app_settings = {}
            return [{"ExitCode": 0}]
        if key == "install-connector.ps1":
            self.ran.append("Install-Connector.ps1")
            self.install_connector()
            return []
        if key == "configure-certificates.ps1":  # binds -Thumbprint, else the tenant site's certificate
            self.ran.append("Configure-Certificates.ps1")
            for site in self.sites.values():
                site["thumb"] = p.get("Thumbprint") or self.tenant_thumb
            return []
        if key == "configure-wapconnector.ps1":
            self.ran.append("Configure-WapConnector.ps1")
            self.app_settings = {k: str(v) for k, v in p.items()}
            return []
        if key == ADD_CONNECTOR.lower():  # the PEP's cmdlet; its output files land in the share's folder
            if "disablemulticloud" in switches:
                self.clear_folder(CONNECTOR_OUTPUT)
                verbose.append("Step 'Disable multi-cloud mode' status: 'Success'")
                return []
            self.clear_folder(CONNECTOR_OUTPUT)
            self.dirs.add(CONNECTOR_OUTPUT.lower())
            for cloud in p["AzurePackClouds"]:
                name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", cloud["CloudName"])  # not allowed in a file name
                self.put_file(f"{CONNECTOR_OUTPUT}\\AzurePack-06-27-15-50-{name}.txt", connector_output(
                    cloud["CloudName"], cloud["CloudEndpoint"], p["AzureStackCloudName"]).encode("utf-8"))
            verbose += ["Step 'Configure Azure Pack Connector' status: 'Running'",
                        "Step 'Configure Azure Pack Connector' status: 'Success'",
                        "Waiting for the Azure Stack portal ..."]
            return []
        if key == "update-tenantapi.ps1":
            if self.product_code is None:
                return Failure("MgmtSvc-TenantAPI was not found on this computer.", "x")
            self.product_code = CONNECTOR_TENANT_API
            return []
        if key == "get-mgmtsvcsetting":
            return [{"Namespace": "TenantAPI", "Name": "ManagementStore", "Encrypted": False,
                     "Value": f"Data Source={self.sql_server};Initial Catalog=Microsoft.MgmtSvc.Store;"
                              f"Integrated Security=True"}]
        if key == "get-mgmtsvcdatabasesetting":
            return [{"Namespace": ns, "Name": n, "Value": v} for (ns, n), v in self.rows.items()
                    if ns == p["Namespace"] and n in p["Name"]]
        if key == "set-mgmtsvcdatabasesetting":
            if p["Value"] == "":
                self.rows.pop((p["Namespace"], p["Name"]), None)
            else:
                self.rows[(p["Namespace"], p["Name"])] = p["Value"]
            return []
        if key == "configure-trustazurestack.ps1":
            self.script_params.append(p)
            cred = p.get("SqlCredential")
            assert cred is None or isinstance(cred, Credential)
            data = self.file(p["DataFile"])
            if data is None:
                return Failure(f"Data file not found: {p['DataFile']}", f"Data file not found: {p['DataFile']}")
            doc = json.loads(data.decode("utf-8"))
            partner = doc["AuthenticationIdentityProviderPartner"]
            self.rows[("TenantAPI", "Authentication.IdentityProvider.Secondary")] = json.dumps(
                {"Realm": partner["Realm"], "Certificate": partner["Certificate"],
                 "Endpoint": doc["AzurePackConnectorEndpoint"]}, separators=(",", ":"))
            return []
        raise AssertionError(f"FakeWindowsHost: unexpected command {name} {p}")


def _site_json(name: str, state: str, thumb: str, port: int) -> dict[str, Any]:
    return {"name": name, "state": state, "bindings": {"Collection": [
        {"protocol": "http", "bindingInformation": "*:80:", "certificateHash": ""},
        {"protocol": "https", "bindingInformation": f"*:{port}:", "certificateHash": thumb}]}}


CONNECTOR_REALM = "https://adfs.local.azurestack.external/adfs/6c1a0f4e-0000-4000-8000-000000000001/"
CONNECTOR_CERT_B64 = base64.b64encode(b"\x30\x82\x01\x0a-fake-der").decode()


def connector_output(name: str, endpoint: str, stack: str = "AzureStack", cert: str = CONNECTOR_CERT_B64) -> str:
    """An AzurePack-*.txt output file as Add-AzurePackConnector writes it (inferred format, docs/host-contract.md)."""
    return json.dumps({"CloudName": name, "AzureStackCloudName": stack, "AzurePackConnectorEndpoint": endpoint,
                       "AuthenticationIdentityProviderPartner": {"Realm": CONNECTOR_REALM, "Certificate": cert}},
                      indent=2)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def params_of(transport: FakeTransport, name: str) -> list[Mapping[str, Any]]:
    """Parameters of every command called ``name`` (case-insensitive; script leaf names too)."""
    return [dict(c.parameters) for call in transport.calls for pl in call.statements for c in pl.commands
            if c.name.rsplit("\\", 1)[-1].lower() == name.lower()]
