"""The TenantApiTrust resource's model, pure (no host is touched here): the assumptions about WAP and the
WAPConnector package, the inputs and the data file's parser, the read's statements and their parser,
:func:`compare` and the steps for its differences.

providers/tenant_api_trust.py runs it against the Tenant API VM (the template's hooks) and keeps every public name
importable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from providers import connector_output, hostops, ownership, remote
from providers._bundle_model import BundlePath
from providers.base import is_unknown
from providers.facts import files, tenant_api
from providers.facts.locations import BUNDLE_PATH, SCRIPTS_FOLDER
from providers.facts.tenant_api import (
    STORE_DATABASE,
    TRUST_NAMESPACE,
    TRUST_SETTING,
    TrustData,
    sql_server_name,
)
from providers.remote import RemoteInputs, text_required
from providers.transport import Pipeline

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS — what this resource takes for granted about WAP and the unpublished WAPConnector package.
#
# Configure-TrustAzureStack.ps1
# [doc] in setup\scripts; parameters -SqlServer, -DataFile; [inf, contract deviation] -SqlCredential
#       (PSCredential) instead of the interactive -PromptForSqlCredential.
TRUST_SCRIPT = SCRIPTS_FOLDER + r"\Configure-TrustAzureStack.ps1"
TRUST_TIMEOUT_SECONDS = 300.0
# [doc] the data file is copied to c:\temp\WAPConnector, i.e. the bundle root.
# [pub] the Store database's SQL server, without unprotecting web.config:
#       the TenantAPI ManagementStore setting (providers/facts/tenant_api.py, with the trust row's namespace and
#       name: TenantAPI / Authentication.IdentityProvider.Secondary, value JSON {"Realm", "Certificate", "Endpoint"}).
# [inf] undo: Set-MgmtSvcDatabaseSetting with an empty -Value deletes the row.
# [inf] the data file is the Add-AzurePackConnector output file, JSON: its keys and parser are in
#       providers/connector_output.py. Only the realm is required here: if a real file is not JSON, pass
#       `realm` explicitly: read-back then compares the realm only.
# [project choice] read and delete reach SQL with Integrated Security (the session's Windows user): a SQL
#       credential would have to travel inside the connection string, in clear text in the host's logs.
# ---------------------------------------------------------------------------------------------------------------

_USER = re.compile(r"^[^\x00-\x1f]{1,256}$")


class SqlCredentialInput(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    username: str
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _user(cls, v: str) -> str:
        if not _USER.match(v) or not v.strip():
            raise ValueError("is not a user name (1-256 printable characters)")
        return v

    @field_validator("password")
    @classmethod
    def _password(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("is empty: give the SQL login's password")
        return v


def parse_data_file(content: str) -> TrustData:
    """The Add-AzurePackConnector output file -> the trust it describes. Raises ValueError saying what is
    missing (the format is [inf], see ASSUMPTIONS)."""
    try:
        fields = connector_output.read_fields(content)
    except connector_output.NotJson as exc:
        raise ValueError(f"{exc}; if the real file has another format, pass realm explicitly") from None
    realm = fields.realm
    if realm is None or not realm.strip():
        raise ValueError(f"has no {connector_output.REALM_PATH}: is it the output file of Add-AzurePackConnector?")
    return TrustData(realm=realm, endpoint=fields.endpoint,
                     certificate_thumbprint=connector_output.certificate_thumbprint(fields.certificate))


class TenantApiTrustInputs(RemoteInputs):
    data_file_content: Annotated[str, text_required(
        "is empty: give the text of the Add-AzurePackConnector output file")] = Field(
        description="the text of this cloud's Add-AzurePackConnector output file")
    data_file_name: str = Field(description="its file name, e.g. AzurePack-06-27-15-50.txt")
    bundle_path: BundlePath = BUNDLE_PATH
    sql_server: str | None = None
    sql_credential: SqlCredentialInput | None = None
    realm: str | None = None
    # The stack config key of this cloud (wapconnector:clouds[0]), so that errors name the operator's keys.
    settings_key: str | None = None

    @field_validator("data_file_name")
    @classmethod
    def _name(cls, v: str) -> str:
        return hostops.file_name(v)

    @field_validator("sql_server")
    @classmethod
    def _sql(cls, v: str | None) -> str | None:
        return None if v is None else sql_server_name(v)

    @model_validator(mode="after")
    def _realm(self) -> TenantApiTrustInputs:
        try:
            parsed = parse_data_file(self.data_file_content)
        except ValueError as exc:
            if self.realm is None:
                raise ValueError(f"data_file_content: {exc}") from None
            return self
        if self.realm is not None and self.realm != parsed.realm:
            raise ValueError(f"realm: the data file's realm is {parsed.realm!r}; remove realm or make it match")
        return self

    @property
    def trust(self) -> TrustData:
        try:
            parsed = parse_data_file(self.data_file_content)
        except ValueError:
            return TrustData(realm=self.realm or "")
        return parsed

    @property
    def data_file_path(self) -> str:
        return hostops.join(self.bundle_path, self.data_file_name)

    @property
    def data_file_bytes(self) -> bytes:
        return self.data_file_content.encode("utf-8")

    def store_server(self) -> str:
        """The Store's SQL server once the provider resolved it (:meth:`TenantApiTrustProvider.resolved`)."""
        if self.sql_server is None:
            raise ValueError("sql_server: not resolved (discover_sql_server) before a host call")
        return self.sql_server


