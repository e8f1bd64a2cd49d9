"""ConnectorSite: the Windows Azure Pack Connector on one WAP tenant portal computer.

The seed's "Configure Windows Azure Pack" step 1: with the WAPConnector bundle staged (ConnectorBundle), run
``Install-Connector.ps1`` (three MSIs, three IIS sites), ``Configure-Certificates.ps1 [-Thumbprint T]`` (default:
the tenant site's certificate) and ``Configure-WapConnector.ps1 -TenantPortalFQDN -TenantAPIFQDN
-AzureStackPortalFQDN``. Scripts are run as commands named by their full path (host contract §6), never as text.

Module layout (docs/style.md): *read* (one pipeline invocation, parsed by a pure function into
:class:`ConnectorSiteObserved` or None), :func:`compare` (desired vs observed) and the steps for its differences,
the hooks of the template (providers.remote), the Resource.
Everything assumed about the unpublished WAPConnector package is in the ASSUMPTIONS block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult
from pydantic import Field, field_validator, model_validator

from providers import certs, names, ownership
from providers.base import LabResource, is_unknown
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge
from providers.facts import Fact, iis, products
from providers.facts.locations import (
    BUNDLE_PATH,
    CONNECTOR_PORT,
    CONNECTOR_SITE,
    CONNECTOR_SITES,
    SCRIPTS_FOLDER,
    TENANT_SITE,
    URL_REWRITE_KEY,
)
from providers.hostops import only_expected_errors
from providers.remote import (
    HostResourceProvider,
    Identity,
    RemoteInputs,
    check_remote,
    connection_of,
    password_secret,
    secret_outputs,
)
from providers.transport import PRIVILEGED_ENDPOINT, Command, HostConnection, Pipeline, Transport

# ===============================================================================================================
# ASSUMPTIONS about the unpublished WAPConnector package ([doc] the article, [pub] public WAP knowledge,
# [inf] inferred; host contract §5-§6, §9). Correct these against a real WAP tenant portal.
# ===============================================================================================================

# Where things are on a WAP computer (the bundle folder, the sites, the port, registry keys): providers/facts.
DEFAULT_BUNDLE_PATH = BUNDLE_PATH
SCRIPTS_SUBDIR = SCRIPTS_FOLDER
INSTALL_SCRIPT = "Install-Connector.ps1"  # [doc] no parameters
CERTIFICATES_SCRIPT = "Configure-Certificates.ps1"  # [doc] optional -Thumbprint
CONFIGURE_SCRIPT = "Configure-WapConnector.ps1"  # [doc] the three FQDN parameters
MAIN_SITE = CONNECTOR_SITE  # the one the Azure Stack portal calls
DEFAULT_CONNECTOR_PORT = CONNECTOR_PORT
# [inf] Display names of the three MSIs in the Windows Installer's Uninstall keys, and the pattern that finds them.
CONNECTOR_PACKAGES = (
    "Windows Azure Pack Connector for Azure Stack - Connector",
    "Windows Azure Pack Connector for Azure Stack - Extension",
    "Windows Azure Pack Connector for Azure Stack - Controller",
)
CONNECTOR_PACKAGE_PATTERN = "Windows Azure Pack Connector for Azure Stack - *"
# [doc] msiexec's exit codes: 0 success, 3010 success with a restart pending, 1605 the product is not installed.
MSIEXEC_DONE = (0, 3010)
MSIEXEC_NOT_INSTALLED = 1605
# [inf] Configure-WapConnector.ps1 writes these appSettings keys into MgmtSvc-Connector's web.config.
APP_SETTING_KEYS = {
    "tenant_portal_fqdn": "TenantPortalFQDN",
    "tenant_api_fqdn": "TenantAPIFQDN",
    "azure_stack_portal_fqdn": "AzureStackPortalFQDN",
}
# [inf] Undo of Install-Connector.ps1: remove the three MSIs, msiexec /x {ProductCode} /qn each.
# Read errors that just mean "absent": appSettings of a site that is not there.
ABSENT_ERROR_CODES = ("PathNotFound",)

STEP_READ = "read the connector sites"
STEP_PREREQUISITES = "check the connector prerequisites"
STEP_INSTALL = "install the connector (Install-Connector.ps1)"
STEP_START = "start the connector sites"
STEP_CERTIFICATES = "bind the connector certificate (Configure-Certificates.ps1)"
STEP_CONFIGURE = "configure the connector (Configure-WapConnector.ps1)"
STEP_UNINSTALL = "uninstall the connector packages"
#: Every step name of this resource: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
STEPS = (STEP_READ, STEP_PREREQUISITES, STEP_INSTALL, STEP_START, STEP_CERTIFICATES, STEP_CONFIGURE, STEP_UNINSTALL)
STEP_TIMEOUTS = {STEP_INSTALL: 1200.0, STEP_UNINSTALL: 1200.0}  # three MSIs take minutes; the rest the default


def script_path(bundle_path: str, script: str) -> str:
    return bundle_path.rstrip("\\") + "\\" + SCRIPTS_SUBDIR + "\\" + script


# ===============================================================================================================
# Inputs
# ===============================================================================================================

# Absolute local path; the characters the transport refuses in a script name (quotes, $, `, ;, |, &, <, >, braces,
# parentheses) are refused here first, with a message, because the scripts are invoked by their full path.
_BUNDLE_PATH = re.compile(r"^[A-Za-z]:\\[^\r\n\"'`$;|&<>{}()*?]*$")


_NOT_THE_PEP = ("the connector is installed on a WAP tenant portal computer, not on the privileged endpoint: use "
                "that computer's connection")


class ConnectorSiteInputs(RemoteInputs):
    tenant_portal_fqdn: str
    tenant_api_fqdn: str
    azure_stack_portal_fqdn: str
    certificate_thumbprint: str | None = None
    bundle_path: Annotated[str, Field(max_length=200)] = DEFAULT_BUNDLE_PATH

    @field_validator("tenant_portal_fqdn", "tenant_api_fqdn", "azure_stack_portal_fqdn")
    @classmethod
    def _fqdns(cls, v: str) -> str:
        return names.fqdn(v, "tenant.contoso.com", lower=False)

    @field_validator("certificate_thumbprint")
    @classmethod
    def _thumb(cls, v: str | None) -> str | None:
        return None if v is None else certs.normalize_thumbprint(v)

    @field_validator("bundle_path")
    @classmethod
    def _bundle(cls, v: str) -> str:
        if not _BUNDLE_PATH.match(v):
            raise ValueError(f"{v!r} is not an absolute local folder such as C:\\temp\\WAPConnector (quotes, $, `, "
                             f";, |, &, <, >, braces, parentheses and wildcards are not accepted: the scripts are run "
                             f"by their full path)")
        return v.rstrip("\\")

    @model_validator(mode="after")
    def _not_the_pep(self) -> ConnectorSiteInputs:
        if self.connection.configuration_name == PRIVILEGED_ENDPOINT:
            raise ValueError("connection: " + _NOT_THE_PEP)
        return self


def check(news: Mapping[str, Any], result: CheckResult | None = None) -> CheckResult:
    """The model's rules (``result``, when the template already ran them), the privileged endpoint refused, and the
    inputs in the normalised forms diff compares."""
    result = result if result is not None else check_remote(ConnectorSiteInputs, news)
    failures = list(result.failures)
    inputs = dict(result.inputs)
    conn = news.get("connection")
    if not failures and conn is not None and not is_unknown(conn) and \
            HostConnection.parse(conn).configuration_name == PRIVILEGED_ENDPOINT:
        failures.append(CheckFailure("connection", _NOT_THE_PEP))
    if not failures:
        # Normalised forms (what diff compares): thumbprint without spaces, bundle path without a trailing \.
        t = news.get("certificate_thumbprint")
        if isinstance(t, str) and not is_unknown(t):
            inputs["certificate_thumbprint"] = certs.normalize_thumbprint(t)
        b = news.get("bundle_path")
        if b is None:
            inputs["bundle_path"] = DEFAULT_BUNDLE_PATH
        elif isinstance(b, str) and not is_unknown(b):
            inputs["bundle_path"] = b.rstrip("\\")
    return CheckResult(inputs, failures)


# ===============================================================================================================
# Read
# ===============================================================================================================


SiteState = iis.Website


@dataclass(frozen=True)
class ConnectorSiteObserved:
    """What the host shows. ``sites`` holds the connector sites that exist; ``packages`` the installed ones."""

    sites: Mapping[str, SiteState]
    packages: frozenset[str]
    app_settings: Mapping[str, str]
    tenant_site_thumbprint: str | None = None
    product_codes: tuple[str, ...] = ()  # the installed connector products' codes (their Uninstall key names)

    @property
    def installed(self) -> bool:
        """All three sites Started and all three packages present."""
        return (all(s in self.sites and self.sites[s].state.lower() == "started" for s in CONNECTOR_SITES)
                and all(p.lower() in self.packages for p in CONNECTOR_PACKAGES))

    def site_states(self) -> dict[str, str]:
        return {s: (self.sites[s].state if s in self.sites else "Missing") for s in CONNECTOR_SITES}

    def thumbprints(self) -> dict[str, str]:
        return {s: self.sites[s].https_thumbprint for s in CONNECTOR_SITES if s in self.sites}

    @property
    def bound_thumbprint(self) -> str | None:
        s = self.sites.get(MAIN_SITE)
        return (s.https_thumbprint or None) if s else None

    @property
    def port(self) -> int:
        s = self.sites.get(MAIN_SITE)
        return (s.https_port if s and s.https_port else DEFAULT_CONNECTOR_PORT)


#: The read's facts, one statement each: the MgmtSvc-* sites (state, https binding), the connector site's
#: appSettings, the connector's products.
SITES = iis.Websites(like="MgmtSvc-*", bindings=True)
SETTINGS = iis.AppSettings(MAIN_SITE)
PRODUCTS = products.InstalledProducts(like=CONNECTOR_PACKAGE_PATTERN, codes=True)
READ_FACTS: tuple[Fact[Any], ...] = (SITES, SETTINGS, PRODUCTS)


def read_statements() -> list[Pipeline]:
    return [s for fact in READ_FACTS for s in fact.statements()]


def parse_read(sites_output: Sequence[Any], settings_output: Sequence[Any],
               packages_output: Sequence[Any]) -> ConnectorSiteObserved | None:
    """The read's three statements, each parsed by its fact. None when nothing of the connector is on the host
    (no connector site, no connector package)."""
    sites: dict[str, SiteState] = {}
    tenant_thumb: str | None = None
    for site in SITES.parse(sites_output):
        if site.name.lower() == TENANT_SITE.lower():
            tenant_thumb = site.https_thumbprint or None
        canonical = next((s for s in CONNECTOR_SITES if s.lower() == site.name.lower()), None)
        if canonical:
            sites[canonical] = SiteState(canonical, site.state, site.https_thumbprint, site.https_port)
    known = {p.lower() for p in CONNECTOR_PACKAGES}
    found = {p.name.lower(): p.code for p in PRODUCTS.parse(packages_output) if p.name.lower() in known}
    if not sites and not found:
        return None
    return ConnectorSiteObserved(sites=sites, packages=frozenset(found), app_settings=SETTINGS.parse(settings_output),
                        tenant_site_thumbprint=tenant_thumb,
                        product_codes=tuple(sorted(c for c in found.values() if c)))


OWNERSHIP_RESOURCE = "ConnectorSite"
MARKER_PATH = ownership.marker_path(OWNERSHIP_RESOURCE, "connector")  # one connector per computer
THING = "the WAP connector (sites MgmtSvc-Connector*, certificate binding, FQDNs)"


def read_site_owned(t: Transport, conn: HostConnection) -> tuple[ConnectorSiteObserved | None, ownership.Marker | None]:
    """The connector and its ownership marker, in one invocation."""
    statements: list[Command | Pipeline] = [*read_statements(), ownership.read_command(MARKER_PATH)]
    result = t.run(conn, STEP_READ, statements, idempotent=True, accept_errors=True)
    # Nothing installed: Get-WebConfigurationProperty finds no site.
    only_expected_errors(conn, STEP_READ, read_statements(), result, ABSENT_ERROR_CODES)
    sites, settings, packages, marker = result.outputs
    try:
        return parse_read(sites, settings, packages), ownership.marker_in(marker)
    except ValueError as exc:
        raise ConnectorError(f"{conn.fqdn}, step '{STEP_READ}': the host's answer is not the expected JSON ({exc}); "
                             f"check that the IIS WebAdministration module is available", host=conn.fqdn,
                             step=STEP_READ) from None


def read_site(t: Transport, conn: HostConnection) -> ConnectorSiteObserved | None:
    return read_site_owned(t, conn)[0]


# ===============================================================================================================
# Compare: desired vs observed
# ===============================================================================================================


def observed_outputs(observed: ConnectorSiteObserved | None, tenant_portal_fqdn: str | None) -> dict[str, Any]:
    """Observed state in the shape of the outputs; FQDN outputs carry the host's values (drift is visible)."""
    if observed is None:
        return {"installed": False, "sites": {s: "Missing" for s in CONNECTOR_SITES}, "site_thumbprints": {},
                "bound_thumbprint": None, "tenant_site_thumbprint": None,
                "packages": [], "endpoint": None, **{a: None for a in APP_SETTING_KEYS}}
    return {
        "installed": observed.installed,
        "sites": observed.site_states(),
        "site_thumbprints": observed.thumbprints(),
        "bound_thumbprint": observed.bound_thumbprint,
        "tenant_site_thumbprint": observed.tenant_site_thumbprint,
        "packages": sorted(p for p in CONNECTOR_PACKAGES if p.lower() in observed.packages),
        "endpoint": f"https://{tenant_portal_fqdn}:{observed.port}" if tenant_portal_fqdn else None,
        **{attr: observed.app_settings.get(key) for attr, key in APP_SETTING_KEYS.items()},
    }


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """The differences, named by the output that shows them: ``sites`` (a site missing or not Started),
    ``packages`` (a connector package missing), ``certificate_thumbprint`` (a connector site bound to another
    certificate than desired: the input, or the tenant site's when not given), and each FQDN whose configured value
    differs (case aside). ``desired`` as the inputs, ``observed`` as :func:`observed_outputs`."""
    out = []
    sites = observed.get("sites")
    if not isinstance(sites, Mapping) or any(sites.get(s) != "Started" for s in CONNECTOR_SITES):
        out.append(ownership.Difference("sites", sites, {s: "Started" for s in CONNECTOR_SITES}))
    if len(observed.get("packages") or []) != len(CONNECTOR_PACKAGES):
        out.append(ownership.Difference("packages", observed.get("packages"), sorted(CONNECTOR_PACKAGES)))
    want = desired.get("certificate_thumbprint")
    if is_unknown(want):
        out.append(ownership.Difference("certificate_thumbprint", observed.get("bound_thumbprint"), want))
    else:
        # Compared on the sites that exist: a missing site is the install's business.
        want = want or observed.get("tenant_site_thumbprint")
        bound = observed.get("site_thumbprints") or {}
        if bound and (not want or any(str(t).upper() != str(want).upper() for t in bound.values())):
            out.append(ownership.Difference("certificate_thumbprint", observed.get("bound_thumbprint"), want))
    for attr in APP_SETTING_KEYS:
        new = desired.get(attr)
        if is_unknown(new) or not isinstance(new, str) or str(observed.get(attr) or "").lower() != new.lower():
            out.append(ownership.Difference(attr, observed.get(attr), new))
    return out


