"""ConnectorSite: the Windows Azure Pack Connector on one WAP tenant portal computer.

The seed's "Configure Windows Azure Pack" step 1: with the WAPConnector bundle staged (ConnectorBundle), run
``Install-Connector.ps1`` (three MSIs, three IIS sites), ``Configure-Certificates.ps1 [-Thumbprint T]`` (default:
the tenant site's certificate) and ``Configure-WapConnector.ps1 -TenantPortalFQDN -TenantAPIFQDN
-AzureStackPortalFQDN``. Scripts are run as commands named by their full path (host contract §6), never as text.

Two modules, by job (docs/style.md): providers/_connector_site_model.py is pure (the ASSUMPTIONS block about the
unpublished WAPConnector package, the inputs and ``check``, the read's parser into :class:`ConnectorSiteObserved`,
:func:`compare` and the steps for its differences); this module runs against the host: the read (one pipeline
invocation), the steps, the hooks of the template (providers.remote), the Resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from providers import ownership

# Importable from here too, where callers and tests find them.
from providers._connector_site_model import (  # noqa: F401
    ABSENT_ERROR_CODES,
    APP_SETTING_KEYS,
    CERTIFICATES_SCRIPT,
    CONFIGURE_SCRIPT,
    CONNECTOR_PACKAGES,
    INSTALL_SCRIPT,
    MARKER_PATH,
    MSIEXEC_DONE,
    MSIEXEC_NOT_INSTALLED,
    OWNERSHIP_RESOURCE,
    STEP_CERTIFICATES,
    STEP_CONFIGURE,
    STEP_INSTALL,
    STEP_PREREQUISITES,
    STEP_READ,
    STEP_START,
    STEP_TIMEOUTS,
    STEP_UNINSTALL,
    STEPS,
    THING,
    ConnectorSiteInputs,
    ConnectorSiteObserved,
    ConnectorSiteStep,
    check,
    compare,
    observed_outputs,
    parse_read,
    prior_values,
    read_statements,
    script_path,
    steps_for,
)
from providers.base import LabResource
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge
from providers.facts.certstore import store_path
from providers.facts.files import PathExists, PathsExist
from providers.facts.locations import (
    BUNDLE_PATH,
    CONNECTOR_SITES,
    URL_REWRITE_KEY,
)
from providers.facts.markers import OwnershipMarker
from providers.hostops import only_expected_errors
from providers.remote import (
    HostResourceProvider,
    Identity,
    connection_of,
    password_secret,
    secret_outputs,
)
from providers.transport import Command, HostConnection, Transport


def read_site_owned(t: Transport, conn: HostConnection) -> tuple[ConnectorSiteObserved | None, ownership.Marker | None]:
    """The connector and its ownership marker, in one invocation."""
    mark = OwnershipMarker(MARKER_PATH)
    statements = [*read_statements(), *mark.statements()]
    result = t.run(conn, STEP_READ, statements, idempotent=True, accept_errors=True)
    # Nothing installed: Get-WebConfigurationProperty finds no site.
    only_expected_errors(conn, STEP_READ, read_statements(), result, ABSENT_ERROR_CODES)
    sites, settings, packages, marker = result.outputs
    try:
        return parse_read(sites, settings, packages), mark.parse(marker)
    except ValueError as exc:
        raise ConnectorError(f"{conn.fqdn}, step '{STEP_READ}': the host's answer is not the expected JSON ({exc}); "
                             f"check that the IIS WebAdministration module is available", host=conn.fqdn,
                             step=STEP_READ) from None


def read_site(t: Transport, conn: HostConnection) -> ConnectorSiteObserved | None:
    return read_site_owned(t, conn)[0]


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
    fact = PathsExist(tuple(probe))
    present = fact.parse(t.run(conn, STEP_PREREQUISITES, fact.statements(), idempotent=True).output)
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
    return {k: v for k, v in (("bundle_path", BUNDLE_PATH), ("certificate_thumbprint", None))
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
    bundle = str(props.get("bundle_path") or BUNDLE_PATH)
    steps: list[tuple[str, Command]] = []
    thumb = prior.get("certificate_thumbprint")
    if thumb and any(t.upper() != str(thumb).upper() for t in observed.thumbprints().values()):
        # The prior certificate may be gone since (removed by whoever owned it): then the binding stays as it is.
        probe = PathExists(store_path("My", thumb))
        if probe.parse(t.run(conn, STEP_CERTIFICATES, probe.statements(), idempotent=True).output) is True:
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
                 bundle_path: pulumi.Input[str] = BUNDLE_PATH, owner: pulumi.Input[str] | None = None,
                 adopt: pulumi.Input[bool] = False, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "connection": password_secret(connection),
            "tenant_portal_fqdn": tenant_portal_fqdn,
            "tenant_api_fqdn": tenant_api_fqdn,
            "azure_stack_portal_fqdn": azure_stack_portal_fqdn,
            "certificate_thumbprint": certificate_thumbprint,
            "bundle_path": bundle_path, **ownership.resource_props(owner, adopt),
            # What a converged host shows (outputs carry what it does show): a plan compares the two, so a
            # stopped site reads `sites: { MgmtSvc-Connector: "Stopped" => "Started" }`.
            "sites": {site: "Started" for site in CONNECTOR_SITES}, "packages": sorted(CONNECTOR_PACKAGES),
            **{k: None for k in ("endpoint", "bound_thumbprint", "site_thumbprints", "tenant_site_thumbprint",
                                 "installed")},
        }
        super().__init__(ConnectorSiteProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, secret_outputs()))
