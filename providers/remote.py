"""Glue shared by every resource that lives on a Windows host.

Each remote resource module has three parts (docs/style.md; docs/adding-a-resource.md walks through one):
  * a *read*: one structured call, parsed by a pure function into a typed observed state, or None if absent;
  * a pure *compare*: desired vs observed -> the differences, and the steps that close them;
  * the hooks of :class:`HostResourceProvider` below, which owns the Pulumi lifecycle and ownership.

Connection settings travel as the ``connection`` input (a dict validated into HostConnection). Outputs keep
them so read/delete can reach the host later; ``connection`` is therefore always an additional secret output
(it holds the password). Nothing remote is kept on provider objects: they are pickled into the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ReadResult, UpdateResult
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator

from providers import certs, ownership
from providers.base import PROVIDER_KEY, FieldDiff, LabProvider, is_unknown, validation_failures
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge
from providers.transport import HostConnection, Transport, comparable_settings

#: A certificate thumbprint as an input gives it (any case, spaces, colons, an invisible mark copied from the MMC),
#: read the one way providers/certs reads thumbprints.
Thumbprint = Annotated[str, AfterValidator(certs.normalize_thumbprint)]


def text_required(why: str) -> AfterValidator:
    """A text input that must hold more than blanks; ``why`` is the refusal, after the input's name."""

    def required(v: str) -> str:
        if not v.strip():
            raise ValueError(why)
        return v

    return AfterValidator(required)


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
        return model.model_validate(inputs_only(props))
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


@dataclass(frozen=True)
class Identity:
    """A thing as ownership knows it: the host messages name, where its marker lives, and its words."""

    host: str
    marker_path: str
    thing: str