@dataclass(frozen=True)
class ConnectorSiteStep:
    kind: str  # install | start | certificates | configure
    sites: tuple[str, ...] = field(default=())  # for start: which sites


def steps_for(differences: Sequence[ownership.Difference], observed: ConnectorSiteObserved | None) -> list[
        ConnectorSiteStep]:
    """The steps that close the differences, in order. A (re)install is followed by both configuration steps: a
    freshly installed site has no certificate bound and empty appSettings (contract §6), whatever the other sites
    show."""
    fields = {d.field for d in differences}
    stopped = tuple(s for s in CONNECTOR_SITES if observed is not None and s in observed.sites
                    and observed.sites[s].state.lower() != "started")
    start = [ConnectorSiteStep("start", stopped)] if stopped else []
    if observed is None or "packages" in fields or any(s not in observed.sites for s in CONNECTOR_SITES):
        return [ConnectorSiteStep("install"), *start, ConnectorSiteStep("certificates"),
                ConnectorSiteStep("configure")]
    return [*start, *([ConnectorSiteStep("certificates")] if "certificate_thumbprint" in fields else []),
            *([ConnectorSiteStep("configure")] if fields & set(APP_SETTING_KEYS) else [])]


def prior_values(observed: ConnectorSiteObserved) -> dict[str, Any]:
    """What an adopted connector held: destroy binds this certificate and writes these FQDNs back."""
    return {"certificate_thumbprint": observed.bound_thumbprint,
            **{attr: observed.app_settings.get(key) for attr, key in APP_SETTING_KEYS.items()}}


