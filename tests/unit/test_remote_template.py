"""The one shape every resource on a host follows (providers/remote.py): what counts as another host, how inputs
and settings are checked without echoing a value, how the password travels, and the converge loop's contract
(read, plan, apply, read again, and say so when the host still differs). A tiny resource on an in-memory host
states the loop; no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import pulumi
import pytest
from pydantic import TypeAdapter, ValidationError

from providers import ownership as O
from providers import remote
from providers.base import PROVIDER_KEY, UNKNOWN
from providers.errors import ConfigurationError, HostDidNotConverge, RemoteCommandFailed
from providers.ownership import Marker
from providers.transport import FakeTransport, HostConnection, Transport
from tests.outs import outs_of

pytestmark = pytest.mark.unit

ME = "wap-connector/lab-a"
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm", "username": "CONTOSO\\u",
        "password": "Not-Real-Pw-1"}


# -- what is another host ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("new, changed, replaced", [
    ({**CONN}, [], []),
    ({**CONN, "fqdn": "WAPCOMPUTER1.contoso.com."}, ["connection"], []),  # the same host, spelled otherwise
    ({**CONN, "address": "127.0.10.12"}, ["connection"], []),
    ({**CONN, "operation_timeout": 40, "read_timeout": 60}, ["connection"], []),
    ({**CONN, "password": "Another-Pw-2"}, ["connection"], []),
    ({**CONN, "fqdn": "wapcomputer2.contoso.com"}, ["connection"], ["connection"]),
    (UNKNOWN, ["connection"], []),
])
def test_only_another_host_replaces(new: dict[str, Any] | str, changed: list[str], replaced: list[str]) -> None:
    assert remote.connection_diff({"connection": CONN}, {"connection": new}) == (changed, replaced)


def test_another_key_is_diffed_the_same_way() -> None:
    olds, news = {"share": CONN}, {"share": {**CONN, "fqdn": "other.contoso.com"}}
    assert remote.connection_diff(olds, news, "share") == (["share"], ["share"])


@pytest.mark.parametrize("props, host", [
    ({"connection": {"fqdn": "WAP1.Contoso.COM."}}, "wap1.contoso.com"),
    ({"connection": {"fqdn": 5}}, None), ({"connection": "wap1"}, None), ({}, None)])
def test_host_identity_is_the_fqdn_in_lower_case(props: dict[str, Any], host: str | None) -> None:
    assert remote.host_identity(props) == host


# -- inputs ------------------------------------------------------------------------------------------------------
class ThingInputs(remote.RemoteInputs):
    size: int
    name: str = "thing"


def test_inputs_are_parsed_ignoring_the_provider_key_and_unknown_keys() -> None:
    inputs = ThingInputs.parse({"connection": CONN, "size": 3, PROVIDER_KEY: "pickled", "extra": 1, "owner": ME})
    assert (inputs.size, inputs.owner, inputs.adopt, inputs.connection.fqdn) == (3, ME, False,
                                                                               "wapcomputer1.contoso.com")


def test_bad_inputs_name_the_resource_and_each_property_never_a_value() -> None:
    with pytest.raises(ConfigurationError) as err:
        ThingInputs.parse({"connection": {**CONN, "port": 0}, "size": "Not-Real-Pw-1", "owner": "no-slash"})
    text = str(err.value)
    assert text.startswith("invalid Thing inputs:\n")
    assert "Not-Real-Pw-1" not in text
    props = sorted(p.split(":")[0] for p in err.value.problems)
    assert props == ["connection.port", "owner", "size"], err.value.problems
    assert "owner: 'no-slash' is not project/stack" in text  # the validator's words, without pydantic's prefix


def test_check_reports_connection_problems_by_field_and_then_the_rest() -> None:
    result = remote.check_remote(ThingInputs, {"connection": {**CONN, "port": 0, "fqdn": "bad fqdn"}, "size": "x"})
    failures = [(f.property, f.reason) for f in result.failures]
    assert [p for p, _ in failures].count("connection") == 2 and ("size" in [p for p, _ in failures])
    assert not any("Not-Real-Pw-1" in r for _, r in failures)
    assert result.inputs["size"] == "x"  # check hands the inputs back as given


def test_check_asks_for_a_missing_connection_and_waits_for_an_unknown_one() -> None:
    missing = remote.check_remote(ThingInputs, {"size": 1})
    assert [(f.property, f.reason) for f in missing.failures] == [
        ("connection", "missing; give the host's connection settings")]
    assert remote.check_remote(ThingInputs, {"connection": {**CONN, "address": UNKNOWN}, "size": 1}).failures == []
    share = remote.check_remote(ThingInputs, {"connection": CONN, "size": 1}, connection_keys=("connection", "share"))
    assert [f.property for f in share.failures] == ["share"]


def test_only_the_password_of_the_settings_becomes_a_secret() -> None:
    out = remote.password_secret(CONN)
    assert isinstance(out["password"], pulumi.Output) and out["address"] == CONN["address"]
    assert remote.password_secret({"fqdn": "h"}) == {"fqdn": "h"}
    assert remote.password_secret({"fqdn": "h", "password": None}) == {"fqdn": "h", "password": None}
    assert isinstance(remote.password_secret("an output"), pulumi.Output)


def test_a_required_text_refuses_blanks_with_its_reason_and_keeps_text_as_given() -> None:
    text = TypeAdapter(Annotated[str, remote.text_required("must name the cloud")])
    assert text.validate_python(" AzurePack 1 ") == " AzurePack 1 "
    for blank in ("", "   ", "\t\n"):
        with pytest.raises(ValidationError, match="must name the cloud"):
            text.validate_python(blank)


def test_the_connection_output_is_always_secret() -> None:
    assert remote.secret_outputs("pfx").additional_secret_outputs == ["connection", "pfx"]
    assert remote.inputs_only({"a": 1, PROVIDER_KEY: "x"}) == {"a": 1}
    assert remote.connection_of({"connection": CONN}) == HostConnection(**CONN)


# -- the converge loop -------------------------------------------------------------------------------------------
@dataclass
class Box:
    """What a tiny resource's host holds: ``value``, and whether a write sticks."""

    value: int | None = None
    sticky: bool = True
    marker: Marker | None = None
    writes: list[Any] = field(default_factory=list)
    undone: list[Any] = field(default_factory=list)
    reads: int = 0
    removed: list[Any] = field(default_factory=list)
    left: list[Any] = field(default_factory=list)


