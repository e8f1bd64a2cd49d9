"""RegistryValue: one string value under a registry key of a Windows host (a WAP role's settings live under
HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\<role>). The worked example of docs/adding-a-resource.md: a seventh remote
resource on the template of providers.remote, written as its inputs, its fact, compare, its steps and undo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import field_validator

from providers import ownership
from providers.base import LabResource, is_unknown
from providers.errors import HostDidNotConverge
from providers.facts import Fact, as_pipelines
from providers.facts.markers import OwnershipMarker
from providers.hostops import only_expected_errors
from providers.remote import (
    HostResourceProvider,
    Identity,
    RemoteInputs,
    connection_of,
    password_secret,
    secret_outputs,
)
from providers.transport import Command, HostConnection, Pipeline, Transport

STEP_READ = "read registry value"
STEP_SET = "set registry value"
STEP_REMOVE = "remove registry value"
# [pub] Get-ItemProperty of a missing key is PathNotFound, of a missing value an ArgumentException.
ABSENT = ("PathNotFound", "System.Management.Automation.PSArgumentException")
_KEY = re.compile(r"^HKLM:\\SOFTWARE(\\[A-Za-z0-9 ._-]+)+$")


class RegistryValueInputs(RemoteInputs):
    key: str
    name: str
    value: str

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KEY.match(v):
            raise ValueError(f"{v!r} is not a key under HKLM:\\SOFTWARE such as HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc")
        return v


@dataclass(frozen=True)
class RegistryValueObserved:
    value: str


@dataclass(frozen=True)
class RegistryString(Fact[str | None]):
    """The string ``name`` under the registry key ``key``; None when the key or the value is not there."""

    key: str
    name: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Get-ItemProperty", {"Path": self.key, "Name": [self.name]}))

    def parse(self, objects: Sequence[Any]) -> str | None:
        return next((str(o[self.name]) for o in objects if isinstance(o, Mapping) and self.name in o), None)


def read(t: Transport, conn: HostConnection, key: str, name: str) -> tuple[RegistryValueObserved | None,
                                                                             ownership.Marker | None]:
    """The value and its ownership marker, in one invocation."""
    value, mark = RegistryString(key, name), OwnershipMarker(marker_path(key, name))
    statements = [*value.statements(), *mark.statements()]
    result = t.run(conn, STEP_READ, statements, idempotent=True, accept_errors=True)
    only_expected_errors(conn, STEP_READ, statements, result, ABSENT)
    found = value.parse(result.outputs[0])
    return (None if found is None else RegistryValueObserved(found)), mark.parse(result.outputs[1])


def marker_path(key: str, name: str) -> str:
    return ownership.marker_path("RegistryValue", f"{key}-{name}")


def identity(host: str, key: str, name: str) -> Identity:
    return Identity(host, marker_path(key, name), f"the registry value {name} of {key}")


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    want = desired.get("value")
    return [ownership.Difference("value", observed.get("value"), want)] \
        if is_unknown(want) or observed.get("value") != want else []


@dataclass(frozen=True)
class RegistryValueStep:
    kind: Literal["set"] = "set"


class RegistryValueProvider(HostResourceProvider[RegistryValueInputs, RegistryValueObserved, RegistryValueStep]):
    inputs_model = RegistryValueInputs
    ownership_resource = "RegistryValue"
    settings = replace_on = ("key", "name")  # another key or name is another value
    compare = staticmethod(compare)

    def identity(self, inputs: RegistryValueInputs) -> Identity:
        return identity(inputs.connection.fqdn, inputs.key, inputs.name)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return identity(connection_of(props).fqdn, props["key"], props["name"])

    def read_host(self, t: Transport, inputs: RegistryValueInputs) -> tuple[RegistryValueObserved | None,
                                                                             ownership.Marker | None]:
        return read(t, inputs.connection, inputs.key, inputs.name)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[RegistryValueObserved | None,
                                                                           ownership.Marker | None]:
        return read(t, connection_of(props), props["key"], props["name"])

    def desired_values(self, inputs: RegistryValueInputs) -> Mapping[str, Any]:
        return {"value": inputs.value}

    def observed_values(self, observed: RegistryValueObserved | None,
                        inputs: RegistryValueInputs) -> Mapping[str, Any]:
        return self.read_outputs({}, observed)

    def steps(self, differences: list[ownership.Difference], inputs: RegistryValueInputs,
              observed: RegistryValueObserved | None) -> list[RegistryValueStep]:
        return [RegistryValueStep()] if differences else []

    def apply(self, t: Transport, inputs: RegistryValueInputs, steps: list[RegistryValueStep],
              observed: RegistryValueObserved | None) -> None:
        set_value(t, inputs.connection, inputs.key, inputs.name, inputs.value)

    def did_not_converge(self, inputs: RegistryValueInputs, observed: RegistryValueObserved | None,
                         left: list[RegistryValueStep]) -> HostDidNotConverge:
        return HostDidNotConverge(inputs.connection.fqdn, STEP_SET, f"{inputs.name} of {inputs.key} is "
                                  f"{observed.value if observed else 'missing'!r} after the write",
                                  hint="check that the key exists and what else writes it, then run again")

    def prior_values(self, observed: RegistryValueObserved, inputs: RegistryValueInputs) -> dict[str, Any]:
        return {"value": observed.value}

    def resource_id(self, inputs: RegistryValueInputs, outputs: Mapping[str, Any]) -> str:
        return f"{inputs.connection.fqdn}:{inputs.key}:{inputs.name}"

    def read_outputs(self, props: Mapping[str, Any], observed: RegistryValueObserved | None) -> dict[str, Any]:
        return {"value": observed.value if observed else None}

    def remove(self, t: Transport, props: Mapping[str, Any], found: RegistryValueObserved | None) -> None:
        cmd = Command("Remove-ItemProperty", {"Path": props["key"], "Name": [props["name"]]})
        result = t.run(connection_of(props), STEP_REMOVE, cmd, idempotent=True, accept_errors=True)
        only_expected_errors(connection_of(props), STEP_REMOVE, cmd, result, ABSENT)  # already gone is fine

    def leave(self, t: Transport, props: Mapping[str, Any], found: RegistryValueObserved | None) -> None:
        prior = (props.get("prior") or {}).get("value")
        if isinstance(prior, str) and (found is None or found.value != prior):
            set_value(t, connection_of(props), props["key"], props["name"], prior)


def set_value(t: Transport, conn: HostConnection, key: str, name: str, value: str) -> None:
    t.run(conn, STEP_SET, Command("New-ItemProperty", {"Path": key, "Name": name, "Value": value,
                                                       "PropertyType": "String"}, ["Force"]), idempotent=True)


class RegistryValue(LabResource, name="RegistryValue"):
    """One string value under a registry key of a host. Output ``value``: as the host shows it."""

    value: pulumi.Output[str]

    def __init__(self, name: str, *, connection: pulumi.Input[Mapping[str, Any]], key: pulumi.Input[str],
                 value_name: pulumi.Input[str], value: pulumi.Input[str], owner: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"connection": password_secret(connection), "key": key, "name": value_name, "value": value,
                 **ownership.resource_props(owner)}
        super().__init__(RegistryValueProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs()))
