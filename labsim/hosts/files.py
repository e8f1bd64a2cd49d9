"""Provider cmdlets over file system, share, registry, certificate and IIS paths (docs/host-contract.md §3-4):
Test-Path, Get-Item, Get-ChildItem, New-Item, Remove-Item, Get/Set/Add-Content, Get-FileHash, and
Get/Set/New/Remove-ItemProperty. The registry itself (how a host's state keeps it) is :mod:`labsim.hosts.registry`."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from labsim.hosts import certs, paths, registry
from labsim.hosts.base import (
    INVALID_ARGUMENT,
    INVALID_OPERATION,
    OBJECT_NOT_FOUND,
    RESOURCE_EXISTS,
    CommandSpec,
    Ctx,
    Param,
    prop,
    table,
    wildcard,
)
from labsim.hosts.iis import site_object
from labsim.hosts.paths import ItemPath
from labsim.runtime import PSObject, TerminatingError
from labsim.state import FileRow, Tx

_ENCODINGS = ("Byte", "UTF8", "ASCII", "Unicode", "Default", "String", "UTF7", "UTF32", "BigEndianUnicode", "Oem",
              "Unknown")
_PS = "Microsoft.PowerShell.Commands."


# -- file objects -----------------------------------------------------------------------------------------------
def file_object(row: FileRow) -> PSObject:
    name = paths.leaf(row.path) if not row.path.endswith(":\\") else row.path
    props: dict[str, Any] = {"Name": name, "FullName": row.path}
    if not row.is_dir:
        props["Length"] = row.length
    props |= {"LastWriteTimeUtc": dt.datetime.fromtimestamp(row.modified, dt.UTC),
              "PSIsContainer": row.is_dir, "Mode": "d-----" if row.is_dir else "-a----",
              "PSPath": "Microsoft.PowerShell.Core\\FileSystem::" + row.path}
    kind = "System.IO.DirectoryInfo" if row.is_dir else "System.IO.FileInfo"
    return PSObject(props, [kind, "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"], row.path)


def fs_lookup(ctx: Ctx, tx: Tx, p: ItemPath) -> FileRow | None:
    if not ctx.runtime.can_see(ctx.host, p.fs_host):
        return None
    if p.is_root:
        return FileRow(p.path, True, 0, 0.0)
    return tx.file(p.fs_host, p.path)


def not_found(ctx: Ctx, raw: str) -> None:
    ctx.error(f"Cannot find path '{raw}' because it does not exist.", error_id=ctx.fqid("PathNotFound"),
              category=OBJECT_NOT_FOUND, target=raw,
              exception_type="System.Management.Automation.ItemNotFoundException")


def _paths_arg(args: dict[str, Any], ctx: Ctx) -> list[str]:
    value = args.get("Path")
    if value is None:  # pipeline input by property name (PSPath / FullName)
        return [str(prop(i, "PSPath") or prop(i, "FullName") or i) for i in ctx.input]
    return value if isinstance(value, list) else [value]


# -- Test-Path / Get-Item / Get-ChildItem ----------------------------------------------------------------------------
def _exists(ctx: Ctx, tx: Tx, p: ItemPath) -> tuple[bool, bool]:
    """(exists, is_container)."""
    if p.kind == "fs":
        row = fs_lookup(ctx, tx, p)
        return (row is not None, bool(row and row.is_dir))
    doc = tx.doc(ctx.host.name)
    if p.kind == "reg":
        return (registry.key_exists(doc, p.path), True)
    if p.kind == "cert":
        if not p.thumbprint:
            return (True, True)
        return (certs.find(doc, p.store, p.thumbprint) is not None, False)
    if p.kind == "iis" and ctx.host.is_wap:
        if not p.path:
            return (True, True)
        return (p.path.lower() in doc.get("sites", {}), True)
    return (False, False)


def test_path(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    tx = ctx.state.read()
    want = args.get("PathType", "Any")
    out = []
    for raw in _paths_arg(args, ctx):
        ok, container = _exists(ctx, tx, paths.parse(raw, ctx.host.name))
        out.append(ok and (want == "Any" or (want == "Container") == container))
    return out


def _item(ctx: Ctx, tx: Tx, p: ItemPath) -> Any:
    doc = tx.doc(ctx.host.name)
    if p.kind == "fs":
        row = fs_lookup(ctx, tx, p)
        return file_object(row) if row else None
    if p.kind == "reg":
        return registry.key_object(doc, p.path) if registry.key_exists(doc, p.path) else None
    if p.kind == "cert" and p.thumbprint:
        entry = certs.find(doc, p.store, p.thumbprint)
        return certs.cert_object(p.store, entry) if entry else None
    if p.kind == "cert":
        return PSObject({"Name": p.store or "LocalMachine", "PSPath": p.raw}, ["System.Security.Cryptography."
                        "X509Certificates.X509Store"], p.store or "LocalMachine")
    if p.kind == "iis" and p.path and ctx.host.is_wap:
        site = doc.get("sites", {}).get(p.path.lower())
        return site_object(site) if site else None
    return None


def get_item(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    tx = ctx.state.read()
    out = []
    for raw in _paths_arg(args, ctx):
        obj = _item(ctx, tx, paths.parse(raw, ctx.host.name))
        if obj is None:
            not_found(ctx, raw)
        else:
            out.append(obj)
    return out


def _children(ctx: Ctx, tx: Tx, p: ItemPath, recurse: bool) -> list[Any] | None:
    doc = tx.doc(ctx.host.name)
    if p.kind == "fs":
        row = fs_lookup(ctx, tx, p)
        if row is None:
            return None
        if not row.is_dir:
            return [file_object(row)]
        return [file_object(r) for r in tx.children(p.fs_host, p.path, recurse)]
    if p.kind == "reg":
        if not registry.key_exists(doc, p.path):
            return None
        keys = registry.subkeys(doc, p.path)
        out = []
        while keys:
            k = keys.pop(0)
            out.append(registry.key_object(doc, k))
            if recurse:
                keys = registry.subkeys(doc, k) + keys
        return out
    if p.kind == "cert":
        if p.thumbprint:
            entry = certs.find(doc, p.store, p.thumbprint)
            return [certs.cert_object(p.store, entry)] if entry else None
        if not p.store:
            return [PSObject({"Name": s}, ["System.Security.Cryptography.X509Certificates.X509Store"], s)
                    for s in paths.CERT_STORES]
        store = doc.get("certs", {}).get(p.store, {})
        return [certs.cert_object(p.store, store[t]) for t in sorted(store)]
    if p.kind == "iis" and ctx.host.is_wap and not p.path:
        return [site_object(s) for _, s in sorted(doc.get("sites", {}).items())]
    return None


def get_child_item(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    tx = ctx.state.read()
    out: list[Any] = []
    for raw in _paths_arg(args, ctx):
        items = _children(ctx, tx, paths.parse(raw, ctx.host.name), bool(args.get("Recurse")))
        if items is None:
            not_found(ctx, raw)
            continue
        for obj in items:
            name = str(prop(obj, "Name") or prop(obj, "PSChildName") or "")
            if "Filter" in args and not wildcard(args["Filter"], paths.leaf(name)):
                continue
            is_dir = prop(obj, "PSIsContainer")
            if args.get("File") and is_dir is not False:
                continue
            if args.get("Directory") and is_dir is not True:
                continue
            out.append(obj)
    return out


# -- New-Item / Remove-Item -------------------------------------------------------------------------------------
def _ensure_parents(tx: Tx, host: str, path: str) -> None:
    chain = []
    cur = paths.parent(path)
    while cur and not cur.endswith(":\\") and cur.lower() != paths.SHARE_ROOT.lower():
        chain.append(cur)
        cur = paths.parent(cur)
    for d in reversed(chain):
        if tx.file(host, d) is None:
            tx.make_dir(host, d)


def _parent_exists(tx: Tx, host: str, path: str) -> bool:
    par = paths.parent(path)
    if not par or par.endswith(":\\") or par.lower() == paths.SHARE_ROOT.lower():
        return True
    row = tx.file(host, par)
    return row is not None and row.is_dir


def new_item(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    out = []
    for raw in args["Path"]:
        p = paths.parse(raw, ctx.host.name)
        if p.kind == "reg":
            with ctx.state.tx() as tx:
                doc = tx.doc(ctx.host.name)
                if registry.key_exists(doc, p.path) and not args.get("Force"):
                    ctx.error("A key at this path already exists.", error_id=ctx.fqid("System.IO.IOException"),
                              category=RESOURCE_EXISTS, target=raw)
                    continue
                registry.create_key(doc, p.path)
                out.append(registry.key_object(doc, p.path))
            continue
        if p.kind != "fs" or not ctx.runtime.can_see(ctx.host, p.fs_host) or p.is_root:
            not_found(ctx, raw)
            continue
        is_dir = args.get("ItemType", "File") == "Directory"
        with ctx.state.tx() as tx:
            row = tx.file(p.fs_host, p.path)
            if row is not None and (not args.get("Force") or row.is_dir != is_dir):
                short = "DirectoryExist" if row.is_dir else "NewItemIOError"
                ctx.error(f"An item with the specified name {p.path} already exists.", error_id=ctx.fqid(short),
                          category=RESOURCE_EXISTS, target=p.path, exception_type="System.IO.IOException")
                continue
            if args.get("Force"):
                _ensure_parents(tx, p.fs_host, p.path)
            elif not _parent_exists(tx, p.fs_host, p.path):
                ctx.error(f"Could not find a part of the path '{p.path}'.", error_id=ctx.fqid("NewItemIOError"),
                          category=OBJECT_NOT_FOUND, target=p.path,
                          exception_type="System.IO.DirectoryNotFoundException")
                continue
            if is_dir:
                tx.make_dir(p.fs_host, p.path)
            else:
                tx.write_file(p.fs_host, p.path, str(args.get("Value") or "").encode("utf-8"))
            out.append(file_object(tx.file(p.fs_host, p.path)))  # type: ignore[arg-type]
    return out


def remove_item(ctx: Ctx, args: dict[str, Any]) -> None:
    for raw in _paths_arg(args, ctx):
        p = paths.parse(raw, ctx.host.name)
        with ctx.state.tx() as tx:
            doc = tx.doc(ctx.host.name)
            if p.kind == "fs" and (row := fs_lookup(ctx, tx, p)) is not None and not p.is_root:
                if row.is_dir and tx.children(p.fs_host, p.path) and not args.get("Recurse"):
                    ctx.error(f"The item at {p.path} has children and the Recurse parameter was not specified.",
                              error_id=ctx.fqid("DirectoryNotEmpty"), category=INVALID_OPERATION, target=p.path)
                    continue
                tx.remove(p.fs_host, p.path, recurse=True)
            elif p.kind == "cert" and p.thumbprint and certs.find(doc, p.store, p.thumbprint) is not None:
                del doc["certs"][p.store][p.thumbprint]
            elif p.kind == "reg" and p.path and registry.key_exists(doc, p.path):
                registry.delete_key(doc, p.path)
            else:
                not_found(ctx, raw)


# -- content ----------------------------------------------------------------------------------------------------
def _encode_value(ctx: Ctx, args: dict[str, Any]) -> bytes:
    value = args.get("Value")
    if value is None and ctx.input:
        value = ctx.input if len(ctx.input) > 1 else ctx.input[0]
    if args.get("Encoding") == "Byte":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        items: list[Any] = value if isinstance(value, list) else [value]
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in items):
            return bytes(items)
        raise_error = "Cannot convert value to type \"System.Byte\"."
        raise TerminatingError(raise_error, error_id=ctx.fqid("InvalidCastFromAnyTypeToByte"),
                               category=INVALID_ARGUMENT)
    if value is None:
        value = []
    if isinstance(value, (bytes, bytearray)):
        value = list(value)
    lines = [str(v) for v in (value if isinstance(value, list) else [value])]
    sep = "" if args.get("NoNewline") else "\r\n"
    return "".join(line + sep for line in lines).encode("utf-8")


def _write_content(ctx: Ctx, args: dict[str, Any], append: bool) -> None:
    data = _encode_value(ctx, args)
    for raw in args["Path"]:
        p = paths.parse(raw, ctx.host.name)
        if p.kind != "fs" or not ctx.runtime.can_see(ctx.host, p.fs_host):
            not_found(ctx, raw)
            continue
        with ctx.state.tx() as tx:
            row = tx.file(p.fs_host, p.path)
            if row is not None and row.is_dir:
                ctx.error(f"Access to the path '{p.path}' is denied.",
                          error_id=ctx.fqid("GetContentWriterUnauthorizedAccessError"), category=18, target=p.path,
                          exception_type="System.UnauthorizedAccessException")
                continue
            if not _parent_exists(tx, p.fs_host, p.path):
                ctx.error(f"Could not find a part of the path '{p.path}'.",
                          error_id=ctx.fqid("GetContentWriterDirectoryNotFoundError"), category=OBJECT_NOT_FOUND,
                          target=p.path, exception_type="System.IO.DirectoryNotFoundException")
                continue
            tx.write_file(p.fs_host, p.path, data, append=append)


def set_content(ctx: Ctx, args: dict[str, Any]) -> None:
    _write_content(ctx, args, append=False)


def add_content(ctx: Ctx, args: dict[str, Any]) -> None:
    _write_content(ctx, args, append=True)


def read_bytes(ctx: Ctx, raw: str) -> bytes | None:
    """A file's content as this host sees it (None if absent or a directory)."""
    p = paths.parse(raw, ctx.host.name)
    if p.kind != "fs" or not ctx.runtime.can_see(ctx.host, p.fs_host):
        return None
    return ctx.state.read().read_file(p.fs_host, p.path)


