"""Targets: what each host of the stack is for (from the validated configuration) and the facts it is asked.

Every host gets one pipeline: the statements of its facts, one marked section each (``probes``); a section that
fails on its own does not hide the others. The facts themselves (commands and parsers) are providers/facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.config import StackConfig
from providers.facts import Fact
from providers.facts.certstore import CERTIFICATE_PROPERTIES, StoreListing, TrustedSubjects
from providers.facts.files import PathExists
from providers.facts.iis import HttpsBinding, Websites
from providers.facts.locations import ADD_CONNECTOR_CMDLET, CONNECTOR_SITE, INFRASTRUCTURE_SHARE
from providers.facts.network import Ping, TcpPort  # noqa: F401  (judging parses with them)
from providers.facts.products import InstalledProducts
from providers.facts.system import CommandAvailable, FreeSpace, UrlRewrite, WindowsVersion
from providers.facts.tenant_api import ManagementStore, Sysadmin
from providers.transport import Credential, Pipeline, Secret

#: Every command preflight sends: each one only reads (tests check the invocation log against this list).
READ_COMMANDS = frozenset({"Write-Output", "Get-Command", "Get-ChildItem", "Get-ItemProperty", "Get-Website",
                           "Get-WebBinding", "Get-MgmtSvcSetting", "Get-PSDrive", "Select-Object", "Test-Path",
                           "Test-Connection", "Test-NetConnection", "Invoke-Sqlcmd"})


@dataclass
class HostTargets:
    """What preflight asks one host, derived from the stack configuration."""

    name: str
    pep: bool = False
    user_portal: bool = False
    share: bool = False
    tenant_portal: bool = False
    tenant_api: bool = False
    bundle: bool = False
    # clouds whose trust this Tenant API VM runs: (cloud index, sql server or None, sql credential name or None)
    trusts: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    # tenant portal VMs AzS-WASP01 must reach: host name -> fqdn
    portals_to_reach: dict[str, str] = field(default_factory=dict)
    # tenant portal: the clouds it serves (indices into wapconnector:clouds)
    portal_clouds: list[int] = field(default_factory=list)

    def endpoint_fqdns(self, config: StackConfig) -> list[str]:
        """The connector endpoint FQDN(s) its certificate must name."""
        return [config.clouds[i].endpoint_fqdn for i in self.portal_clouds]


def targets(config: StackConfig) -> dict[str, HostTargets]:
    azs = config.azure_stack
    assert azs is not None
    out: dict[str, HostTargets] = {}

    def t(name: str) -> HostTargets:
        return out.setdefault(name, HostTargets(name))

    t(azs.privileged_endpoint).pep = True
    t(azs.user_portal_host).user_portal = True
    t(azs.share_host).share = True
    for i, cloud in enumerate(config.clouds):
        for h in cloud.tenant_portal_hosts:
            t(h).tenant_portal = t(h).bundle = True
            t(h).portal_clouds.append(i)
            t(azs.user_portal_host).portals_to_reach[h] = config.hosts[h].fqdn
        for h in cloud.tenant_api_hosts:
            t(h).tenant_api = t(h).bundle = True
        trust_host = cloud.trust_host or cloud.tenant_api_hosts[0]
        t(trust_host).trusts.append((i, cloud.sql_server, cloud.sql_credential))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The facts each section reads (judging parses a section's objects with the same fact)

PEP = CommandAvailable(ADD_CONNECTOR_CMDLET)
WINDOWS = WindowsVersion()
PACKAGES = InstalledProducts()
SITES = Websites()
URL_REWRITE = UrlRewrite()
BINDING = HttpsBinding(CONNECTOR_SITE)
MY = StoreListing("My", CERTIFICATE_PROPERTIES)
TRUSTED = TrustedSubjects()
SHARE = PathExists(INFRASTRUCTURE_SHARE)
STORE = ManagementStore(select=True)


def disk_fact(destination: str) -> FreeSpace:
    """The free space of the drive the bundle is staged on."""
    return FreeSpace(destination[0].upper())


def sysadmin_fact(config: StackConfig, sql_server: str, credential_name: str | None) -> Sysadmin:
    """Whether the login the trust script will use is sysadmin on the Store's SQL server."""
    return Sysadmin(sql_server, _credential(config, credential_name))


def port_facts(portals: Mapping[str, tuple[str, int]]) -> list[tuple[str, Fact[Any]]]:
    """AzS-WASP01's TCP test of each installed connector endpoint (host -> (fqdn, port))."""
    return [(f"port:{host}", TcpPort(fqdn, port)) for host, (fqdn, port) in portals.items()]


def host_facts(t: HostTargets, config: StackConfig) -> list[tuple[str, Fact[Any]]]:
    """(section key, fact) of one host's first pipeline, in order."""
    if t.pep:  # NoLanguage JEA: one statement per call
        return [("pep", PEP)]
    out: list[tuple[str, Fact[Any]]] = []
    if t.bundle and config.bundle is not None:
        out.append(("disk", disk_fact(config.bundle.destination)))
    out.append(("windows", WINDOWS))
    if t.tenant_portal or t.tenant_api:
        out += [("packages", PACKAGES), ("sites", SITES)]
    if t.tenant_portal:
        out += [("urlrewrite", URL_REWRITE), ("binding", BINDING), ("my", MY)]
    if t.tenant_portal or t.user_portal:
        out.append(("trusted", TRUSTED))
    if t.user_portal:
        out += [(f"ping:{host}", Ping(fqdn)) for host, fqdn in t.portals_to_reach.items()]
    if t.share:
        out.append(("share", SHARE))
    if t.tenant_api:
        out.append(("store", STORE))
    out += [(f"sysadmin:{i}", sysadmin_fact(config, sql, cred_name)) for i, sql, cred_name in t.trusts if sql]
    return out


def probes(t: HostTargets, config: StackConfig) -> list[tuple[str, list[Pipeline]]]:
    """(section key, statements) of one host's first pipeline, in order. Each section may fail on its own."""
    return [(key, fact.statements()) for key, fact in host_facts(t, config)]


def _credential(config: StackConfig, name: str | None) -> Credential | None:
    if not name:
        return None
    cred = config.credentials[name]
    return Credential(cred.username, Secret(cred.password))


def sections_of(plan: Sequence[tuple[str, Sequence[Pipeline]]],
                outputs: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """The output objects of each section of ``plan``: its statements' outputs (``Result.outputs``), in order."""
    sections: dict[str, list[Any]] = {}
    index = 0
    for key, stmts in plan:
        sections[key] = [o for out in outputs[index:index + len(stmts)] for o in out]
        index += len(stmts)
    return sections

