"""Rules across keys of the stack configuration (a reference names a configured host, the privileged endpoint is
reached with CredSSP, ...), judged on the typed models.

They are reported together with the field errors, so they also run when some values do not validate: on a
:func:`lenient` view of the same models, where a value of the wrong type is kept as :class:`Unusable` and a
missing one is None, instead of failing the whole configuration.
"""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from typing import Annotated, Any, TypeVar, Union, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic.alias_generators import to_camel

from providers.errors import ConfigurationError
from providers.transport import PRIVILEGED_ENDPOINT, HostConnection

from .certificates import key_problems
from .models import NAMESPACE, StackConfig

M = TypeVar("M", bound=BaseModel)


class Unusable:
    """A value given in the configuration that does not have the setting's type (its field error says so)."""

    __slots__ = ("given",)

    def __init__(self, given: Any) -> None:
        self.given = given

    def __str__(self) -> str:
        return str(self.given)


def _keep(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return Unusable(value)


def _lenient_type(kind: Any) -> Any:
    """``kind`` without constraints, its models lenient, each item of a list or dict judged on its own."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return lenient(kind)
    if origin is Annotated:
        return _lenient_type(args[0])
    if origin is list:
        return list[Annotated[_lenient_type(args[0]), WrapValidator(_keep)]]  # type: ignore[misc]
    if origin is dict:
        return dict[args[0], Annotated[_lenient_type(args[1]), WrapValidator(_keep)]]  # type: ignore[misc,valid-type]
    if origin in (Union, types.UnionType):
        return Union[tuple(_lenient_type(a) for a in args)]  # noqa: UP007
    return kind


@cache
def lenient(model: type[M]) -> type[M]:
    """``model`` with the same fields and defaults (None when required), unknown keys ignored, and no value that
    fails: the shape the cross-key rules read. Typed as ``model`` for its field names; a value may be
    :class:`Unusable`, or None where the model requires it."""
    fields: dict[str, Any] = {
        name: (Annotated[_lenient_type(f.annotation), WrapValidator(_keep)],
               Field(None if f.is_required() else f.get_default(call_default_factory=True), alias=f.alias))
        for name, f in model.model_fields.items()}
    config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True,
                        arbitrary_types_allowed=True)
    return cast(type[M], type(model.__name__, (BaseModel,), {
        "__annotations__": {n: t for n, (t, _) in fields.items()}, "model_config": config,
        **{n: default for n, (_, default) in fields.items()}}))


def cross_checks(raw: dict[str, Any], secret_keys: set[str] | None) -> list[str]:
    """Every rule across keys, on the lenient view of ``raw``."""
    config = lenient(StackConfig).model_validate(raw)
    problems: list[str] = []
    clouds = [c for c in _items(config.clouds) if not isinstance(c, Unusable)]
    hosts = config.hosts if isinstance(config.hosts, dict) else {}
    credentials = config.credentials if isinstance(config.credentials, dict) else {}
    azs = config.azure_stack

    names = [c.name.lower() for c in clouds if isinstance(c.name, str)]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        problems.append(f"{NAMESPACE}:clouds: cloud names must be unique (case-insensitively); repeated: "
                        f"{', '.join(dupes)}")

    def host_ref(path: str, name: Any) -> None:
        if isinstance(name, str) and name not in hosts:
            known = ", ".join(sorted(hosts)) or "none configured"
            problems.append(f"{NAMESPACE}:{path}: no host {name!r} in {NAMESPACE}:hosts (hosts: {known})")

    def cred_ref(path: str, name: Any) -> None:
        if isinstance(name, str) and name not in credentials:
            problems.append(f"{NAMESPACE}:{path}: no credential {name!r} in {NAMESPACE}:credentials; add it with "
                            f"pulumi config set --secret --path '{NAMESPACE}:credentials.{name}.password' ...")

    if azs is not None and not hosts:
        problems.append(f"{NAMESPACE}:hosts: missing; azureStack needs the hosts it names")
    if azs is not None and not isinstance(azs, Unusable):
        for key in ("privileged_endpoint", "user_portal_host", "share_host"):
            host_ref(f"azureStack.{to_camel(key)}", getattr(azs, key))
        pep = hosts.get(azs.privileged_endpoint) if isinstance(azs.privileged_endpoint, str) else None
        if pep is not None and not isinstance(pep, Unusable) and pep.auth != "credssp":
            problems.append(f"{NAMESPACE}:hosts.{azs.privileged_endpoint}.auth: the privileged endpoint accepts "
                            f"only CredSSP: set auth: credssp")
    if azs is not None:
        for i, cloud in _indexed(config.clouds):
            for key in ("tenant_portal_hosts", "tenant_api_hosts"):
                refs = getattr(cloud, key)
                if not refs:
                    problems.append(f"{NAMESPACE}:clouds[{i}].{to_camel(key)}: list at least one host of "
                                    f"{NAMESPACE}:hosts")
                for j, ref in enumerate(_items(refs)):
                    host_ref(f"clouds[{i}].{to_camel(key)}[{j}]", ref)
            if cloud.trust_host is not None:
                host_ref(f"clouds[{i}].trustHost", cloud.trust_host)
                if cloud.trust_host not in _items(cloud.tenant_api_hosts):
                    problems.append(f"{NAMESPACE}:clouds[{i}].trustHost: must be one of the cloud's tenantApiHosts")
            if cloud.sql_credential is not None:
                cred_ref(f"clouds[{i}].sqlCredential", cloud.sql_credential)
            if not cloud.tenant_portal_fqdn or not cloud.tenant_api_fqdn:
                problems.append(f"{NAMESPACE}:clouds[{i}]: set tenantPortalFqdn and tenantApiFqdn "
                                f"(Configure-WapConnector.ps1 needs both)")
        if config.bundle is None:
            problems.append(f"{NAMESPACE}:bundle: missing; set bundle.sourceDir to the extracted WAPConnector folder")
    for i, cloud in _indexed(config.clouds):
        if not cloud.connector_fqdn and not cloud.tenant_portal_fqdn:
            problems.append(f"{NAMESPACE}:clouds[{i}]: set tenantPortalFqdn (or connectorFqdn), the name the "
                            f"connector endpoint answers on")
    for i, cloud in _indexed(config.clouds):
        cc = cloud.connector_certificate
        if cc is not None and not isinstance(cc, Unusable):
            problems.extend(key_problems(i, cc, secret_keys))
    for name, host in hosts.items():
        if isinstance(host, Unusable):
            continue
        if host.credential is not None:
            cred_ref(f"hosts.{name}.credential", host.credential)
        if host.auth != "kerberos" and host.credential is None:
            problems.append(f"{NAMESPACE}:hosts.{name}.credential: {host.auth} authentication needs a credential "
                            f"(a name in {NAMESPACE}:credentials)")
    return problems


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _indexed(clouds: Any) -> list[tuple[int, Any]]:
    """(index in the configuration, cloud) of each cloud given as a mapping."""
    return [(i, c) for i, c in enumerate(_items(clouds)) if not isinstance(c, Unusable)]


def connection_problems(config: StackConfig) -> list[str]:
    """Each host's settings as the resources will use them (HostConnection's rules: address syntax, CredSSP only
    for the privileged endpoint, Basic over http, timeouts, ca_file with https), reported under the host's key.
    Whether ca_file exists is left to deploy time (labsim writes its CA when it starts)."""
    if config.azure_stack is None:
        return []  # a PKI-only stack connects to no host
    pep = config.azure_stack.privileged_endpoint
    problems: list[str] = []
    for name in config.hosts:
        try:
            HostConnection.parse(config.connection(
                name, configuration_name=PRIVILEGED_ENDPOINT if name == pep else None))
        except ConfigurationError as exc:
            for p in exc.problems:
                if "does not exist or is not a file" in p:
                    continue
                field, sep, reason = p.partition(": ")
                field = "ca_file" if field == "ca_pem" else field  # the operator gives a file
                if sep and re.fullmatch(r"[a-z_]+", field):
                    problems.append(f"{NAMESPACE}:hosts.{name}.{to_camel(field)}: {reason}")
                else:
                    problems.append(f"{NAMESPACE}:hosts.{name}: {p}")
    return problems
