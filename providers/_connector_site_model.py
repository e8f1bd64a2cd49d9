"""The ConnectorSite resource's model, pure (no host is touched here): the assumptions about the unpublished
WAPConnector package, the inputs and ``check``, the read's statements and their parser, :func:`compare` and the steps
for its differences.

providers/connector_site.py runs it against the WAP computer (the template's hooks) and keeps every public name
importable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pulumi.dynamic import CheckFailure, CheckResult
from pydantic import Field, field_validator, model_validator

from providers import certs, names, ownership
from providers.base import is_unknown
from providers.facts import Fact, iis, products
from providers.facts.locations import (
    BUNDLE_PATH,
    CONNECTOR_PORT,
    CONNECTOR_SITE,
    CONNECTOR_SITES,
    SCRIPTS_FOLDER,
    TENANT_SITE,
)
from providers.remote import (
    RemoteInputs,
    Thumbprint,
    check_remote,
)
from providers.transport import PRIVILEGED_ENDPOINT, HostConnection, Pipeline

# ===============================================================================================================
# ASSUMPTIONS about the unpublished WAPConnector package ([doc] the article, [pub] public WAP knowledge,
# [inf] inferred; host contract §5-§6, §9). Correct these against a real WAP tenant portal.
# ===============================================================================================================

# Where things are on a WAP computer (the bundle folder, the sites, the port, registry keys): providers/facts.
INSTALL_SCRIPT = "Install-Connector.ps1"  # [doc] no parameters
CERTIFICATES_SCRIPT = "Configure-Certificates.ps1"  # [doc] optional -Thumbprint
CONFIGURE_SCRIPT = "Configure-WapConnector.ps1"  # [doc] the three FQDN parameters
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
    return bundle_path.rstrip("\\") + "\\" + SCRIPTS_FOLDER + "\\" + script


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
    certificate_thumbprint: Thumbprint | None = None
    bundle_path: Annotated[str, Field(max_length=200)] = BUNDLE_PATH

    @field_validator("tenant_portal_fqdn", "tenant_api_fqdn", "azure_stack_portal_fqdn")
    @classmethod
    def _fqdns(cls, v: str) -> str:
        return names.fqdn(v, "tenant.contoso.com", lower=False)

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
            inputs["bundle_path"] = BUNDLE_PATH
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
        s = self.sites.get(CONNECTOR_SITE)
        return (s.https_thumbprint or None) if s else None

    @property
    def port(self) -> int:
        s = self.sites.get(CONNECTOR_SITE)
        return (s.https_port if s and s.https_port else CONNECTOR_PORT)


#: The read's facts, one statement each: the MgmtSvc-* sites (state, https binding), the connector site's
#: appSettings, the connector's products.
SITES = iis.Websites(like="MgmtSvc-*", bindings=True)
SETTINGS = iis.AppSettings(CONNECTOR_SITE)
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