# ===============================================================================================================
# Steps
# ===============================================================================================================


def check_prerequisites(t: Transport, conn: HostConnection, bundle_path: str, steps: list[ConnectorSiteStep]) -> None:
    """URL Rewrite (for an install) and the bundle's scripts, in one Test-Path: clear errors before any script."""
    needed = {"install": INSTALL_SCRIPT, "certificates": CERTIFICATES_SCRIPT, "configure": CONFIGURE_SCRIPT}
    scripts = [script_path(bundle_path, needed[s.kind]) for s in steps if s.kind in needed]
    probe = ([URL_REWRITE_KEY] if any(s.kind == "install" for s in steps) else []) + scripts
    if not probe:
        return
    result = t.run(conn, STEP_PREREQUISITES, Command("Test-Path", {"Path": probe}), idempotent=True)
    present = [o is True for o in result.output]
    if len(present) != len(probe):
        raise ConnectorError(f"{conn.fqdn}, step '{STEP_PREREQUISITES}': Test-Path answered {len(present)} value(s) "
                             f"for {len(probe)} path(s)", host=conn.fqdn, step=STEP_PREREQUISITES)
    problems = []
    for path, ok in zip(probe, present, strict=True):
        if ok:
            continue
        if path == URL_REWRITE_KEY:
            problems.append(f"the IIS URL Rewrite module is not installed (no {URL_REWRITE_KEY}); install it from "
                            "https://www.iis.net/downloads/microsoft/url-rewrite on this tenant portal computer")
        else:
            problems.append(f"{path} is missing: stage the WAPConnector bundle at bundle_path {bundle_path} "
                            f"(ConnectorBundle) before the ConnectorSite (depends_on)")
    if problems:
        raise ConfigurationError(problems, host=conn.fqdn, step=STEP_PREREQUISITES,
                                 subject="prerequisites of the connector")


