"""TenantApiUpdate: ``Update-TenantAPI.ps1`` on every Tenant API VM (step 2e of the article).

It installs the connector's Tenant API. Read: the ``ProductCode`` under
``HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI`` is no longer the UR9.1 code, and the MgmtSvc-TenantAPI site
is Started. There is no documented undo: delete leaves the host as it is and warns.

A read (one structured call), a pure plan, and thin provider glue. Every assumption about the unpublished
WAPConnector internals sits in the ASSUMPTIONS block below, marked [doc]/[pub]/[inf].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult
from pydantic import Field, field_validator

from providers import ownership
from providers.base import LabResource, is_unknown
from providers.bundle import DEFAULT_DESTINATION
from providers.errors import ConnectorError
from providers.hostops import join, only_expected_errors, require_file, windows_path
from providers.remote import (
    RemoteInputs,
    RemoteProvider,
    check_remote,
    connection_of,
    parse_model,
    password_secret,
    secret_outputs,
    transport,
)
from providers.remote import connection_diff as connection_change
from providers.remote import inputs_only as _inputs
from providers.transport import Command, HostConnection, Pipeline

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — what this resource takes for granted about WAP and the unpublished WAPConnector package.
#
# Update-TenantAPI.ps1
# [doc] the article runs it from setup\packages in its code and names setup\scripts in its text; default to
#       the code's folder, selectable with `script_folder`.
UPDATE_SCRIPT = r"Setup\{folder}\Update-TenantAPI.ps1"
# [pub] each WAP role has HKLM:\SOFTWARE\Microsoft\MgmtSvc\<Namespace> with its MSI ProductCode.
TENANT_API_KEY = r"HKLM:\SOFTWARE\Microsoft\MgmtSvc\TenantAPI"
PRODUCT_CODE_VALUE = "ProductCode"
# [pub] the UR9.1 Tenant API; [inf] "updated" means the product code is no longer this one (the connector's
#       Tenant API product code is unpublished; pass expected_product_code to pin it once known).
UR91_TENANT_API_PRODUCT_CODES = frozenset({"{CF41308C-9BC3-46C1-8B39-135D00E491E8}"})
# [pub] the Tenant API site; [inf] the update keeps it (Started, port 30005).
TENANT_API_SITE = "MgmtSvc-TenantAPI"
# [inf] how long the MSI upgrade may take (labsim: 30 s x latency factor).
UPDATE_TIMEOUT_SECONDS = 900.0
# [doc] no undo is documented (reinstalling the UR9.1 rollup MSI would be one).
# [doc] the scripts come with the WAPConnector bundle (ConnectorBundle) staged at bundle_path.
SCRIPT_MISSING_HINT = ("stage the WAPConnector folder there first (ConnectorBundle with destination = this "
                       "resource's bundle_path) and run `pulumi up` again")
# ---------------------------------------------------------------------------------------------------------------

ScriptFolder = Literal["Packages", "Scripts"]
_GUID = re.compile(r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$")


class TenantApiUpdateArgs(RemoteInputs):
    bundle_path: str = DEFAULT_DESTINATION
    script_folder: ScriptFolder = "Packages"
    expected_product_code: str | None = Field(None, description="pin the connector Tenant API's ProductCode")

    @field_validator("bundle_path")
    @classmethod
    def _bundle(cls, v: str) -> str:
        return windows_path(v)

    @field_validator("expected_product_code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not _GUID.match(v):
            raise ValueError(f"{v!r} is not a product code such as {{6E6C6E5B-0D63-4C6B-9A8E-2B1A3A9E7C41}}")
        return v.upper() if v else v

    @property
    def script(self) -> str:
        return join(self.bundle_path, UPDATE_SCRIPT.format(folder=self.script_folder))


@dataclass(frozen=True)
class TenantApiState:
    product_code: str | None
    site_state: str | None


def update_read_statements() -> list[Pipeline]:
    return [
        Pipeline((Command("Get-ItemProperty", {"Path": TENANT_API_KEY, "Name": [PRODUCT_CODE_VALUE]}),)),
        Command("Get-Website", {"Name": TENANT_API_SITE}) | Command("Select-Object", {"Property": ["name", "state"]}),
    ]


def parse_tenant_api(output: Sequence[Any]) -> TenantApiState | None:
    """Registry values and the site object -> observed state; None when neither exists (not a Tenant API)."""
    code = state = None
    for obj in output:
        if not isinstance(obj, Mapping):
            continue
        if PRODUCT_CODE_VALUE in obj:
            code = str(obj[PRODUCT_CODE_VALUE]).upper() or None
        elif str(obj.get("name", "")).lower() == TENANT_API_SITE.lower():
            state = str(obj.get("state") or "") or None
    if code is None and state is None:
        return None
    return TenantApiState(code, state)


def is_updated(product_code: str | None, expected: str | None = None) -> bool:
    if not product_code:
        return False
    if expected:
        return product_code.upper() == expected.upper()
    return product_code.upper() not in UR91_TENANT_API_PRODUCT_CODES


def plan_update(observed: TenantApiState | None, expected: str | None = None) -> list[str]:
    """``run_update_script`` when the Tenant API is not the connector's yet; ``start_site`` when its site is
    not Started (the script keeps the site; an administrator may have stopped it). Empty: nothing to do."""
    steps = []
    if observed is None or not is_updated(observed.product_code, expected):
        steps.append("run_update_script")
    if observed is None or observed.site_state != "Started":
        steps.append("start_site")
    return steps


STEP_UPDATE_READ = "read Tenant API version"
STEP_UPDATE = "update Tenant API (Update-TenantAPI.ps1)"
#: Every step name of TenantApiUpdate: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
UPDATE_STEPS = (STEP_UPDATE_READ, STEP_UPDATE)


UPDATE_RESOURCE = "TenantApiUpdate"
UPDATE_MARKER = ownership.marker_path(UPDATE_RESOURCE, "tenantapi")
UPDATE_THING = "the connector's Tenant API (Update-TenantAPI.ps1)"


def _read_tenant_api(conn: HostConnection) -> TenantApiState | None:
    return _read_tenant_api_owned(conn)[0]


def _read_tenant_api_owned(conn: HostConnection) -> tuple[TenantApiState | None, ownership.Marker | None]:
    stmts: list[Command | Pipeline] = [*update_read_statements(), ownership.read_command(UPDATE_MARKER)]
    result = transport().run(conn, STEP_UPDATE_READ, stmts, idempotent=True, accept_errors=True)
    # A missing key is PathNotFound; a missing ProductCode value an ArgumentException: both mean "not there".
    only_expected_errors(conn, STEP_UPDATE_READ, stmts, result,
                         ("PathNotFound", "System.Management.Automation.PSArgumentException"))
    marker = ownership.marker_in(result.outputs[-1])
    output = [o for out in result.outputs[:-1] for o in out]
    return parse_tenant_api(output), marker

def _update_outputs(observed: TenantApiState, expected: str | None) -> dict[str, Any]:
    return {"product_code": observed.product_code, "site_state": observed.site_state,
            "updated": is_updated(observed.product_code, expected)}


def update_changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    changed, replaces = connection_change(olds, news)
    # Observed (olds, as read returned it) against desired: updated and Started.
    if olds.get("updated") is not True:
        changed.append("updated")
    if olds.get("site_state") != "Started":
        changed.append("site_state")
    for name in ("bundle_path", "script_folder", "expected_product_code"):
        if is_unknown(news.get(name)) or olds.get(name) != news.get(name):
            changed.append(name)
    return changed, replaces


class TenantApiUpdateProvider(RemoteProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return check_remote(TenantApiUpdateArgs, news)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed, replaces = update_changed_fields(olds, news)
        changed += ownership.owner_changed(olds, news)
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        args = parse_model(TenantApiUpdateArgs, props, "TenantApiUpdate inputs")
        conn = args.connection
        before, marker = _read_tenant_api_owned(conn)
        own: dict[str, Any] = {}
        if args.owner is not None:
            # "Exists" = already the connector's Tenant API; the UR9.1 one is the starting point, not a thing.
            exists = before is not None and is_updated(before.product_code, args.expected_product_code)
            differs = [ownership.Difference("site_state", before.site_state, "Started")] \
                if exists and before is not None and before.site_state != "Started" else []
            mark = ownership.claim(
                host=conn.fqdn, thing=UPDATE_THING, owner=args.owner, adopt=args.adopt, marker=marker, exists=exists,
                differences=differs, resource=UPDATE_RESOURCE,
                prior={"product_code": before.product_code, "site_state": before.site_state} if exists and before
                else {})
            ownership.write(transport(), conn, ownership.STEP_MARK, UPDATE_MARKER, mark)
            own = ownership.outputs(mark)
        outs = self._converge(args, before)
        outs["previous_product_code"] = before.product_code if before else None
        return CreateResult(id_=f"{args.connection.fqdn}:TenantAPI", outs={**_inputs(props), **outs, **own})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        observed, marker = _read_tenant_api_owned(connection_of(props))
        if observed is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, **_update_outputs(observed, props.get("expected_product_code")),
                                         "observed_owner": marker.owner if marker else None})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        args = parse_model(TenantApiUpdateArgs, news, "TenantApiUpdate inputs")
        observed, marker = _read_tenant_api_owned(args.connection)
        own: dict[str, Any] = {}
        if args.owner is not None:
            ownership.may_change(host=args.connection.fqdn, thing=UPDATE_THING, owner=args.owner, adopt=args.adopt,
                                 marker=marker, previous=olds.get("owner"))
            mark = ownership.from_state({**olds, "owner": args.owner}, UPDATE_RESOURCE, UPDATE_THING)
            if mark is not None and marker != mark:
                ownership.write(transport(), args.connection, ownership.STEP_MARK, UPDATE_MARKER, mark)
            own = ownership.outputs(mark)
        outs = self._converge(args, observed)
        outs["previous_product_code"] = olds.get("previous_product_code")
        return UpdateResult(outs={**_inputs(news), **outs, **own})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        fqdn = (props.get("connection") or {}).get("fqdn", "?")
        owner = props.get("owner")
        if isinstance(owner, str):
            conn = connection_of(props)
            _, marker = _read_tenant_api_owned(conn)
            if not ownership.may_delete(host=conn.fqdn, thing=UPDATE_THING, owner=owner, marker=marker):
                return
            ownership.remove(transport(), conn, ownership.STEP_UNMARK, UPDATE_MARKER)
            if props.get("adopted"):
                pulumi.log.warn(f"{fqdn}: the connector's Tenant API was installed before this stack; it stays")
                return
        pulumi.log.warn(
            f"{fqdn}: the connector's Tenant API stays installed: Update-TenantAPI.ps1 has no documented undo. "
            f"To go back, reinstall the Windows Azure Pack UR9.1 Tenant API "
            f"(previous product code {props.get('previous_product_code') or 'unknown'}).")

    def _converge(self, args: TenantApiUpdateArgs, observed: TenantApiState | None) -> dict[str, Any]:
        conn = args.connection
        steps = plan_update(observed, args.expected_product_code)
        if "run_update_script" in steps:
            require_file(transport(), conn, STEP_UPDATE, args.script, hint=SCRIPT_MISSING_HINT)
            # Not re-sent by the transport (an MSI patch for minutes); the rerun reads the product code first.
            transport().run(conn, STEP_UPDATE, Command(args.script), timeout=UPDATE_TIMEOUT_SECONDS, idempotent=False)
            observed = _read_tenant_api(conn)
            steps = plan_update(observed, args.expected_product_code)
        if "start_site" in steps and observed is not None and observed.site_state is not None:
            transport().run(conn, STEP_UPDATE, Command("Start-Website", {"Name": TENANT_API_SITE}), idempotent=True)
            observed = _read_tenant_api(conn)
            steps = plan_update(observed, args.expected_product_code)
        if steps or observed is None:
            what = ("the Tenant API's ProductCode is still "
                    f"{observed.product_code if observed else 'missing'}" if "run_update_script" in steps
                    else f"{TENANT_API_SITE} is {observed.site_state if observed else 'missing'}, not Started")
            raise ConnectorError(
                f"{conn.fqdn}, step '{STEP_UPDATE}': after Update-TenantAPI.ps1 {what}; check the script's log "
                f"on the host and that this is a Windows Azure Pack Tenant API computer, then retry",
                host=conn.fqdn, step=STEP_UPDATE)
        return _update_outputs(observed, args.expected_product_code)


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
        props = {"connection": password_secret(connection), "bundle_path": bundle_path,
                 "script_folder": script_folder, "expected_product_code": expected_product_code,
                 "product_code": None, "updated": None, "site_state": None, "previous_product_code": None,
                 "owner": owner, "adopt": adopt, "observed_owner": None, "adopted": None, "prior": None}
        super().__init__(TenantApiUpdateProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs()))

