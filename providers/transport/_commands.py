"""Structured commands: what the providers ask a host to run.

A :class:`Command` is a cmdlet (or a script file) with typed parameters and switches; ``a | b`` makes a
:class:`Pipeline`; a list of pipelines is run as consecutive statements in one remote pipeline invocation.
Nothing here ever becomes PowerShell source text: the transport sends names and typed values (CLIXML) with
``add_cmdlet``/``add_parameter``/``add_statement``, so a value can never be parsed as code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Command", "Credential", "Pipeline", "Secret", "Statements", "describe", "secrets_in", "to_statements"]


class Secret:
    """A secret value, sent as a SecureString. Its str/repr are masked; ``reveal()`` is for the transport only."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # pickling a Secret (e.g. into Pulumi state) is a bug: refuse it loudly
        raise TypeError("a Secret must not be pickled; keep secrets out of provider objects")


@dataclass(frozen=True)
class Credential:
    """A user and password, sent as a PSCredential (the password as a SecureString)."""

    user: str
    password: Secret

    def __post_init__(self) -> None:
        if not isinstance(self.user, str) or not self.user:
            raise ValueError("Credential needs a user name")
        if not isinstance(self.password, Secret):
            object.__setattr__(self, "password", Secret(self.password))

    def __repr__(self) -> str:
        return f"Credential(user={self.user!r}, password='****')"


# A cmdlet or function name, optionally module-qualified (Microsoft.PowerShell.Utility\ConvertTo-Json) ...
_CMDLET = re.compile(r"^(?:[A-Za-z_][\w.]*\\)?[A-Za-z_][\w.-]*$")
# ... or an absolute path to a script file (Install-Connector.ps1 ships as a file on the host).
_SCRIPT_FILE = re.compile(r"^[A-Za-z]:\\[^\r\n\"'`$;|&<>{}()]*\.ps1$", re.IGNORECASE)
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALARS = (str, bool, int, float, bytes, type(None), Secret, Credential)


def _check_value(path: str, value: Any) -> Any:
    """Freeze and type-check one parameter value: only types that have an unambiguous CLIXML form."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_check_value(f"{path}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: hashtable keys must be str, got {type(k).__name__}")
            out[k] = _check_value(f"{path}.{k}", v)
        return MappingProxyType(out)
    raise TypeError(f"{path}: unsupported value type {type(value).__name__} (use str, int, float, bool, bytes, "
                    f"list, dict, Secret or Credential)")


@dataclass(frozen=True)
class Command:
    """One command: ``name`` is a cmdlet/function name or an absolute path to a .ps1 file; ``parameters``
    are named, typed values (str, int, float, bool, bytes -> byte[], list -> array, dict -> hashtable,
    Secret -> SecureString, Credential -> PSCredential, None -> $null); ``switches`` are switch parameters."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    switches: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not (_CMDLET.match(self.name) or _SCRIPT_FILE.match(self.name)):
            raise ValueError(f"not a command name: {self.name!r} (script text is never sent; use a cmdlet name "
                             f"or an absolute path to a .ps1 file)")
        if isinstance(self.switches, str):
            raise TypeError("switches is a sequence of names, not a str")
        params = {}
        for key, value in dict(self.parameters).items():
            if not isinstance(key, str) or not _PARAM.match(key):
                raise ValueError(f"{self.name}: not a parameter name: {key!r}")
            params[key] = _check_value(f"{self.name} -{key}", value)
        switches = tuple(self.switches)
        for s in switches:
            if not isinstance(s, str) or not _PARAM.match(s):
                raise ValueError(f"{self.name}: not a switch name: {s!r}")
        lowered = [k.lower() for k in (*params, *switches)]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"{self.name}: a parameter or switch is given twice: {sorted(lowered)}")
        object.__setattr__(self, "parameters", MappingProxyType(params))
        object.__setattr__(self, "switches", switches)

    def __or__(self, other: Command | Pipeline) -> Pipeline:
        return Pipeline((self,)) | other

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Command) and self.name == other.name and dict(self.parameters) ==
                dict(other.parameters) and self.switches == other.switches)

    def __hash__(self) -> int:
        return hash((self.name, self.switches, tuple(sorted(self.parameters))))

    def __str__(self) -> str:
        return describe(self)


@dataclass(frozen=True)
class Pipeline:
    """Commands whose output feeds the next one: ``Get-Website -Name X | ConvertTo-Json -Depth 4 -Compress``."""

    commands: tuple[Command, ...]

    def __post_init__(self) -> None:
        commands = tuple(self.commands)
        if not commands or not all(isinstance(c, Command) for c in commands):
            raise ValueError("a pipeline is one or more Command objects")
        object.__setattr__(self, "commands", commands)

    def __or__(self, other: Command | Pipeline) -> Pipeline:
        if isinstance(other, Command):
            return Pipeline((*self.commands, other))
        if isinstance(other, Pipeline):
            return Pipeline((*self.commands, *other.commands))
        return NotImplemented

    def __str__(self) -> str:
        return describe(self)


Statements = Command | Pipeline | Sequence[Command | Pipeline]


def to_statements(statements: Statements) -> tuple[Pipeline, ...]:
    """Normalise what callers pass (one command, one pipeline, or a list of them) to a tuple of pipelines."""
    if isinstance(statements, Command):
        return (Pipeline((statements,)),)
    if isinstance(statements, Pipeline):
        return (statements,)
    out = []
    for s in statements:
        if isinstance(s, Command):
            out.append(Pipeline((s,)))
        elif isinstance(s, Pipeline):
            out.append(s)
        else:
            raise TypeError(f"expected Command or Pipeline, got {type(s).__name__}")
    if not out:
        raise ValueError("nothing to run: no statements")
    return tuple(out)


def _show(value: Any) -> str:
    """A PowerShell-looking rendering for messages only; never sent to a host. Secrets are masked."""
    if isinstance(value, Secret):
        return "'****'"
    if isinstance(value, Credential):
        return f"(Credential {value.user!r} '****')"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if value is None:
        return "$null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        text = value if len(value) <= 80 else value[:77] + "..."
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "@(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, Mapping):
        return "@{" + "; ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return "<?>"


def describe(statements: Statements) -> str:
    """Display form of commands for messages and logs, e.g. ``Get-Website -Name 'X' | ConvertTo-Json -Compress``."""
    parts = []
    for pipeline in to_statements(statements):
        cmds = []
        for c in pipeline.commands:
            words = [c.name if _CMDLET.match(c.name) else f"& '{c.name}'"]
            words += [f"-{k} {_show(v)}" for k, v in c.parameters.items()]
            words += [f"-{s}" for s in c.switches]
            cmds.append(" ".join(words))
        parts.append(" | ".join(cmds))
    return "; ".join(parts)


def secrets_in(statements: Statements) -> list[str]:
    """Every secret value in the commands, so messages coming back from the host can be scrubbed of them."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Secret):
            found.append(v.reveal())
        elif isinstance(v, Credential):
            found.append(v.password.reveal())
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)

    for pipeline in to_statements(statements):
        for c in pipeline.commands:
            for v in c.parameters.values():
                walk(v)
    return [s for s in found if s]