class HostResourceProvider(RemoteProvider, Generic[InputsT, ObservedT, StepT]):
    """The template every resource that lives on a Windows host follows. It owns check, diff, create, read, update
    and delete; a resource supplies its hooks:

    * :attr:`inputs_model` (and :meth:`parse_inputs` when create/update need more than the model);
    * its identity for ownership, :meth:`identity` (from the inputs) and :meth:`stored_identity` (from the state);
    * :meth:`read_host` (from the inputs) and :meth:`read_state` (from the state): one invocation each, parsed by
      pure functions into the typed observed state (None: the thing is not there), with the ownership marker;
    * ONE :meth:`compare`, desired vs observed -> the differences. diff names them (the state's last read against the
      program's inputs), the plan runs :meth:`steps` for them (the host now against the parsed inputs), and create's
      ownership step lists them when it refuses a thing that differs;
    * :meth:`apply` (the steps), :meth:`undo`, :meth:`did_not_converge`;
    * :meth:`outputs` and :meth:`read_outputs`; :meth:`remove` (delete's undo of the thing) and :meth:`leave` (what
      delete does to a thing that was adopted: it is never removed).

    Ownership (:mod:`providers.ownership`) is the template's: create claims before any change, update keeps the
    marker, delete never touches what another stack's marker claims and removes the marker last."""

    #: The resource's inputs (check validates them, create and update parse them).
    inputs_model: ClassVar[type[RemoteInputs]]
    #: The resource's name in ownership markers (the folder under C:\ProgramData\WapConnectorIac).
    ownership_resource: ClassVar[str] = ""
    #: Inputs the host does not show, compared old input against new (:meth:`changed_settings`).
    settings: ClassVar[tuple[str, ...]] = ()
    #: Fields whose change makes another thing: a replace.
    replace_on: ClassVar[tuple[str, ...]] = ()
    #: The marker is written even when ownership is not tracked (it then tells drift from gone).
    always_marked: ClassVar[bool] = False
    #: The inputs that hold connection settings.
    connection_keys: ClassVar[tuple[str, ...]] = ("connection",)
    #: Remove the old thing before making its replacement (only one may exist at a time).
    delete_before_replace: ClassVar[bool] = False

    # -- hooks -------------------------------------------------------------------------------------------------
    def checked(self, news: Mapping[str, Any], result: CheckResult) -> CheckResult:
        """check's rules besides the model's (``result``: the model's failures, the inputs as given)."""
        return result

    def parse_inputs(self, t: Transport, props: Mapping[str, Any], olds: Mapping[str, Any] | None) -> InputsT:
        """create's (``olds`` None) and update's inputs; a ConfigurationError before any host call when unusable."""
        inputs: InputsT = self.inputs_model.parse(props)  # type: ignore[assignment]
        return inputs

    def identity(self, inputs: InputsT) -> Identity:
        raise NotImplementedError

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        raise NotImplementedError

    def marker_connection(self, props: Mapping[str, Any]) -> HostConnection:
        """The host that keeps the marker of the thing the state describes (default: the resource's host)."""
        return connection_of(props)

    def read_host(self, t: Transport, inputs: InputsT) -> tuple[ObservedT | None, ownership.Marker | None]:
        raise NotImplementedError

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[ObservedT | None, ownership.Marker | None]:
        """read's (and by default delete's) read of the thing the state describes."""
        raise NotImplementedError

    def desired_values(self, inputs: InputsT) -> Mapping[str, Any]:
        """The parsed inputs in the shape :meth:`compare` takes as desired (that of :meth:`desired_in`)."""
        raise NotImplementedError

    def desired_in(self, news: Mapping[str, Any]) -> Mapping[str, Any]:
        """The program's inputs in the shape :meth:`compare` takes as desired (default: as they are)."""
        return news

    def observed_values(self, observed: ObservedT | None, inputs: InputsT) -> Mapping[str, Any]:
        """The observed state in the shape :meth:`compare` takes as observed (that of the outputs)."""
        raise NotImplementedError

    def compare(self, desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
        """How the host differs from the desired state, field by field, named as the outputs that show it. A desired
        value not known yet (a preview) differs."""
        raise NotImplementedError

    def steps(self, differences: list[ownership.Difference], inputs: InputsT,
              observed: ObservedT | None) -> list[StepT]:
        """The steps that close the differences, in order; [] when there are none."""
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

    def is_the_thing(self, observed: ObservedT, inputs: InputsT) -> bool:
        """Whether what the read observed is the thing this resource claims (default: whatever was observed). A
        resource whose read also sees the state it starts from (the Tenant API before its update) says no there."""
        return True

    def prior_values(self, observed: ObservedT, inputs: InputsT) -> dict[str, Any]:
        """What an adopted thing held: delete puts it back."""
        return {}

    def outputs(self, props: Mapping[str, Any], inputs: InputsT, done: Converged[ObservedT, StepT],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        """create's (``olds`` None) and update's outputs besides the inputs and the ownership outputs (default:
        read's, of the host as the converge left it)."""
        return self.read_outputs(props, done.observed)

    def resource_id(self, inputs: InputsT, outputs: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def is_gone(self, props: Mapping[str, Any], observed: ObservedT | None, marker: ownership.Marker | None) -> bool:
        """Whether read finds the thing the state describes gone (default: nothing observed)."""
        return observed is None

    def read_outputs(self, props: Mapping[str, Any], observed: ObservedT | None) -> dict[str, Any]:
        """read's outputs besides the state's and ``observed_owner``."""
        raise NotImplementedError

    def read_before_delete(self, t: Transport, props: Mapping[str, Any],
                           tracked: bool) -> tuple[ObservedT | None, ownership.Marker | None]:
        """What delete reads before it changes anything (default: the thing and its marker when ownership is
        tracked, nothing otherwise)."""
        return self.read_state(t, props) if tracked else (None, None)

    def remove(self, t: Transport, props: Mapping[str, Any], found: ObservedT | None) -> None:
        """delete's undo of the thing this stack made."""
        raise NotImplementedError

    def leave(self, t: Transport, props: Mapping[str, Any], found: ObservedT | None) -> None:
        """delete of an adopted thing: never removed; put back what the stack changed, or say it stays."""
        raise NotImplementedError

    # -- the plan: one comparison --------------------------------------------------------------------------------
    def differences(self, observed: ObservedT | None, inputs: InputsT) -> list[ownership.Difference]:
        return self.compare(self.desired_values(inputs), self.observed_values(observed, inputs))

    def plan(self, observed: ObservedT | None, inputs: InputsT) -> list[StepT]:
        return self.steps(self.differences(observed, inputs), inputs, observed)

    def changed_settings(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        """The :attr:`settings` whose new input differs from the old one (or is not known yet)."""
        return [name for name in self.settings if is_unknown(news.get(name)) or olds.get(name) != news.get(name)]

    # -- converge ------------------------------------------------------------------------------------------------
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

    def create_steps(self, t: Transport, inputs: InputsT, own: Mapping[str, Any]) -> Converged[ObservedT, StepT]:
        """create's converge (``own``: the ownership outputs of the claim)."""
        return self.converge_steps(t, inputs)

    def after_update(self, t: Transport, inputs: InputsT, olds: Mapping[str, Any]) -> None:
        """What update does once the host converged (default: nothing)."""

    # -- ownership -----------------------------------------------------------------------------------------------
    def claim(self, t: Transport, inputs: InputsT) -> dict[str, Any]:
        """create's ownership step, before any change: adopt what matches, refuse what differs or what another
        stack owns (:func:`ownership.claim`), and write the marker; the ownership outputs. {} when ownership is not
        tracked (no owner)."""
        if inputs.owner is None:
            return {}
        who = self.identity(inputs)
        observed, marker = self.read_host(t, inputs)
        found = observed if observed is not None and self.is_the_thing(observed, inputs) else None
        mark = ownership.claim(
            host=who.host, thing=who.thing, owner=inputs.owner, adopt=inputs.adopt, marker=marker,
            exists=found is not None, differences=self.differences(found, inputs) if found is not None else [],
            prior=self.prior_values(found, inputs) if found is not None else {}, resource=self.ownership_resource)
        self.write_marker(t, inputs, mark)  # before any change: a rerun knows it is ours
        return ownership.outputs(mark)

    def keep_ownership(self, t: Transport, inputs: InputsT, olds: Mapping[str, Any]) -> dict[str, Any]:
        """update's ownership step: refuse to change what another stack now owns, write the marker again if it
        went missing; the ownership outputs."""
        if inputs.owner is None:
            return {}
        who = self.identity(inputs)
        _, marker = self.read_host(t, inputs)
        ownership.may_change(host=who.host, thing=who.thing, owner=inputs.owner, adopt=inputs.adopt, marker=marker,
                             previous=olds.get("owner"))
        mark = ownership.from_state({**olds, "owner": inputs.owner}, self.ownership_resource, who.thing)
        if mark is not None and marker != mark:
            self.write_marker(t, inputs, mark)
        return ownership.outputs(mark)

    def write_marker(self, t: Transport, inputs: InputsT, mark: ownership.Marker) -> None:
        ownership.write(t, inputs.connection, ownership.STEP_MARK, self.identity(inputs).marker_path, mark)

    def unmark(self, t: Transport, props: Mapping[str, Any], who: Identity) -> None:
        ownership.remove(t, self.marker_connection(props), ownership.STEP_UNMARK, who.marker_path)

    # -- the Pulumi lifecycle ------------------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return self.checked(news, check_remote(self.inputs_model, news, connection_keys=self.connection_keys))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> FieldDiff:
        changed, replaces = connection_diff(olds, news)  # another host: another thing
        changed += [d.field for d in self.compare(self.desired_in(news), olds)]
        changed += self.changed_settings(olds, news)
        changed += ownership.owner_changed(olds, news)
        replaces += [f for f in changed if f in self.replace_on]
        return FieldDiff(changed, replaces, delete_before_replace=self.replace_deletes_first(olds, news, replaces))

    def replace_deletes_first(self, olds: Mapping[str, Any], news: Mapping[str, Any], replaces: list[str]) -> bool:
        return self.delete_before_replace

    def create(self, props: dict[str, Any]) -> CreateResult:
        t = self.transport
        inputs = self.parse_inputs(t, props, None)
        own = self.claim(t, inputs)
        done = self.create_steps(t, inputs, own)
        outs = {**inputs_only(props), **self.outputs(props, inputs, done, None), **own}
        return CreateResult(self.resource_id(inputs, outs), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        observed, marker = self.read_state(self.transport, props)
        if self.is_gone(props, observed, marker):
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, **self.read_outputs(props, observed),
                                         "observed_owner": marker.owner if marker else None})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # The plan compares what the host shows now with the new inputs: only what differs runs.
        t = self.transport
        inputs = self.parse_inputs(t, news, olds)
        own = self.keep_ownership(t, inputs, olds)
        done = self.converge_steps(t, inputs)
        self.after_update(t, inputs, olds)
        return UpdateResult({**inputs_only(news), **self.outputs(news, inputs, done, olds), **own})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        t = self.transport
        owner = props.get("owner")
        tracked = isinstance(owner, str)
        found, marker = self.read_before_delete(t, props, tracked)
        who = self.stored_identity(t, props) if tracked or self.always_marked else None
        if tracked and who is not None and not ownership.may_delete(host=who.host, thing=who.thing, owner=owner,
                                                                    marker=marker):
            return
        if props.get("adopted"):
            self.leave(t, props, found)
        else:
            self.remove(t, props, found)
        if who is not None:
            self.unmark(t, props, who)  # last: delete stays re-runnable
