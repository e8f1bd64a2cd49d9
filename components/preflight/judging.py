"""Judging: the hosts' answers (and what this machine can check locally) -> one row per check.

Pure functions, tested on tables: each section's objects are parsed by the fact that asked for them
(providers/facts), then judged against what the stack needs. What could not be read is said, never guessed: a
check that could not run is a SKIP with the reason.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from components.config import NAMESPACE, StackConfig
from components.preflight import targets as T
from components.preflight.certificates import certificate_problems, lab_ca_problem
from components.preflight.report import FAIL, PASS, SKIP, WARN, Row
from components.preflight.targets import HostTargets
from providers.errors import (
    AuthenticationFailed,
    ConnectorError,
    HostUnreachable,
    StepTimedOut,
    TlsVerificationFailed,
    TransportError,
)
from providers.facts import Fact
from providers.facts.iis import site_named
from providers.facts.locations import (
    CONNECTOR_PORT,
    CONNECTOR_SITE,
    INFRASTRUCTURE_SHARE,
    POWERSHELL_KEY,
    TENANT_API_SITE,
    TENANT_PORTAL_SITES,
)
from providers.facts.network import TcpPort
from providers.facts.products import version_tuple
from providers.facts.tenant_api import Sysadmin, valid_server
from providers.transport import PRIVILEGED_ENDPOINT, HostConnection

V = TypeVar("V")

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — what the checks take for granted, marked [doc]/[pub]/[inf]/[project choice].
#
# [doc] the seed's prerequisites: WAP Update Rollup 9.1 or later; SPF and VMM UR9 or later (2012 R2 or 2016).
# [inf] the DisplayVersion those rollups show in the Uninstall keys (nobody has published a table we can cite):
MIN_WAP_VERSION = (3, 50, 48, 0)
MIN_SPF_VERSION = (7, 2, 1034, 0)  # SPF 2012 R2 UR9; SPF 2016 is 7.3.x
MIN_VMM_VERSION = (3, 2, 8145, 0)  # VMM 2012 R2 UR9; VMM 2016 is 4.0.x
WAP_PACKAGES = "Windows Azure Pack - *"
SYSTEM_CENTER_PACKAGES = {"SPF": "*Service Provider Foundation*", "VMM": "*Virtual Machine Manager*"}
# The Windows PowerShell the providers need on each kind of host: every command they send exists there (the
# version table labsim/windows.py, checked by tests/unit/test_windows_versions.py): Windows Server 2012 R2's
# in-box 4.0 on WAP computers; Windows Server 2016's 5.1 on Azure Stack's.
MIN_POWERSHELL = {"wap": (4, 0), "azure_stack": (5, 1)}
# [project choice] room for the bundle: its size plus a margin for what its MSIs install.
BUNDLE_MARGIN_BYTES = 200 * 1024 * 1024
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class HostFacts:
    """What one host answered. ``error`` is the connection-level failure, if any; ``section_errors`` the
    sections that failed on their own (a missing cmdlet, a SQL login refused)."""

    name: str
    conn: HostConnection | None = None
    settings_problem: str | None = None
    error: ConnectorError | None = None
    sections: dict[str, list[Any]] = field(default_factory=dict)
    section_errors: dict[str, str] = field(default_factory=dict)
    second: dict[str, Any] = field(default_factory=dict)  # second-round answers (port tests, discovered SQL)


def _show_version(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def management_store_server(objs: Sequence[Any]) -> str | None:
    """The Store's SQL server the ManagementStore section names, when it is a SQL Server name."""
    return valid_server(T.STORE.parse(objs))


