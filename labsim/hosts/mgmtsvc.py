"""The MgmtSvcAdmin module's setting cmdlets and the WAP SQL databases they reach (docs/host-contract.md §6b).

Local web.config settings live in the WAP host's document (``mgmtsvc[<Namespace>] = {protected, settings}``);
database settings in the SQL host's (``sql[<database>][<Namespace>][<Name>] = value``). SQL logins are the SQL
host's lab users [inf]; sysadmin is ``User.sql_sysadmin``.
"""

from __future__ import annotations

from typing import Any

from labsim.hosts.base import CONNECTION_ERROR, OBJECT_NOT_FOUND, CommandSpec, Ctx, Param, table
from labsim.lab import Host, Lab, Role
from labsim.runtime import PSObject, TerminatingError

STORE_DB = "Microsoft.MgmtSvc.Store"
PORTAL_CONFIG_DB = "Microsoft.MgmtSvc.PortalConfigStore"
DATABASES = (STORE_DB, PORTAL_CONFIG_DB, "Microsoft.MgmtSvc.Config", "Microsoft.MgmtSvc.Usage")
_MODULE = "MgmtSvcAdmin"


class SqlLoginError(Exception):
    pass


def resolve_sql(lab: Lab, server: str) -> Host | None:
    """The wap_sql host named by a SQL server string (name, FQDN, optional \\INSTANCE or ,port)."""
    name = server.split("\\")[0].split(",")[0].strip().lower()
    if name in ("localhost", ".", "(local)"):
        return None
    for h in lab.hosts:
        if name in (h.name.lower(), h.fqdn) and h.has(Role.WAP_SQL):
            return h
    return None


def short_user(user: str) -> str:
    return user.split("\\")[-1].split("@")[0].lower()



def sql_login(ctx: Ctx, sql_host: Host, user: str | None, password: str | None, need_sysadmin: bool) -> str:
    """The login used on ``sql_host``: the given SQL credential, or the session user (integrated security)."""
    if user is not None:
        login, who, advice = user, f"The login '{user}'", ""
    else:
        login, who = ctx.session.user, f"The current user '{ctx.session.user}'"
        advice = " Run as a sysadmin or pass -SqlCredential."
    match = [u for u in sql_host.users if short_user(u.name) == short_user(login)
             and (user is None or u.password == password)]
    if not match:
        raise SqlLoginError(f"Login failed for user '{login}'.")
    if need_sysadmin and not match[0].sql_sysadmin:
        raise SqlLoginError(f"{who} does not have sysadmin access to {STORE_DB} on '{sql_host.name}'.{advice}")
    return login


