"""What a Windows host says about itself and its network, and the SQL query preflight asks
(docs/host-contract.md §11): Get-PSDrive (free space), Test-Connection (ping), Test-NetConnection (a TCP port),
Invoke-Sqlcmd (sysadmin membership only).

The answers come from the lab file's per-host ``conditions`` (disk room, hosts it cannot reach) and from the
lab state (a host with the ``down`` fault answers nothing; a port answers when labsim serves a binding on it).
"""

from __future__ import annotations

from typing import Any

from labsim.hosts import mgmtsvc
from labsim.hosts.base import CONNECTION_ERROR, NOT_IMPLEMENTED, OBJECT_NOT_FOUND, CommandSpec, Ctx, Param, table
from labsim.lab import Host
from labsim.runtime import PSObject, TerminatingError

_U = "Microsoft.PowerShell.Commands."
MB = 1024 * 1024
# [inf] the one query labsim answers: how preflight reads whether a login is sysadmin (SQL Server's documented
# IS_SRVROLEMEMBER; the column alias is the project's). Any other query is refused, never guessed.
SYSADMIN_QUERY = "SELECT IS_SRVROLEMEMBER('sysadmin') AS IsSysadmin"


def _target(ctx: Ctx, name: str) -> Host | None:
    """The lab host a name resolves to: a host's name or FQDN, or a cloud's tenant portal / Tenant API FQDN
    (the load-balanced name answers when its cloud's first host of that role does)."""
    key = name.lower().rstrip(".")
    try:
        return ctx.lab.host(key)
    except KeyError:
        pass
    members = ctx.lab.cloud_hosts()
    for cloud in ctx.lab.clouds:
        for fqdn in (cloud.tenant_portal_fqdn, cloud.tenant_api_fqdn):
            if fqdn and fqdn.lower() == key and members.get(cloud.name):
                return members[cloud.name][0]
    return None


def _reachable(ctx: Ctx, target: Host | None) -> bool:
    if target is None:
        return False
    blocked = {n.lower() for n in ctx.host.conditions.cannot_reach}
    if blocked & {target.name.lower(), target.fqdn}:
        return False
    return not any(f.kind == "down" for f in ctx.state.faults(target.name))


