"""IIS WebAdministration cmdlets (docs/host-contract.md §5).

A host document keeps ``sites[<lower name>] = {name, id, state, physicalPath, applicationPool, bindings:
[{protocol, bindingInformation, sslFlags, certificateHash, certificateStoreName}], appSettings: {key: value}}``.
"""

from __future__ import annotations

import re
from typing import Any

from labsim.hosts import paths
from labsim.hosts.base import INVALID_ARGUMENT, OBJECT_NOT_FOUND, CommandSpec, Ctx, Param, table
from labsim.runtime import PSObject

SITE_TYPE = "Microsoft.IIs.PowerShell.Framework.ConfigurationElement#site"
BINDING_TYPE = "Microsoft.IIs.PowerShell.Framework.ConfigurationElement#site#bindings#binding"
_IMPL = "Microsoft.IIs.PowerShell.Provider."


def new_site(name: str, site_id: int, port: int, cert_hash: str = "", protocol: str = "https") -> dict[str, Any]:
    return {"name": name, "id": site_id, "state": "Started", "physicalPath": f"C:\\inetpub\\{name}",
            "applicationPool": name, "appSettings": {},
            "bindings": [new_binding(protocol, port, cert_hash)]}


def new_binding(protocol: str, port: int, cert_hash: str = "") -> dict[str, Any]:
    return {"protocol": protocol, "bindingInformation": f"*:{port}:", "sslFlags": 0,
            "certificateHash": cert_hash, "certificateStoreName": "My" if cert_hash else ""}


def binding_port(binding: dict[str, Any]) -> int:
    return int(binding["bindingInformation"].split(":")[1])


def binding_object(site: dict[str, Any], b: dict[str, Any], index: int) -> PSObject:
    return PSObject({"protocol": b["protocol"], "bindingInformation": b["bindingInformation"],
                     "sslFlags": b.get("sslFlags", 0), "certificateHash": b.get("certificateHash", ""),
                     "certificateStoreName": b.get("certificateStoreName", ""),
                     "ItemXPath": f"/system.applicationHost/sites/site[@name='{site['name']}' and @id='{site['id']}']"},
                    [BINDING_TYPE, "Microsoft.IIs.PowerShell.Framework.ConfigurationElement", "System.Object"],
                    f"{b['protocol']} {b['bindingInformation']}")


def site_object(site: dict[str, Any]) -> PSObject:
    bindings = [binding_object(site, b, i) for i, b in enumerate(site["bindings"])]
    return PSObject({"name": site["name"], "id": site["id"], "state": site["state"],
                     "physicalPath": site["physicalPath"], "applicationPool": site["applicationPool"],
                     "enabledProtocols": "http",
                     "bindings": PSObject({"Collection": bindings},
                                          ["Microsoft.IIs.PowerShell.Framework.ConfigurationElement"],
                                          " ".join(str(b.to_string) for b in bindings))},
                    [SITE_TYPE, "Microsoft.IIs.PowerShell.Framework.ConfigurationElement", "System.Object"],
                    site["name"])