def database(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc.setdefault("sql", {}).setdefault(name, {})


def parse_connection_string(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip()
    aliases = {"server": "data source", "address": "data source", "database": "initial catalog",
               "uid": "user id", "user": "user id", "pwd": "password"}
    return {aliases.get(k, k): v for k, v in out.items()}


def _connect(ctx: Ctx, connection_string: str, need_sysadmin: bool) -> tuple[Host, str]:
    cs = parse_connection_string(connection_string)
    server = cs.get("data source", "")
    db = next((d for d in DATABASES if d.lower() == cs.get("initial catalog", "").lower()), None)
    sql_host = resolve_sql(ctx.lab, server)
    if sql_host is None:
        raise TerminatingError(f"A network-related or instance-specific error occurred while establishing a connection "
                               f"to SQL Server '{server}'.", error_id="SqlException", category=CONNECTION_ERROR,
                               exception_type="System.Data.SqlClient.SqlException")
    if db is None:
        raise TerminatingError(f"Cannot open database \"{cs.get('initial catalog', '')}\" requested by the login.",
                               error_id="SqlException", category=CONNECTION_ERROR,
                               exception_type="System.Data.SqlClient.SqlException")
    integrated = cs.get("integrated security", "").lower() in ("true", "sspi", "yes")
    try:
        sql_login(ctx, sql_host, None if integrated else cs.get("user id"), None if integrated else cs.get("password"),
                  need_sysadmin)
    except SqlLoginError as exc:
        raise TerminatingError(str(exc), error_id="SqlException", category=CONNECTION_ERROR,
                               exception_type="System.Data.SqlClient.SqlException") from None
    return sql_host, db


def get_database_setting(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    sql_host, db = _connect(ctx, args["ConnectionString"], need_sysadmin=False)
    rows = ctx.state.read().doc(sql_host.name).get("sql", {}).get(db, {})
    out = []
    for ns, settings in sorted(rows.items()):
        if ns.lower() != args["Namespace"].lower():
            continue
        for name, value in sorted(settings.items()):
            if "Name" in args and name.lower() not in [n.lower() for n in args["Name"]]:
                continue
            out.append(PSObject({"Namespace": ns, "Name": name, "Value": value}))
    return out


def set_database_setting(ctx: Ctx, args: dict[str, Any]) -> None:
    sql_host, db = _connect(ctx, args["ConnectionString"], need_sysadmin=True)
    with ctx.state.tx() as tx:
        rows = database(tx.doc(sql_host.name), db)
        ns = next((n for n in rows if n.lower() == args["Namespace"].lower()), args["Namespace"])
        settings = rows.setdefault(ns, {})
        name = next((n for n in settings if n.lower() == args["Name"].lower()), args["Name"])
        if args["Value"] == "":
            settings.pop(name, None)  # [inf] empty value deletes the row: the undo of Configure-TrustAzureStack
        else:
            settings[name] = args["Value"]


def _namespace(ctx: Ctx, doc: dict[str, Any], namespace: str) -> tuple[str, dict[str, Any]]:
    for ns, entry in doc.get("mgmtsvc", {}).items():
        if ns.lower() == namespace.lower():
            return ns, entry
    raise TerminatingError(f"Namespace '{namespace}' is not configured on this computer.", error_id="InvalidNamespace",
                           category=OBJECT_NOT_FOUND)


def get_setting(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    ns, entry = _namespace(ctx, ctx.state.read().doc(ctx.host.name), args["Namespace"])
    wanted = [n.lower() for n in args.get("Name", [])]
    return [PSObject({"Namespace": ns, "Name": name, "Value": value, "Encrypted": bool(entry.get("protected"))})
            for name, value in sorted(entry.get("settings", {}).items()) if not wanted or name.lower() in wanted]


def test_protected(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    _, entry = _namespace(ctx, ctx.state.read().doc(ctx.host.name), args["Namespace"])
    return [bool(entry.get("protected"))]


def _protect(ctx: Ctx, args: dict[str, Any], protected: bool) -> None:
    with ctx.state.tx() as tx:
        _, entry = _namespace(ctx, tx.doc(ctx.host.name), args["Namespace"])
        entry["protected"] = protected


COMMANDS = table(
    CommandSpec("Get-MgmtSvcSetting", get_setting, (Param("Namespace", mandatory=True, position=0),
                                                    Param("Name", "str[]", position=1)), module=_MODULE),
    CommandSpec("Test-MgmtSvcProtectedConfiguration", test_protected, (Param("Namespace", mandatory=True, position=0),),
                module=_MODULE),
    CommandSpec("Unprotect-MgmtSvcConfiguration", lambda c, a: _protect(c, a, False),
                (Param("Namespace", mandatory=True, position=0),), module=_MODULE),
    CommandSpec("Protect-MgmtSvcConfiguration", lambda c, a: _protect(c, a, True),
                (Param("Namespace", mandatory=True, position=0),), module=_MODULE),
    CommandSpec("Get-MgmtSvcDatabaseSetting", get_database_setting, (
        Param("ConnectionString", mandatory=True), Param("Namespace", mandatory=True, position=0),
        Param("Name", "str[]", position=1)), module=_MODULE),
    CommandSpec("Set-MgmtSvcDatabaseSetting", set_database_setting, (
        Param("ConnectionString", mandatory=True), Param("Namespace", mandatory=True, position=0),
        Param("Name", mandatory=True, position=1), Param("Value", mandatory=True, position=2),
        Param("Force", "switch")), module=_MODULE),
)
