"""What every dynamic provider of the project shares: pydantic-backed ``check`` and field-by-field ``diff``.

Dynamic providers are pickled into the state (by reference, since they live in this importable package), so
nothing here keeps clients, config or secrets on provider objects.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, Resource, ResourceProvider
from pulumi.output import Unknown
from pydantic import BaseModel, ValidationError

from providers import progress
from providers.errors import ConnectorError, settings_keys

# During preview the engine passes values it does not know yet as this placeholder (pulumi.runtime.rpc.UNKNOWN);
# the dynamic provider server deserializes it (keep_unknowns=True in Check and Diff) into a
# pulumi.output.Unknown instance, which is what check/diff actually receive.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PROVIDER_KEY = "__provider"

#: Every dynamic resource's type before each had its own: state written then still names it.
LEGACY_TYPE = "pulumi-python:dynamic:Resource"
#: The module of our types: ``pulumi-python:dynamic/wapconnector:<name>``.
TYPE_MODULE = "wapconnector"


class LabResource(Resource):
    """A dynamic resource with its own type name, ``pulumi-python:dynamic/wapconnector:<name>``, so that plans,
    ``stack export`` and graphs say ConnectorSite rather than ``dynamic:Resource``. ``name`` is given explicitly
    (``class ConnectorSite(LabResource, name="ConnectorSite")``): renaming a class must not change a type.

    Every instance carries an alias to :data:`LEGACY_TYPE`, so a stack written before the types existed adopts
    its resources under the new type (no replace, no delete; tests/e2e/test_type_names.py)."""

    def __init_subclass__(cls, name: str = "", module: str = TYPE_MODULE, **kwargs: Any) -> None:
        if not name:
            raise TypeError(f"{cls.__name__}: give the resource's type name: class {cls.__name__}(LabResource, "
                            f"name=...)")
        super().__init_subclass__(module=module, name=name, **kwargs)

    def __init__(self, provider: ResourceProvider, name: str, props: Any,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        legacy = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=LEGACY_TYPE)])
        super().__init__(provider, name, props, pulumi.ResourceOptions.merge(opts, legacy))


def is_unknown(value: Any) -> bool:
    """True if the value, or anything inside it, is not known yet (preview of a dependent resource)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def _at(value: Any, loc: Iterable[Any]) -> Any:
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _property_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_failures(model: type[BaseModel], news: Mapping[str, Any]) -> list[CheckFailure]:
    """Validate ``news`` (minus the provider pickle) with ``model``: one CheckFailure per problem.

    Problems whose value is still unknown (a preview before a dependency exists) are not reported: they are
    checked again when the value is known."""
    props = {k: v for k, v in news.items() if k != PROVIDER_KEY}
    try:
        model.model_validate(props)
    except ValidationError as exc:
        failures = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if any(is_unknown(_at(props, loc[:i])) for i in range(1, len(loc) + 1)):
                continue
            if err["type"] in ("value_error", "assertion_error") and not loc:
                # Model-level rules name the property in their message: "prop: reason".
                prop, _, reason = str(err["msg"]).removeprefix("Value error, ").partition(": ")
                failures.append(CheckFailure(prop, reason or prop))
                continue
            if is_unknown(props):  # a model rule that needs values we do not have yet
                continue
            failures.append(CheckFailure(_property_path(loc) or "(resource)",
                                         str(err["msg"]).removeprefix("Value error, ")))
        return failures
    return []


