"""Loading the stack configuration: the running stack's ``wapconnector:*`` values, validated into a
:class:`StackConfig` or refused with every problem at once (field errors, the rules across keys, the passwords not
stored as secrets, each host's connection settings and the operator's certificate files), one line each, naming
the config key to fix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from providers.errors import ConfigurationError

from .certificates import certificate_problems
from .checks import connection_problems, cross_checks
from .models import NAMESPACE, StackConfig
from .plaintext import plain_path_problems, plain_text_paths, secret_problems

#: What a refused configuration's message calls it: "invalid stack configuration:" and one line per problem.
SUBJECT = "stack configuration"


def _key_path(loc: tuple[Any, ...]) -> str:
    head, *rest = loc
    path = f"{NAMESPACE}:{head}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_stack_config(raw: dict[str, Any], secret_keys: set[str] | None = None, *,
                       plain_paths: set[str] | None = None, project_dir: Path | None = None) -> StackConfig:
    """Validate the namespace's config values (already decoded from JSON/YAML). Raises ConfigurationError with every
    problem at once: field errors from pydantic plus the cross-key rules. ``secret_keys`` (full
    ``namespace:key`` names) enables the check that passwords were set as secrets; ``plain_paths`` (paths such as
    ``clouds[0].connectorCertificate.pfxPassword`` written in plain text in the stack file) makes it exact below
    the top-level key. ``project_dir`` (default: the working directory) anchors relative certificate files."""
    problems = cross_checks(raw, secret_keys) + secret_problems(raw, secret_keys, plain_paths)
    problems += plain_path_problems(plain_paths, problems)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing" and loc[0] == "credentials" and loc[-1] == "password":
                problems.append(f"{_key_path(loc)}: missing; set it with pulumi config set --secret --path "
                                f"'{_key_path(loc)}'")
            elif err["type"] == "missing":
                problems.append(f"{_key_path(loc)}: missing; set it in stacks/Pulumi.<stack>.yaml")
            elif err["type"] == "extra_forbidden" and loc[0] == "credentials":
                # A mangled credentials entry can turn a password into a key: never echo it.
                problems.append(f"{_key_path(loc[:-1])}: an unknown setting (its name is not shown: it may be "
                                f"a password); a credential has only username and password")
            elif err["type"] == "extra_forbidden":
                problems.append(f"{_key_path(loc)}: unknown setting (check its spelling)")
            else:
                problems.append(f"{_key_path(loc)}: {msg}")
    else:
        if not problems:
            problems = connection_problems(config) + certificate_problems(config, project_dir)
        if not problems:
            return config
    raise ConfigurationError(problems, subject=SUBJECT)


def load_stack_config() -> StackConfig:
    """Read every ``wapconnector:*`` value of the running stack and validate it."""
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
    secret_keys = {k for k in merged if runtime_config.is_config_secret(k)}
    # Only keys this run really got (a --config-file run may not read that file).
    plain = {p for p in plain_text_paths(_stack_file()) if f"{NAMESPACE}:{re.split(r'[.[]', p)[0]}" in merged}
    return parse_stack_config(raw, secret_keys, plain_paths=plain)


def _stack_file(start: Path | None = None) -> Path | None:
    """``Pulumi.<stack>.yaml`` of the running stack, from the project's Pulumi.yaml (its ``stackConfigDir``) in the
    working directory or above, where the CLI and the Automation API's local programs run. None when there is none
    (an inline Automation API program runs elsewhere: then only the engine's top-level secret keys count)."""
    import pulumi
    import yaml

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project_file = next((folder / n for n in ("Pulumi.yaml", "Pulumi.yml") if (folder / n).is_file()), None)
        if project_file is None:
            continue
        try:
            project = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return None
        config_dir = folder / str(project.get("stackConfigDir") or ".") if isinstance(project, dict) else folder
        stack = pulumi.get_stack().rsplit("/", 1)[-1]
        return next((config_dir / f"Pulumi.{stack}{ext}" for ext in (".yaml", ".yml")
                     if (config_dir / f"Pulumi.{stack}{ext}").is_file()), None)
    return None
