"""The lab definition file: which simulated hosts exist, what they are, and how clients reach them.

A lab file is YAML validated by :class:`Lab`. Every host listens on its own loopback address (127.0.10.x
style) so all of them can use the standard WinRM ports without editing /etc/hosts; clients connect to
``address:port`` and use ``fqdn`` wherever the procedure names the host (certificates, configuration).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labsim.windows import SUPPORTED, WINDOWS, WindowsRelease, release

FQDN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class Role(str, enum.Enum):
    """What a simulated host is, in the procedure's words."""

    PRIVILEGED_ENDPOINT = "privileged_endpoint"  # AzS-ERCS01: JEA session configuration PrivilegedEndpoint
    AZS_USER_PORTAL = "azs_user_portal"  # AzS-WASP01: certificate stores only
    ASDK_HOST = "asdk_host"  # the operator box: sees \\su1fileserver\SU1_Infrastructure_1
    WAP_TENANT_PORTAL = "wap_tenant_portal"  # MgmtSvc-TenantSite/AuthSite; gets the connector sites
    WAP_TENANT_API = "wap_tenant_api"  # MgmtSvc-TenantAPI; gets Update-TenantAPI
    WAP_SQL = "wap_sql"  # Microsoft.MgmtSvc.* databases
    WAP_EXPRESS = "wap_express"  # all three WAP roles on one computer (the seed's example)


WAP_EXPRESS_ROLES = frozenset({Role.WAP_TENANT_PORTAL, Role.WAP_TENANT_API, Role.WAP_SQL})


class Auth(str, enum.Enum):
    BASIC = "basic"
    NEGOTIATE = "negotiate"  # NTLM inside SPNEGO, and raw NTLM
    CREDSSP = "credssp"


class User(BaseModel):
    """A Windows account known to one host. ``name`` is ``DOMAIN\\user`` or a bare local user."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]
    # SQL sysadmin on this host's SQL instance (only meaningful on wap_sql hosts).
    sql_sysadmin: bool = False


class WinRM(BaseModel):
    model_config = ConfigDict(extra="forbid")
    https_port: Annotated[int, Field(ge=1, le=65535)] | None = 5986
    http_port: Annotated[int, Field(ge=1, le=65535)] | None = 5985
    auth: list[Auth] = Field(default_factory=lambda: [Auth.BASIC, Auth.NEGOTIATE, Auth.CREDSSP], min_length=1)

    @model_validator(mode="after")
    def _some_listener(self) -> WinRM:
        if self.https_port is None and self.http_port is None:
            raise ValueError("a host needs https_port, http_port or both")
        if self.https_port is not None and self.https_port == self.http_port:
            raise ValueError("https_port and http_port must differ")
        return self


class WapSettings(BaseModel):
    """Baseline of a WAP computer before the procedure runs."""

    model_config = ConfigDict(extra="forbid")
    url_rewrite: bool = True  # the IIS URL Rewrite extension is installed
    # SQL server that holds Microsoft.MgmtSvc.Store (the TenantAPI ManagementStore connection string).
    sql_server: str | None = None
    tenant_site_port: Annotated[int, Field(ge=1, le=65535)] = 30081
    # The certificate bound to the WAP sites at baseline: issued by the lab CA, or self-signed as a default WAP
    # install leaves it (Configure-Certificates.ps1 then refuses it unless -Thumbprint names another).
    tenant_site_certificate: Literal["ca_issued", "self_signed"] = "ca_issued"
    # DisplayVersion of the WAP products at baseline; default: labsim's UR9.1 (labsim/hosts/baseline.py [inf]).
    # An older value models a WAP below Update Rollup 9.1.
    version: str | None = None
    # System Center components installed on this computer (None: not installed here), by DisplayVersion.
    spf_version: str | None = None
    vmm_version: str | None = None


class Conditions(BaseModel):
    """How the host's surroundings look at baseline: what preflight probes and a broken lab breaks."""

    model_config = ConfigDict(extra="forbid")
    disk_free_mb: Annotated[int, Field(ge=0)] = 102400  # free space of C: (Get-PSDrive C)
    disk_size_mb: Annotated[int, Field(gt=0)] = 129024
    # Hosts (names or FQDNs) this one cannot reach over the network (Test-Connection / Test-NetConnection).
    cannot_reach: list[str] = Field(default_factory=list)
    # asdk_host: \\su1fileserver\SU1_Infrastructure_1 is visible (False: not mapped / no permission).
    sees_share: bool = True