def step_command(step: ConnectorSiteStep, inputs: ConnectorSiteInputs) -> list[Command]:
    b = inputs.bundle_path
    if step.kind == "install":
        return [Command(script_path(b, INSTALL_SCRIPT))]
    if step.kind == "start":
        return [Command("Start-Website", {"Name": s}) for s in step.sites]
    if step.kind == "certificates":
        params = {"Thumbprint": inputs.certificate_thumbprint} if inputs.certificate_thumbprint else {}
        return [Command(script_path(b, CERTIFICATES_SCRIPT), params)]
    if step.kind == "configure":
        return [Command(script_path(b, CONFIGURE_SCRIPT), {
            "TenantPortalFQDN": inputs.tenant_portal_fqdn,
            "TenantAPIFQDN": inputs.tenant_api_fqdn,
            "AzureStackPortalFQDN": inputs.azure_stack_portal_fqdn,
        })]
    raise ValueError(f"unknown step {step.kind}")


_STEP_NAMES = {"install": STEP_INSTALL, "start": STEP_START, "certificates": STEP_CERTIFICATES,
               "configure": STEP_CONFIGURE}


def run_steps(t: Transport, conn: HostConnection, inputs: ConnectorSiteInputs, steps: list[ConnectorSiteStep]) -> None:
    check_prerequisites(t, conn, inputs.bundle_path, steps)
    for step in steps:
        name = _STEP_NAMES[step.kind]
        # Idempotency (docs/reliability.md): every step converges when the whole operation is re-run (it reads and
        # plans again, contract §6), but only Start-Website may be re-sent by the transport: after a lost
        # connection the scripts (Install-Connector.ps1 runs three MSIs for minutes) may still be running on the
        # host, and a second copy would race the first (msiexec: another installation is in progress).
        t.run(conn, name, step_command(step, inputs), timeout=STEP_TIMEOUTS.get(name),
              idempotent=step.kind == "start")