def _site(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    return doc.get("sites", {}).get(name.lower())


def get_website(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    sites = ctx.state.read().doc(ctx.host.name).get("sites", {})
    if "Name" in args:
        site = sites.get(args["Name"].lower())
        return [site_object(site)] if site else []
    return [site_object(s) for s in sorted(sites.values(), key=lambda s: s["id"])]


def get_web_binding(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    sites = ctx.state.read().doc(ctx.host.name).get("sites", {})
    chosen = [sites[args["Name"].lower()]] if "Name" in args and args["Name"].lower() in sites else (
        [] if "Name" in args else sorted(sites.values(), key=lambda s: s["id"]))
    out = []
    for site in chosen:
        for i, b in enumerate(site["bindings"]):
            ip, port, header = b["bindingInformation"].split(":")
            if "Protocol" in args and b["protocol"].lower() != args["Protocol"].lower():
                continue
            if "Port" in args and port != str(args["Port"]):
                continue
            if "IPAddress" in args and ip != args["IPAddress"]:
                continue
            if "HostHeader" in args and header.lower() != args["HostHeader"].lower():
                continue
            out.append(binding_object(site, b, i))
    return out


def _set_state(ctx: Ctx, args: dict[str, Any], state: str, impl: str) -> None:
    with ctx.state.tx() as tx:
        site = _site(tx.doc(ctx.host.name), args["Name"])
        if site is None:
            ctx.error(f"Cannot find path 'IIS:\\Sites\\{args['Name']}' because it does not exist.",
                      error_id=f"InvalidArgument,{_IMPL}{impl}", category=INVALID_ARGUMENT, target=args["Name"])
            return
        site["state"] = state


def start_website(ctx: Ctx, args: dict[str, Any]) -> None:
    _set_state(ctx, args, "Started", "StartWebsiteCommand")


def stop_website(ctx: Ctx, args: dict[str, Any]) -> None:
    _set_state(ctx, args, "Stopped", "StopWebsiteCommand")


_FILTER = re.compile(r"^/?(?:system\.web/)?appSettings/add(?:\[@key\s*=\s*'([^']*)'\])?$", re.IGNORECASE)


def _app_settings(ctx: Ctx, args: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
    p = paths.parse(args.get("PSPath") or "IIS:\\", ctx.host.name)
    site = _site(ctx.state.read().doc(ctx.host.name), p.path) if p.kind == "iis" and p.path else None
    if site is None:
        raw = args.get("PSPath", "")
        ctx.error(f"Cannot find path '{raw}' because it does not exist.", error_id=ctx.fqid("PathNotFound"),
                  category=OBJECT_NOT_FOUND, target=raw,
                  exception_type="System.Management.Automation.ItemNotFoundException")
        return None
    m = _FILTER.match(args["Filter"].strip())
    if not m:
        # labsim knows only the appSettings collection; say so rather than return a plausible nothing.
        ctx.error(f"labsim emulates only the appSettings/add filter, not '{args['Filter']}'.",
                  error_id=ctx.fqid("LabsimUnsupportedFilter"), category=11, target=args["Filter"])
        return None
    items = sorted(site.get("appSettings", {}).items())
    if m.group(1) is not None:
        items = [(k, v) for k, v in items if k.lower() == m.group(1).lower()]
    return site, items


def _element(site: dict[str, Any], key: str, value: str) -> PSObject:
    return PSObject({"key": key, "value": value, "ItemXPath": f"/appSettings/add[@key='{key}']",
                     "PSPath": f"MACHINE/WEBROOT/APPHOST/{site['name']}"},
                    ["Microsoft.IIs.PowerShell.Framework.ConfigurationElement#appSettings#add",
                     "Microsoft.IIs.PowerShell.Framework.ConfigurationElement", "System.Object"], key)


def get_web_configuration(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    found = _app_settings(ctx, args)
    return [] if found is None else [_element(found[0], k, v) for k, v in found[1]]


def get_web_configuration_property(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    found = _app_settings(ctx, args)
    if found is None:
        return []
    site, items = found
    out: list[Any] = []
    for name in args["Name"]:
        if name == ".":
            out += [_element(site, k, v) for k, v in items]
        elif name.lower() in ("key", "value"):
            attr = name.lower()
            out += [PSObject({"Name": attr, "Value": k if attr == "key" else v, "IsInheritedFromDefaultValue": False,
                              "IsProtected": False, "Schema": None, "TypeName": "System.String"},
                             ["Microsoft.IIs.PowerShell.Framework.ConfigurationAttribute", "System.Object"],
                             k if attr == "key" else v) for k, v in items]
        else:
            ctx.error(f"Property {name} is not found on appSettings/add.",
                      error_id=ctx.fqid("PropertyNotFound"), category=INVALID_ARGUMENT, target=name)
    return out


def set_web_configuration_property(ctx: Ctx, args: dict[str, Any]) -> None:
    """Set an appSettings value: -Filter "appSettings/add[@key='K']" -Name value -Value V (adds K if missing)."""
    found = _app_settings(ctx, args)
    if found is None:
        return
    site, _items = found
    key = _FILTER.match(args["Filter"].strip()).group(1)  # type: ignore[union-attr]
    if key is None or args["Name"].lower() != "value":
        ctx.error("labsim sets only -Filter \"appSettings/add[@key='K']\" -Name value.",
                  error_id=ctx.fqid("LabsimUnsupportedFilter"), category=11, target=args["Filter"])
        return
    with ctx.state.tx() as tx:
        settings = tx.doc(ctx.host.name)["sites"][site["name"].lower()].setdefault("appSettings", {})
        existing = next((k for k in settings if k.lower() == key.lower()), key)
        settings[existing] = str(args["Value"])


_WA = "WebAdministration"
COMMANDS = table(
    CommandSpec("Get-Website", get_website, (Param("Name", position=0),), impl=_IMPL + "GetWebsiteCommand", module=_WA),
    CommandSpec("Get-WebBinding", get_web_binding, (Param("Name", position=0), Param("Protocol"), Param("Port", "int"),
                                                    Param("IPAddress"), Param("HostHeader")),
                impl=_IMPL + "GetWebBindingCommand", module=_WA),
    CommandSpec("Start-Website", start_website, (Param("Name", mandatory=True, position=0),),
                impl=_IMPL + "StartWebsiteCommand", module=_WA),
    CommandSpec("Stop-Website", stop_website, (Param("Name", mandatory=True, position=0),),
                impl=_IMPL + "StopWebsiteCommand", module=_WA),
    CommandSpec("Get-WebConfiguration", get_web_configuration, (Param("Filter", "str", mandatory=True, position=0),
                                                                Param("PSPath", position=1), Param("Location")),
                impl=_IMPL + "GetConfigurationCommand", module=_WA),
    CommandSpec("Get-WebConfigurationProperty", get_web_configuration_property, (
        Param("Filter", mandatory=True, position=0), Param("Name", "str[]", mandatory=True, position=1),
        Param("PSPath"), Param("Location")), impl=_IMPL + "GetConfigurationPropertyCommand", module=_WA),
    CommandSpec("Set-WebConfigurationProperty", set_web_configuration_property, (
        Param("Filter", mandatory=True, position=0), Param("Name", mandatory=True, position=1),
        Param("Value", "any", mandatory=True, position=2), Param("PSPath"), Param("Location")),
        impl=_IMPL + "SetConfigurationPropertyCommand", module=_WA),
)
