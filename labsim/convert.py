"""Value conversion at the seam between psrpcore's CLIXML objects and the plain Python values host behaviour sees.

Incoming (client -> host behaviour), :func:`to_python`:
    strings -> str, integers -> int, Boolean -> bool, byte[] -> bytes, arrays/lists -> list, hashtables -> dict,
    SecureString -> :class:`runtime.SecretStr` (decrypted with the runspace pool's session key, which psrpcore
    handed to the deserializer), PSCredential -> ``{"UserName": str, "Password": SecretStr}``, any other object
    with properties -> :class:`runtime.PSObject`.

Outgoing (host behaviour -> client), :func:`to_psrp`:
    dict -> hashtable, :class:`runtime.PSObject` -> PSCustomObject with its properties and type names, lists and
    tuples -> arrays; scalars go through psrpcore's own serializer unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

from psrpcore.types import (
    PSCustomObject,
    PSDict,
    PSList,
    PSNoteProperty,
    PSSecureString,
    PSString,
)
from psrpcore.types import (
    PSObject as CorePSObject,
)

from labsim.runtime import PSObject, SecretStr

_DESERIALIZED = "Deserialized."
_CREDENTIAL_TYPE = "System.Management.Automation.PSCredential"


def _type_names(value: CorePSObject) -> list[str]:
    names = list(getattr(value.PSObject, "type_names", None) or [])
    return [n[len(_DESERIALIZED):] if n.startswith(_DESERIALIZED) else n for n in names]


def _properties(value: CorePSObject) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for prop in list(value.PSObject.adapted_properties) + list(value.PSObject.extended_properties):
        props[prop.name] = prop.get_value(value)
    return props


def to_python(value: Any) -> Any:
    """A deserialized CLIXML value as plain Python (see the module docstring)."""
    if value is None or isinstance(value, (bool, SecretStr)):
        return value
    if isinstance(value, PSSecureString):
        return SecretStr(str(value.decrypt()))
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {to_python(k): to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, (dt.datetime, dt.timedelta, uuid.UUID, decimal.Decimal)):
        return value
    if isinstance(value, CorePSObject):
        names = _type_names(value)
        props = _properties(value)
        if _CREDENTIAL_TYPE in names:
            return {"UserName": to_python(props.get("UserName")), "Password": to_python(props.get("Password"))}
        if not props:
            # A .NET object psrpcore kept only as its string form (ToString).
            to_string = getattr(value.PSObject, "to_string", None)
            return str(to_string) if to_string is not None else None
        return PSObject(properties={k: to_python(v) for k, v in props.items()}, type_names=names or
                        ["System.Management.Automation.PSCustomObject"],
                        to_string=getattr(value.PSObject, "to_string", None))
    return value


def to_psrp(value: Any) -> Any:
    """A plain Python value from host behaviour, ready for psrpcore's serializer."""
    if isinstance(value, PSObject):
        obj = PSCustomObject()
        obj.PSObject.type_names = list(value.type_names) + [
            n for n in ("System.Object",) if n not in value.type_names]
        for name, prop in value.properties.items():
            obj.PSObject.extended_properties.append(PSNoteProperty(name, value=to_psrp(prop)))
        if value.to_string is not None:
            obj.PSObject.to_string = value.to_string
        return obj
    if isinstance(value, SecretStr):
        # A secret going back to a client travels as a SecureString, encrypted with the session key.
        return PSSecureString(str(value))
    if isinstance(value, dict):
        table = PSDict()
        for k, v in value.items():
            table[to_psrp(k)] = to_psrp(v)
        return table
    if isinstance(value, (list, tuple)):
        return PSList(to_psrp(v) for v in value)
    if isinstance(value, str) and type(value) is not str:
        return PSString(value)
    return value
