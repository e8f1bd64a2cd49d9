"""Progress reporting (providers/progress.py) and check failures that never name a secret-bearing property."""

from __future__ import annotations

import pytest
from pulumi.dynamic import CheckFailure

from providers import progress
from providers.base import safe_failures

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_step_reports_start_verbose_ticks_and_a_long_duration() -> None:
    sent: list[tuple[str, str, bool]] = []
    clock = Clock()
    with progress.sink(lambda urn, msg, ephemeral: sent.append((urn, msg, ephemeral))), \
            progress.for_resource("urn:x"):
        step = progress.Step("wap1.contoso.com", "install", clock=clock)
        clock.now += 2
        step.tick()  # too soon: nothing
        step.verbose("Installing   the\nconnector")
        clock.now += progress.TICK
        step.tick()
        clock.now += progress.LONG
        step.done()
    assert sent == [
        ("urn:x", "wap1.contoso.com: install", True),
        ("urn:x", "wap1.contoso.com: Installing the connector", True),
        ("urn:x", f"wap1.contoso.com: install ({2 + progress.TICK:.0f} s)", True),
        ("urn:x", f"wap1.contoso.com: install took {2 + progress.TICK + progress.LONG:.0f} s", False),
        ("urn:x", "", True),  # the status line cleared when the operation ends
    ]


def test_nothing_is_reported_without_a_resource_or_outside_the_provider_process() -> None:
    sent: list[str] = []
    with progress.sink(lambda urn, msg, ephemeral: sent.append(msg)):
        step = progress.Step("h", "s")
        step.verbose("x")
        step.done()
    assert sent == [] and not step.enabled
    with progress.for_resource("urn:x"):  # no sink, and this is not the provider plugin: no engine address
        assert not progress.active()


def test_short_steps_leave_no_info_line_and_long_lines_are_cut() -> None:
    sent: list[tuple[str, bool]] = []
    clock = Clock()
    with progress.sink(lambda urn, msg, ephemeral: sent.append((msg, ephemeral))), progress.for_resource("u"):
        step = progress.Step("h", "s", clock=clock)
        step.verbose("y" * 1000)
        clock.now += progress.LONG - 1
        step.done()
    assert [e for _, e in sent] == [True, True, True]
    assert len(sent[1][0]) == progress.MAX_LINE


def test_a_failing_sink_never_fails_the_step() -> None:
    def broken(urn: str, message: str, *, ephemeral: bool) -> None:
        raise ConnectionError("engine gone")

    with progress.sink(broken), progress.for_resource("u"):
        progress.Step("h", "s").verbose("line")


@pytest.mark.parametrize("argv, expected", [
    (["/venv/lib/python3.11/site-packages/pulumi/dynamic/__main__.py", "127.0.0.1:40123"], "127.0.0.1:40123"),
    (["/venv/lib/python3.11/site-packages/pulumi/dynamic/__main__.py"], None),
    (["pytest", "127.0.0.1:40123"], None),
    (["/x/pulumi/dynamic/__main__.py", "--flag"], None),
])
def test_engine_address_only_in_the_provider_plugin(argv: list[str], expected: str | None) -> None:
    assert progress.engine_address(argv) == expected


@pytest.mark.parametrize("failure, expected", [
    (CheckFailure("connection", "operation_timeout: must be at least 1"),
     CheckFailure("", "connection.operation_timeout: must be at least 1")),
    (CheckFailure("connection", "missing; give the host's connection settings"),
     CheckFailure("", "connection: missing; give the host's connection settings")),
    (CheckFailure("share_connection", "the privileged endpoint cannot read files"),
     CheckFailure("", "share_connection: the privileged endpoint cannot read files")),
    (CheckFailure("sql_credential.password", "is empty"), CheckFailure("", "sql_credential.password: is empty")),
    (CheckFailure("pfx_password", "does not open the PFX"), CheckFailure("", "pfx_password: does not open the PFX")),
    (CheckFailure("ca_private_key_pem", "not the CA's key"), CheckFailure("", "ca_private_key_pem: not the CA's key")),
    # Properties that hold no secret keep their name: the engine prints their value, which helps.
    (CheckFailure("tenant_portal_fqdn", "'x' is not a FQDN"), CheckFailure("tenant_portal_fqdn", "'x' is not a FQDN")),
    (CheckFailure("", "whole resource"), CheckFailure("", "whole resource")),
])
def test_safe_failures(failure: CheckFailure, expected: CheckFailure) -> None:
    [got] = safe_failures([failure])
    assert (got.property, got.reason) == (expected.property, expected.reason)