STEP_TRUST_READ = "read Tenant API trust"
STEP_TRUST = "configure trust with Azure Stack (Configure-TrustAzureStack.ps1)"
STEP_TRUST_DELETE = "remove Tenant API trust"
STEP_DISCOVER_SQL = "discover the Store SQL server"
#: Every step name of TenantApiTrust: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
TRUST_STEPS = (STEP_TRUST_READ, STEP_TRUST, STEP_TRUST_DELETE, STEP_DISCOVER_SQL)

TRUST_RESOURCE = "TenantApiTrust"


def trust_marker(sql_server: str) -> str:
    return ownership.marker_path(TRUST_RESOURCE, f"{sql_server}-{TRUST_SETTING}")


def trust_thing(sql_server: str) -> str:
    return f"the trust row {TRUST_NAMESPACE}/{TRUST_SETTING} in {STORE_DATABASE} on {sql_server}"


# ---------------------------------------------------------------------------------------------------------------
# Read


@dataclass(frozen=True)
class TenantApiTrustObserved:
    trust: TrustData | None
    """The trust row, None when absent."""
    data_file_sha256: str | None
    """The staged data file's hash, None when absent."""
    row_value: str | None = None
    """The row's value as stored (what an adopted row goes back to), None when absent."""


def trust_read_facts(sql_server: str, data_file_path: str) -> tuple[files.FileHash, tenant_api.TrustSetting]:
    """The staged data file's hash, then the trust row: one statement each."""
    return files.FileHash(data_file_path), tenant_api.TrustSetting(sql_server)


def trust_read_statements(sql_server: str, data_file_path: str) -> list[Pipeline]:
    return [p for fact in trust_read_facts(sql_server, data_file_path) for p in fact.statements()]


def parse_trust_state(file_hash: Sequence[Any], rows: Sequence[Any]) -> TenantApiTrustObserved:
    """The hash statement's object and the row statement's rows -> observed state."""
    hash_fact, row_fact = trust_read_facts("", "")
    row = row_fact.parse(rows)
    return TenantApiTrustObserved(row.trust if row else None, hash_fact.parse(file_hash), row.value if row else None)


# ---------------------------------------------------------------------------------------------------------------
# Plan


def trust_is_gone(state: TenantApiTrustObserved, desired: TrustData) -> bool:
    """Gone: neither the staged data file nor a row holding this realm (what delete leaves). A row of another
    realm, or a missing row while the file is staged, is drift instead."""
    ours = state.trust is not None and state.trust.realm == desired.realm
    return state.data_file_sha256 is None and not ours


def trust_observed(state: TenantApiTrustObserved) -> dict[str, Any]:
    """The observed fields, named as the desired ones."""
    t = state.trust
    return {
        "realm": t.realm if t else None,
        "connector_endpoint": t.endpoint if t else None,
        "token_signing_thumbprint": t.certificate_thumbprint if t else None,
        "data_file_sha256": state.data_file_sha256,
    }


def trust_desired(inputs: TenantApiTrustInputs) -> dict[str, Any]:
    t = inputs.trust
    return {"realm": t.realm, "connector_endpoint": t.endpoint, "token_signing_thumbprint": t.certificate_thumbprint,
            "data_file_sha256": hostops.sha256_bytes(inputs.data_file_bytes)}


def trust_drift(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Observed fields that differ from the desired ones; a desired None (not in the data file) is not compared."""
    return [k for k, want in desired.items() if want is not None and observed.get(k) != want]


#: What :func:`desired_in` gives for inputs whose data file cannot be read yet (unknown in a preview, or invalid).
UNREADABLE_DATA_FILE: Mapping[str, Any] = {"data_file_content": None}


def desired_in(news: Mapping[str, Any]) -> Mapping[str, Any]:
    """The program's inputs as :func:`trust_desired` (what the trust row and the staged file must hold), or
    UNREADABLE_DATA_FILE."""
    if is_unknown(news.get("data_file_content")):
        return UNREADABLE_DATA_FILE
    try:
        return trust_desired(TenantApiTrustInputs.model_validate(remote.inputs_only(news)))
    except ValueError:
        return UNREADABLE_DATA_FILE


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """``desired`` as :func:`trust_desired`, ``observed`` as :func:`trust_observed`: each field that differs (the
    realm, endpoint and signing certificate in the row, the staged file's hash); ``data_file_content`` while the
    data file cannot be read."""
    if desired is UNREADABLE_DATA_FILE:
        return [ownership.Difference("data_file_content", None, None)]
    return [ownership.Difference(f, observed.get(f), desired[f]) for f in trust_drift(observed, desired)]


@dataclass(frozen=True)
class TenantApiTrustStep:
    kind: Literal["stage_data_file", "run_trust_script"]


def steps_for(differences: Sequence[ownership.Difference]) -> list[TenantApiTrustStep]:
    """``stage_data_file`` when the staged file differs; ``run_trust_script`` when the row differs (or the file
    changed: the script must read the new one). Empty: nothing to do."""
    fields = [d.field for d in differences]
    steps = [TenantApiTrustStep("stage_data_file")] if "data_file_sha256" in fields else []
    if steps or any(f != "data_file_sha256" for f in fields):
        steps.append(TenantApiTrustStep("run_trust_script"))
    return steps
