"""A lab of fake hosts that answer preflight's reads as the real ones would, and the stack that points at it.

Each :class:`Host` says what a computer holds (its Windows, installed products, IIS sites, certificates, what it can
reach, ...); :class:`FakeLab` answers each read command from that, so tests state a host's condition in the
domain's words and read the report an operator reads. Nothing here knows how preflight groups its reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import StackConfig, parse_stack_config
from components.preflight import Report, Row, run_preflight
from providers.errors import ConnectorError
from providers.transport import Call, Credential, ErrorRecordInfo, Failure, FakeTransport, Pipeline, Result

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CA = "CN=Contoso Issuing CA"
TENANT = "tenant.contoso.com"
WS2012R2 = ("Windows Server 2012 R2 Datacenter", "9600")
WS2016 = ("Windows Server 2016 Datacenter", "14393")
UR91 = "3.50.48.0"


def certificate(**change: Any) -> dict[str, Any]:
    """A connector certificate as Cert:\\LocalMachine\\My shows it: CA-issued, for the tenant portal, server auth."""
    return {"Thumbprint": "AB" * 20, "Subject": f"CN={TENANT}", "Issuer": CA,
            "NotBefore": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "NotAfter": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            "HasPrivateKey": True, "DnsNameList": [{"Punycode": TENANT, "Unicode": TENANT}],
            "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication", "ObjectId": "1.3.6.1.5.5.7.3.1"}],
            **change}


@dataclass
class Host:
    """What one computer holds, as its registry, IIS, certificate stores and network show it."""

    windows: tuple[str, str] | None = WS2012R2  # ProductName, CurrentBuildNumber
    powershell: str | None = "4.0"
    drives: dict[str, int] = field(default_factory=lambda: {"C": 50 * 2**30})  # drive letter -> bytes free
    packages: list[tuple[str, str]] = field(default_factory=list)  # DisplayName, DisplayVersion
    broken_uninstall_entries: int = 0  # Uninstall keys whose values Get-ItemProperty cannot read
    sites: dict[str, str] = field(default_factory=dict)  # IIS site -> state
    url_rewrite: str | None = None
    binding: str | None = None  # thumbprint bound to the connector site's https binding; None: no binding
    my: list[dict[str, Any]] = field(default_factory=list)
    root: list[str] = field(default_factory=list)  # subjects in Cert:\LocalMachine\Root
    ca: list[str] = field(default_factory=list)  # subjects in Cert:\LocalMachine\CA
    answers_ping: set[str] = field(default_factory=set)  # fqdns that answer a ping from here
    open_ports: set[tuple[str, int]] = field(default_factory=set)  # (fqdn, port) a TCP test from here reaches
    share: bool = False  # \\su1fileserver\SU1_Infrastructure_1 visible
    management_store: str | None = None  # the TenantAPI ManagementStore connection string
    sysadmin: dict[str, Any] = field(default_factory=dict)  # SQL server -> IsSysadmin of the login asked
    cmdlets: set[str] = field(default_factory=set)  # what a PrivilegedEndpoint session offers
    down: ConnectorError | None = None  # every call to the host fails so
    # "command name[ path]" -> the terminating error a read that starts so ends with, or how the connection
    # breaks while it runs
    failing: dict[str, str | ConnectorError] = field(default_factory=dict)


class FakeLab:
    """Hosts by name; ``transport`` answers each read from the host it was sent to."""

    def __init__(self, config: StackConfig, hosts: Mapping[str, Host]) -> None:
        self.config = config
        self.hosts = dict(hosts)
        self.transport = FakeTransport(self.answer)

    def host_of(self, call: Call) -> Host:
        name = next(n for n, h in self.config.hosts.items() if h.fqdn == call.host)
        return self.hosts[name]

    def answer(self, call: Call) -> Any:
        host = self.host_of(call)
        if host.down is not None:
            return host.down
        outputs, records = [], []
        for pipeline in call.statements:
            first = pipeline.commands[0]
            what = f"{first.name} {first.parameters.get('Path', '')}"
            for start, failure in host.failing.items():
                if what.startswith(start):
                    return failure if isinstance(failure, ConnectorError) else Failure(failure, error_id="Failed")
            out = run_pipeline(host, pipeline)
            if isinstance(out, Failure):
                return out
            objects, errors = out
            outputs.append(objects)
            records += errors
        return Result(outputs=outputs, errors=records)

    def sql_logins(self) -> list[str | None]:
        """The login each SQL question was asked as (None: the WinRM user's own Windows login)."""
        out: list[str | None] = []
        for call in self.transport.calls:
            for pipeline in call.statements:
                for c in pipeline.commands:
                    if c.name == "Invoke-Sqlcmd":
                        cred = c.parameters.get("Credential")
                        out.append(cred.user if isinstance(cred, Credential) else None)
        return out

    def run(self, project_dir: Path, now: dt.datetime | None = NOW) -> Report:
        return run_preflight(self.config, transport=self.transport, project_dir=project(project_dir), now=now)


def project(project_dir: Path) -> Path:
    """A project folder with the extracted bundle (3 KiB) unless it has one."""
    bundle = project_dir / "bundle"
    if not bundle.exists():
        bundle.mkdir(parents=True)
        (bundle / "Connector.msi").write_bytes(b"x" * 3 * 1024)
    return project_dir


# -- Windows, as far as preflight's reads see it ------------------------------------------------------------------
# Names of cmdlets, parameters, properties, registry keys, stores and sites are case-insensitive, as on Windows.
PARAMETERS = {
    "get-command": {"name"}, "get-psdrive": {"name", "psprovider", "erroraction"},
    "get-itemproperty": {"path", "erroraction"}, "get-childitem": {"path", "erroraction"}, "get-website": set(),
    "get-webbinding": {"name", "protocol"}, "test-connection": {"computername", "count"},
    "test-netconnection": {"computername", "port", "informationlevel"}, "test-path": {"path"},
    "get-mgmtsvcsetting": {"namespace", "name"}, "invoke-sqlcmd": {"serverinstance", "database", "query", "credential"},
    "write-output": {"inputobject"}, "select-object": {"property"},
}
ACTION_PREFERENCES = ("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend")
WINDOWS_KEY = "hklm:\\software\\microsoft\\windows nt\\currentversion"
POWERSHELL_KEY = "hklm:\\software\\microsoft\\powershell\\3\\powershellengine"
URL_REWRITE_KEY = "hklm:\\software\\microsoft\\iis extensions\\url rewrite"
UNINSTALL_KEY = "hklm:\\software\\microsoft\\windows\\currentversion\\uninstall"
SHARE = "\\\\su1fileserver\\su1_infrastructure_1"
SYSADMIN = re.compile(r"SELECT IS_SRVROLEMEMBER\('sysadmin'\) AS (\w+)", re.IGNORECASE)


def _eq(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def run_pipeline(host: Host, pipeline: Pipeline) -> tuple[list[Any], list[ErrorRecordInfo]] | Failure:
    """What ``pipeline`` writes on ``host`` (output, non-terminating errors), or how it fails."""
    objects: list[Any] = []
    errors: list[ErrorRecordInfo] = []
    for i, c in enumerate(pipeline.commands):
        name = c.name.lower()
        if name not in PARAMETERS:
            return Failure(f"The term '{c.name}' is not recognized as the name of a cmdlet, function, script file, "
                           f"or operable program.", error_id="CommandNotFoundException")
        p = {k.lower(): v for k, v in c.parameters.items()}
        for k in p:
            if k not in PARAMETERS[name]:
                return Failure(f"A parameter cannot be found that matches parameter name '{k}'.",
                               error_id="NamedParameterNotFound")
        action = p.get("erroraction", "Continue")
        if not any(_eq(action, a) for a in ACTION_PREFERENCES):
            return Failure(f"Cannot bind parameter 'ErrorAction'. Cannot convert value \"{action}\" to type "
                           f"\"System.Management.Automation.ActionPreference\".", error_id="ParameterBindingFailed")
        if i == 0:
            read = first_read(host, name, p, {s.lower() for s in c.switches})
            if isinstance(read, Failure):
                return read
            objects = read or []
            if read is None:  # a path that is not there: an error, unless the read says it is an answer
                if not _eq(p.get("erroraction"), "SilentlyContinue"):
                    errors.append(ErrorRecordInfo(f"Cannot find path '{p.get('path')}' because it does not exist.",
                                                  "PathNotFound"))
        elif name == "select-object":
            wanted = [w.lower() for w in p["property"]]
            objects = [{k: v for k, v in o.items() if k.lower() in wanted} if isinstance(o, dict) else o
                       for o in objects]
        elif name != "get-itemproperty":  # Get-ChildItem | Get-ItemProperty: each key's values (as listed here)
            raise AssertionError(f"not a read preflight makes: {c}")
    first = pipeline.commands[0]
    if _eq(first.name, "Get-ChildItem") and str(first.parameters.get("Path", "")).lower() == UNINSTALL_KEY:
        errors += [ErrorRecordInfo("Specified cast is not valid.", "System.InvalidCastException")
                   ] * host.broken_uninstall_entries  # written by Get-ItemProperty; the other keys still come
    return objects, errors


def first_read(host: Host, name: str, p: dict[str, Any], switches: set[str]) -> list[Any] | Failure | None:
    path = str(p.get("path", "")).lower()
    if name == "get-command":
        return [{"Name": n} for n in p["name"] if any(_eq(n, have) for have in host.cmdlets)]
    if name == "get-psdrive":
        if not _eq(p.get("psprovider"), "FileSystem"):
            return None
        return [{"Name": d, "Free": free} for d, free in host.drives.items() if any(_eq(n, d) for n in p["name"])]
    if name == "get-itemproperty":
        if path == WINDOWS_KEY and host.windows:
            return [{"ProductName": host.windows[0], "CurrentBuildNumber": host.windows[1], "InstallationType":
                     "Server"}]
        if path == POWERSHELL_KEY and host.powershell:
            return [{"PowerShellVersion": host.powershell, "RuntimeVersion": "v4.0.30319"}]
        if path == URL_REWRITE_KEY and host.url_rewrite:
            return [{"Version": host.url_rewrite, "Install": 1}]
        return None
    if name == "get-childitem":
        if path == UNINSTALL_KEY:
            return [{"DisplayName": n, "DisplayVersion": v, "Publisher": "Microsoft Corporation"}
                    for n, v in host.packages]
        stores = {"cert:\\localmachine\\my": host.my,
                  "cert:\\localmachine\\root": [{"Subject": s, "Thumbprint": "CD" * 20} for s in host.root],
                  "cert:\\localmachine\\ca": [{"Subject": s, "Thumbprint": "EF" * 20} for s in host.ca]}
        return list(stores[path]) if path in stores else None
    if name == "get-website":
        return [{"name": n, "state": s, "physicalPath": "C:\\inetpub"} for n, s in host.sites.items()]
    if name == "get-webbinding":
        wanted = _eq(p.get("name"), "MgmtSvc-Connector") and _eq(p.get("protocol"), "https")
        return [{"certificateHash": host.binding, "protocol": "https"}] if wanted and host.binding is not None else []
    if name == "test-connection":
        answered = p["computername"][0] in host.answers_ping and p.get("count", 4) >= 1
        return [answered] if "quiet" in switches else [{"StatusCode": 0 if answered else 11010}]
    if name == "test-netconnection":
        reached = (p["computername"], p["port"]) in host.open_ports
        return [reached] if _eq(p.get("informationlevel"), "Quiet") else [{"TcpTestSucceeded": reached}]
    if name == "test-path":
        return [host.share and str(p["path"]).lower() == SHARE]
    if name == "get-mgmtsvcsetting":
        if host.management_store is None or not (_eq(p.get("namespace"), "TenantAPI")
                                                 and _eq(p.get("name"), "ManagementStore")):
            return []
        return [{"Name": "ManagementStore", "Value": host.management_store, "Encrypted": False}]
    if name == "invoke-sqlcmd":
        if not _eq(p.get("database"), "Microsoft.MgmtSvc.Store"):
            return Failure(f"Cannot open database \"{p.get('database')}\" requested by the login.")
        asked = SYSADMIN.fullmatch(str(p.get("query", "")))
        assert asked, f"not the question preflight asks SQL Server: {p.get('query')}"
        return [{asked.group(1): host.sysadmin[p["serverinstance"]]}]
    if name == "write-output":
        return [p["inputobject"]]
    raise AssertionError(f"not a read preflight makes: {name}")


def stack(edit: Callable[[dict[str, Any]], None] | None = None, project_dir: Path | None = None,
          **cloud: Any) -> StackConfig:
    """One cloud: two tenant portal VMs, one Tenant API VM; the Azure Stack side's PEP, AzS-WASP01 and share host.
    Files it names are relative to ``project_dir`` (default: the working directory)."""
    raw: dict[str, Any] = {
        "azureStack": {"privilegedEndpoint": "pep", "userPortalHost": "wasp", "shareHost": "host"},
        "hosts": {n: {"fqdn": f"{n}.contoso.com", "credential": "admin",
                      **({"auth": "credssp", "allowCredssp": True} if n == "pep" else {})}
                  for n in ("pep", "wasp", "host", "portal1", "portal2", "api1")},
        "credentials": {"admin": {"username": "CONTOSO\\admin", "password": "pw-not-real"},
                        "sql": {"username": "sa-trust", "password": "sql-pw-not-real"}},
        "bundle": {"sourceDir": "bundle"},
        "clouds": [{"name": "C1", "tenantPortalFqdn": TENANT, "tenantApiFqdn": "api.contoso.com",
                    "tenantPortalHosts": ["portal1", "portal2"], "tenantApiHosts": ["api1"], **cloud}],
    }
    if edit:
        edit(raw)
    return parse_stack_config(raw, project_dir=project_dir)


def second_cloud(raw: dict[str, Any], **cloud: Any) -> None:
    """Adds cloud C2: its tenant portal VM portal3 (tenant2.contoso.com), its Tenant API VM api2."""
    for n in ("portal3", "api2"):
        raw["hosts"][n] = {"fqdn": f"{n}.contoso.com", "credential": "admin"}
    raw["clouds"].append({"name": "C2", "tenantPortalFqdn": "tenant2.contoso.com",
                          "tenantApiFqdn": "api2.contoso.com", "tenantPortalHosts": ["portal3"],
                          "tenantApiHosts": ["api2"], **cloud})


def portal() -> Host:
    return Host(packages=[("Windows Azure Pack - Tenant Site - 2013", UR91),
                          ("Windows Azure Pack - Tenant Authentication Site - 2013", UR91)],
                sites={"MgmtSvc-TenantSite": "Started", "MgmtSvc-AuthSite": "Started"}, url_rewrite="7.2.1952")


def tenant_api() -> Host:
    return Host(packages=[("Windows Azure Pack - Tenant API - 2013", UR91)], sites={"MgmtSvc-TenantAPI": "Started"},
                management_store="Data Source=sql01.contoso.com;Initial Catalog=Microsoft.MgmtSvc.Store;"
                                 "Integrated Security=True", sysadmin={"sql01": 1, "sql01.contoso.com": 1})


def healthy(config: StackConfig) -> FakeLab:
    """Every host ready for the connector, nothing of it installed yet."""
    portals = {h for c in config.clouds for h in c.tenant_portal_hosts}
    apis = {h for c in config.clouds for h in c.tenant_api_hosts}
    hosts = {
        "pep": Host(windows=None, powershell=None, drives={}, cmdlets={"Add-AzurePackConnector"}),
        "wasp": Host(windows=WS2016, powershell="5.1.14393.0", root=[CA],
                     answers_ping={config.hosts[p].fqdn for p in portals}),
        "host": Host(windows=WS2016, powershell="5.1.14393.0", share=True),
        **{p: portal() for p in portals},
        **{a: tenant_api() for a in apis},
    }
    return FakeLab(config, hosts)


def rows_of(report: Report, host: str) -> dict[str, Row]:
    return {r.check: r for r in report.rows if r.host == host}


def row(report: Report, host: str, check: str) -> Row:
    found = [r for r in report.rows if r.host == host and r.check == check]
    assert len(found) == 1, (host, check, report.table())
    return found[0]