def uninstall_statements(product_codes: Sequence[str]) -> list[Any]:
    """One msiexec /x per installed connector product, quiet, waited for, its exit code read back."""
    return [Command("Start-Process", {"FilePath": "msiexec.exe", "ArgumentList": ["/x", code, "/qn", "/norestart"]},
                    ["Wait", "PassThru"])
            | Command("Select-Object", {"Property": ["ExitCode"]}) for code in product_codes]


def uninstall(t: Transport, conn: HostConnection, product_codes: Sequence[str]) -> None:
    """Remove the connector products; an exit code other than success (or "not installed") is an error."""
    if not product_codes:
        return
    result = t.run(conn, STEP_UNINSTALL, uninstall_statements(product_codes), timeout=STEP_TIMEOUTS[STEP_UNINSTALL],
                   idempotent=False)
    for code, output in zip(product_codes, result.outputs, strict=True):
        exit_code = next((o.get("ExitCode") for o in output if isinstance(o, Mapping)), None)
        if exit_code in MSIEXEC_DONE or exit_code == MSIEXEC_NOT_INSTALLED:
            continue
        raise ConnectorError(f"{conn.fqdn}, step '{STEP_UNINSTALL}': msiexec /x {code} exited with {exit_code} "
                             f"(1618: another installation is in progress; 1603: a fatal error, see the Windows "
                             f"Installer log); run the delete again once it can finish", host=conn.fqdn,
                             step=STEP_UNINSTALL)


