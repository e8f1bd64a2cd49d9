"""Glue shared by every resource that lives on a Windows host.

Each remote resource module has three parts (see docs/style.md):
  * a *read*: one structured call, parsed by a pure function into a typed observed state, or None if absent;
  * a pure *plan*: observed vs desired -> the steps to run (empty when nothing is needed);
  * thin ResourceProvider glue built on :class:`RemoteProvider` below.

Connection settings travel as the ``connection`` input (a dict validated into HostConnection). Outputs keep
them so read/delete can reach the host later; ``connection`` is therefore always an additional secret output
(it holds the password). Nothing remote is kept on provider objects: they are pickled into the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from providers import ownership
from providers.base import PROVIDER_KEY, LabProvider, is_unknown, validation_failures
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge
from providers.transport import HostConnection, Transport, comparable_settings


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

    @classmethod
    def parse(cls, props: Mapping[str, Any]) -> Self:
        """Inputs (or stored outputs) as this model, for create/update: a ConfigurationError listing every problem
        by property, never echoing a value (``<Resource> inputs``)."""
        inputs: Self = parse_model(cls, props, subject=f"{cls.__name__.removesuffix('Inputs')} inputs")
        return inputs


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


def connection_diff(olds: Mapping[str, Any], news: Mapping[str, Any],
                    key: str = "connection") -> tuple[list[str], list[str]]:
    """(changed, replaced) for a connection input: another host (by FQDN) is another thing, a replace; a new
    address, port, credential or timeout is an in-place update (the thing on the host is the same, only the way
    to reach it changed)."""
    new = news.get(key)
    if is_unknown(new):
        return [key], []
    if host_identity(news, key) != host_identity(olds, key):
        return [key], [key]
    return ([] if same_connection(olds.get(key), new) else [key]), []


def same_connection(old: Any, new: Any) -> bool:
    """Whether two connection settings reach the host the same way. The CA counts by its content, so a state that
    names it by another checkout's path (``ca_file``) matches a program that gives the same CA (``ca_pem``)."""
    return bool(comparable_settings(old) == comparable_settings(new))


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
    """Base of the providers of things on a Windows host. The provider owns its transport: the one given to the
    constructor (a test's FakeTransport), else a PsrpTransport it makes on first use, over the provider process's
    sessions (:func:`providers.transport.process_sessions`: one runspace pool per host, whichever resource reaches
    it). Each method takes the transport once and passes it down to every host operation. A provider in the state
    carries none: it is pickled with the stack, before any method made its transport."""

    def __init__(self, transport: Transport | None = None) -> None:
        if transport is not None:  # nothing on the instance otherwise: the pickle in the state stays the same
            self._transport = transport

    @property
    def transport(self) -> Transport:
        transport: Transport | None = self.__dict__.get("_transport")
        if transport is None:
            from providers.transport import PsrpTransport, process_sessions

            transport = self._transport = PsrpTransport(process_sessions())
        return transport

    def __getstate__(self) -> dict[str, Any] | None:
        state = {k: v for k, v in self.__dict__.items() if k != "_transport"}
        return state or None  # as an object with nothing on it: the pickle is the class alone


# -- the one shape of a resource on a host ---------------------------------------------------------------------

InputsT = TypeVar("InputsT", bound=RemoteInputs)
ObservedT = TypeVar("ObservedT")
StepT = TypeVar("StepT")


@dataclass(frozen=True)
class Converged(Generic[ObservedT, StepT]):
    """What :meth:`HostResourceProvider.converge_steps` did."""

    observed: ObservedT
    """The host as read after the steps (or as it was, when nothing was needed)."""
    steps: list[StepT]
    """The steps that ran; [] when the host already matched."""
    applied: Any = None
    """What :meth:`HostResourceProvider.apply` returned."""