def _connection_rows(f: HostFacts, t: HostTargets) -> tuple[list[Row], bool]:
    """Reach / TLS / authentication rows; True when the host answered (role checks can be judged)."""
    h = f.name
    if f.settings_problem is not None:
        return [Row(h, "connection settings", FAIL, f.settings_problem,
                    f"fix {NAMESPACE}:hosts.{h} (and the CA file it names)")], False
    conn = f.conn
    assert conn is not None
    auth_check = "authentication (CredSSP)" if t.pep else "authentication"
    if conn.https and conn.verify:
        tls_ok = f"certificate trusted for {conn.tls_name}" + (
            f" (CA file {os.path.basename(conn.ca_file)})" if conn.ca_file
            else f" (CA {conn.ca_source})" if conn.ca_pem else " (system CAs)")
    elif conn.https:
        tls_ok = "not verified (verify: false)"
    else:
        tls_ok = "http: no TLS"
    tls_status = PASS if conn.https and conn.verify else WARN
    tls_todo = "" if tls_status == PASS else f"use https with verification for {NAMESPACE}:hosts.{h}"
    reach = Row(h, "reachable", PASS, f"WinRM answered on {conn.endpoint}")
    err = f.error
    not_checked = "not checked: the host did not get that far"
    if err is None:
        return [reach, Row(h, "TLS", tls_status, tls_ok, tls_todo),
                Row(h, auth_check, PASS, f"{conn.username or 'Kerberos ticket'} accepted ({conn.auth})")], True
    if isinstance(err, HostUnreachable):
        return [Row(h, "reachable", FAIL, f"no answer from {conn.endpoint}: {getattr(err, 'detail', err)}",
                    "start the host / its WinRM listener, or fix address and port in the stack config"),
                Row(h, "TLS", SKIP, not_checked), Row(h, auth_check, SKIP, not_checked)], False
    if isinstance(err, TlsVerificationFailed):
        return [reach, Row(h, "TLS", FAIL, f"not trusted, checked as {conn.tls_name}: {err.detail}",
                           f"give {NAMESPACE}:hosts.{h}.caFile the CA that issued the WinRM certificate, or set "
                           f"tlsServerName to the name it carries"),
                Row(h, auth_check, SKIP, not_checked)], False
    if isinstance(err, AuthenticationFailed):
        return [reach, Row(h, "TLS", tls_status, tls_ok, tls_todo),
                Row(h, auth_check, FAIL, f"{conn.username} refused ({conn.auth})",
                    f"check {NAMESPACE}:credentials of {h}"
                    + (" and that CredSSP is enabled for the privileged endpoint (Enable-WSManCredSSP)"
                       if t.pep else ""))], False
    if t.pep and isinstance(err, TransportError):
        return [reach, Row(h, "TLS", tls_status, tls_ok, tls_todo),
                Row(h, auth_check, PASS, f"{conn.username} accepted"),
                Row(h, "PrivilegedEndpoint", FAIL, f"no {PRIVILEGED_ENDPOINT} session: {err.detail}",
                    "connect to an ERCS VM that has the PrivilegedEndpoint session configuration")], False
    what = "timed out" if isinstance(err, StepTimedOut) else "failed"
    return [reach, Row(h, "remoting", FAIL, f"PowerShell remoting {what}: {err}",
                       "check the WinRM service on the host")], False


def _answer(f: HostFacts, key: str, fact: Fact[V]) -> tuple[V, str | None]:
    """A section's value, parsed by the fact that asked for it (from nothing when the section failed), and the
    section's error."""
    if key in f.section_errors:
        return fact.parse([]), f.section_errors[key]
    return fact.parse(f.sections.get(key, [])), None


def evaluate(config: StackConfig, tgts: Mapping[str, HostTargets], facts: Mapping[str, HostFacts],
             *, bundle_bytes: int | None, now: dt.datetime | None = None) -> list[Row]:
    now = now or dt.datetime.now(dt.UTC)
    rows: list[Row] = []
    azs = config.azure_stack
    assert azs is not None
    wasp = facts.get(azs.user_portal_host)
    wasp_answered = False
    trusted_on_wasp: set[str] = set()
    if wasp is not None and wasp.error is None and wasp.settings_problem is None:
        wasp_answered = True
        trusted_on_wasp, _ = _answer(wasp, "trusted", T.TRUSTED)
    for name, t in tgts.items():
        f = facts[name]
        conn_rows, answered = _connection_rows(f, t)
        rows += conn_rows
        if not answered:
            rows.append(Row(name, "role checks", SKIP, "not run: the host did not answer (see above)"))
            continue
        rows += _role_rows(config, t, f, bundle_bytes, now, trusted_on_wasp if wasp_answered else None, wasp)
    return rows


