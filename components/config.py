"""The stack configuration, validated with pydantic before any resource is registered.

Values live in ``stacks/Pulumi.<stack>.yaml`` under the ``wapconnector`` namespace (camelCase keys). A bad
value stops the program with one line per problem, naming the config key and what to set instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from providers.pki import KeyType

NAMESPACE = "wapconnector"
_FQDN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _fqdn(value: str) -> str:
    if not _FQDN.match(value):
        raise ValueError(f"{value!r} is not a fully qualified domain name such as tenant.contoso.com")
    return value.lower()


class CaConfig(_Config):
    """The lab CA that issues every connector certificate."""

    common_name: Annotated[str, Field(min_length=1, max_length=64)] = "WAP Connector Lab Root CA"
    organization: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    key_type: KeyType = "ecdsa-p256"
    validity_days: Annotated[int, Field(gt=0, le=36500)] = 3650


class CloudConfig(_Config):
    """One Windows Azure Pack cloud as Azure Stack's multi-cloud mode names it."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    # The FQDN the connector endpoint (port 40005) answers on: the tenant portal's name.
    connector_fqdn: str
    certificate_validity_days: Annotated[int, Field(gt=0, le=3650)] = 397
    certificate_key_type: KeyType = "ecdsa-p256"

    _check_fqdn = field_validator("connector_fqdn")(classmethod(lambda cls, v: _fqdn(v)))


class StackConfig(_Config):
    ca: CaConfig = Field(default_factory=CaConfig)
    clouds: list[CloudConfig] = Field(min_length=1)



def _duplicate_cloud_names(raw: dict[str, Any]) -> list[str]:
    clouds = raw.get("clouds")
    if not isinstance(clouds, list):
        return []
    names = [str(c.get("name", "")).lower() for c in clouds if isinstance(c, dict)]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if not dupes:
        return []
    return [f"{NAMESPACE}:clouds: cloud names must be unique (case-insensitively); repeated: {', '.join(dupes)}"]


class ConfigError(ValueError):
    """The stack configuration is unusable; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _key_path(loc: tuple[Any, ...]) -> str:
    head, *rest = loc
    path = f"{NAMESPACE}:{head}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate the namespace's config values (already decoded from JSON/YAML). Raises ConfigError with every
    problem at once: field errors from pydantic plus the cross-field rules."""
    problems = _duplicate_cloud_names(raw)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                problems.append(f"{_key_path(loc)}: missing; set it in stacks/Pulumi.<stack>.yaml")
            elif err["type"] == "extra_forbidden":
                problems.append(f"{_key_path(loc)}: unknown setting (check its spelling)")
            else:
                problems.append(f"{_key_path(loc)}: {msg}")
    else:
        if not problems:
            return config
    raise ConfigError(problems)


def load_stack_config() -> StackConfig:
    """Read every ``wapconnector:*`` value of the running stack and validate it."""
    import json

    import pulumi.runtime.config as runtime_config

    raw: dict[str, Any] = {}
    merged = {**(runtime_config.get_config_env() or {}), **runtime_config.CONFIG.get()}
    for full_key, value in merged.items():
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        except json.JSONDecodeError:
            raw[key] = value
    return parse_stack_config(raw)
