"""Glue shared by every resource that lives on a Windows host.

Each remote resource module has three parts (see docs/ and ../shared notes/style.md):
  * a *read*: one structured call, parsed by a pure function into a typed observed state, or None if absent;
  * a pure *plan*: observed vs desired -> the steps to run (empty when nothing is needed);
  * thin ResourceProvider glue built on :class:`RemoteProvider` below.

Connection settings travel as the ``connection`` input (a dict validated into HostConnection). Outputs keep
them so read/delete can reach the host later; ``connection`` is therefore always an additional secret output
(it holds the password). Nothing remote is kept on provider objects: they are pickled into the state.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from providers.base import PROVIDER_KEY, LabProvider, is_unknown, validation_failures
from providers.errors import ConfigurationError
from providers.transport import HostConnection, Transport

_transport: Transport | None = None
_transport_lock = threading.Lock()


def transport() -> Transport:
    """The process-wide transport: pypsrp with its pool cache, unless a test swapped it."""
    global _transport
    with _transport_lock:
        if _transport is None:
            from providers.transport import PsrpTransport

            _transport = PsrpTransport()
        return _transport


@contextlib.contextmanager
def use_transport(t: Transport) -> Iterator[Transport]:
    """Run provider methods against another transport (a FakeTransport in unit tests)."""
    global _transport
    with _transport_lock:
        previous, _transport = _transport, t
    try:
        yield t
    finally:
        with _transport_lock:
            _transport = previous


class RemoteInputs(BaseModel):
    """Base of every remote resource's inputs model: the host to act on."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)
    connection: HostConnection
    #: The owning stack, ``project/stack`` (providers/ownership.py); None: ownership not tracked (direct use).
    owner: str | None = None
    #: Take over a thing that exists but differs, or that another stack owns (wapconnector:adopt).
    adopt: bool = False

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str | None) -> str | None:
        from providers.ownership import owner_problem

        problem = owner_problem(v)
        if problem:
            raise ValueError(problem)
        return v


def password_secret(settings: Any) -> Any:
    """Connection settings (or a credential) as a resource input with only the password a secret. A plan then
    names the field that changed (``connection: { operation_timeout: 20 => 30 }``), the password shows as
    [secret], and the state keeps it encrypted. An Output (fields unknown here) stays a secret as a whole. The
    ``connection`` *output* is a secret as a whole anyway (:func:`secret_outputs`)."""
    if isinstance(settings, Mapping):
        out = dict(settings)
        if out.get("password") is not None:
            out["password"] = pulumi.Output.secret(out["password"])
        return out
    return pulumi.Output.secret(settings)


def connection_of(props: Mapping[str, Any], key: str = "connection") -> HostConnection:
    """The HostConnection stored in inputs/outputs; a clear ConfigurationError if it is unusable."""
    return HostConnection.parse(props.get(key))


def check_remote(model: type[BaseModel], news: Mapping[str, Any], *,
                 connection_keys: tuple[str, ...] = ("connection",)) -> CheckResult:
    """check() for remote resources: connection problems reported one per line under their property path
    (never echoing values: one may be the password), then the model's own rules."""
    failures: list[CheckFailure] = []
    for key in connection_keys:
        value = news.get(key)
        if value is None:
            failures.append(CheckFailure(key, "missing; give the host's connection settings"))
            continue
        if is_unknown(value):
            continue
        try:
            HostConnection.parse(value)
        except ConfigurationError as exc:
            failures.extend(CheckFailure(key, problem) for problem in exc.problems)
    # Every other problem too, at once (the connection's are reported above, by field).
    failures += [f for f in validation_failures(model, news) if not f.property.startswith(connection_keys)]
    return CheckResult({k: v for k, v in news.items()}, failures)


def parse_model(model: type[BaseModel], props: Mapping[str, Any], subject: str) -> Any:
    """Inputs (or stored outputs) as ``model``, for create/update; a ConfigurationError listing every problem
    by property, never echoing a value (pydantic's own error would print the inputs, passwords included)."""
    try:
        return model.model_validate({k: v for k, v in props.items() if k != PROVIDER_KEY})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(x) for x in e['loc']) or 'inputs'}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors(include_input=False, include_url=False)]
        raise ConfigurationError(problems, subject=subject) from None


def connection_changed(olds: Mapping[str, Any], news: Mapping[str, Any], key: str = "connection") -> bool:
    """A new address, port, credential or timeout is an in-place update (never a replace): the thing on
    the host is the same, only the way to reach it changed."""
    return olds.get(key) != news.get(key)


def host_identity(props: Mapping[str, Any], key: str = "connection") -> str | None:
    """The host a resource lives on, by FQDN (lower-case): changing it means a different thing (replace)."""
    conn = props.get(key)
    if isinstance(conn, Mapping) and isinstance(conn.get("fqdn"), str):
        return conn["fqdn"].lower().rstrip(".")
    return None


def secret_outputs(*names: str) -> pulumi.ResourceOptions:
    """Resource options that keep ``connection`` and the given outputs encrypted in the state."""
    return pulumi.ResourceOptions(additional_secret_outputs=["connection", *names])


def inputs_only(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


class RemoteProvider(LabProvider):
    """Marker base: remote providers get their transport from :func:`transport` inside each method."""