def _role_rows(config: StackConfig, t: HostTargets, f: HostFacts, bundle_bytes: int | None, now: dt.datetime,
               trusted_on_wasp: set[str] | None, wasp: HostFacts | None) -> list[Row]:
    h = t.name
    rows: list[Row] = [_windows_row(t, f)]
    if t.pep:
        found, err = _answer(f, "pep", T.PEP)
        rows.append(Row(h, "PrivilegedEndpoint", PASS if found else FAIL,
                        f"session opened; {T.PEP.name} available" if found else
                        f"session opened, but {T.PEP.name} is not available ({err or 'not listed'})",
                        "" if found else "this Azure Stack version's PEP no longer offers multi-cloud mode; the "
                                         f"connector needs a version that has {T.PEP.name}"))
        return rows
    if t.bundle and bundle_bytes is not None:
        assert config.bundle is not None
        free, err = _answer(f, "disk", T.disk_fact(config.bundle.destination))
        need = bundle_bytes + BUNDLE_MARGIN_BYTES
        drive = config.bundle.destination[:2]
        if free is None:
            rows.append(Row(h, "room for the bundle", FAIL,
                            f"cannot read the free space of {drive} ({err or 'no drive'})",
                            f"check {NAMESPACE}:bundle.destination names a drive of the host"))
        else:
            ok = int(free) >= need
            rows.append(Row(h, "room for the bundle", PASS if ok else FAIL,
                            f"{int(free) // 2**20} MiB free on {drive}, {need // 2**20} MiB needed",
                            "" if ok else f"free at least {(need - int(free)) // 2**20 + 1} MiB on {drive} or set "
                                          f"{NAMESPACE}:bundle.destination to another drive"))
    if t.tenant_portal or t.tenant_api:
        rows += _version_rows(h, f)
        listed, err = _answer(f, "sites", T.SITES)
        sites = {site.name.lower(): site.state for site in listed}
        wanted = (TENANT_PORTAL_SITES if t.tenant_portal else ()) + ((TENANT_API_SITE,) if t.tenant_api else ())
        missing = [s for s in wanted if s.lower() not in sites]
        stopped = [s for s in wanted if sites.get(s.lower()) not in (None, "Started")]
        if err:
            rows.append(Row(h, "WAP sites", FAIL, f"cannot list IIS sites: {err}", "check IIS and WebAdministration"))
        else:
            problems = (([f"missing: {', '.join(missing)}"] if missing else [])
                        + ([f"not started: {', '.join(stopped)}"] if stopped else []))
            rows.append(Row(h, "WAP sites", FAIL if problems else PASS,
                            "; ".join(problems) or ", ".join(f"{s} Started" for s in wanted),
                            "install / start the WAP role's sites (Start-Website) before connecting it"
                            if problems else ""))
    if t.tenant_portal:
        version, err = _answer(f, "urlrewrite", T.URL_REWRITE)
        rows.append(Row(h, "URL Rewrite", PASS if version else FAIL,
                        f"installed (version {version})" if version else "the IIS URL Rewrite module is not installed",
                        "" if version else "install IIS URL Rewrite 2.x (https://www.iis.net/downloads/microsoft/url-rewrite)"))
        rows += _connector_rows(config, t, f, now, trusted_on_wasp, wasp)
    if t.tenant_api:
        named, err = _answer(f, "store", T.STORE)
        server = valid_server(named)
        rows.append(Row(h, "ManagementStore", PASS if server else FAIL,
                        f"TenantAPI ManagementStore names SQL server {server}" if server else
                        f"no TenantAPI ManagementStore setting ({err or 'empty'})",
                        "" if server else
                        "run on a configured WAP Tenant API VM (Get-MgmtSvcSetting -Namespace TenantAPI)"))
    for i, sql, cred_name in t.trusts:
        rows.append(_sysadmin_row(config, h, f, i, sql, cred_name))
    if t.share:
        visible, err = _answer(f, "share", T.SHARE)
        ok = visible is True
        rows.append(Row(h, "infrastructure share", PASS if ok else FAIL,
                        f"{INFRASTRUCTURE_SHARE} visible" if ok else
                        f"{INFRASTRUCTURE_SHARE} not visible{f' ({err})' if err else ''}",
                        "" if ok else f"map the share for this user on {h}, or set {NAMESPACE}:azureStack.shareHost to "
                                      f"a host that sees it"))
    if t.user_portal:
        for portal, fqdn in t.portals_to_reach.items():
            answered, err = _answer(f, f"ping:{portal}", T.Ping(fqdn))
            ok = answered is True
            rows.append(Row(h, f"reaches {portal}", PASS if ok else FAIL,
                            f"ping {fqdn} answered" if ok else f"ping {fqdn} got no answer{f' ({err})' if err else ''}",
                            "" if ok else f"open the network (and ICMP) from {h} to {fqdn}: the portal must reach it"))
    return rows


