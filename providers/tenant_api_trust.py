"""TenantApiTrust: ``Configure-TrustAzureStack.ps1`` once per WAP cloud, from one Tenant API VM.

It stages the cloud's data file (the output of Add-AzurePackConnector) next to the bundle and runs
Configure-TrustAzureStack.ps1 against the Microsoft.MgmtSvc.Store SQL server (named explicitly or discovered from
the TenantAPI ManagementStore setting). Read: the trust row holds this data file's realm (and certificate,
endpoint); delete removes the row and the staged file.

Two modules, by job: providers/_tenant_api_trust_model.py is pure (the ASSUMPTIONS block, marking what is
[doc]umented, [pub]lic knowledge or [inf]erred; the inputs; the read's parser into :class:`TenantApiTrustObserved`;
:func:`compare` and the steps for its differences, :class:`TenantApiTrustStep`); this module runs against the
Tenant API VM on the template of providers.remote: the read, the steps, the hooks. The Store's SQL server is resolved
once per provider method, before any read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi

from providers import hostops, ownership, remote

# Importable from here too, where callers and tests find them.
from providers._tenant_api_trust_model import (  # noqa: F401
    STEP_DISCOVER_SQL,
    STEP_TRUST,
    STEP_TRUST_DELETE,
    STEP_TRUST_READ,
    TRUST_RESOURCE,
    TRUST_SCRIPT,
    TRUST_STEPS,
    TRUST_TIMEOUT_SECONDS,
    TenantApiTrustInputs,
    TenantApiTrustObserved,
    TenantApiTrustStep,
    compare,
    desired_in,
    parse_data_file,
    parse_trust_state,
    steps_for,
    trust_desired,
    trust_drift,
    trust_is_gone,
    trust_marker,
    trust_observed,
    trust_read_statements,
    trust_thing,
)
from providers.base import LabResource, is_unknown
from providers.bundle import SCRIPT_MISSING_HINT
from providers.errors import ConnectorError, HostDidNotConverge, RemoteCommandFailed
from providers.facts import tenant_api
from providers.facts.locations import BUNDLE_PATH
from providers.facts.markers import OwnershipMarker
from providers.facts.tenant_api import (
    STORE_DATABASE,
    TRUST_NAMESPACE,
    TRUST_SETTING,
    TrustData,
    sql_server_name,
    store_connection_string,
)
from providers.remote import Converged, HostResourceProvider, Identity
from providers.transport import Command, Credential, HostConnection, Secret, Transport


def read_trust_owned(t: Transport, conn: HostConnection, sql_server: str,
                     data_file_path: str) -> tuple[TenantApiTrustObserved, ownership.Marker | None]:
    """The trust and its ownership marker (kept on the Tenant API VM that runs the script), in one invocation."""
    mark = OwnershipMarker(trust_marker(sql_server))
    statements = [*trust_read_statements(sql_server, data_file_path), *mark.statements()]
    result = t.run(conn, STEP_TRUST_READ, statements, idempotent=True, accept_errors=True)
    hostops.only_expected_errors(conn, STEP_TRUST_READ, statements, result)
    file_hash, rows, marker = result.outputs
    return parse_trust_state(file_hash, rows), mark.parse(marker)


def discover_sql_server(t: Transport, conn: HostConnection) -> str:
    """The Store's SQL server, from the TenantAPI ManagementStore setting's connection string."""
    fact = tenant_api.ManagementStore()
    server = fact.parse(t.run(conn, STEP_DISCOVER_SQL, fact.statements(), idempotent=True).output)
    if server is None:
        raise ConnectorError(
            f"{conn.fqdn}, step '{STEP_DISCOVER_SQL}': the TenantAPI ManagementStore setting names no SQL server; "
            f"set sql_server explicitly", host=conn.fqdn, step=STEP_DISCOVER_SQL)
    try:
        return sql_server_name(server)
    except ValueError as exc:
        raise ConnectorError(f"{conn.fqdn}, step '{STEP_DISCOVER_SQL}': the ManagementStore connection string's "
                             f"server {exc}; set sql_server explicitly", host=conn.fqdn,
                             step=STEP_DISCOVER_SQL) from None


# ---------------------------------------------------------------------------------------------------------------
# Steps

# SQL Server's own words when the login cannot write the Store (error 18456 / no sysadmin on the database).
_SQL_ACCESS = re.compile(r"Login failed for user|does not have sysadmin access|permission was denied", re.IGNORECASE)


def sql_access_refused(exc: RemoteCommandFailed, inputs: TenantApiTrustInputs) -> RemoteCommandFailed:
    """The script's SQL error with what the operator sets: the cloud's sqlCredential key, not -SqlCredential."""
    key = f"{inputs.settings_key}.sqlCredential" if inputs.settings_key else "sql_credential"
    if inputs.sql_credential is None:
        todo = (f"set {key} to a credential (a name in wapconnector:credentials) whose SQL login is sysadmin on "
                f"{STORE_DATABASE}, or give the connection's user that access, then run again")
    else:
        todo = (f"the SQL login of the credential {key} names was refused: check its user name and password and "
                f"that the login is sysadmin on {STORE_DATABASE}, then run again")
    return RemoteCommandFailed(exc.host or "?", exc.step or STEP_TRUST, command=exc.command,
                               message=exc.remote_message, error_id=exc.error_id, category=exc.category,
                               terminating=exc.terminating, more_errors=exc.more_errors, target=exc.target,
                               failed_command=exc.failed_command, advice=todo)


def set_trust_row(t: Transport, conn: HostConnection, sql_server: str, value: str) -> None:
    """Write the trust row (an empty value deletes it). The same write twice leaves the same row."""
    t.run(conn, STEP_TRUST_DELETE, Command("Set-MgmtSvcDatabaseSetting", {
        "ConnectionString": store_connection_string(sql_server), "Namespace": TRUST_NAMESPACE,
        "Name": TRUST_SETTING, "Value": value}, ["Force"]), idempotent=True)


def remove_staged_file(t: Transport, conn: HostConnection, step: str, path: str) -> None:
    """Remove this resource's staged copy of the data file; one already gone is fine."""
    cleanup = Command("Remove-Item", {"Path": path}, ["Force"])
    result = t.run(conn, step, cleanup, idempotent=True, accept_errors=True)
    hostops.only_expected_errors(conn, step, cleanup, result)


