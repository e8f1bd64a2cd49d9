"""The WAP Tenant API: its settings (the Store's SQL server), its product, the trust row in the Store, and
whether a login is sysadmin on the Store's SQL server."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers import connector_output, names
from providers.facts import Fact, as_pipelines, records
from providers.facts.locations import MANAGEMENT_STORE_SETTING, PRODUCT_CODE_VALUE, STORE_DATABASE, TENANT_API_KEY
from providers.transport import Command, Credential, Pipeline

# [inf] the row Configure-TrustAzureStack writes: TenantAPI / Authentication.IdentityProvider.Secondary in
#       [Config].[Settings] of Microsoft.MgmtSvc.Store, value JSON {"Realm", "Certificate", "Endpoint"}.
TRUST_NAMESPACE = "TenantAPI"
TRUST_SETTING = "Authentication.IdentityProvider.Secondary"
# [inf] how sysadmin is read: Invoke-Sqlcmd (SqlServer/SQLPS module on the Tenant API VM) with SQL Server's
# documented IS_SRVROLEMEMBER, as the login Configure-TrustAzureStack.ps1 will use. A constant query, never built.
SYSADMIN_QUERY = "SELECT IS_SRVROLEMEMBER('sysadmin') AS IsSysadmin"

_SQL_SERVER = re.compile(rf"^(?:tcp:)?(?:{names.LABEL}(?:\.{names.LABEL})*|\.|\(local\))"
                         rf"(?:\\[A-Za-z_][A-Za-z0-9_$#]{{0,15}})?(?:,\d{{1,5}})?$", re.IGNORECASE)


def sql_server_name(value: str) -> str:
    if not isinstance(value, str) or not _SQL_SERVER.match(value):
        raise ValueError(f"{value!r} is not a SQL Server name (host or FQDN, optionally \\INSTANCE or ,port)")
    port = value.rsplit(",", 1)[1] if "," in value else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: port {port} is out of range (1-65535)")
    return value


def store_connection_string(sql_server: str) -> str:
    """The Store database through Integrated Security. ``sql_server`` is validated (no ';' or '='), so it
    cannot add keywords to the connection string."""
    return f"Data Source={sql_server_name(sql_server)};Initial Catalog={STORE_DATABASE};Integrated Security=True"


_CS_SERVER_KEYS = ("data source", "server", "address", "addr", "network address")


def parse_data_source(connection_string: str) -> str | None:
    """``Data Source=sql01\\WAP;Initial Catalog=...`` -> ``sql01\\WAP`` (ADO.NET keywords and synonyms, any
    case, optional quotes); None if it names no server."""
    for part in connection_string.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() in _CS_SERVER_KEYS:
            value = value.strip().strip("'\"").strip()
            return value or None
    return None


@dataclass(frozen=True)
class ManagementStore(Fact[str | None]):
    """The SQL server the TenantAPI ManagementStore setting's connection string names (as written there, not
    yet validated: :func:`sql_server_name`); None when there is no setting or it names no server. ``select``
    keeps only Name and Value (preflight's shape)."""

    select: bool = False

    def statements(self) -> list[Pipeline]:
        cmd = Command("Get-MgmtSvcSetting", dict(MANAGEMENT_STORE_SETTING))
        return as_pipelines(cmd | Command("Select-Object", {"Property": ["Name", "Value"]}) if self.select else cmd)

    def parse(self, objects: Sequence[Any]) -> str | None:
        value = next((d.get("value") for d in records(objects)
                      if str(d.get("name", "")).lower() == MANAGEMENT_STORE_SETTING["Name"].lower()), None)
        return parse_data_source(value) if isinstance(value, str) else None


def valid_server(server: str | None) -> str | None:
    """``server`` when it is a SQL Server name, else None."""
    try:
        return sql_server_name(server) if server else None
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustData:
    """What a trust holds (the data file says what it must hold, the Store's row what it does)."""

    realm: str
    endpoint: str | None = None
    certificate_thumbprint: str | None = None


@dataclass(frozen=True)
class TrustRow:
    value: str
    """The row's value as stored."""
    trust: TrustData
    """The value understood; a value that is not the expected JSON reads as a trust with an empty realm (drift,
    healed by re-running the script)."""


def trust_of(value: str) -> TrustData:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return TrustData(realm="")
    if not isinstance(parsed, Mapping):
        return TrustData(realm="")
    realm = connector_output.field(parsed, "Realm")
    endpoint = connector_output.field(parsed, "Endpoint")
    return TrustData(realm=realm if isinstance(realm, str) else "",
                     endpoint=endpoint if isinstance(endpoint, str) else None,
                     certificate_thumbprint=connector_output.certificate_thumbprint(
                         connector_output.field(parsed, "Certificate")))


@dataclass(frozen=True)
class TrustSetting(Fact[TrustRow | None]):
    """The trust row Configure-TrustAzureStack.ps1 writes into the Store (through Integrated Security); None
    when there is no row."""

    sql_server: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-MgmtSvcDatabaseSetting", {
            "ConnectionString": store_connection_string(self.sql_server), "Namespace": TRUST_NAMESPACE,
            "Name": [TRUST_SETTING]}))

    def parse(self, objects: Sequence[Any]) -> TrustRow | None:
        value = next((str(o.get("Value") or "") for o in objects
                      if isinstance(o, Mapping) and str(o.get("Name", "")).lower() == TRUST_SETTING.lower()), None)
        return None if value is None else TrustRow(value, trust_of(value))


@dataclass(frozen=True)
class TenantApiProduct(Fact[str | None]):
    """The Tenant API's ProductCode (upper case) from its MgmtSvc registry key; None when it has none."""

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-ItemProperty", {"Path": TENANT_API_KEY, "Name": [PRODUCT_CODE_VALUE]}))

    def parse(self, objects: Sequence[Any]) -> str | None:
        return next((str(o[PRODUCT_CODE_VALUE]).upper() or None for o in objects
                     if isinstance(o, Mapping) and PRODUCT_CODE_VALUE in o), None)


@dataclass(frozen=True)
class Sysadmin(Fact[bool]):
    """Whether the login (``credential``, else the session's Windows user) is sysadmin on ``sql_server``."""

    sql_server: str
    credential: Credential | None = None

    def statements(self) -> list[Pipeline]:
        params: dict[str, Any] = {"ServerInstance": self.sql_server, "Database": STORE_DATABASE,
                                  "Query": SYSADMIN_QUERY}
        if self.credential is not None:
            params["Credential"] = self.credential
        return [Command("Invoke-Sqlcmd", params) | Command("Select-Object", {"Property": ["IsSysadmin"]})]

    def parse(self, objects: Sequence[Any]) -> bool:
        value = next((o.get("IsSysadmin") for o in objects if isinstance(o, Mapping)), None)
        return str(value) in ("1", "True", "true")