def _windows_row(t: HostTargets, f: HostFacts) -> Row:
    """The host's Windows and Windows PowerShell, and whether the providers' commands all exist there."""
    check = "Windows / PowerShell"
    if t.pep:
        return Row(t.name, check, SKIP, "not readable through the PrivilegedEndpoint session (Azure Stack runs it on "
                                        "Windows Server 2016 / PowerShell 5.1)")
    host, err = _answer(f, "windows", T.WINDOWS)
    windows = f"{host.product} (build {host.build})" if host.product else "Windows (not named in the registry)"
    ps = version_tuple(host.powershell)
    kind = "wap" if t.tenant_portal or t.tenant_api else "azure_stack"
    need = MIN_POWERSHELL[kind]
    if ps is None:
        return Row(t.name, check, WARN, f"{windows}; PowerShell version not found at {POWERSHELL_KEY} "
                                        f"({err or 'no PowerShellVersion'})",
                   f"check that Windows PowerShell {_show_version(need)} or later runs on {t.name}")
    shown = f"{windows}, Windows PowerShell {host.powershell}"
    if ps[:2] < need:
        return Row(t.name, check, FAIL, f"{shown}: below {_show_version(need)}, which the providers' commands need",
                   f"install Windows Management Framework 5.1 (or at least PowerShell {_show_version(need)}) on "
                   f"{t.name}")
    return Row(t.name, check, PASS, shown)


def _version_rows(h: str, f: HostFacts) -> list[Row]:
    products, err = _answer(f, "packages", T.PACKAGES)
    pkgs = [(p.name, p.version_tuple) for p in products]
    wap = [(n, v) for n, v in pkgs if _glob(WAP_PACKAGES, n) and "connector" not in n.lower() and v]
    rows = []
    if err or not wap:
        rows.append(Row(h, "WAP Update Rollup", FAIL, f"no Windows Azure Pack product in the Uninstall keys "
                                                     f"({err or 'none named ' + repr(WAP_PACKAGES)})",
                        "install Windows Azure Pack with Update Rollup 9.1 or later"))
    else:
        low_name, low = min(wap, key=lambda nv: nv[1] or ())
        ok = low >= MIN_WAP_VERSION
        rows.append(Row(h, "WAP Update Rollup", PASS if ok else FAIL,
                        f"lowest: {low_name} {_show_version(low)} ({'UR9.1 or later' if ok else 'older than UR9.1'}, "
                        f"UR9.1 = {_show_version(MIN_WAP_VERSION)} [inferred])",
                        "" if ok else "install Windows Azure Pack Update Rollup 9.1 or later on this computer"))
    for label, pattern in SYSTEM_CENTER_PACKAGES.items():
        minimum = MIN_SPF_VERSION if label == "SPF" else MIN_VMM_VERSION
        found = [(n, v) for n, v in pkgs if _glob(pattern, n) and v]
        if not found:
            rows.append(Row(h, f"{label} Update Rollup", SKIP, f"{label} is not installed here; check UR9 or later "
                                                               f"on the {label} server by hand"))
            continue
        n, v = min(found, key=lambda nv: nv[1] or ())
        ok = v >= minimum
        rows.append(Row(h, f"{label} Update Rollup", PASS if ok else FAIL,
                        f"{n} {_show_version(v)} (UR9 = {_show_version(minimum)} [inferred])",
                        "" if ok else f"install {label} Update Rollup 9 or later"))
    return rows