class Host(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=63)]  # the computer name, e.g. AzS-ERCS01
    fqdn: str
    address: str  # loopback address the host listens on
    roles: list[Role] = Field(min_length=1)
    winrm: WinRM = Field(default_factory=WinRM)
    users: list[User] = Field(min_length=1)
    wap: WapSettings | None = None
    # WAP hosts: the name of the cloud (Lab.clouds) this computer serves; default: a cloud of its own.
    cloud: str | None = None
    conditions: Conditions = Field(default_factory=Conditions)
    # The Windows Server release ("2012 R2" or "2016") and the Windows PowerShell on it (default: the one in the
    # box, 4.0 on 2012 R2; "5.1" there means WMF 5.1 installed later). labsim answers as that release does
    # (labsim/windows.py).
    windows: str = "2016"
    powershell: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _windows(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("name", "?")
        data = dict(data)
        for key in ("windows", "powershell"):  # YAML reads 2016 and 5.1 as numbers
            if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
                data[key] = f"{data[key]:.1f}" if key == "powershell" else str(data[key])
        windows = data.get("windows", "2016")
        if not isinstance(windows, str) or windows not in WINDOWS:
            raise ValueError(f"host {name}: windows {windows!r} is not a release labsim models; use one of "
                             f"{', '.join(repr(w) for w in WINDOWS)}")
        shells = WINDOWS[windows]
        powershell = data.get("powershell")
        if powershell is not None and (not isinstance(powershell, str) or powershell not in shells):
            raise ValueError(f"host {name}: powershell {powershell!r} does not run on Windows Server {windows}; use "
                             f"one of {', '.join(repr(s) for s in shells)} (the first is the one in the box)")
        return data

    @field_validator("fqdn")
    @classmethod
    def _fqdn(cls, v: str) -> str:
        if not FQDN.match(v):
            raise ValueError(f"{v!r} is not a valid FQDN (letters, digits, hyphens, dot-separated labels)")
        return v.lower()

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            ip = ipaddress.ip_address(v)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not an IP address") from exc
        if not ip.is_loopback:
            raise ValueError(f"{v!r} is not a loopback address: labsim only listens on loopback")
        return v

    @model_validator(mode="after")
    def _roles(self) -> Host:
        if Role.PRIVILEGED_ENDPOINT in self.roles:
            if self.winrm.auth != [Auth.CREDSSP]:
                raise ValueError("a privileged endpoint accepts only CredSSP: set winrm.auth to [credssp]")
        if self.is_wap and self.wap is None:
            self.wap = WapSettings()
        if self.release not in SUPPORTED["wap" if self.is_wap else "azure_stack"]:
            supported = SUPPORTED["wap" if self.is_wap else "azure_stack"]
            raise ValueError(f"host {self.name}: windows {self.windows!r} with powershell {self.release.powershell} is "
                             f"not supported for its roles; use "
                             f"{' or '.join(r.describe() for r in supported)}")
        return self

    @property
    def release(self) -> WindowsRelease:
        """The Windows release this host runs (labsim/windows.py)."""
        return release(self.windows, self.powershell)

    @property
    def effective_roles(self) -> frozenset[Role]:
        roles = set(self.roles)
        if Role.WAP_EXPRESS in roles:
            roles |= WAP_EXPRESS_ROLES
        return frozenset(roles)

    @property
    def is_wap(self) -> bool:
        return bool(self.effective_roles & (WAP_EXPRESS_ROLES | {Role.WAP_EXPRESS}))

    def has(self, role: Role) -> bool:
        return role in self.effective_roles


class LabSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How long Add-AzurePackConnector keeps polling after its success line (the real one: minutes).
    pep_polling_seconds: Annotated[float, Field(ge=0)] = 20.0
    # Multiplies the realistic durations of long steps (0 = instant). See labsim latency profile.
    latency_factor: Annotated[float, Field(ge=0)] = 0.0
    # Multiplies the cost of opening a runspace pool (~1 s) and of running a pipeline (~30 ms) on real Windows
    # (labsim.hosts.latency.CONNECTION_COSTS); 0 = free, the default for tests; 1 = realistic.
    connection_cost_factor: Annotated[float, Field(ge=0)] = 0.0
    # Shells whose client vanished without Delete are reaped after this many idle seconds.
    idle_shell_timeout: Annotated[float, Field(gt=0)] = 240.0
    # Receive long-poll cap; must stay under pypsrp's 30 s read timeout.
    operation_timeout: Annotated[float, Field(gt=0, lt=30)] = 20.0


class Cloud(BaseModel):
    """One WAP cloud as Azure Stack's multi-cloud mode names it, served by the WAP hosts that name it."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    # Load-balanced names when a role has several VMs; default: the FQDN of the cloud's first host of that role.
    tenant_portal_fqdn: str | None = None
    tenant_api_fqdn: str | None = None


class Lab(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    azure_stack_cloud_name: str = "AzureStack"
    azure_stack_portal_fqdn: str = "portal.local.azurestack.external"
    adfs_fqdn: str = "adfs.local.azurestack.external"
    settings: LabSettings = Field(default_factory=LabSettings)
    hosts: list[Host] = Field(min_length=1)
    clouds: list[Cloud] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Lab:
        seen: dict[str, set[str]] = {"name": set(), "fqdn": set()}
        endpoints: set[tuple[str, int]] = set()
        for h in self.hosts:
            for key, val in (("name", h.name.lower()), ("fqdn", h.fqdn)):
                if val in seen[key]:
                    raise ValueError(f"two hosts share the {key} {val!r}")
                seen[key].add(val)
            for port in (h.winrm.https_port, h.winrm.http_port):
                if port is not None:
                    if (h.address, port) in endpoints:
                        raise ValueError(f"two hosts listen on {h.address}:{port}")
                    endpoints.add((h.address, port))
        cloud_names = [c.name for c in self.clouds]
        if len(set(n.lower() for n in cloud_names)) != len(cloud_names):
            raise ValueError("two clouds share a name")
        for h in self.hosts:
            if h.cloud is not None and not h.is_wap:
                raise ValueError(f"host {h.name}: only WAP hosts belong to a cloud")
            if h.cloud is not None and self.clouds and h.cloud not in cloud_names:
                raise ValueError(f"host {h.name}: cloud {h.cloud!r} is not one of the lab's clouds "
                                 f"({', '.join(cloud_names)})")
        sql_names = {n for h in self.hosts if h.has(Role.WAP_SQL) for n in (h.name.lower(), h.fqdn)}
        for h in self.hosts:
            if h.wap and h.has(Role.WAP_TENANT_API) and h.wap.sql_server is None and h.has(Role.WAP_SQL):
                h.wap.sql_server = h.name
            if h.wap and h.wap.sql_server and h.wap.sql_server.lower() not in sql_names:
                raise ValueError(f"host {h.name}: sql_server {h.wap.sql_server!r} is not a wap_sql host of this lab")
        return self

    def cloud_hosts(self) -> dict[str, list[Host]]:
        """Cloud name -> the WAP hosts serving it (in lab order). A WAP host without ``cloud`` is its own cloud,
        named after the host."""
        declared = {c.name: [] for c in self.clouds}  # type: dict[str, list[Host]]
        for h in self.hosts:
            if h.is_wap:
                declared.setdefault(h.cloud or h.name, []).append(h)
        return declared

    def host(self, name: str) -> Host:
        """Find a host by computer name or FQDN (case-insensitive)."""
        key = name.lower()
        for h in self.hosts:
            if key in (h.name.lower(), h.fqdn):
                return h
        raise KeyError(f"no host {name!r} in lab {self.name!r}; hosts: {', '.join(h.name for h in self.hosts)}")


class LabFileError(ValueError):
    """The lab file cannot be used; the message lists every problem with its location."""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), without YAML's quote of the offending line: that line may hold a
    user's password."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def load_lab(path: str | Path) -> Lab:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LabFileError(f"cannot read lab file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise LabFileError(f"lab file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise LabFileError(f"lab file {path} must hold a mapping with 'name' and 'hosts'")
    from pydantic import ValidationError

    try:
        return Lab.model_validate(raw)
    except ValidationError as exc:
        lines = [f"lab file {path} has {exc.error_count()} problem(s):"]
        for err in exc.errors():
            lines.append(f"  {_location(err)}: {err['msg']}")
        raise LabFileError("\n".join(lines)) from exc


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _location(err: Any) -> str:
    """Where a problem is. An unexpected key is named only when it looks like a field name: a mangled line
    (``password 'x'`` for ``password: 'x'``) turns a password into a key, and a user entry's keys are never
    shown at all."""
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "extra_forbidden" and loc:
        in_user = len(loc) >= 3 and loc[-3] == "users"
        if in_user or not _PLAIN_KEY.fullmatch(loc[-1]):
            loc[-1] = "<an unexpected key, not shown: it may hold a password>"
    return ".".join(loc) or "(top level)"


DEFAULT_LAB = Path(__file__).with_name("labs") / "default.yaml"
