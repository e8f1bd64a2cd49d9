"""Utility cmdlets a structured client pipes into (docs/host-contract.md §10): ConvertTo-Json (Windows PowerShell
5.1 flavour), Select-Object, Where-Object, Measure-Object, Get-Command, Write-Output."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from labsim.hosts.base import (
    INVALID_ARGUMENT,
    OBJECT_NOT_FOUND,
    CommandSpec,
    Ctx,
    Param,
    has_wildcard,
    prop,
    table,
    wildcard,
)
from labsim.runtime import PSObject, SecretStr, TerminatingError

_U = "Microsoft.PowerShell.Commands."
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- ConvertTo-Json -------------------------------------------------------------------------------------------------
def _json_string(s: str) -> str:
    # JavaScriptSerializer (PS 5.1) escapes these as \uXXXX.
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _to_string(value: Any) -> str:
    if isinstance(value, PSObject):
        return value.to_string if value.to_string is not None else (value.type_names[0] if value.type_names else "")
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return str(value)


def to_json(value: Any, max_depth: int, compress: bool, depth: int = 0, indent: int = 0) -> str:
    nl = "" if compress else "\n"
    pad = "" if compress else "  " * (indent + 1)
    end_pad = "" if compress else "  " * indent
    colon = ":" if compress else ": "
    if value is None:
        return "null"
    if isinstance(value, SecretStr):
        return _json_string("System.Security.SecureString")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return f'"\\/Date({int((aware - _EPOCH).total_seconds() * 1000)})\\/"'
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (bytes, bytearray)):
        value = list(value)
    if isinstance(value, (PSObject, dict)):
        if depth > max_depth:
            return _json_string(_to_string(value))
        items = value.properties.items() if isinstance(value, PSObject) else value.items()
        parts = [f"{pad}{_json_string(str(k))}{colon}{to_json(v, max_depth, compress, depth + 1, indent + 1)}"
                 for k, v in items]
        return "{" + nl + ("," + nl).join(parts) + nl + end_pad + "}" if parts else "{}"
    if isinstance(value, (list, tuple)):
        if depth > max_depth:
            return _json_string(" ".join(_to_string(v) for v in value))
        parts = [pad + to_json(v, max_depth, compress, depth + 1, indent + 1) for v in value]
        return "[" + nl + ("," + nl).join(parts) + nl + end_pad + "]" if parts else "[]"
    return _json_string(str(value))


def convert_to_json(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    items = [args["InputObject"]] if "InputObject" in args else list(ctx.input)
    if not items:
        return []
    value = items[0] if len(items) == 1 else items
    return [to_json(value, args.get("Depth", 2), bool(args.get("Compress")))]


# -- Select-Object / Where-Object / Measure-Object ------------------------------------------------------------------
def _props(obj: Any) -> dict[str, Any]:
    if isinstance(obj, PSObject):
        return obj.properties
    if isinstance(obj, dict):
        return obj
    return {}


def select_object(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    items = list(ctx.input)
    if "First" in args:
        items = items[: args["First"]]
    out: list[Any] = []
    if "ExpandProperty" in args:
        name = args["ExpandProperty"]
        for obj in items:
            hit = [k for k in _props(obj) if k.lower() == name.lower()]
            if not hit:
                ctx.error(f'Property "{name}" cannot be found.', error_id=ctx.fqid("ExpandPropertyNotFound"),
                          category=INVALID_ARGUMENT, target=obj)
                continue
            value = _props(obj)[hit[0]]
            out.extend(value if isinstance(value, list) else [value])
        return out
    if "Property" not in args:
        return items
    for obj in items:
        props = _props(obj)
        picked: dict[str, Any] = {}
        for pattern in args["Property"]:
            if has_wildcard(pattern):
                for k, v in props.items():
                    if wildcard(pattern, k):
                        picked.setdefault(k, v)
            else:
                hit = [k for k in props if k.lower() == pattern.lower()]
                picked.setdefault(hit[0] if hit else pattern, props[hit[0]] if hit else None)
        base = obj.type_names[0] if isinstance(obj, PSObject) and obj.type_names else "System.Object"
        out.append(PSObject(picked, [f"Selected.{base}", "System.Management.Automation.PSCustomObject"]))
    if args.get("Unique"):
        seen, unique = [], []
        for o in out:
            key = json.dumps(o.properties, default=str, sort_keys=True)
            if key not in seen:
                seen.append(key)
                unique.append(o)
        out = unique
    return out


def _compare(op: str, actual: Any, expected: Any) -> bool:
    a = "" if actual is None else str(actual) if not isinstance(actual, bool) else str(actual)
    e = "" if expected is None else str(expected)
    if op == "EQ":
        return a.lower() == e.lower()
    if op == "NE":
        return a.lower() != e.lower()
    if op == "Like":
        return wildcard(e, a)
    if op == "NotLike":
        return not wildcard(e, a)
    if op == "Match":
        return re.search(e, a, re.IGNORECASE) is not None
    raise AssertionError(op)


def where_object(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    ops = [o for o in ("EQ", "NE", "Like", "NotLike", "Match") if args.get(o)]
    if len(ops) != 1:
        raise TerminatingError("Parameter set cannot be resolved using the specified named parameters.",
                               error_id=ctx.fqid("AmbiguousParameterSet"), category=INVALID_ARGUMENT,
                               exception_type="System.Management.Automation.ParameterBindingException")
    return [o for o in ctx.input if _compare(ops[0], prop(o, args["Property"]), args.get("Value"))]


def measure_object(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    return [PSObject({"Count": len(ctx.input)}, ["Microsoft.PowerShell.Commands.GenericMeasureInfo"])]


def get_command(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    table_ = ctx.runtime.commands_for(ctx.host, ctx.session)
    specs = sorted(table_.values(), key=lambda s: s.name.lower())
    if "Name" not in args:
        return [_command_info(s) for s in specs]
    out = []
    for name in args["Name"]:
        hit = [s for s in specs if wildcard(name, s.name)]
        if not hit and not has_wildcard(name):
            ctx.error(f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                      f"operable program. Check the spelling of the name, or if a path was included, verify that the "
                      f"path is correct and try again.", error_id=ctx.fqid("CommandNotFoundException"),
                      category=OBJECT_NOT_FOUND, target=name,
                      exception_type="System.Management.Automation.CommandNotFoundException")
        out += [_command_info(s) for s in hit]
    return out


def _command_info(spec: CommandSpec) -> PSObject:
    return PSObject({"Name": spec.name, "CommandType": spec.kind, "Source": spec.module},
                    [f"System.Management.Automation.{spec.kind}Info", "System.Management.Automation.CommandInfo"],
                    spec.name)


def write_output(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    if "InputObject" in args:
        v = args["InputObject"]
        return v if isinstance(v, list) else [v]
    return list(ctx.input)


COMMANDS = table(
    CommandSpec("ConvertTo-Json", convert_to_json, (Param("InputObject", "any", position=0), Param("Depth", "int"),
                                                    Param("Compress", "switch")),
                impl=_U + "ConvertToJsonCommand", input_mode="all"),
    CommandSpec("Select-Object", select_object, (Param("Property", "str[]", position=0), Param("ExpandProperty"),
                                                 Param("First", "int"), Param("Unique", "switch")),
                impl=_U + "SelectObjectCommand", input_mode="all"),
    CommandSpec("Where-Object", where_object, (Param("Property", mandatory=True, position=0),
                                               Param("Value", "any", position=1), Param("EQ", "switch"),
                                               Param("NE", "switch"), Param("Like", "switch"),
                                               Param("NotLike", "switch"), Param("Match", "switch")),
                impl=_U + "WhereObjectCommand", input_mode="all"),
    CommandSpec("Measure-Object", measure_object, (), impl=_U + "MeasureObjectCommand", input_mode="all"),
    CommandSpec("Get-Command", get_command, (Param("Name", "str[]", position=0),), impl=_U + "GetCommandCommand"),
    CommandSpec("Write-Output", write_output, (Param("InputObject", "any", position=0),),
                impl=_U + "WriteOutputCommand", input_mode="all"),
)
PEP_VISIBLE = ("get-command", "select-object", "measure-object")