def _glob(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def _sysadmin_row(config: StackConfig, h: str, f: HostFacts, i: int, sql: str | None, cred_name: str | None) -> Row:
    cloud = config.clouds[i]
    login = config.credentials[cred_name].username if cred_name else (f.conn.username if f.conn else None)
    check = f"sysadmin ({cloud.name})"
    sql = sql or f.second.get(f"sql:{i}")
    if sql is None:
        return Row(h, check, FAIL, "no SQL server: none configured and ManagementStore names none",
                   f"set {NAMESPACE}:clouds[{i}].sqlServer")
    ok, err = _answer(f, f"sysadmin:{i}", Sysadmin(sql))
    if err is not None:
        return Row(h, check, FAIL, f"cannot ask {sql} as {login}: {err}",
                   f"check {NAMESPACE}:clouds[{i}].sqlServer / sqlCredential, and that the SqlServer PowerShell "
                   f"module is on {h}")
    return Row(h, check, PASS if ok else FAIL,
               f"{login} is sysadmin on {sql}" if ok else f"{login} is not sysadmin on {sql}",
               "" if ok else f"grant {login} the sysadmin role on {sql} (Configure-TrustAzureStack.ps1 needs it), or "
                             f"set {NAMESPACE}:clouds[{i}].sqlCredential to a login that has it")


def _connector_rows(config: StackConfig, t: HostTargets, f: HostFacts, now: dt.datetime,
                    trusted_on_wasp: set[str] | None, wasp: HostFacts | None) -> list[Row]:
    """The connector certificate's fitness and, once the connector is installed, its port from AzS-WASP01.

    With the lab CA source the stack itself issues, installs, trusts and binds the certificate: what is wrong with
    the bound one (drift) is a WARN that ``up`` heals, never a reason to refuse the run that heals it."""
    h = t.name
    rows = []
    binding, _ = _answer(f, "binding", T.BINDING)
    bound = binding or ""
    installed = binding is not None
    sites, _ = _answer(f, "sites", T.SITES)
    connector = site_named(sites, CONNECTOR_SITE)
    site_started = connector is not None and connector.state == "Started"
    trusted_here, _ = _answer(f, "trusted", T.TRUSTED)
    my, _ = _answer(f, "my", T.MY)
    certs = {str(o.get("Thumbprint", "")).upper(): o for o in my}
    healed = "`up` re-installs, trusts and rebinds the stack's certificate"
    for i in t.portal_clouds:
        cloud = config.clouds[i]
        fqdn, cc = cloud.endpoint_fqdn, cloud.connector_certificate
        if cc.source == "store":
            # The operator's certificate, already on the VM: nothing the stack can heal, so every problem fails.
            key = f"{NAMESPACE}:clouds[{i}].connectorCertificate.thumbprint"
            cert = certs.get(str(cc.thumbprint).upper())
            if cert is None:
                rows.append(Row(h, "connector certificate", FAIL, f"{cc.thumbprint} is not in Cert:\\LocalMachine\\My",
                                f"import your organization's certificate (with its private key) into LocalMachine\\My "
                                f"on {h}, or fix {key}"))
            else:
                problems, summary = certificate_problems(cert, fqdn, trusted_here, now)
                warn_only = len(problems) == 1 and problems[0].startswith("expires in")
                rows.append(Row(h, "connector certificate", PASS if not problems else (WARN if warn_only else FAIL),
                                f"store {summary}" + (f": {'; '.join(problems)}" if problems else
                                                      f", names {fqdn}, server auth, key present, chain trusted"),
                                "" if not problems else f"renew or reissue it (CA-issued, SAN {fqdn}, server "
                                                        f"authentication, with its private key, chain in Root/CA)"))
        elif bound:
            cert = certs.get(bound.upper())
            if cert is None:
                rows.append(Row(h, "connector certificate", WARN, f"bound {bound} is not in Cert:\\LocalMachine\\My",
                                healed))
            else:
                problems, summary = certificate_problems(cert, fqdn, trusted_here, now)
                if (trusted_on_wasp is not None and str(cert.get("Issuer")) not in trusted_on_wasp
                        and str(cert.get("Subject")) != str(cert.get("Issuer"))):
                    problems.append(f"AzS-WASP01 does not trust its issuer '{cert.get('Issuer')}'")
                rows.append(Row(h, "connector certificate", WARN if problems else PASS,
                                f"bound {summary}" + (f": {'; '.join(problems)}" if problems else
                                                      f", names {fqdn}, server auth, key present"),
                                healed if problems else ""))
        elif cc.source == "pfx":
            rows.append(Row(h, "connector certificate", PASS,
                            f"the operator's PFX for {fqdn} is imported and bound at deploy (checked on this machine)"))
        else:
            problem = lab_ca_problem(config, fqdn)
            rows.append(Row(h, "connector certificate", FAIL if problem else PASS,
                            problem or f"issued by the stack's lab CA for {fqdn} (server auth, with key) at deploy",
                            "fix the cloud's certificate settings" if problem else ""))
        if installed and wasp is not None and wasp.error is None and wasp.settings_problem is None:
            port = next((c.connector_port for c in config.clouds if c.endpoint_fqdn == fqdn), CONNECTOR_PORT)
            answered, err = _answer(wasp, f"port:{h}", TcpPort(config.hosts[h].fqdn, port))
            ok = answered is True
            # A site whose bound certificate is gone from My serves nothing: that is drift `up` heals, not a
            # firewall problem that should refuse the healing run.
            serving = site_started and bool(bound) and bound.upper() in certs
            status = PASS if ok else (FAIL if serving else WARN)
            rows.append(Row(wasp.name, f"reaches {h}:{port}", status,
                            f"TCP {config.hosts[h].fqdn}:{port} open" if ok else
                            f"TCP {config.hosts[h].fqdn}:{port} not reachable{f' ({err})' if err else ''}"
                            + ("" if ok or serving else
                               f" (the {CONNECTOR_SITE} site is stopped, unbound or its certificate is gone)"),
                            "" if ok else (f"open port {port} from {wasp.name} to {h} (firewall, routing)" if serving
                                           else f"`up` starts and binds {CONNECTOR_SITE} again")))
    return rows


def bundle_size(config: StackConfig, project_dir: Path) -> tuple[int | None, Row]:
    """The bundle's size on this machine (None when the folder is missing) and the row that says so."""
    assert config.bundle is not None
    root = (project_dir / config.bundle.source_dir).resolve()
    if not root.is_dir():
        return None, Row("(this machine)", "bundle", FAIL, f"{config.bundle.source_dir} is not a folder",
                         f"extract the WAPConnector download there or fix {NAMESPACE}:bundle.sourceDir")
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return total, Row("(this machine)", "bundle", PASS, f"{config.bundle.source_dir}: {total // 1024} KiB")
