"""The plaintext-secrets rule: every password of the stack configuration must be a Pulumi secret.

The engine tells a program only which top-level keys hold *some* secret, so one password set without ``--secret``
among secret ones is only visible in the stack settings file: :func:`plain_text_paths` reads it there. Messages
name where a password is and how to store it as a secret, never its value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .models import NAMESPACE

SECRET_KEYS = ("credentials",)  # config keys that must be Pulumi secrets


_SECRET_NAME = re.compile(r"password|passphrase", re.IGNORECASE)


def _is_secure(value: Any) -> bool:
    """A value Pulumi keeps encrypted in the stack settings file: ``{secure: v1:...}``."""
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def plaintext_secrets(stack_config: Any) -> list[str]:
    """Config keys (``wapconnector:credentials.lab.password``) of every password stored in plain text in a stack
    settings file's ``config`` mapping. The engine tells a program only which top-level keys hold *some* secret, so
    one password set without ``--secret`` among secret ones is only visible in the file."""
    found: list[str] = []

    def walk(value: Any, path: str, named_secret: bool) -> None:
        if _is_secure(value):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}", named_secret or bool(_SECRET_NAME.search(str(k))))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]", named_secret)
        elif named_secret and value not in (None, ""):
            found.append(path)

    for key, value in (stack_config or {}).items() if isinstance(stack_config, dict) else ():
        ns, _, name = str(key).partition(":")
        if ns == NAMESPACE:
            walk(value, key, bool(_SECRET_NAME.search(name)))
    return found



def plain_text_paths(stack_file: Path | None) -> set[str]:
    """Paths below ``wapconnector:*`` keys (``credentials.wapadmin.password``, ``clouds[0].connectorCertificate.
    pfxPassword``) of every password a stack file holds in plain text (``--path`` secrets are ``{secure: ...}``
    there; the program itself only learns which top-level keys hold *some* secret)."""
    import yaml

    if stack_file is None:
        return set()
    try:
        doc = yaml.safe_load(stack_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    config = doc.get("config") if isinstance(doc, dict) else None
    return {p.removeprefix(f"{NAMESPACE}:") for p in plaintext_secrets(config)}



def secret_problems(raw: dict[str, Any], secret_keys: set[str] | None, plain_paths: set[str] | None) -> list[str]:
    """Passwords not stored as secrets: a whole top-level key the engine did not mark secret, or (``plain_paths``,
    from the stack file) each one by its path."""
    problems: list[str] = []
    if secret_keys is not None and not any(p.startswith("credentials.") for p in plain_paths or ()):
        for key in SECRET_KEYS:
            # Only a password that is there can be in plain text: a missing one is reported as missing.
            plain = plaintext_secrets({f"{NAMESPACE}:{key}": raw.get(key)})
            if plain and f"{NAMESPACE}:{key}" not in secret_keys:
                problems.append(f"{NAMESPACE}:{key}: holds passwords in plain text; set each password with "
                                f"pulumi config set --secret --path '{NAMESPACE}:{key}.<name>.password' <value>")
    return problems


def plain_path_problems(plain_paths: set[str] | None, already: list[str]) -> list[str]:
    """One line per password written in plain text in the stack file (unless its key is already reported)."""
    return [f"{NAMESPACE}:{path}: in plain text in the stack file; set it as a secret: pulumi config set --secret "
            f"--path '{NAMESPACE}:{path}'"
            for path in sorted(plain_paths or ()) if not any(p.startswith(f"{NAMESPACE}:{path}:") for p in already)]