# ===============================================================================================================
# Provider glue
# ===============================================================================================================


def _defaults(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (("bundle_path", DEFAULT_BUNDLE_PATH), ("certificate_thumbprint", None))
            if k not in props}


class ConnectorSiteProvider(HostResourceProvider[ConnectorSiteInputs, ConnectorSiteObserved, ConnectorSiteStep]):
    """The connector on one tenant portal computer (the template of providers.remote)."""

    inputs_model = ConnectorSiteInputs
    ownership_resource = OWNERSHIP_RESOURCE
    compare = staticmethod(compare)
    checked = staticmethod(check)

    def identity(self, inputs: ConnectorSiteInputs) -> Identity:
        return Identity(inputs.connection.fqdn, MARKER_PATH, THING)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return Identity(connection_of(props).fqdn, MARKER_PATH, THING)

    def read_host(self, t: Transport, inputs: ConnectorSiteInputs) -> tuple[ConnectorSiteObserved | None,
                                                                             ownership.Marker | None]:
        return read_site_owned(t, inputs.connection)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[ConnectorSiteObserved | None,
                                                                           ownership.Marker | None]:
        return read_site_owned(t, connection_of(props))

    def desired_values(self, inputs: ConnectorSiteInputs) -> Mapping[str, Any]:
        return {"certificate_thumbprint": inputs.certificate_thumbprint,
                **{attr: getattr(inputs, attr) for attr in APP_SETTING_KEYS}}

    def observed_values(self, observed: ConnectorSiteObserved | None,
                        inputs: ConnectorSiteInputs) -> Mapping[str, Any]:
        return observed_outputs(observed, inputs.tenant_portal_fqdn)


    def steps(self, differences: list[ownership.Difference], inputs: ConnectorSiteInputs,
              observed: ConnectorSiteObserved | None) -> list[ConnectorSiteStep]:
        return steps_for(differences, observed)

    def apply(self, t: Transport, inputs: ConnectorSiteInputs, steps: list[ConnectorSiteStep],
              observed: ConnectorSiteObserved | None) -> None:
        run_steps(t, inputs.connection, inputs, steps)

    def did_not_converge(self, inputs: ConnectorSiteInputs, observed: ConnectorSiteObserved | None,
                         left: list[ConnectorSiteStep]) -> HostDidNotConverge:
        return HostDidNotConverge(
            inputs.connection.fqdn, _STEP_NAMES[left[0].kind] if left else STEP_READ,
            f"the scripts succeeded but the host still differs ({', '.join(s.kind for s in left)} needed; sites: "
            f"{observed.site_states() if observed else 'none'})",
            hint="check the IIS sites and the connector's web.config, then run again")

    def prior_values(self, observed: ConnectorSiteObserved, inputs: ConnectorSiteInputs) -> dict[str, Any]:
        return prior_values(observed)

    def resource_id(self, inputs: ConnectorSiteInputs, outputs: Mapping[str, Any]) -> str:
        return f"connector@{inputs.connection.fqdn.lower()}"

    def read_outputs(self, props: Mapping[str, Any], observed: ConnectorSiteObserved | None) -> dict[str, Any]:
        portal = props.get("tenant_portal_fqdn")
        return {**_defaults(props), **observed_outputs(observed, portal if isinstance(portal, str) else None)}

    def read_before_delete(self, t: Transport, props: Mapping[str, Any],
                           tracked: bool) -> tuple[ConnectorSiteObserved | None, ownership.Marker | None]:
        return self.read_state(t, props)  # the products to uninstall, owned or not

    def remove(self, t: Transport, props: Mapping[str, Any], found: ConnectorSiteObserved | None) -> None:
        conn = connection_of(props)
        # Not re-sent by the transport: msiexec runs for minutes; after a lost connection it may still run, and a
        # second copy would race it. A rerun of the delete converges (it reads the products left, 1605 is done).
        uninstall(t, conn, found.product_codes if found is not None else ())
        observed = read_site(t, conn)
        if observed is not None:
            raise HostDidNotConverge(
                conn.fqdn, STEP_UNINSTALL, f"the connector packages were uninstalled but "
                f"{sorted(observed.sites) or sorted(observed.packages)} remain",
                hint="remove them in IIS Manager / Programs and Features, then run the delete again")

    def leave(self, t: Transport, props: Mapping[str, Any], found: ConnectorSiteObserved | None) -> None:
        restore_prior(t, connection_of(props), props)


