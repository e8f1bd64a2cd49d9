"""The providers' error handling fed with error records as Windows fills them (TargetName / TargetType from the
target object, the cmdlet as CommandInfo_Name / Activity, and no command at all for an unknown one): the target and
the failing command reach ErrorRecordInfo, the checks that read them, and the messages an operator sees."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labsim.server import LabServer
from providers import azure_pack_connector, connector_site
from providers.errors import RemoteCommandFailed
from providers.facts import locations
from providers.hostops import only_expected_errors
from providers.transport import (
    Command,
    ErrorRecordInfo,
    HostConnection,
    PsrpTransport,
    Result,
    SessionCache,
    describe,
)
from tests.providers.conftest import host_connection

pytestmark = pytest.mark.sim

WAP = "wapcomputer1"
ASDK = "AzS-HOST"


@pytest.fixture
def transport() -> Iterator[PsrpTransport]:
    cache = SessionCache()
    yield PsrpTransport(cache, sleep=lambda s: None)
    cache.close_all()


def _conn(server: LabServer, host: str) -> HostConnection:
    return HostConnection.parse(host_connection(server, host))


def test_error_info_carries_target_and_command(labsim: LabServer, transport: PsrpTransport) -> None:
    result = transport.run(_conn(labsim, WAP), "read", [Command("Get-Item", {"Path": "C:\\missing"})],
                           accept_errors=True)
    [err] = result.errors
    assert (err.error_code, err.category, err.target, err.command) == (
        "PathNotFound", "ObjectNotFound", "C:\\missing", "Get-Item")
    assert err.exception_type == "System.Management.Automation.ItemNotFoundException"


def test_failure_message_names_the_failing_command_and_its_target(labsim: LabServer, transport: PsrpTransport) -> None:
    statements = [Command("Test-Path", {"Path": "C:\\inetpub"}), Command("Get-Item", {"Path": "C:\\missing"})]
    with pytest.raises(RemoteCommandFailed) as e:
        transport.run(_conn(labsim, WAP), "read", statements)
    exc = e.value
    assert (exc.target, exc.failed_command) == ("C:\\missing", "Get-Item")
    assert "in Get-Item" in str(exc) and "target C:\\missing" in str(exc)
    assert exc.error_id == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"


def test_missing_output_folder_is_recognised_by_its_target(labsim: LabServer, transport: PsrpTransport) -> None:
    """azure_pack_connector treats the PathNotFound of its own output folder as "no files"; the check reads the
    record's target, which labsim now fills as Windows does."""
    share = _conn(labsim, ASDK)
    missing = transport.run(share, "read", [Command("Get-ChildItem", {"Path": locations.OUTPUT_FOLDER})],
                            accept_errors=True)
    [err] = missing.errors
    assert err.target == locations.OUTPUT_FOLDER and err.command == "Get-ChildItem"
    read_errors(share, missing)  # its own folder: no error

    other = transport.run(share, "read", [Command("Get-ChildItem", {"Path": "C:\\elsewhere"})], accept_errors=True)
    with pytest.raises(RemoteCommandFailed) as e:
        read_errors(share, other)
    assert (e.value.target, e.value.failed_command) == ("C:\\elsewhere", "Get-ChildItem")
    assert "target C:\\elsewhere" in str(e.value)


def read_errors(share: HostConnection, result: Result) -> list[ErrorRecordInfo]:
    """azure_pack_connector's filter of its listing's error records."""
    return only_expected_errors(share, azure_pack_connector.STEP_READ, azure_pack_connector.read_statements(), result,
                                accept=azure_pack_connector.missing_output_folder, hint=azure_pack_connector.READ_HINT)


def test_connector_site_reports_the_failing_command_and_target(labsim: LabServer, transport: PsrpTransport) -> None:
    """A record the site read does not expect: the message says which cmdlet failed and on what."""
    result = transport.run(_conn(labsim, WAP), "read", [Command("Start-Website", {"Name": "NoSuchSite"})],
                           accept_errors=True)
    [err] = result.errors
    assert err.error_code not in connector_site.ABSENT_ERROR_CODES
    with pytest.raises(RemoteCommandFailed) as e:
        only_expected_errors(_conn(labsim, WAP), connector_site.STEP_READ, connector_site.read_statements(), result,
                             connector_site.ABSENT_ERROR_CODES)
    assert (e.value.failed_command, e.value.target) == ("Start-Website", "NoSuchSite")
    assert e.value.command == describe(connector_site.read_statements())
    assert "in Start-Website" in str(e.value) and "target NoSuchSite" in str(e.value)


def test_unknown_command_is_named_by_the_statement_and_the_target(labsim: LabServer, transport: PsrpTransport) -> None:
    """Windows' record of an unknown command has no InvocationInfo and an empty Activity: the failing command is
    only its target. The message still names it, from the statement shown and the target."""
    with pytest.raises(RemoteCommandFailed) as e:
        transport.run(_conn(labsim, WAP), "read", [Command("Get-ServiceTypo", {"Name": "x"})])
    exc = e.value
    assert (exc.error_id, exc.category, exc.target, exc.failed_command) == (
        "CommandNotFoundException", "ObjectNotFound", "Get-ServiceTypo", None)
    assert "`Get-ServiceTypo -Name 'x'` failed: The term 'Get-ServiceTypo' is not recognized" in str(exc)
    assert "target Get-ServiceTypo" in str(exc)
