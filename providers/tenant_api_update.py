"""TenantApiUpdate: ``Update-TenantAPI.ps1`` on every Tenant API VM (step 2e of the article).

It installs the connector's Tenant API. Read: the ``ProductCode`` under
``HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI`` is no longer the UR9.1 code, and the MgmtSvc-TenantAPI site
is Started. There is no documented undo: delete leaves the host as it is and warns.

On the template of providers.remote: a read (one invocation, each statement parsed apart into
:class:`TenantApiUpdateObserved`), :func:`compare`, the step for each difference (:class:`TenantApiUpdateStep`),
apply. Every assumption about the unpublished WAPConnector internals sits in the ASSUMPTIONS block below, marked
[doc]/[pub]/[inf].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import Field, field_validator

from providers import hostops, ownership, remote
from providers.base import LabResource
from providers.bundle import SCRIPT_MISSING_HINT, BundlePath
from providers.errors import HostDidNotConverge
from providers.facts import iis, tenant_api
from providers.facts.locations import BUNDLE_PATH, TENANT_API_SITE
from providers.facts.markers import OwnershipMarker
from providers.remote import Converged, HostResourceProvider, Identity, RemoteInputs
from providers.transport import Command, HostConnection, Pipeline, Transport

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — what this resource takes for granted about WAP and the unpublished WAPConnector package.
#
# Update-TenantAPI.ps1
# [doc] the article runs it from setup\packages in its code and names setup\scripts in its text; default to
#       the code's folder, selectable with `script_folder`.
UPDATE_SCRIPT = r"Setup\{folder}\Update-TenantAPI.ps1"
# [pub] the Tenant API's ProductCode in its MgmtSvc registry key, and its site (providers/facts).
# [pub] the UR9.1 Tenant API; [inf] "updated" means the product code is no longer this one (the connector's
#       Tenant API product code is unpublished; pass expected_product_code to pin it once known).
UR91_TENANT_API_PRODUCT_CODES = frozenset({"{CF41308C-9BC3-46C1-8B39-135D00E491E8}"})
# [inf] the update keeps the Tenant API site (Started, port 30005).
# [inf] how long the MSI upgrade may take (labsim: 30 s x latency factor).
UPDATE_TIMEOUT_SECONDS = 900.0
# [doc] no undo is documented (reinstalling the UR9.1 rollup MSI would be one).
# ---------------------------------------------------------------------------------------------------------------

ScriptFolder = Literal["Packages", "Scripts"]
_GUID = re.compile(r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$")


class TenantApiUpdateInputs(RemoteInputs):
    bundle_path: BundlePath = BUNDLE_PATH
    script_folder: ScriptFolder = "Packages"
    expected_product_code: str | None = Field(None, description="pin the connector Tenant API's ProductCode")

    @field_validator("expected_product_code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not _GUID.match(v):
            raise ValueError(f"{v!r} is not a product code such as {{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}}")
        return v.upper() if v else v

    @property
    def script(self) -> str:
        return hostops.join(self.bundle_path, UPDATE_SCRIPT.format(folder=self.script_folder))


STEP_UPDATE_READ = "read Tenant API version"
STEP_UPDATE = "update Tenant API (Update-TenantAPI.ps1)"
#: Every step name of TenantApiUpdate: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
UPDATE_STEPS = (STEP_UPDATE_READ, STEP_UPDATE)

UPDATE_RESOURCE = "TenantApiUpdate"
UPDATE_MARKER = ownership.marker_path(UPDATE_RESOURCE, "tenantapi")
UPDATE_THING = "the connector's Tenant API (Update-TenantAPI.ps1)"


# ---------------------------------------------------------------------------------------------------------------
# Read


@dataclass(frozen=True)
class TenantApiUpdateObserved:
    product_code: str | None
    site_state: str | None


PRODUCT = tenant_api.TenantApiProduct()
SITE = iis.Websites(name=TENANT_API_SITE)


def update_read_statements() -> list[Pipeline]:
    """The ProductCode registry value, then the Tenant API site: one statement each."""
    return [*PRODUCT.statements(), *SITE.statements()]


def parse_tenant_api(registry: Sequence[Any], site: Sequence[Any]) -> TenantApiUpdateObserved | None:
    """The registry statement's values and the site statement's object -> observed state; None when neither
    exists (not a Tenant API)."""
    code = PRODUCT.parse(registry)
    found = iis.site_named(SITE.parse(site), TENANT_API_SITE)
    state = (found.state or None) if found else None
    if code is None and state is None:
        return None
    return TenantApiUpdateObserved(code, state)


def read_tenant_api_owned(t: Transport, conn: HostConnection) -> tuple[TenantApiUpdateObserved | None,
                                                                          ownership.Marker | None]:
    """The Tenant API and its ownership marker, in one invocation."""
    mark = OwnershipMarker(UPDATE_MARKER)
    statements = [*update_read_statements(), *mark.statements()]
    result = t.run(conn, STEP_UPDATE_READ, statements, idempotent=True, accept_errors=True)
    # A missing key is PathNotFound; a missing ProductCode value an ArgumentException: both mean "not there".
    hostops.only_expected_errors(conn, STEP_UPDATE_READ, statements, result,
                                 ("PathNotFound", "System.Management.Automation.PSArgumentException"))
    registry, site, marker = result.outputs
    return parse_tenant_api(registry, site), mark.parse(marker)


# ---------------------------------------------------------------------------------------------------------------
# Compare and steps


def is_updated(product_code: str | None, expected: str | None = None) -> bool:
    if not product_code:
        return False
    if expected:
        return product_code.upper() == expected.upper()
    return product_code.upper() not in UR91_TENANT_API_PRODUCT_CODES


def update_outputs(observed: TenantApiUpdateObserved | None, expected: str | None) -> dict[str, Any]:
    """The observed state as the outputs show it."""
    return {"product_code": observed.product_code if observed else None,
            "site_state": observed.site_state if observed else None,
            "updated": is_updated(observed.product_code if observed else None, expected)}


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """The connector's Tenant API, its site Started: ``updated`` (no longer UR9.1, or the expected product code)
    and ``site_state``. ``observed`` as :func:`update_outputs` (or the state's last read) shows it."""
    out = []
    if observed.get("updated") is not True:
        out.append(ownership.Difference("updated", observed.get("product_code"), "the connector's Tenant API"))
    if observed.get("site_state") != "Started":
        out.append(ownership.Difference("site_state", observed.get("site_state"), "Started"))
    return out


@dataclass(frozen=True)
class TenantApiUpdateStep:
    kind: Literal["run_update_script", "start_site"]


#: The step that closes each difference: the script makes the connector's Tenant API; an administrator may have
#: stopped its site since (the script keeps the site).
STEP_FOR = {"updated": TenantApiUpdateStep("run_update_script"), "site_state": TenantApiUpdateStep("start_site")}


# ---------------------------------------------------------------------------------------------------------------
# Provider


class TenantApiUpdateProvider(HostResourceProvider[TenantApiUpdateInputs, TenantApiUpdateObserved,
                                                   TenantApiUpdateStep]):
    """Update-TenantAPI.ps1 on one Tenant API VM (the template of providers.remote)."""

    inputs_model = TenantApiUpdateInputs
    ownership_resource = UPDATE_RESOURCE
    compare = staticmethod(compare)
    settings = ("bundle_path", "script_folder", "expected_product_code")

    def identity(self, inputs: TenantApiUpdateInputs) -> Identity:
        return Identity(inputs.connection.fqdn, UPDATE_MARKER, UPDATE_THING)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return Identity(remote.connection_of(props).fqdn, UPDATE_MARKER, UPDATE_THING)

    def read_host(self, t: Transport, inputs: TenantApiUpdateInputs) -> tuple[TenantApiUpdateObserved | None,
                                                                               ownership.Marker | None]:
        return read_tenant_api_owned(t, inputs.connection)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[TenantApiUpdateObserved | None,
                                                                           ownership.Marker | None]:
        return read_tenant_api_owned(t, remote.connection_of(props))

    def desired_values(self, inputs: TenantApiUpdateInputs) -> Mapping[str, Any]:
        return {}

    def observed_values(self, observed: TenantApiUpdateObserved | None,
                        inputs: TenantApiUpdateInputs) -> Mapping[str, Any]:
        return update_outputs(observed, inputs.expected_product_code)


    def steps(self, differences: list[ownership.Difference], inputs: TenantApiUpdateInputs,
              observed: TenantApiUpdateObserved | None) -> list[TenantApiUpdateStep]:
        return [STEP_FOR[d.field] for d in differences]

    def apply(self, t: Transport, inputs: TenantApiUpdateInputs, steps: list[TenantApiUpdateStep],
              observed: TenantApiUpdateObserved | None) -> str | None:
        """Run the steps; the product code the update replaced (``previous_product_code``)."""
        conn = inputs.connection
        kinds = {s.kind for s in steps}
        if "run_update_script" in kinds:
            hostops.require_file(t, conn, STEP_UPDATE, inputs.script, hint=SCRIPT_MISSING_HINT)
            # Not re-sent by the transport (an MSI patch for minutes); the rerun reads the product code first.
            t.run(conn, STEP_UPDATE, Command(inputs.script), timeout=UPDATE_TIMEOUT_SECONDS, idempotent=False)
        # A site that is not there is not started: the read after the steps reports it.
        if "start_site" in kinds and observed is not None and observed.site_state is not None:
            t.run(conn, STEP_UPDATE, Command("Start-Website", {"Name": TENANT_API_SITE}), idempotent=True)
        return observed.product_code if observed else None

    def did_not_converge(self, inputs: TenantApiUpdateInputs, observed: TenantApiUpdateObserved | None,
                         left: list[TenantApiUpdateStep]) -> HostDidNotConverge:
        if any(s.kind == "run_update_script" for s in left):
            what = f"the Tenant API's ProductCode is still {observed.product_code if observed else 'missing'}"
        else:
            what = f"{TENANT_API_SITE} is {observed.site_state if observed else 'missing'}, not Started"
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_UPDATE, f"after Update-TenantAPI.ps1 {what}",
            hint="check the script's log on the host and that this is a Windows Azure Pack Tenant API computer, "
                 "then retry")

    def is_the_thing(self, observed: TenantApiUpdateObserved, inputs: TenantApiUpdateInputs) -> bool:
        # The connector's Tenant API; the UR9.1 one is the starting point, not a thing.
        return is_updated(observed.product_code, inputs.expected_product_code)

    def prior_values(self, observed: TenantApiUpdateObserved, inputs: TenantApiUpdateInputs) -> dict[str, Any]:
        return {"product_code": observed.product_code, "site_state": observed.site_state}

    def outputs(self, props: Mapping[str, Any], inputs: TenantApiUpdateInputs,
                done: Converged[TenantApiUpdateObserved, TenantApiUpdateStep],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        if olds is not None:
            previous = olds.get("previous_product_code")
        else:
            previous = done.applied if done.steps else done.observed.product_code
        return {**update_outputs(done.observed, inputs.expected_product_code), "previous_product_code": previous}

    def resource_id(self, inputs: TenantApiUpdateInputs, outputs: Mapping[str, Any]) -> str:
        return f"{inputs.connection.fqdn}:TenantAPI"

    def read_outputs(self, props: Mapping[str, Any], observed: TenantApiUpdateObserved | None) -> dict[str, Any]:
        return update_outputs(observed, props.get("expected_product_code"))

    def remove(self, t: Transport, props: Mapping[str, Any], found: TenantApiUpdateObserved | None) -> None:
        pulumi.log.warn(
            f"{_fqdn(props)}: the connector's Tenant API stays installed: Update-TenantAPI.ps1 has no documented "
            f"undo. To go back, reinstall the Windows Azure Pack UR9.1 Tenant API "
            f"(previous product code {props.get('previous_product_code') or 'unknown'}).")

    def leave(self, t: Transport, props: Mapping[str, Any], found: TenantApiUpdateObserved | None) -> None:
        pulumi.log.warn(f"{_fqdn(props)}: the connector's Tenant API was installed before this stack; it stays")


def _fqdn(props: Mapping[str, Any]) -> str:
    return str((props.get("connection") or {}).get("fqdn", "?"))


class TenantApiUpdate(LabResource, name="TenantApiUpdate"):
    """Update-TenantAPI.ps1 run on one Tenant API VM (the bundle must be staged at ``bundle_path``).

    Outputs: ``product_code`` (observed), ``updated`` (no longer UR9.1, or equal to ``expected_product_code``),
    ``site_state``, ``previous_product_code``. Delete changes nothing on the host (no documented undo) and warns.
    ``connection`` is a secret output."""

    product_code: pulumi.Output[str]
    updated: pulumi.Output[bool]
    site_state: pulumi.Output[str]
    previous_product_code: pulumi.Output[str]

    def __init__(self, name: str, *, connection: pulumi.Input[dict[str, Any]],
                 bundle_path: pulumi.Input[str] = BUNDLE_PATH, script_folder: str = "Packages",
                 expected_product_code: str | None = None, owner: pulumi.Input[str] | None = None,
                 adopt: pulumi.Input[bool] = False, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"connection": remote.password_secret(connection), "bundle_path": bundle_path,
                 "script_folder": script_folder, "expected_product_code": expected_product_code,
                 "product_code": None, "updated": None, "site_state": None, "previous_product_code": None,
                 **ownership.resource_props(owner, adopt)}
        super().__init__(TenantApiUpdateProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, remote.secret_outputs()))