def get_content(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for raw in _paths_arg(args, ctx):
        data = read_bytes(ctx, raw)
        if data is None:
            not_found(ctx, raw)
            continue
        if args.get("Encoding") == "Byte":
            out.extend([data] if args.get("Raw") else list(data))
            continue
        text = data.decode("utf-8-sig", errors="replace")
        if args.get("Raw"):
            out.append(text)
        else:
            lines = text.splitlines()
            out.extend(lines)
    return out


def get_file_hash(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    algo = args.get("Algorithm", "SHA256")
    out = []
    for raw in _paths_arg(args, ctx):
        data = read_bytes(ctx, raw)
        if data is None:
            not_found(ctx, raw)
            continue
        h = hashlib.new(algo.lower().replace("sha", "sha") if algo != "MD5" else "md5", data)
        out.append(PSObject({"Algorithm": algo, "Hash": h.hexdigest().upper(),
                             "Path": paths.parse(raw, ctx.host.name).path},
                            ["Microsoft.Powershell.Utility.FileHash", "System.Object"]))
    return out


def get_item_property(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    doc = ctx.state.read().doc(ctx.host.name)
    out = []
    for raw in _paths_arg(args, ctx):
        p = paths.parse(raw, ctx.host.name)
        if p.kind != "reg" or not registry.key_exists(doc, p.path):
            if p.kind == "fs" and (row := fs_lookup(ctx, ctx.state.read(), p)) is not None:
                out.append(file_object(row))
                continue
            not_found(ctx, raw)
            continue
        values = registry.values(doc, p.path)
        wanted = args.get("Name")
        if wanted:
            picked = {}
            for n in wanted:
                hit = [k for k in values if wildcard(n, k)]
                if not hit:
                    ctx.error(f"Property {n} does not exist at path HKEY_LOCAL_MACHINE\\{p.path}.",
                              error_id=ctx.fqid("System.Management.Automation.PSArgumentException"),
                              category=INVALID_ARGUMENT, target=raw,
                              exception_type="System.Management.Automation.PSArgumentException")
                for k in hit:
                    picked[k] = values[k]
            if not picked:
                continue
            values = picked
        parent = paths.parent(p.path) if "\\" in p.path else ""
        out.append(PSObject(values | {
            "PSPath": registry.pspath(p.path), "PSParentPath": registry.pspath(parent),
            "PSChildName": paths.leaf(p.path), "PSDrive": "HKLM", "PSProvider": "Microsoft.PowerShell.Core\\Registry"}))
    return out


def set_item_property(ctx: Ctx, args: dict[str, Any]) -> None:
    """Set-ItemProperty / New-ItemProperty on registry keys (strings and DWORDs)."""
    value = args.get("Value")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        value = str(value)
    for raw in _paths_arg(args, ctx):
        p = paths.parse(raw, ctx.host.name)
        with ctx.state.tx() as tx:
            doc = tx.doc(ctx.host.name)
            if p.kind != "reg" or not registry.key_exists(doc, p.path) or not p.path:
                not_found(ctx, raw)
                continue
            values = registry.values(doc, p.path)
            existing = next((k for k in values if k.lower() == args["Name"].lower()), None)
            if ctx.spec.name == "New-ItemProperty" and existing and not args.get("Force"):
                ctx.error("The property already exists.", error_id=ctx.fqid("System.IO.IOException"),
                          category=RESOURCE_EXISTS, target=raw, exception_type="System.IO.IOException")
                continue
            registry.set_value(doc, p.path, existing or args["Name"], value)


def remove_item_property(ctx: Ctx, args: dict[str, Any]) -> None:
    for raw in _paths_arg(args, ctx):
        p = paths.parse(raw, ctx.host.name)
        with ctx.state.tx() as tx:
            doc = tx.doc(ctx.host.name)
            if p.kind != "reg" or not registry.key_exists(doc, p.path):
                not_found(ctx, raw)
                continue
            values = registry.values(doc, p.path)
            for name in args["Name"]:
                hit = next((k for k in values if k.lower() == name.lower()), None)
                if hit is None:
                    ctx.error(f"Property {name} does not exist at path HKEY_LOCAL_MACHINE\\{p.path}.",
                              error_id=ctx.fqid("System.Management.Automation.PSArgumentException"),
                              category=INVALID_ARGUMENT, target=raw,
                              exception_type="System.Management.Automation.PSArgumentException")
                else:
                    registry.delete_value(doc, p.path, hit)
                    del values[hit]


_PATH = Param("Path", "str[]", position=0)
_MANDATORY_PATH = Param("Path", "str[]", mandatory=True, position=0)
COMMANDS = table(
    CommandSpec("Test-Path", test_path, (_PATH, Param("PathType", choices=("Any", "Container", "Leaf"))),
                impl=_PS + "TestPathCommand", input_mode="all"),
    CommandSpec("Get-Item", get_item, (_PATH,), impl=_PS + "GetItemCommand", input_mode="all"),
    CommandSpec("Get-ChildItem", get_child_item, (_PATH, Param("Filter", position=1), Param("Recurse", "switch"),
                                                  Param("File", "switch"), Param("Directory", "switch"),
                                                  Param("Force", "switch")),
                impl=_PS + "GetChildItemCommand", input_mode="all"),
    CommandSpec("New-Item", new_item, (_MANDATORY_PATH, Param("ItemType", choices=("Directory", "File")),
                                       Param("Value", "any"), Param("Force", "switch")), impl=_PS + "NewItemCommand"),
    CommandSpec("Remove-Item", remove_item, (_PATH, Param("Recurse", "switch"), Param("Force", "switch")),
                impl=_PS + "RemoveItemCommand", input_mode="all"),
    CommandSpec("Get-Content", get_content, (_PATH, Param("Raw", "switch"), Param("Encoding", choices=_ENCODINGS)),
                impl=_PS + "GetContentCommand", input_mode="all"),
    CommandSpec("Set-Content", set_content, (_MANDATORY_PATH, Param("Value", "any", position=1),
                                             Param("Encoding", choices=_ENCODINGS), Param("NoNewline", "switch"),
                                             Param("Force", "switch")), impl=_PS + "SetContentCommand",
                input_mode="all"),
    CommandSpec("Add-Content", add_content, (_MANDATORY_PATH, Param("Value", "any", position=1),
                                             Param("Encoding", choices=_ENCODINGS), Param("NoNewline", "switch"),
                                             Param("Force", "switch")), impl=_PS + "AddContentCommand",
                input_mode="all"),
    CommandSpec("Get-FileHash", get_file_hash, (_PATH, Param("Algorithm", choices=("SHA1", "SHA256", "SHA384",
                                                                                   "SHA512", "MD5"))),
                impl="Get-FileHash", kind="Function", input_mode="all"),
    CommandSpec("Set-ItemProperty", set_item_property, (_PATH, Param("Name", mandatory=True, position=1),
                                                        Param("Value", "any", position=2), Param("Type"),
                                                        Param("Force", "switch")),
                impl=_PS + "SetItemPropertyCommand", input_mode="all"),
    CommandSpec("New-ItemProperty", set_item_property, (_PATH, Param("Name", mandatory=True, position=1),
                                                        Param("Value", "any", position=2), Param("PropertyType"),
                                                        Param("Force", "switch")),
                impl=_PS + "NewItemPropertyCommand", input_mode="all"),
    CommandSpec("Remove-ItemProperty", remove_item_property, (_PATH, Param("Name", "str[]", mandatory=True, position=1),
                                                              Param("Force", "switch")),
                impl=_PS + "RemoveItemPropertyCommand", input_mode="all"),
    CommandSpec("Get-ItemProperty", get_item_property, (_PATH, Param("Name", "str[]", position=1)),
                impl=_PS + "GetItemPropertyCommand", input_mode="all"),
)