def restore_prior(t: Transport, conn: HostConnection, props: Mapping[str, Any]) -> None:
    """An adopted connector is never uninstalled: its prior certificate binding and FQDNs are put back where the
    stack changed them (nothing runs when they were adopted as they were)."""
    prior = props.get("prior") if isinstance(props.get("prior"), Mapping) else {}
    observed = read_site(t, conn)
    if observed is None or not prior:
        pulumi.log.warn(f"{conn.fqdn}: the adopted connector is left in place as it is (nothing recorded to put back)")
        return
    bundle = str(props.get("bundle_path") or DEFAULT_BUNDLE_PATH)
    steps: list[tuple[str, Command]] = []
    thumb = prior.get("certificate_thumbprint")
    if thumb and any(t.upper() != str(thumb).upper() for t in observed.thumbprints().values()):
        # The prior certificate may be gone since (removed by whoever owned it): then the binding stays as it is.
        probe = Command("Test-Path", {"Path": f"Cert:\\LocalMachine\\My\\{thumb}"})
        if t.run(conn, STEP_CERTIFICATES, probe, idempotent=True).single() is True:
            steps.append((STEP_CERTIFICATES, Command(script_path(bundle, CERTIFICATES_SCRIPT), {"Thumbprint": thumb})))
        else:
            pulumi.log.warn(f"{conn.fqdn}: the certificate {thumb} bound before this stack is no longer in "
                            f"Cert:\\LocalMachine\\My; the connector keeps its current binding")
    fqdns = {attr: prior.get(attr) for attr in APP_SETTING_KEYS}
    if all(fqdns.values()) and any(observed.app_settings.get(key, "").lower() != str(fqdns[attr]).lower()
                                   for attr, key in APP_SETTING_KEYS.items()):
        steps.append((STEP_CONFIGURE, Command(script_path(bundle, CONFIGURE_SCRIPT), {
            "TenantPortalFQDN": fqdns["tenant_portal_fqdn"], "TenantAPIFQDN": fqdns["tenant_api_fqdn"],
            "AzureStackPortalFQDN": fqdns["azure_stack_portal_fqdn"]})))
    for step, command in steps:
        # Not re-sent by the transport (the scripts rewrite bindings and web.config); delete's rerun re-reads.
        t.run(conn, step, command, timeout=STEP_TIMEOUTS.get(step), idempotent=False)
    pulumi.log.warn(f"{conn.fqdn}: the connector was there before this stack; it stays installed"
                    + (" with its previous certificate binding and FQDNs put back" if steps else ""))