class BoxProvider(remote.HostResourceProvider[ThingInputs, int, str]):
    inputs_model = ThingInputs
    ownership_resource = "Box"

    def __init__(self, box: Box) -> None:
        super().__init__(FakeTransport({}))
        self.box = box

    def identity(self, inputs: ThingInputs) -> remote.Identity:
        return remote.Identity(inputs.connection.fqdn, O.marker_path("Box", inputs.name), f"the box {inputs.name}")

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> remote.Identity:
        return remote.Identity(remote.connection_of(props).fqdn, O.marker_path("Box", props["name"]),
                               f"the box {props['name']}")

    def read_host(self, t: Transport, inputs: ThingInputs) -> tuple[int | None, Marker | None]:
        self.box.reads += 1
        return self.box.value, self.box.marker

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[int | None, Marker | None]:
        self.box.reads += 1
        return self.box.value, self.box.marker

    def desired_values(self, inputs: ThingInputs) -> Mapping[str, Any]:
        return {"size": inputs.size}

    def observed_values(self, observed: int | None, inputs: ThingInputs) -> Mapping[str, Any]:
        return {"size": observed}

    def compare(self, desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[O.Difference]:
        return [O.Difference("size", observed.get("size"), desired.get("size"))] \
            if observed.get("size") != desired.get("size") else []

    def steps(self, differences: list[O.Difference], inputs: ThingInputs, observed: int | None) -> list[str]:
        return ["set"] if differences else []

    def apply(self, t: Transport, inputs: ThingInputs, steps: list[str], observed: int | None) -> str:
        self.box.writes.append(inputs.size)
        if self.box.sticky:
            self.box.value = inputs.size
        return f"applied {inputs.size}"

    def undo(self, t: Transport, inputs: ThingInputs, applied: Any) -> None:
        self.box.undone.append(applied)

    def did_not_converge(self, inputs: ThingInputs, observed: int | None, left: list[str]) -> HostDidNotConverge:
        return HostDidNotConverge("h", "set", f"still {observed}", hint="look")

    def prior_values(self, observed: int, inputs: ThingInputs) -> dict[str, Any]:
        return {"size": observed}

    def outputs(self, props: Mapping[str, Any], inputs: ThingInputs, done: remote.Converged[int, str],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"size": done.observed}

    def resource_id(self, inputs: ThingInputs, outputs: Mapping[str, Any]) -> str:
        return f"box:{inputs.name}"

    def read_outputs(self, props: Mapping[str, Any], observed: int | None) -> dict[str, Any]:
        return {"size": observed}

    def remove(self, t: Transport, props: Mapping[str, Any], found: int | None) -> None:
        self.box.removed.append(props["name"])
        self.box.value = None

    def leave(self, t: Transport, props: Mapping[str, Any], found: int | None) -> None:
        self.box.left.append(props.get("prior"))


def box_inputs(**kw: Any) -> ThingInputs:
    return ThingInputs.parse({"connection": CONN, "size": 3, **kw})


def test_a_host_that_matches_gets_no_step() -> None:
    box = Box(value=3)
    done = BoxProvider(box).converge_steps(FakeTransport({}), box_inputs())
    assert (done.observed, done.steps, done.applied, box.writes, box.reads) == (3, [], None, [], 1)


def test_the_steps_run_then_the_host_is_read_again() -> None:
    box = Box(value=1)
    done = BoxProvider(box).converge_steps(FakeTransport({}), box_inputs())
    assert (done.observed, done.steps, done.applied, box.writes, box.reads) == (3, ["set"], "applied 3", [3], 2)
    assert box.undone == []


def test_a_host_that_still_differs_is_an_error_after_undo() -> None:
    box = Box(value=1, sticky=False)
    with pytest.raises(HostDidNotConverge, match="still 1"):
        BoxProvider(box).converge(FakeTransport({}), box_inputs())
    assert box.undone == ["applied 3"]


def test_a_thing_gone_after_the_steps_is_an_error_after_undo(monkeypatch: pytest.MonkeyPatch) -> None:
    box = Box(value=None, sticky=False)
    provider = BoxProvider(box)
    monkeypatch.setattr(provider, "plan", lambda observed, inputs: ["set"] if observed is None else [])
    with pytest.raises(HostDidNotConverge, match="still None"):
        provider.converge(FakeTransport({}), box_inputs())
    assert box.undone == ["applied 3"]


def test_a_read_that_fails_after_the_steps_is_raised_after_undo(monkeypatch: pytest.MonkeyPatch) -> None:
    box = Box(value=1)
    provider = BoxProvider(box)
    reads = iter([(1, None)])

    def read_host(t: Transport, inputs: ThingInputs) -> tuple[int | None, Marker | None]:
        try:
            return next(reads)
        except StopIteration:
            raise RemoteCommandFailed("h", "read", command="Get-Box", message="gone") from None

    monkeypatch.setattr(provider, "read_host", read_host)
    with pytest.raises(RemoteCommandFailed, match="gone"):
        provider.converge(FakeTransport({}), box_inputs())
    assert box.undone == ["applied 3"]


class WitnessedBox(BoxProvider):
    """A BoxProvider that notes each hook it is handed: (hook, the transport, the state or old inputs)."""

    def __init__(self, box: Box) -> None:
        super().__init__(box)
        self.handed: list[tuple[str, Any, Any]] = []

    def parse_inputs(self, t: Transport, props: Mapping[str, Any], olds: Mapping[str, Any] | None) -> ThingInputs:
        self.handed.append(("parse_inputs", t, olds))
        return super().parse_inputs(t, props, olds)

    def read_host(self, t: Transport, inputs: ThingInputs) -> tuple[int | None, Marker | None]:
        self.handed.append(("read_host", t, None))
        return super().read_host(t, inputs)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[int | None, Marker | None]:
        self.handed.append(("read_state", t, props))
        return super().read_state(t, props)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> remote.Identity:
        self.handed.append(("stored_identity", t, props))
        return super().stored_identity(t, props)

    def after_update(self, t: Transport, inputs: ThingInputs, olds: Mapping[str, Any]) -> None:
        self.handed.append(("after_update", t, olds))

    def outputs(self, props: Mapping[str, Any], inputs: ThingInputs, done: remote.Converged[int, str],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        self.handed.append(("outputs", None, olds))
        return super().outputs(props, inputs, done, olds)

    def remove(self, t: Transport, props: Mapping[str, Any], found: int | None) -> None:
        self.handed.append(("remove", t, found))
        super().remove(t, props, found)

    def leave(self, t: Transport, props: Mapping[str, Any], found: int | None) -> None:
        self.handed.append(("leave", t, found))
        super().leave(t, props, found)


def test_every_hook_is_handed_the_providers_transport_and_the_state_it_acts_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(O, "write", Written())
    unmarked: list[tuple[Transport, str]] = []
    monkeypatch.setattr(O, "remove", lambda t, conn, step, path: unmarked.append((t, path)))
    box = Box(value=None)
    p = WitnessedBox(box)
    t = p.transport
    created = outs_of(p.create(dict(box_inputs(owner=ME).model_dump(mode="json"))))
    news = {**created, "size": 4}
    del p.handed[:]
    p.update("box:thing", created, news)
    # read for ownership, read, apply, read again
    assert p.handed == [("parse_inputs", t, created), *[("read_host", t, None)] * 3,
                        ("after_update", t, created), ("outputs", None, created)]
    del p.handed[:]
    p.delete("box:thing", news)
    assert p.handed == [("read_state", t, news), ("stored_identity", t, news), ("remove", t, 4)]
    assert unmarked == [(t, O.marker_path("Box", "thing"))]
    # an adopted thing is left, handed what delete found
    adopted = WitnessedBox(Box(value=3))
    state = outs_of(adopted.create(dict(box_inputs(owner=ME).model_dump(mode="json"))))
    assert state["adopted"] is True
    del adopted.handed[:]
    adopted.delete("box:thing", state)
    assert adopted.handed == [("read_state", adopted.transport, state), ("stored_identity", adopted.transport, state),
                              ("leave", adopted.transport, 3)]
    del p.handed[:]
    given = FakeTransport({})
    p.converge(given, box_inputs(size=5))
    assert p.handed[0] == ("read_host", given, None)


# -- ownership in the template -----------------------------------------------------------------------------------
class Written(list):
    def __call__(self, t: Transport, conn: HostConnection, step: str, path: str, marker: Marker) -> None:
        self.append((step, path, marker))


def test_without_an_owner_nothing_about_ownership_is_read_or_written(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    box = Box(value=3)
    assert BoxProvider(box).claim(FakeTransport({}), box_inputs()) == {}
    assert BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(), {}) == {}
    assert written == [] and box.reads == 0


def test_claim_adopts_a_matching_thing_with_its_prior_values(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    outs = BoxProvider(Box(value=3)).claim(FakeTransport({}), box_inputs(owner=ME))
    assert outs == {"observed_owner": ME, "adopted": True, "prior": {"size": 3}}
    assert written == [(O.STEP_MARK, O.marker_path("Box", "thing"),
                        Marker(ME, adopted=True, prior={"size": 3}, resource="Box", thing="the box thing"))]


def test_claim_of_nothing_there_owns_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(O, "write", Written())
    outs = BoxProvider(Box(value=None)).claim(FakeTransport({}), box_inputs(owner=ME))
    assert outs == {"observed_owner": ME, "adopted": False, "prior": {}}


def test_keep_ownership_writes_the_marker_again_only_when_it_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    mine = Marker(ME, adopted=True, prior={"size": 1}, resource="Box", thing="the box thing")
    olds = {"owner": ME, **O.outputs(mine)}
    box = Box(value=3, marker=mine)
    assert BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(owner=ME), olds) == O.outputs(mine)
    assert written == []
    box.marker = None
    BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(owner=ME), olds)
    assert [m for _, _, m in written] == [mine]


def test_provider_owns_the_transport_it_was_given_else_one_over_the_process_sessions() -> None:
    import pickle

    from providers.transport import PsrpTransport, process_sessions

    given = FakeTransport({})
    assert remote.RemoteProvider(given).transport is given
    provider = remote.RemoteProvider()
    pickled = pickle.dumps(provider)
    made = provider.transport
    assert isinstance(made, PsrpTransport) and provider.transport is made  # made once, kept by the provider
    other = remote.RemoteProvider().transport
    assert isinstance(other, PsrpTransport) and isinstance(made, PsrpTransport)
    assert other is not made and other.cache is made.cache is process_sessions()  # one pool per host
    assert pickle.dumps(provider) == pickled  # the state never carries a transport


def test_update_refuses_what_another_stack_now_owns_naming_host_and_thing(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    theirs = Marker("wap-connector/lab-b", resource="Box", thing="the box thing")
    box = Box(value=3, marker=theirs)
    with pytest.raises(O.OwnershipConflict) as err:
        BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(owner=ME), {"owner": ME})
    assert (err.value.host, err.value.thing, err.value.owner) == ("wapcomputer1.contoso.com", "the box thing",
                                                                  "wap-connector/lab-b")
    assert written == []
    # Taken over on request: the marker then names this stack.
    BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(owner=ME, adopt=True), {"owner": ME})
    assert [(step, m.owner) for step, _, m in written] == [(O.STEP_MARK, ME)]