class HostResourceProvider(RemoteProvider, Generic[InputsT, ObservedT, StepT]):
    """The template every resource that lives on a Windows host follows:

    * :meth:`read_host`: one invocation, its statements' outputs parsed by pure functions into the typed observed
      state (None: the thing is not there), with the ownership marker;
    * :meth:`plan`: pure, observed vs desired inputs -> the steps (typed) that close the gap, [] when none;
    * :meth:`apply`: runs the steps;
    * :meth:`converge`: generic: read, plan, apply, read again, and :class:`HostDidNotConverge` if the host still
      differs (:meth:`did_not_converge` says how);
    * ownership (:mod:`providers.ownership`): :meth:`claim` for create, :meth:`keep_ownership` for update, from
      :meth:`marker_path`, :meth:`thing`, :meth:`differences` and :meth:`prior_values`.

    Every method takes the transport its provider method resolved once (:attr:`RemoteProvider.transport`)."""

    #: The resource's name in ownership markers (the folder under C:\ProgramData\WapConnectorIac).
    ownership_resource: ClassVar[str] = ""

    def read_host(self, t: Transport, inputs: InputsT) -> tuple[ObservedT | None, ownership.Marker | None]:
        raise NotImplementedError

    def plan(self, observed: ObservedT | None, inputs: InputsT) -> list[StepT]:
        raise NotImplementedError

    def apply(self, t: Transport, inputs: InputsT, steps: list[StepT], observed: ObservedT | None) -> Any:
        """Run the steps. May return what they did besides the thing itself (e.g. the chain certificates an import
        added): :meth:`converge_steps` hands it back, and to :meth:`undo` when the host did not converge."""
        raise NotImplementedError

    def undo(self, t: Transport, inputs: InputsT, applied: Any) -> None:
        """Take back what :meth:`apply` did when the host, read again, still differs or cannot be read (default:
        nothing)."""

    def did_not_converge(self, inputs: InputsT, observed: ObservedT | None, left: list[StepT]) -> HostDidNotConverge:
        raise NotImplementedError

    def converge(self, t: Transport, inputs: InputsT) -> ObservedT:
        """Read, run the missing steps, read again and insist the host now matches."""
        return self.converge_steps(t, inputs).observed

    def converge_steps(self, t: Transport, inputs: InputsT) -> Converged[ObservedT, StepT]:
        """:meth:`converge`, also saying which steps ran and what :meth:`apply` returned."""
        observed, _ = self.read_host(t, inputs)
        steps = self.plan(observed, inputs)
        applied = None
        if steps:
            applied = self.apply(t, inputs, steps, observed)
            try:
                observed, _ = self.read_host(t, inputs)
                left = self.plan(observed, inputs)
                if left or observed is None:
                    raise self.did_not_converge(inputs, observed, left)
            except ConnectorError:
                self.undo(t, inputs, applied)
                raise
        assert observed is not None, "plan() found nothing to do on a host where nothing was observed"
        return Converged(observed, steps, applied)

    # -- ownership ---------------------------------------------------------------------------------------------
    def marker_path(self, inputs: InputsT) -> str:
        raise NotImplementedError

    def thing(self, inputs: InputsT) -> str:
        raise NotImplementedError

    def differences(self, observed: ObservedT, inputs: InputsT) -> list[ownership.Difference]:
        """How a thing found on the host differs from the desired one, field by field (for adoption)."""
        raise NotImplementedError

    def is_the_thing(self, observed: ObservedT, inputs: InputsT) -> bool:
        """Whether what the read observed is the thing this resource claims (default: whatever was observed). A
        resource whose read also sees the state it starts from (the Tenant API before its update) says no there."""
        return True

    def prior_values(self, observed: ObservedT) -> dict[str, Any]:
        """What an adopted thing held: destroy puts it back."""
        return {}

    def claim(self, t: Transport, inputs: InputsT) -> dict[str, Any]:
        """create's ownership step, before any change: adopt what matches, refuse what differs or what another
        stack owns (:func:`ownership.claim`), and write the marker; the ownership outputs. {} when ownership is not
        tracked (no owner)."""
        if inputs.owner is None:
            return {}
        conn = inputs.connection
        observed, marker = self.read_host(t, inputs)
        found = observed if observed is not None and self.is_the_thing(observed, inputs) else None
        mark = ownership.claim(
            host=conn.fqdn, thing=self.thing(inputs), owner=inputs.owner, adopt=inputs.adopt, marker=marker,
            exists=found is not None, differences=self.differences(found, inputs) if found is not None else [],
            prior=self.prior_values(found) if found is not None else {}, resource=self.ownership_resource)
        ownership.write(t, conn, ownership.STEP_MARK, self.marker_path(inputs), mark)  # a rerun knows it is ours
        return ownership.outputs(mark)

    def keep_ownership(self, t: Transport, inputs: InputsT, olds: Mapping[str, Any]) -> dict[str, Any]:
        """update's ownership step: refuse to change what another stack now owns, write the marker again if it
        went missing; the ownership outputs."""
        if inputs.owner is None:
            return {}
        conn = inputs.connection
        _, marker = self.read_host(t, inputs)
        ownership.may_change(host=conn.fqdn, thing=self.thing(inputs), owner=inputs.owner, adopt=inputs.adopt,
                             marker=marker, previous=olds.get("owner"))
        mark = ownership.from_state({**olds, "owner": inputs.owner}, self.ownership_resource, self.thing(inputs))
        if mark is not None and marker != mark:
            ownership.write(t, conn, ownership.STEP_MARK, self.marker_path(inputs), mark)
        return ownership.outputs(mark)
