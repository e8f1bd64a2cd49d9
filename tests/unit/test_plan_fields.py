"""What a plan line names: the fields a provider's diff found changed, sent in the Diff response."""

import asyncio
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic import DiffResult
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2

from providers import base
from providers.base import FieldDiff

pytestmark = pytest.mark.unit


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


CONN = {"fqdn": "wapcomputer1.contoso.com", "port": 5986, "settings_key": "wapconnector:hosts.wapcomputer1"}


def _respond(result: DiffResult, old_inputs: dict[str, Any], news: dict[str, Any]) -> provider_pb2.DiffResponse:
    """The servicer's Diff response as the SDK builds it, through the project's stand-in for its proto module."""
    request = provider_pb2.DiffRequest(id="x", urn="urn", olds=_struct({}), news=_struct(news),
                                       old_inputs=_struct(old_inputs))
    base._diff_call.call = (request, result)
    proto = base._ProtoNamingFields(provider_pb2)
    return proto.DiffResponse(changes=proto.DiffResponse.DIFF_SOME, replaces=list(result.replaces or []))


def test_drift_is_named_and_compared_with_the_refreshed_output() -> None:
    response = _respond(FieldDiff(["sites"]), {"connection": CONN}, {"connection": CONN})
    assert list(response.diffs) == ["sites"] and response.hasDetailedDiff
    assert response.detailedDiff["sites"] == provider_pb2.PropertyDiff(kind=provider_pb2.PropertyDiff.UPDATE,
                                                                        inputDiff=False)
    assert "connection" not in response.detailedDiff


def test_a_changed_setting_is_compared_with_the_old_input_and_a_replace_says_so() -> None:
    new = {**CONN, "port": 5987, "settings_key": "wapconnector:hosts.other"}
    response = _respond(FieldDiff(["connection", "destination"], ["destination"]),
                        {"connection": CONN, "destination": "C:\\a"}, {"connection": new, "destination": "C:\\b"})
    assert list(response.diffs) == ["connection", "destination"]
    assert response.detailedDiff["connection"].inputDiff is True
    assert response.detailedDiff["destination"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE


def test_only_the_settings_key_differing_is_no_input_change() -> None:
    moved = {**CONN, "settings_key": "wapconnector:hosts.renamed"}
    response = _respond(FieldDiff(["connection"]), {"connection": CONN}, {"connection": moved})
    assert response.detailedDiff["connection"].inputDiff is False


def test_no_change_adds_nothing_and_the_constants_still_read() -> None:
    response = _respond(FieldDiff([]), {}, {})
    assert list(response.diffs) == [] and not response.hasDetailedDiff
    assert base._ProtoNamingFields(provider_pb2).DiffResponse.DIFF_NONE == provider_pb2.DiffResponse.DIFF_NONE


def test_field_diff_lists_each_field_once() -> None:
    diff = FieldDiff(["sites", "owner", "sites"], ["sites", "sites"])
    assert diff.changed == ["sites", "owner"] and diff.replaces == ["sites"] and diff.changes is True
    assert FieldDiff([]).changes is False