def test_a_renamed_stack_keeps_its_thing_and_the_marker_takes_the_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    old_name = "wap-connector/old-name"
    box = Box(value=3, marker=Marker(old_name, resource="Box", thing="the box thing"))
    outs = BoxProvider(box).keep_ownership(FakeTransport({}), box_inputs(owner=ME),
                                           {"owner": old_name, "adopted": False})
    assert outs["observed_owner"] == ME and [m.owner for _, _, m in written] == [ME]


def test_claim_leaves_alone_what_is_not_the_thing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that also sees the state the resource starts from (not the thing yet) creates, never adopts."""
    monkeypatch.setattr(O, "write", Written())

    class Picky(BoxProvider):
        def is_the_thing(self, observed: int, inputs: ThingInputs) -> bool:
            return inputs.name == "thing"

    outs = Picky(Box(value=3)).claim(FakeTransport({}), box_inputs(owner=ME, name="other"))
    assert outs == {"observed_owner": ME, "adopted": False, "prior": {}}


def test_a_problem_with_the_inputs_as_a_whole_is_named_inputs() -> None:
    from pydantic import model_validator

    class Whole(remote.RemoteInputs):
        a: int = 0

        @model_validator(mode="after")
        def _whole(self) -> Whole:
            raise ValueError("a needs b")

    with pytest.raises(ConfigurationError) as err:
        Whole.parse({"connection": CONN})
    assert err.value.problems == ["inputs: a needs b"]


def test_each_connection_key_is_checked_even_after_one_still_unknown() -> None:
    result = remote.check_remote(ThingInputs, {"connection": UNKNOWN, "share": {**CONN, "port": 0}, "size": 1},
                                 connection_keys=("connection", "share"))
    assert [f.property for f in result.failures] == ["share"]
    result = remote.check_remote(ThingInputs, {"share": {**CONN, "port": 0}, "size": 1},
                                 connection_keys=("connection", "share"))
    assert [f.property for f in result.failures] == ["connection", "share"]


def test_another_keys_host_is_its_own() -> None:
    olds = {"connection": CONN, "share": CONN}
    news = {"connection": {**CONN, "fqdn": "elsewhere.contoso.com"}, "share": CONN}
    assert remote.connection_diff(olds, news, "share") == ([], [])


# -- the lifecycle the template owns -------------------------------------------------------------------------------
class Removed(list):
    def __call__(self, t: Transport, conn: HostConnection, step: str, path: str) -> None:
        self.append((step, path))


def box_props(**kw: Any) -> dict[str, Any]:
    return {"connection": CONN, "size": 3, "name": "thing", **kw}


def test_diff_names_what_compare_finds_settings_connection_and_owner() -> None:
    p = BoxProvider(Box())
    assert p.diff("id", {**box_props(), "size": 3, "observed_owner": ME}, box_props(owner=ME)).changed == []
    d = p.diff("id", {**box_props(), "size": 2}, box_props())
    assert (d.changed, d.replaces) == (["size"], [])
    d = p.diff("id", {**box_props(), "size": 3}, box_props(connection={**CONN, "fqdn": "other.contoso.com"}))
    assert (d.changed, d.replaces) == (["connection"], ["connection"])
    assert p.diff("id", {**box_props(), "size": 3}, box_props(owner=ME)).changed == ["owner"]  # marker not seen


def test_create_claims_converges_and_records_the_ownership_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Written()
    monkeypatch.setattr(O, "write", written)
    box = Box(value=None)
    created = BoxProvider(box).create(box_props(owner=ME))
    assert created.id == "box:thing" and box.value == 3
    outs = outs_of(created)
    assert outs["size"] == 3 and outs["adopted"] is False and outs["observed_owner"] == ME
    assert [m.owner for _, _, m in written] == [ME]


def test_read_of_a_thing_gone_empties_the_state_and_otherwise_reports_the_marker() -> None:
    box = Box(value=None)
    assert BoxProvider(box).read("box:thing", box_props()).id == ""
    box.value, box.marker = 5, Marker(ME, resource="Box", thing="the box thing")
    read = BoxProvider(box).read("box:thing", box_props())
    assert read.id == "box:thing" and outs_of(read)["size"] == 5 and outs_of(read)["observed_owner"] == ME


def test_delete_removes_what_the_stack_made_then_its_marker_last(monkeypatch: pytest.MonkeyPatch) -> None:
    removed = Removed()
    monkeypatch.setattr(O, "remove", removed)
    box = Box(value=3, marker=Marker(ME, resource="Box", thing="the box thing"))
    BoxProvider(box).delete("box:thing", box_props(owner=ME, adopted=False))
    assert box.removed == ["thing"] and box.value is None
    assert removed == [(O.STEP_UNMARK, O.marker_path("Box", "thing"))]


def test_delete_never_removes_what_another_stack_owns(monkeypatch: pytest.MonkeyPatch) -> None:
    removed = Removed()
    monkeypatch.setattr(O, "remove", removed)
    box = Box(value=3, marker=Marker("wap-connector/lab-b", resource="Box", thing="the box thing"))
    BoxProvider(box).delete("box:thing", box_props(owner=ME, adopted=False))
    assert box.removed == [] and box.value == 3 and removed == []


def test_delete_leaves_an_adopted_thing_and_removes_only_the_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    removed = Removed()
    monkeypatch.setattr(O, "remove", removed)
    box = Box(value=3, marker=Marker(ME, adopted=True, prior={"size": 1}, resource="Box", thing="the box thing"))
    BoxProvider(box).delete("box:thing", box_props(owner=ME, adopted=True, prior={"size": 1}))
    assert box.removed == [] and box.left == [{"size": 1}] and box.value == 3
    assert removed == [(O.STEP_UNMARK, O.marker_path("Box", "thing"))]


def test_delete_without_an_owner_reads_and_marks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    removed = Removed()
    monkeypatch.setattr(O, "remove", removed)
    box = Box(value=3)
    BoxProvider(box).delete("box:thing", box_props())
    assert box.removed == ["thing"] and box.reads == 0 and removed == []