def restore_prior(t: Transport, conn: HostConnection, sql: str, props: Mapping[str, Any],
                  state: TenantApiTrustObserved) -> None:
    """An adopted trust row is never deleted: the value it held before goes back when the stack changed it;
    the staged data file goes only when the stack staged it."""
    given = props.get("prior")
    prior: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    before = prior.get("row_value")
    if isinstance(before, str) and before and before != state.row_value:
        set_trust_row(t, conn, sql, before)
    if prior.get("data_file_sha256") is None and state.data_file_sha256 is not None:
        remove_staged_file(t, conn, STEP_TRUST_DELETE, props["data_file_path"])
    pulumi.log.warn(f"{conn.fqdn}: {trust_thing(sql)} was there before this stack; it stays"
                    + (" with its previous value" if isinstance(before, str) and before != state.row_value else ""))


# ---------------------------------------------------------------------------------------------------------------
# Provider glue


def stored_sql_server(t: Transport, props: Mapping[str, Any]) -> str:
    """The Store a created trust lives in: the server it used, else the input, else discovered again."""
    return str(props.get("sql_server_used") or props.get("sql_server")
               or discover_sql_server(t, remote.connection_of(props)))


class TenantApiTrustProvider(HostResourceProvider[TenantApiTrustInputs, TenantApiTrustObserved,
                                                  TenantApiTrustStep]):
    """Configure-TrustAzureStack.ps1 from one Tenant API VM (the template of providers.remote). Every host call
    takes inputs whose ``sql_server`` is resolved (:meth:`parse_inputs`)."""

    inputs_model = TenantApiTrustInputs
    ownership_resource = TRUST_RESOURCE
    compare = staticmethod(compare)
    settings = ("data_file_name", "bundle_path", "sql_server", "sql_credential")
    # The trust row's identity is its Store; a new data file (a connector rerun names it anew) is staged and
    # applied in place, so the row is overwritten, never absent.
    replace_on = ("sql_server",)
    # One trust row per Store: a new Store is a replacement; remove the old row before writing the new one.
    delete_before_replace = True

    def parse_inputs(self, t: Transport, props: Mapping[str, Any],
                     olds: Mapping[str, Any] | None) -> TenantApiTrustInputs:
        """The inputs with ``sql_server`` set: given, else the one used before, else discovered."""
        inputs = TenantApiTrustInputs.parse(props)
        if inputs.sql_server is not None:
            return inputs
        used = olds.get("sql_server_used") if olds is not None else None
        sql = used if isinstance(used, str) and used else discover_sql_server(t, inputs.connection)
        return inputs.model_copy(update={"sql_server": sql})

    def identity(self, inputs: TenantApiTrustInputs) -> Identity:
        return _identity(inputs.connection.fqdn, inputs.store_server())

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return _identity(remote.connection_of(props).fqdn, stored_sql_server(t, props))

    def read_host(self, t: Transport, inputs: TenantApiTrustInputs) -> tuple[TenantApiTrustObserved | None,
                                                                              ownership.Marker | None]:
        return read_trust_owned(t, inputs.connection, inputs.store_server(), inputs.data_file_path)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[TenantApiTrustObserved | None,
                                                                           ownership.Marker | None]:
        return read_trust_owned(t, remote.connection_of(props), stored_sql_server(t, props), props["data_file_path"])

    def desired_in(self, news: Mapping[str, Any]) -> Mapping[str, Any]:
        return desired_in(news)

    def desired_values(self, inputs: TenantApiTrustInputs) -> Mapping[str, Any]:
        return trust_desired(inputs)

    def observed_values(self, observed: TenantApiTrustObserved | None,
                        inputs: TenantApiTrustInputs) -> Mapping[str, Any]:
        return trust_observed(observed if observed is not None else TenantApiTrustObserved(None, None))


    def changed_settings(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        def differs(name: str) -> bool:  # names and paths compare case-insensitively, as Windows and SQL do
            old, new = olds.get(name), news.get(name)
            return old != new if name == "sql_credential" else str(old or "").lower() != str(new or "").lower()

        return [name for name in self.settings if is_unknown(news.get(name)) or differs(name)]

    def steps(self, differences: list[ownership.Difference], inputs: TenantApiTrustInputs,
              observed: TenantApiTrustObserved | None) -> list[TenantApiTrustStep]:
        return steps_for(differences)

    def apply(self, t: Transport, inputs: TenantApiTrustInputs, steps: list[TenantApiTrustStep],
              observed: TenantApiTrustObserved | None) -> None:
        conn = inputs.connection
        kinds = {s.kind for s in steps}
        if "stage_data_file" in kinds:
            hostops.stage_bytes(t, conn, STEP_TRUST, {inputs.data_file_path: inputs.data_file_bytes},
                                chunk_size=256 * 1024, directories=[inputs.bundle_path])
        if "run_trust_script" in kinds:
            script = hostops.join(inputs.bundle_path, TRUST_SCRIPT)
            hostops.require_file(t, conn, STEP_TRUST, script, hint=SCRIPT_MISSING_HINT)
            params: dict[str, Any] = {"SqlServer": inputs.store_server(), "DataFile": inputs.data_file_path}
            if inputs.sql_credential is not None:
                params["SqlCredential"] = Credential(inputs.sql_credential.username,
                                                     Secret(inputs.sql_credential.password.get_secret_value()))
            # Not re-sent by the transport (writes the Store's trust row through SQL; the rerun reads it first).
            try:
                t.run(conn, STEP_TRUST, Command(script, params), timeout=TRUST_TIMEOUT_SECONDS, idempotent=False)
            except RemoteCommandFailed as exc:
                if not _SQL_ACCESS.search(exc.remote_message):
                    raise
                raise sql_access_refused(exc, inputs) from exc

    def did_not_converge(self, inputs: TenantApiTrustInputs, observed: TenantApiTrustObserved | None,
                         left: list[TenantApiTrustStep]) -> HostDidNotConverge:
        seen = self.observed_values(observed, inputs)
        drift = trust_drift(seen, trust_desired(inputs))
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_TRUST,
            f"after Configure-TrustAzureStack.ps1 the trust row {TRUST_NAMESPACE}/{TRUST_SETTING} on "
            f"{inputs.store_server()} differs in {', '.join(drift)} (realm now {seen.get('realm')!r})",
            hint="check the script's output and the data file, then retry")

    def is_the_thing(self, observed: TenantApiTrustObserved, inputs: TenantApiTrustInputs) -> bool:
        return observed.trust is not None  # the row; a staged file alone is not a trust

    def prior_values(self, observed: TenantApiTrustObserved, inputs: TenantApiTrustInputs) -> dict[str, Any]:
        return {"row_value": observed.row_value, "data_file_sha256": observed.data_file_sha256}

    def outputs(self, props: Mapping[str, Any], inputs: TenantApiTrustInputs,
                done: Converged[TenantApiTrustObserved, TenantApiTrustStep],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        desired = trust_desired(inputs)
        return {**desired, "desired_realm": desired["realm"], "sql_server_used": inputs.store_server(),
                "data_file_path": inputs.data_file_path}

    def resource_id(self, inputs: TenantApiTrustInputs, outputs: Mapping[str, Any]) -> str:
        return f"{inputs.store_server()}:{TRUST_NAMESPACE}:{TRUST_SETTING}"

    def after_update(self, t: Transport, inputs: TenantApiTrustInputs, olds: Mapping[str, Any]) -> None:
        old_file = olds.get("data_file_path")
        if old_file and str(old_file).lower() != inputs.data_file_path.lower():
            # After the row reads the new file.
            remove_staged_file(t, inputs.connection, STEP_TRUST, old_file)

    def is_gone(self, props: Mapping[str, Any], observed: TenantApiTrustObserved | None,
                marker: ownership.Marker | None) -> bool:
        state = observed if observed is not None else TenantApiTrustObserved(None, None)
        return trust_is_gone(state, TrustData(realm=props.get("desired_realm") or props.get("realm") or ""))

    def read_outputs(self, props: Mapping[str, Any], observed: TenantApiTrustObserved | None) -> dict[str, Any]:
        return trust_observed(observed if observed is not None else TenantApiTrustObserved(None, None))

    def read_before_delete(self, t: Transport, props: Mapping[str, Any],
                           tracked: bool) -> tuple[TenantApiTrustObserved | None, ownership.Marker | None]:
        return self.read_state(t, props)  # the row, owned or not: delete removes only a row of this realm

    def remove(self, t: Transport, props: Mapping[str, Any], found: TenantApiTrustObserved | None) -> None:
        conn, sql = remote.connection_of(props), stored_sql_server(t, props)
        realm = props.get("desired_realm") or ""
        trust = found.trust if found is not None else None
        if trust is not None and trust.realm == realm:
            set_trust_row(t, conn, sql, "")
        elif trust is not None:
            pulumi.log.warn(f"{conn.fqdn}: the trust row {TRUST_NAMESPACE}/{TRUST_SETTING} on {sql} now holds realm "
                            f"{trust.realm!r}, not this resource's {realm!r}; leaving it")
        remove_staged_file(t, conn, STEP_TRUST_DELETE, props["data_file_path"])

    def leave(self, t: Transport, props: Mapping[str, Any], found: TenantApiTrustObserved | None) -> None:
        restore_prior(t, remote.connection_of(props), stored_sql_server(t, props), props,
                      found if found is not None else TenantApiTrustObserved(None, None))


def _identity(host: str, sql_server: str) -> Identity:
    return Identity(host, trust_marker(sql_server), trust_thing(sql_server))


class TenantApiTrust(LabResource, name="TenantApiTrust"):
    """Configure-TrustAzureStack.ps1, once per WAP cloud, from one Tenant API VM.

    Inputs: ``data_file_content`` (the cloud's Add-AzurePackConnector output file), ``data_file_name``,
    ``bundle_path``, ``sql_server`` (discovered from the TenantAPI ManagementStore setting when None),
    ``sql_credential`` ({username, password}, secret), ``realm`` (only when the data file is not parseable).
    Outputs: ``realm``, ``connector_endpoint``, ``token_signing_thumbprint`` (observed in the trust row),
    ``data_file_sha256`` (observed), ``data_file_path``, ``sql_server_used``, ``desired_realm``.
    Secret: ``connection``, ``sql_credential``."""

    realm: pulumi.Output[str]
    connector_endpoint: pulumi.Output[str]
    token_signing_thumbprint: pulumi.Output[str]
    data_file_sha256: pulumi.Output[str]
    data_file_path: pulumi.Output[str]
    sql_server_used: pulumi.Output[str]
    desired_realm: pulumi.Output[str]

    def __init__(self, name: str, *, connection: pulumi.Input[dict[str, Any]],
                 data_file_content: pulumi.Input[str], data_file_name: pulumi.Input[str],
                 bundle_path: pulumi.Input[str] = BUNDLE_PATH, sql_server: pulumi.Input[str] | None = None,
                 sql_credential: pulumi.Input[dict[str, Any]] | None = None, realm: pulumi.Input[str] | None = None,
                 owner: pulumi.Input[str] | None = None, adopt: pulumi.Input[bool] = False,
                 settings_key: str | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "settings_key": settings_key,
            "connection": remote.password_secret(connection), "data_file_content": data_file_content,
            "data_file_name": data_file_name, "bundle_path": bundle_path, "sql_server": sql_server,
            "sql_credential": None if sql_credential is None else remote.password_secret(sql_credential),
            "realm": realm, "connector_endpoint": None, "token_signing_thumbprint": None,
            "data_file_sha256": None, "data_file_path": None, "sql_server_used": None, "desired_realm": None,
            **ownership.resource_props(owner, adopt),
        }
        super().__init__(TenantApiTrustProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, remote.secret_outputs("sql_credential")))