def get_ps_drive(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    out = []
    for name in args.get("Name") or ["C"]:
        if name.rstrip(":").upper() != "C":  # labsim hosts have one file-system drive
            ctx.error(f"Cannot find drive. A drive with the name '{name}' does not exist.",
                      error_id=ctx.fqid("GetLocationNoMatchingDrive"), category=OBJECT_NOT_FOUND, target=name,
                      exception_type="System.Management.Automation.DriveNotFoundException")
            continue
        c = ctx.host.conditions
        used_mb = c.disk_size_mb - min(c.disk_free_mb, c.disk_size_mb)
        out.append(PSObject({"Name": "C", "Root": "C:\\", "Used": used_mb * MB,
                             "Free": c.disk_free_mb * MB, "Provider": "Microsoft.PowerShell.Core\\FileSystem",
                             "Description": ""},
                            ["System.Management.Automation.PSDriveInfo", "System.Object"], "C"))
    return out


def test_connection(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for name in args["ComputerName"]:
        target = _target(ctx, name)
        ok = _reachable(ctx, target)
        if args.get("Quiet"):
            out.append(ok)
        elif ok:
            assert target is not None
            out += [PSObject({"Address": name, "IPV4Address": target.address, "StatusCode": 0, "ResponseTime": 0},
                             ["System.Management.ManagementObject#root\\cimv2\\Win32_PingStatus"], name)
                    for _ in range(int(args.get("Count", 4)))]
        else:
            ctx.error(f"Testing connection to computer '{name}' failed: "
                      + ("No such host is known" if target is None else "Error due to lack of resources"),
                      error_id=f"TestConnectionException,{_U}TestConnectionCommand", category=CONNECTION_ERROR,
                      target=name, exception_type="System.Net.NetworkInformation.PingException")
    return out


def test_net_connection(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    name = args["ComputerName"]
    target = _target(ctx, name)
    port = int(args.get("Port", 0))
    ping = _reachable(ctx, target)
    tcp = False
    if ping and target is not None and port:
        tcp = any(b.host == target.name and b.port == port for b in ctx.runtime.https_bindings())
    if not ping or (port and not tcp):
        ctx.warning(f"TCP connect to {name}:{port} failed" if ping and port else f"Ping to {name} failed")
    if str(args.get("InformationLevel", "")).lower() == "quiet":
        return [tcp if port else ping]
    return [PSObject({"ComputerName": name, "RemoteAddress": target.address if target else None,
                      "RemotePort": port, "PingSucceeded": ping, "TcpTestSucceeded": tcp},
                     ["TestNetConnectionResult"], name)]


def invoke_sqlcmd(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    if " ".join(args["Query"].split()).lower() != SYSADMIN_QUERY.lower():
        raise TerminatingError("labsim answers only the sysadmin membership query with Invoke-Sqlcmd.",
                               error_id="LabsimUnknownQuery", category=NOT_IMPLEMENTED)
    server = args["ServerInstance"]
    sql_host = mgmtsvc.resolve_sql(ctx.lab, server)
    if sql_host is None:
        raise TerminatingError(f"A network-related or instance-specific error occurred while establishing a connection "
                               f"to SQL Server '{server}'.", error_id="SqlException", category=CONNECTION_ERROR,
                               exception_type="System.Data.SqlClient.SqlException")
    database = args.get("Database")
    if database and database.lower() not in (d.lower() for d in mgmtsvc.DATABASES):
        raise TerminatingError(f'Cannot open database "{database}" requested by the login.', error_id="SqlException",
                               category=CONNECTION_ERROR, exception_type="System.Data.SqlClient.SqlException")
    cred = args.get("Credential")
    try:
        mgmtsvc.sql_login(ctx, sql_host, cred["UserName"] if cred else None, cred["Password"] if cred else None,
                          need_sysadmin=False)
    except mgmtsvc.SqlLoginError as exc:
        raise TerminatingError(str(exc), error_id="SqlException", category=CONNECTION_ERROR,
                               exception_type="System.Data.SqlClient.SqlException") from None
    user = cred["UserName"] if cred else ctx.session.user
    short = mgmtsvc.short_user(user)
    sysadmin = any(mgmtsvc.short_user(u.name) == short and u.sql_sysadmin for u in sql_host.users)
    return [PSObject({"IsSysadmin": 1 if sysadmin else 0}, ["System.Data.DataRow", "System.Object"],
                     "System.Data.DataRow")]


COMMANDS = table(
    CommandSpec("Get-PSDrive", get_ps_drive, (Param("Name", "str[]", position=0), Param("PSProvider")),
                impl=_U + "GetPSDriveCommand", module="Microsoft.PowerShell.Management"),
    CommandSpec("Test-Connection", test_connection, (Param("ComputerName", "str[]", mandatory=True, position=0),
                                                     Param("Count", "int"), Param("Quiet", "switch")),
                impl=_U + "TestConnectionCommand", module="Microsoft.PowerShell.Management"),
    CommandSpec("Test-NetConnection", test_net_connection, (
        Param("ComputerName", mandatory=True, position=0), Param("Port", "int"),
        Param("InformationLevel", choices=("Quiet", "Detailed"))), kind="Function", module="NetTCPIP"),
)
# On WAP computers (the SqlServer module's cmdlet; run from the Tenant API VM that runs the trust script).
SQL_COMMANDS = table(
    CommandSpec("Invoke-Sqlcmd", invoke_sqlcmd, (
        Param("ServerInstance", mandatory=True), Param("Database"), Param("Query", mandatory=True, position=0),
        Param("Credential", "credential")), impl="Microsoft.SqlServer.Management.PowerShell.GetScriptCommand",
        module="SqlServer"),
)
