"""labops.fleet's pure parts: engine events reduced to what an operator reads, and which resources an
unreachable host takes out of an up."""

from __future__ import annotations

import pytest
from pulumi.automation import EngineEvent

from labops.fleet import _changes_text, blocking_failures, excluded_by_hosts, preflight_failures, unreachable_hosts
from labops.stacks import Collector, Resource

pytestmark = pytest.mark.unit

STACK = "urn:pulumi:lab::wapconnector::pulumi:pulumi:Stack::wapconnector-lab"
DYNAMIC = "urn:pulumi:lab::wapconnector::x$pulumi-python:dynamic/wapconnector"
PEP = ("urn:pulumi:lab::wapconnector::wapconnector:lab:Lab$pulumi-python:dynamic/wapconnector:AzurePackConnector"
       "::lab-multi-cloud")
SITE = f"{DYNAMIC}:ConnectorSite::lab-AzurePack_2-wapcomputer2-connector-site"
BUNDLE = f"{DYNAMIC}:ConnectorBundle::lab-AzurePack_2-wapcomputer2-bundle"
CHECK = f"{DYNAMIC}:EndpointCheck::lab-AzurePack_2-wapcomputer2-endpoint-check"


def pre(op: str, urn: str, diffs: list[str] | None = None) -> EngineEvent:
    return EngineEvent.from_json({"resourcePreEvent": {"metadata": {
        "op": op, "urn": urn, "type": urn.split("::")[-2].split("$")[-1], "provider": "", "diffs": diffs}}})


def diag(message: str, urn: str | None = None, severity: str = "error") -> EngineEvent:
    return EngineEvent.from_json({"diagnosticEvent": {"message": message, "color": "never", "severity": severity,
                                                      **({"urn": urn} if urn else {})}})


def test_the_collector_keeps_ops_first_error_lines_and_the_programs_messages_whole() -> None:
    seen = Collector()
    table = "Preflight: 1 check failed\nHOST  CHECK  RESULT\nwapcomputer2  reach  FAIL  start WinRM"
    for event in (
        pre("refresh", PEP), pre("same", STACK), pre("update", PEP, ["multi_cloud_enabled"]),
        pre("create-replacement", SITE), pre("delete-replaced", SITE), pre("same", BUNDLE),
        diag("wapcomputer2.contoso.com, step 'read': cannot reach the host\n  at more detail", BUNDLE),
        diag("a second error on the same resource", BUNDLE),
        diag(table, STACK, "warning"),
        diag("update failed", STACK), diag("1 error", STACK),
        diag("just information", PEP, "info"),
        EngineEvent.from_json({"summaryEvent": {"maybeCorrupt": False, "durationSeconds": 3,
                                                "resourceChanges": {"update": 1, "same": 20}, "PolicyPacks": {}}}),
    ):
        seen(event)
    assert seen.ops == {PEP: "update", SITE: "replace", BUNDLE: "same"}
    assert seen.diffs == {PEP: ["multi_cloud_enabled"]}
    assert seen.failed == {BUNDLE: "wapcomputer2.contoso.com, step 'read': cannot reach the host"}
    assert seen.messages == [table]  # the engine's "update failed" / "1 error" add nothing
    assert seen.changes == {"update": 1, "same": 20}


def test_unreachable_hosts_and_what_they_take_out_of_an_up() -> None:
    resources = [
        Resource(PEP, "lab-multi-cloud", "t", None, (), "azs-ercs01.azurestack.local", True),
        Resource(BUNDLE, "b", "t", None, (), "wapcomputer2.contoso.com", True),
        Resource(SITE, "s", "t", None, (BUNDLE,), "wapcomputer2.contoso.com", True),
        Resource(CHECK, "c", "t", None, (SITE,), None, True),  # the operator's machine: the engine's dependents
    ]
    failed = {BUNDLE: "cannot reach", SITE: "cannot reach", "urn:gone": "?"}
    assert unreachable_hosts(failed, resources) == {"(no host)": 1, "wapcomputer2.contoso.com": 2}
    assert excluded_by_hosts(["wapcomputer2.contoso.com"], resources) == sorted([BUNDLE, SITE])


def test_changes_read_as_an_operator_says_them() -> None:
    assert _changes_text({"same": 20, "update": 2, "create": 0}) == "2 update, 20 unchanged"
    assert _changes_text({}) == "no changes"


DOCTOR = """preflight: 31 checks on 6 host(s), 3 failed (3 host(s)), 2.7 s; going on (preflight mode warn):
HOST            CHECK                       RESULT  -> WHAT TO DO
(this machine)  bundle                      PASS .labsim/bundle/WAPConnector: 385 KiB
AzS-WASP01      reaches wapcomputer2        FAIL ping wapcomputer2.contoso.com got no answer  -> open the network
wapcomputer1    SPF Update Rollup           SKIP SPF is not installed here; check UR9 or later by hand
wapcomputer1    URL Rewrite                 FAIL the IIS URL Rewrite module is not installed  -> install it
wapcomputer2    reachable                   FAIL no answer from 127.0.10.12:5986: connection refused  -> start it
wapcomputer2    TLS                         SKIP not checked: the host did not get that far"""


def test_preflight_failures_are_read_from_the_table_and_only_other_hosts_block() -> None:
    rows = preflight_failures(["something else", DOCTOR])
    assert [host for host, _ in rows] == ["AzS-WASP01", "wapcomputer1", "wapcomputer2"]
    skipped = ["wapcomputer2.contoso.com", "wapcomputer2"]
    blocking = blocking_failures(rows, skipped)
    assert len(blocking) == 1 and blocking[0].startswith("wapcomputer1    URL Rewrite")
    assert blocking_failures(rows, []) == [row for _, row in rows]
    # A name is matched whole: skipping wapcomputer2 does not excuse wapcomputer21.
    other = [("wapcomputer21", "wapcomputer21  reachable  FAIL no answer")]
    assert blocking_failures(other, skipped) == [other[0][1]]
