"""TenantApiUpdate: ``Update-TenantAPI.ps1`` on every Tenant API VM (step 2e of the article).

It installs the connector's Tenant API. Read: the ``ProductCode`` under
``HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI`` is no longer the UR9.1 code, and the MgmtSvc-TenantAPI site
is Started. There is no documented undo: delete leaves the host as it is and warns.

The template of providers.remote: a read (one invocation, each statement parsed apart into
:class:`TenantApiState`), a pure plan (typed :class:`UpdateStep`), apply, the generic converge. Every assumption
about the unpublished WAPConnector internals sits in the ASSUMPTIONS block below, marked [doc]/[pub]/[inf].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult
from pydantic import Field, field_validator

from providers import hostops, ownership, remote
from providers.base import FieldDiff, LabResource, is_unknown
from providers.bundle import DEFAULT_DESTINATION, SCRIPT_MISSING_HINT, BundlePath
from providers.errors import HostDidNotConverge
from providers.facts import iis, tenant_api
from providers.facts.locations import TENANT_API_SITE
from providers.remote import HostResourceProvider, RemoteInputs
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
    bundle_path: BundlePath = DEFAULT_DESTINATION
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
class TenantApiState:
    product_code: str | None
    site_state: str | None


PRODUCT = tenant_api.TenantApiProduct()
SITE = iis.Websites(name=TENANT_API_SITE)


def update_read_statements() -> list[Pipeline]:
    """The ProductCode registry value, then the Tenant API site: one statement each."""
    return [*PRODUCT.statements(), *SITE.statements()]


def parse_tenant_api(registry: Sequence[Any], site: Sequence[Any]) -> TenantApiState | None:
    """The registry statement's values and the site statement's object -> observed state; None when neither
    exists (not a Tenant API)."""
    code = PRODUCT.parse(registry)
    found = iis.site_named(SITE.parse(site), TENANT_API_SITE)
    state = (found.state or None) if found else None
    if code is None and state is None:
        return None
    return TenantApiState(code, state)


def read_tenant_api_owned(t: Transport, conn: HostConnection) -> tuple[TenantApiState | None,
                                                                          ownership.Marker | None]:
    """The Tenant API and its ownership marker, in one invocation."""
    statements: list[Command | Pipeline] = [*update_read_statements(), ownership.read_command(UPDATE_MARKER)]
    result = t.run(conn, STEP_UPDATE_READ, statements, idempotent=True, accept_errors=True)
    # A missing key is PathNotFound; a missing ProductCode value an ArgumentException: both mean "not there".
    hostops.only_expected_errors(conn, STEP_UPDATE_READ, statements, result,
                                 ("PathNotFound", "System.Management.Automation.PSArgumentException"))
    registry, site, marker = result.outputs
    return parse_tenant_api(registry, site), ownership.marker_in(marker)


# ---------------------------------------------------------------------------------------------------------------
# Plan


def is_updated(product_code: str | None, expected: str | None = None) -> bool:
    if not product_code:
        return False
    if expected:
        return product_code.upper() == expected.upper()
    return product_code.upper() not in UR91_TENANT_API_PRODUCT_CODES


@dataclass(frozen=True)
class UpdateStep:
    kind: Literal["run_update_script", "start_site"]


def plan_update(observed: TenantApiState | None, expected: str | None = None) -> list[UpdateStep]:
    """``run_update_script`` when the Tenant API is not the connector's yet; ``start_site`` when its site is
    not Started (the script keeps the site; an administrator may have stopped it). Empty: nothing to do."""
    steps = []
    if observed is None or not is_updated(observed.product_code, expected):
        steps.append(UpdateStep("run_update_script"))
    if observed is None or observed.site_state != "Started":
        steps.append(UpdateStep("start_site"))
    return steps


def update_outputs(observed: TenantApiState, expected: str | None) -> dict[str, Any]:
    return {"product_code": observed.product_code, "site_state": observed.site_state,
            "updated": is_updated(observed.product_code, expected)}


def update_changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    changed, replaces = remote.connection_diff(olds, news)
    # Observed (olds, as read returned it) against desired: updated and Started.
    if olds.get("updated") is not True:
        changed.append("updated")
    if olds.get("site_state") != "Started":
        changed.append("site_state")
    for name in ("bundle_path", "script_folder", "expected_product_code"):
        if is_unknown(news.get(name)) or olds.get(name) != news.get(name):
            changed.append(name)
    return changed, replaces


# ---------------------------------------------------------------------------------------------------------------
# Provider glue


class TenantApiUpdateProvider(HostResourceProvider[TenantApiUpdateInputs, TenantApiState, UpdateStep]):
    """Update-TenantAPI.ps1 on one Tenant API VM (the template of providers.remote)."""

    ownership_resource = UPDATE_RESOURCE

    def read_host(self, t: Transport, inputs: TenantApiUpdateInputs) -> tuple[TenantApiState | None,
                                                                               ownership.Marker | None]:
        return read_tenant_api_owned(t, inputs.connection)

    def plan(self, observed: TenantApiState | None, inputs: TenantApiUpdateInputs) -> list[UpdateStep]:
        return plan_update(observed, inputs.expected_product_code)

    def apply(self, t: Transport, inputs: TenantApiUpdateInputs, steps: list[UpdateStep],
              observed: TenantApiState | None) -> str | None:
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

    def did_not_converge(self, inputs: TenantApiUpdateInputs, observed: TenantApiState | None,
                         left: list[UpdateStep]) -> HostDidNotConverge:
        if any(s.kind == "run_update_script" for s in left):
            what = f"the Tenant API's ProductCode is still {observed.product_code if observed else 'missing'}"
        else:
            what = f"{TENANT_API_SITE} is {observed.site_state if observed else 'missing'}, not Started"
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_UPDATE, f"after Update-TenantAPI.ps1 {what}",
            hint="check the script's log on the host and that this is a Windows Azure Pack Tenant API computer, "
                 "then retry")

    def marker_path(self, inputs: TenantApiUpdateInputs) -> str:
        return UPDATE_MARKER

    def thing(self, inputs: TenantApiUpdateInputs) -> str:
        return UPDATE_THING

    def is_the_thing(self, observed: TenantApiState, inputs: TenantApiUpdateInputs) -> bool:
        # The connector's Tenant API; the UR9.1 one is the starting point, not a thing.
        return is_updated(observed.product_code, inputs.expected_product_code)

    def differences(self, observed: TenantApiState, inputs: TenantApiUpdateInputs) -> list[ownership.Difference]:
        return ([ownership.Difference("site_state", observed.site_state, "Started")]
                if observed.site_state != "Started" else [])

    def prior_values(self, observed: TenantApiState) -> dict[str, Any]:
        return {"product_code": observed.product_code, "site_state": observed.site_state}

    # -- Pulumi ------------------------------------------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return remote.check_remote(TenantApiUpdateInputs, news)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Another host is another Tenant API (replace); everything else converges in place.
        changed, replaces = update_changed_fields(olds, news)
        return FieldDiff([*changed, *ownership.owner_changed(olds, news)], replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = TenantApiUpdateInputs.parse(props)
        t = self.transport
        own = self.claim(t, inputs)
        done = self.converge_steps(t, inputs)
        previous = done.applied if done.steps else done.observed.product_code
        outs = {**update_outputs(done.observed, inputs.expected_product_code), "previous_product_code": previous}
        return CreateResult(id_=f"{inputs.connection.fqdn}:TenantAPI",
                            outs={**remote.inputs_only(props), **outs, **own})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        observed, marker = read_tenant_api_owned(self.transport, remote.connection_of(props))
        if observed is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, **update_outputs(observed, props.get("expected_product_code")),
                                         "observed_owner": marker.owner if marker else None})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = TenantApiUpdateInputs.parse(news)
        t = self.transport
        own = self.keep_ownership(t, inputs, olds)
        outs = {**update_outputs(self.converge(t, inputs), inputs.expected_product_code),
                "previous_product_code": olds.get("previous_product_code")}
        return UpdateResult(outs={**remote.inputs_only(news), **outs, **own})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        fqdn = (props.get("connection") or {}).get("fqdn", "?")
        owner = props.get("owner")
        if isinstance(owner, str):
            t = self.transport
            conn = remote.connection_of(props)
            _, marker = read_tenant_api_owned(t, conn)
            if not ownership.may_delete(host=conn.fqdn, thing=UPDATE_THING, owner=owner, marker=marker):
                return
            ownership.remove(t, conn, ownership.STEP_UNMARK, UPDATE_MARKER)
            if props.get("adopted"):
                pulumi.log.warn(f"{fqdn}: the connector's Tenant API was installed before this stack; it stays")
                return
        pulumi.log.warn(
            f"{fqdn}: the connector's Tenant API stays installed: Update-TenantAPI.ps1 has no documented undo. "
            f"To go back, reinstall the Windows Azure Pack UR9.1 Tenant API "
            f"(previous product code {props.get('previous_product_code') or 'unknown'}).")


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
                 bundle_path: pulumi.Input[str] = DEFAULT_DESTINATION, script_folder: str = "Packages",
                 expected_product_code: str | None = None, owner: pulumi.Input[str] | None = None,
                 adopt: pulumi.Input[bool] = False, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"connection": remote.password_secret(connection), "bundle_path": bundle_path,
                 "script_folder": script_folder, "expected_product_code": expected_product_code,
                 "product_code": None, "updated": None, "site_state": None, "previous_product_code": None,
                 "owner": owner, "adopt": adopt, "observed_owner": None, "adopted": None, "prior": None}
        super().__init__(TenantApiUpdateProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, remote.secret_outputs()))