def check_with(model: type[BaseModel], olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckResult:
    return CheckResult(dict(news), validation_failures(model, news))


class FieldDiff(DiffResult):
    """A diff that knows which properties differ (``changed``): the plan names them, ``[diff: ~sites]``, instead
    of whatever input keys happen to differ between the old and the new inputs (the engine's guess when a
    provider names none, which showed ``~connection`` for a drifted site whose connection had not changed)."""

    def __init__(self, changed: Iterable[str], replaces: Iterable[str] = (),
                 delete_before_replace: bool = False) -> None:
        self.changed = list(dict.fromkeys(changed))
        super().__init__(changes=bool(self.changed), replaces=list(dict.fromkeys(replaces)),
                         delete_before_replace=delete_before_replace)


def diff_fields(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    *,
    fields: Iterable[str],
    replace_on: Iterable[str] = (),
    equal: Mapping[str, Any] | None = None,
) -> FieldDiff:
    """Compare the observed/previous value in ``olds`` with the desired value in ``news`` for each declared
    field (never whole dicts: ``olds`` also holds outputs and the provider). An unknown desired value counts as
    a change. ``equal`` may give a per-field comparison function for values that are equal in meaning."""
    replace_on = set(replace_on)
    equal = equal or {}
    changed = []
    for name in fields:
        new = news.get(name)
        old = olds.get(name)
        same = equal[name](old, new) if name in equal and not is_unknown(new) else old == new
        if is_unknown(new) or not same:
            changed.append(name)
    return FieldDiff(changed, [f for f in changed if f in replace_on])


# -- the provider base ----------------------------------------------------------------------------------------

#: Inputs that may hold a secret (a password, a key, a PFX), by name. The engine prints a check failure on a
#: property as "property P value V has a problem", V formatted from the program's input with %v, which prints a
#: secret in plain text (pkg/resource/deploy/step_generator.go, issueCheckFailures). Failures on these are reported
#: on the resource instead, the field named in the reason.
SECRET_INPUT = re.compile(r"connection|credential|password|private_key|pfx", re.IGNORECASE)
_SERVICER_FILE = os.path.join("pulumi", "dynamic", "__main__.py")
_FIELD = re.compile(r"^[A-Za-z_][\w.\[\]]*$")


def safe_failures(failures: Iterable[CheckFailure]) -> list[CheckFailure]:
    """Check failures that name no secret-bearing property: ``connection`` + "operation_timeout: ..." becomes
    a resource-level failure "connection.operation_timeout: ..."."""
    out = []
    for f in failures:
        top = re.split(r"[.\[]", f.property or "", maxsplit=1)[0]
        if not top or not SECRET_INPUT.search(top):
            out.append(f)
            continue
        field, sep, rest = f.reason.partition(": ")
        reason = f"{f.property}.{field}: {rest}" if sep and _FIELD.match(field) else f"{f.property}: {f.reason}"
        out.append(CheckFailure("", reason))
    return out


def _servicer_call() -> tuple[Any, Any]:
    """(request, context) of the gRPC call this thread serves in the dynamic provider process, read from the SDK
    servicer's frame: pulumi/dynamic/__main__.py's ``Create(self, request, context)`` (and Read, Update, ...)
    calls ``provider.create(props)`` without them. (None, None) anywhere else."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith(_SERVICER_FILE):
            return frame.f_locals.get("request"), frame.f_locals.get("context")
        frame = frame.f_back
    return None, None


SETTINGS_KEY = "settings_key"  # of a connection: where the operator wrote it (errors.setting); not a setting


def _settings_keys(args: Iterable[Any]) -> dict[str, str]:
    """{host fqdn: stack config key} of every connection in the props/olds/news a provider method got."""
    keys: dict[str, str] = {}
    for props in args:
        for value in props.values() if isinstance(props, Mapping) else ():
            if isinstance(value, Mapping) and isinstance(value.get("fqdn"), str) and \
                    isinstance(value.get(SETTINGS_KEY), str):
                keys[value["fqdn"].lower().rstrip(".")] = value[SETTINGS_KEY]
    return keys


def _without_settings_keys(props: Any) -> Any:
    """Props whose connections lack ``settings_key``: a diff must not see a change where only it differs."""
    if not isinstance(props, Mapping):
        return props
    return {k: ({f: x for f, x in v.items() if f != SETTINGS_KEY} if isinstance(v, Mapping) and SETTINGS_KEY in v
                else v) for k, v in props.items()}


def _served(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def served(self: Any, *args: Any, **kwargs: Any) -> Any:
        request, context = _servicer_call()
        urn = getattr(request, "urn", None) or None
        if name == "diff":
            args = tuple(_without_settings_keys(a) for a in args)
        # Not for read: reads are short, and a refresh prints status lines of rows it does not show.
        with progress.for_resource(urn if name in ("create", "update", "delete") else None), \
                settings_keys(_settings_keys(args)):
            try:
                result = method(self, *args, **kwargs)
            except ConnectorError as exc:
                # grpc answers an exception with "Exception calling application: <exc>" unless the call's details
                # were set (grpc/_server.py, _call_behavior/_abort): set them to the message alone. The status
                # code stays UNKNOWN, as without this.
                if context is not None and hasattr(context, "set_details"):
                    context.set_details(str(exc))
                raise
        if name == "diff" and request is not None:
            _diff_call.call = (request, result)  # its response names the fields (_DiffResponseNamingFields)
        if name == "check" and request is not None and isinstance(result, CheckResult):
            # Only where the engine will print them; direct callers (tests, tools) see the failures as built.
            result = CheckResult(result.inputs, safe_failures(result.failures))
        return result

    served.__lab_served__ = True  # type: ignore[attr-defined]
    return served


# -- the fields a plan names ------------------------------------------------------------------------------------
# The SDK's servicer answers Diff with changes/replaces only (pulumi/dynamic/__main__.py): no `diffs`, no
# `detailedDiff`. The engine then names, in a plan line, every input whose value differs between the old and new
# inputs, and nothing that drifted on the host. Its gRPC handlers are bound when the process starts, so the
# response is completed where it is built: the servicer's module gets a `proto` whose DiffResponse adds the
# provider's own FieldDiff.changed (`diffs`, and a `detailedDiff` entry per field, compared with the old input
# where the input changed, a new setting, and with the refreshed output otherwise, drift).
_diff_call = threading.local()


def name_changed_fields(response: Any, request: Any, result: Any) -> None:
    """Add ``result``'s changed fields (a :class:`FieldDiff`) to a DiffResponse for ``request``."""
    if not isinstance(result, FieldDiff) or not result.changed:
        return
    from pulumi.runtime import rpc
    from pulumi.runtime.proto import provider_pb2

    old_inputs = rpc.deserialize_properties(request.old_inputs, True) if request.HasField("old_inputs") else {}
    news = rpc.deserialize_properties(request.news, True)
    replaces = set(result.replaces or ())
    for key in result.changed:
        response.diffs.append(key)
        kind = provider_pb2.PropertyDiff.UPDATE_REPLACE if key in replaces else provider_pb2.PropertyDiff.UPDATE
        input_changed = key in old_inputs and _without_settings_keys(old_inputs).get(key) != \
            _without_settings_keys(news).get(key)
        response.detailedDiff[key].CopyFrom(provider_pb2.PropertyDiff(kind=kind, inputDiff=input_changed))
    response.hasDetailedDiff = True


class _DiffResponseNamingFields:
    """provider_pb2.DiffResponse as the servicer uses it (its constants, and a call that builds the response), with
    the fields of the diff this thread just computed added."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __call__(self, **fields: Any) -> Any:
        response = self._real(**fields)
        call = _diff_call.__dict__.pop("call", None)
        if call is not None:
            name_changed_fields(response, *call)
        return response


class _ProtoNamingFields:
    """The servicer module's ``proto`` (provider_pb2), but for DiffResponse."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.DiffResponse = _DiffResponseNamingFields(real.DiffResponse)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _in_provider_process() -> None:
    main = sys.modules.get("__main__")
    if progress.engine_address() is None or not hasattr(main, "DynamicResourceProviderServicer"):
        return
    proto = getattr(main, "proto", None)
    if proto is not None and not isinstance(proto, _ProtoNamingFields):
        main.proto = _ProtoNamingFields(proto)  # type: ignore[union-attr]


class LabProvider(ResourceProvider):
    """Base of every provider of the project. For each of check/diff/create/read/update/delete a subclass defines:

    * check failures sent to the engine never name a property that may hold a secret (:func:`safe_failures`),
      whatever program passed the inputs and whether it marked them secret or not;
    * a :class:`ConnectorError` reaches the CLI as its own message, without grpc's "Exception calling
      application: " prefix (other exceptions, bugs, keep it), naming the stack config keys of the hosts'
      settings (``settings_key`` of each connection; ignored by every diff);
    * progress of the resource's steps goes to the engine, live (:mod:`providers.progress`).

    Nothing is kept on the instance: providers are pickled into the state (by reference to their class)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("check", "diff", "create", "read", "update", "delete"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__lab_served__", False):
                setattr(cls, name, _served(name, method))


_in_provider_process()
