"""A tiny in-memory Windows host for unit tests of the certificate, bundle, Tenant API and ownership code.

``FakeWindowsHost`` answers the structured commands those providers send (per docs/host-contract.md) from an
in-memory model of the host, command by command through each pipeline, as a FakeTransport handler; so
create/read/update/delete can be exercised end to end without sockets. Faults are injected the way labsim's are
(docs/labsim.md): ``fail`` (a terminating error), ``fail_after`` (after N good runs), ``noop`` (reports success,
does nothing) and ``corrupt`` (an upload that arrives with a byte lost). It is deliberately small: labsim is the
faithful simulator.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from providers.transport import Call, Credential, ErrorRecordInfo, Failure, FakeTransport, Result, Secret

UR91 = "{CF41308C-9BC3-46C1-8B39-135D00E491E8}"
CONNECTOR_TENANT_API = "{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}"


def _not_found(path: str, cmd: str) -> ErrorRecordInfo:
    return ErrorRecordInfo(f"Cannot find path '{path}' because it does not exist.", f"PathNotFound,{cmd}",
                           "ObjectNotFound", target=path)


class FakeWindowsHost:
    """State: ``files`` (lower-case path -> (path, bytes)), ``certs`` ((store, thumb) -> has_key),
    ``product_code``, ``site_state``, ``rows`` ((ns, name) -> value), ``sql_server``.
    ``transport`` is a FakeTransport that this host answers."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.dirs: set[str] = set()
        self.certs: dict[tuple[str, str], bool] = {}
        self.product_code: str | None = UR91
        self.site_state: str | None = "Started"
        self.rows: dict[tuple[str, str], str] = {}
        self.sql_server = "wapcomputer1"
        self.pfx_passwords: list[str] = []
        self.script_params: list[dict[str, Any]] = []
        self.fail: dict[str, Failure] = {}          # command name -> terminating failure (every time)
        self.fail_after: dict[str, int] = {}        # command name -> fail after N successful runs
        self.noop: set[str] = set()                 # command names that report success and do nothing
        self.corrupt: set[str] = set()              # Set-Content / Add-Content: the last byte of each upload is lost
        self._runs: dict[str, int] = {}
        self.transport = FakeTransport(self.handle)

    # -- helpers for tests --------------------------------------------------------------------------------------
    def put_file(self, path: str, data: bytes) -> None:
        self.files[path.lower()] = (path, data)

    def file(self, path: str) -> bytes | None:
        entry = self.files.get(path.lower())
        return entry[1] if entry else None

    # -- the handler ---------------------------------------------------------------------------------------------
    def __call__(self, call: Call) -> Any:
        return self.handle(call)

    def handle(self, call: Call) -> Any:
        outputs: list[list[Any]] = []
        errors: list[ErrorRecordInfo] = []
        for pipeline in call.statements:
            flow: list[Any] | None = None
            for cmd in pipeline.commands:
                name = cmd.name
                key = name.rsplit("\\", 1)[-1].lower()
                self._runs[key] = self._runs.get(key, 0) + 1
                if key in {k.lower() for k in self.fail}:
                    return next(v for k, v in self.fail.items() if k.lower() == key)
                limit = {k.lower(): v for k, v in self.fail_after.items()}.get(key)
                if limit is not None and self._runs[key] > limit:
                    return Failure(f"injected failure of {name}", f"LabsimFault,{name}", "InvalidOperation")
                p = dict(cmd.parameters)
                if key in {k.lower() for k in self.noop}:
                    flow = []
                    continue
                if key in {k.lower() for k in self.corrupt} and isinstance(p.get("Value"), bytes):
                    p["Value"] = p["Value"][:-1]
                before = len(errors)
                flow = self._run(name, key, p, set(s.lower() for s in cmd.switches), flow, errors)
                if str(p.get("ErrorAction", "")).lower() in ("silentlycontinue", "ignore"):
                    del errors[before:]
                if isinstance(flow, Failure):
                    return flow
            outputs.append(flow or [])
        return Result(outputs=outputs, errors=errors)

    def _run(self, name: str, key: str, p: dict[str, Any], switches: set[str], flow: list[Any] | None,
             errors: list[ErrorRecordInfo]) -> Any:
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
        if key == "get-childitem":
            root = paths[0].rstrip("\\").lower()
            if root not in self.dirs and not any(k.startswith(root + "\\") for k in self.files):
                errors.append(_not_found(paths[0], "Get-ChildItem"))
                return []
            return [{"FullName": v[0], "Length": len(v[1])} for k, v in sorted(self.files.items())
                    if k.startswith(root + "\\")]
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
            out = []
            for path in paths:
                store, thumb = path.split("\\")[2], path.split("\\")[3].upper()
                if (store, thumb) not in self.certs:
                    errors.append(_not_found(path, "Get-Item"))
                    continue
                out.append({"Thumbprint": thumb, "HasPrivateKey": self.certs[(store, thumb)],
                            "NotAfter": "2030-01-01T00:00:00Z",
                            "PSPath": f"Microsoft.PowerShell.Security\\Certificate::LocalMachine\\{store}\\{thumb}"})
            return out
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
                    _key, cert, _chain = pkcs12.load_key_and_certificates(data, password.reveal().encode())
                except ValueError:
                    return Failure("The PFX file you are trying to import requires either a different password",
                                   "System.ComponentModel.Win32Exception")
                has_key = True
            else:
                cert = x509.load_der_x509_certificate(data)
                has_key = False
            thumb = cert.fingerprint(hashes.SHA1()).hex().upper()
            self.certs[(store, thumb)] = has_key
            return [{"Thumbprint": thumb}]
        if key == "get-itemproperty":
            if self.product_code is None:
                errors.append(_not_found(paths[0], "Get-ItemProperty"))
                return []
            return [{"ProductCode": self.product_code, "PSPath": "x"}]
        if key == "get-website":
            return [] if self.site_state is None else [{"name": p["Name"], "state": self.site_state}]
        if key == "start-website":
            self.site_state = "Started"
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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def params_of(transport: FakeTransport, name: str) -> list[Mapping[str, Any]]:
    """Parameters of every command called ``name`` (case-insensitive; script leaf names too)."""
    return [dict(c.parameters) for call in transport.calls for pl in call.statements for c in pl.commands
            if c.name.rsplit("\\", 1)[-1].lower() == name.lower()]