# ===============================================================================================================
# Resource
# ===============================================================================================================


class ConnectorSite(LabResource, name="ConnectorSite"):
    """The WAP Connector's three IIS sites on one tenant portal computer, with certificate and FQDNs.

    Outputs: ``endpoint`` (https://<tenant portal fqdn>:40005), ``bound_thumbprint`` (MgmtSvc-Connector's https
    certificate), ``sites`` ({site: Started|Stopped|Missing}), ``site_thumbprints``, ``tenant_site_thumbprint``,
    ``packages``, ``installed``, and the FQDNs as configured on the host. ``connection`` is a secret output."""

    endpoint: pulumi.Output[str]
    bound_thumbprint: pulumi.Output[str]
    sites: pulumi.Output[dict]
    site_thumbprints: pulumi.Output[dict]
    tenant_site_thumbprint: pulumi.Output[str]
    packages: pulumi.Output[list]
    installed: pulumi.Output[bool]

    def __init__(self, name: str, *, connection: pulumi.Input[Mapping[str, Any]],
                 tenant_portal_fqdn: pulumi.Input[str], tenant_api_fqdn: pulumi.Input[str],
                 azure_stack_portal_fqdn: pulumi.Input[str],
                 certificate_thumbprint: pulumi.Input[str] | None = None,
                 bundle_path: pulumi.Input[str] = DEFAULT_BUNDLE_PATH, owner: pulumi.Input[str] | None = None,
                 adopt: pulumi.Input[bool] = False, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "connection": password_secret(connection),
            "tenant_portal_fqdn": tenant_portal_fqdn,
            "tenant_api_fqdn": tenant_api_fqdn,
            "azure_stack_portal_fqdn": azure_stack_portal_fqdn,
            "certificate_thumbprint": certificate_thumbprint,
            "bundle_path": bundle_path, "owner": owner, "adopt": adopt,
            # What a converged host shows (outputs carry what it does show): a plan compares the two, so a
            # stopped site reads `sites: { MgmtSvc-Connector: "Stopped" => "Started" }`.
            "sites": {site: "Started" for site in CONNECTOR_SITES}, "packages": sorted(CONNECTOR_PACKAGES),
            **{k: None for k in ("observed_owner", "adopted", "prior", "endpoint", "bound_thumbprint",
                                 "site_thumbprints", "tenant_site_thumbprint", "installed")},
        }
        super().__init__(ConnectorSiteProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, secret_outputs()))
