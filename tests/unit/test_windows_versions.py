"""Every cmdlet and parameter the providers, preflight and acceptance send to a host exists on every Windows
release supported for that host's role, according to labsim's one version table (labsim/windows.py).

The commands are collected from the code itself, not from a list kept by hand: every remote resource is driven
through create, read, update and delete against the in-memory Windows host (tests/fake_windows_host.py), and
preflight against a recording transport, and each structured command sent is checked. A new command that
Windows Server 2012 R2's PowerShell 4.0 lacks fails here, with the cmdlet, the parameter and the resource step
that sent it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labsim import windows
from labsim.hosts import LabRuntime
from labsim.lab import DEFAULT_LAB, load_lab
from providers.facts import locations
from providers.transport import PRIVILEGED_ENDPOINT, Call, FakeTransport, Result
from tests.fake_windows_host import FakeWindowsHost
from tests.outs import outs_of

pytestmark = pytest.mark.unit

WAP_FQDNS = {"wapcomputer1.contoso.com", "wapcomputer2.contoso.com"}


class _Server:
    """What tests/reliability/corpus.valid_resource_inputs needs of a lab server: its hosts and how to reach them."""

    def __init__(self, tmp: Path) -> None:
        self.lab = load_lab(DEFAULT_LAB)
        self.ca_file = tmp / "ca.pem"
        self.ca_file.write_text("")

    def endpoint(self, host: str) -> tuple[str, int]:
        return self.lab.host(host).address, 5986


def _role(call: Call) -> str | None:
    """The kind of host a call went to (None: the privileged endpoint, whose JEA commands are Azure Stack's own)."""
    if call.conn is not None and call.conn.configuration_name == PRIVILEGED_ENDPOINT:
        return None
    return "wap" if call.host.lower() in WAP_FQDNS or call.host.lower().startswith("wap") else "azure_stack"


def _prepare(host: FakeWindowsHost, resource: str) -> None:
    """What the resource's dependencies leave on the host before it runs (the bundle, URL Rewrite)."""
    from providers import connector_site as cs
    from tests.fake_windows_host import CONNECTOR_OUTPUT, connector_output

    scripts = "C:\\temp\\WAPConnector\\Setup\\Scripts\\"
    host.dirs.add(locations.URL_REWRITE_KEY.lower())
    for name in (cs.INSTALL_SCRIPT, cs.CERTIFICATES_SCRIPT, cs.CONFIGURE_SCRIPT, "Update-TenantAPI.ps1",
                 "Configure-TrustAzureStack.ps1"):
        host.put_file(scripts + name, b"# script")
        host.put_file("C:\\temp\\WAPConnector\\Setup\\Packages\\" + name, b"# script")
    host.tenant_thumb = "AB" * 20
    if resource.startswith("AzurePackConnector"):
        host.dirs.add(CONNECTOR_OUTPUT.lower())
        host.put_file(CONNECTOR_OUTPUT + "\\AzurePack-1.txt", connector_output("AzurePack_1", "https://x:40005")
                      .encode())


def _drive(resource: str, tmp_path: Path, failed: list[str]) -> list[Call]:
    """Create, read, update and delete one resource against a fresh in-memory Windows Server 2012 R2 host; what
    failed on the way is noted in ``failed`` (the commands sent until then are still checked)."""
    from providers.errors import ConnectorError
    from tests.reliability.corpus import valid_resource_inputs

    host = FakeWindowsHost()
    _prepare(host, resource)
    provider, props, _ = valid_resource_inputs(_Server(tmp_path), resource, tmp_path, host.transport)
    checked = provider.check({}, props)
    assert not checked.failures, [(f.property, f.reason) for f in checked.failures]
    props = {**props, **checked.inputs}
    try:
        created = provider.create(props)
        read = provider.read(created.id, outs_of(created))
        provider.update(created.id, read.outs or created.outs, props)
        provider.delete(created.id, {**props, **outs_of(created)})
    except ConnectorError as exc:
        failed.append(f"{resource}: {exc}")
    return list(host.transport.calls)


RESOURCES = ("ConnectorBundle", "Certificate", "ConnectorSite", "TenantApiUpdate", "TenantApiTrust",
             "AzurePackConnector")


def _preflight_calls(tmp_path: Path) -> list[Call]:
    """Preflight of the default lab's stack against a transport that records what is sent and answers enough for
    preflight to ask its second round too (a discovered SQL server, an installed connector's port)."""
    from components.config import parse_stack_config
    from components.preflight import run_preflight
    from labsim.stack_config import stack_config

    lab = load_lab(DEFAULT_LAB)
    plain, secrets = stack_config(lab, state_dir=tmp_path / "state", bundle_dir=tmp_path / "bundle",
                                  project_dir=tmp_path)
    (tmp_path / "state" / "pki").mkdir(parents=True)
    from labsim.pki import LabCA

    (tmp_path / "state" / "pki" / "ca.pem").write_bytes(LabCA.load_or_create(tmp_path / "ca", "t").cert_pem)
    raw = {k.split(":", 1)[1]: v for k, v in plain.items()}
    for path, value in secrets.items():
        name = path.split(".")[1]
        raw["credentials"][name]["password"] = value
    for cloud in raw["clouds"]:
        cloud.pop("sqlServer", None)  # discovered from ManagementStore: the second round runs
    config = parse_stack_config(raw)

    def answer(call: Call) -> Result:
        outputs: list[list[Any]] = []
        for pipeline in call.statements:
            first = pipeline.commands[0].name
            if first == "Get-MgmtSvcSetting":
                outputs.append([{"Name": "ManagementStore", "Value": "Data Source=wapcomputer1;Initial Catalog=x"}])
            elif first == "Get-WebBinding":
                outputs.append([{"certificateHash": "AB" * 20}])
            else:
                outputs.append([])
        return Result(outputs=outputs)

    transport = FakeTransport(answer)
    run_preflight(config, transport=transport, project_dir=tmp_path)
    return list(transport.calls)


def _sent(calls: list[Call]) -> Iterator[tuple[str, str, str, list[str]]]:
    """(role, step, cmdlet, parameter names) of every command sent to a Windows host."""
    for call in calls:
        role = _role(call)
        if role is None:
            continue
        for pipeline in call.statements:
            for command in pipeline.commands:
                if command.name.lower().endswith(".ps1"):
                    continue  # the WAPConnector's own scripts, shipped with the bundle
                yield role, call.step, command.name, [*command.parameters, *command.switches]


def missing_on_supported_versions(calls: list[Call]) -> list[str]:
    problems = set()
    for role, step, cmdlet, params in _sent(calls):
        for release in windows.SUPPORTED[role]:
            if not windows.cmdlet_known(cmdlet):
                problems.add(f"{cmdlet} ({step}): not in labsim/windows.py; add its row with its source")
            elif not windows.cmdlet_exists(cmdlet, release):
                problems.add(f"{cmdlet} ({step}, on a {role} host): does not exist on {release.describe()}")
            for p in params:
                if windows.cmdlet_exists(cmdlet, release) and not windows.parameter_exists(cmdlet, p, release):
                    problems.add(f"{cmdlet} -{p} ({step}, on a {role} host): does not exist on {release.describe()}")
    return sorted(problems)


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Call], list[str]]:
    calls: list[Call] = []
    failed: list[str] = []
    for resource in RESOURCES:
        calls += _drive(resource, tmp_path_factory.mktemp(resource), failed)
    calls += _preflight_calls(tmp_path_factory.mktemp("preflight"))
    return calls, failed


@pytest.fixture(scope="module")
def every_call(driven: tuple[list[Call], list[str]]) -> list[Call]:
    return driven[0]


def test_every_command_sent_exists_on_every_supported_windows(every_call: list[Call]) -> None:
    assert missing_on_supported_versions(every_call) == []


def test_the_commands_were_really_collected(driven: tuple[list[Call], list[str]], every_call: list[Call]) -> None:
    """The check above is only as good as what it saw: every resource went through create, read, update and
    delete on the 2012 R2 host, and each resource's steps and preflight's probes are there."""
    assert driven[1] == []
    cmdlets = {(role, name) for role, _, name, _ in _sent(every_call)}
    steps = {call.step for call in every_call}
    for expected in (("wap", "Start-Process"), ("wap", "Get-FileHash"), ("wap", "Import-PfxCertificate"),
                     ("wap", "Get-ChildItem"), ("wap", "Invoke-Sqlcmd"), ("wap", "Get-MgmtSvcDatabaseSetting"),
                     ("azure_stack", "Test-NetConnection"), ("azure_stack", "Test-Path")):
        assert expected in cmdlets, expected
    assert any(s.startswith("preflight") for s in steps) and "uninstall the connector packages" in steps


def test_a_powershell_5_command_is_caught() -> None:
    """The check fails on what 2012 R2 lacks: Get-Package (5.0), Set-Content -NoNewline (5.0), and a cmdlet the
    table does not know at all."""
    from providers.transport import Command, to_statements

    def call(host: str, *commands: Command) -> Call:
        return Call(host, "a step", to_statements(list(commands)))

    assert missing_on_supported_versions([call("wapcomputer1.contoso.com", Command("Get-Package", {"Name": ["x"]}))]) \
        == ["Get-Package (a step, on a wap host): does not exist on Windows Server 2012 R2 / Windows PowerShell 4.0"]
    assert missing_on_supported_versions([call("wapcomputer1.contoso.com", Command(
        "Set-Content", {"Path": "C:\\x", "Value": "y"}, ["NoNewline"]))]) == [
        "Set-Content -NoNewline (a step, on a wap host): does not exist on Windows Server 2012 R2 / Windows "
        "PowerShell 4.0"]
    assert missing_on_supported_versions([call("azs-wasp01.azurestack.local", Command("Get-Package"))]) == []
    assert missing_on_supported_versions([call("wapcomputer1.contoso.com", Command("Get-Nothing"))]) == [
        "Get-Nothing (a step): not in labsim/windows.py; add its row with its source"]


# -- the table itself --------------------------------------------------------------------------------------------
def test_every_command_labsim_models_has_a_row_with_its_source() -> None:
    from labsim.hosts import _COMMON, _WAP

    modelled = {spec.name for spec in (_COMMON | _WAP).values()}
    assert sorted(n for n in modelled if not windows.cmdlet_known(n)) == []
    rows = list(windows.CMDLETS.values()) + list(windows.PARAMETERS.values()) + \
        list(windows.COMMON_PARAMETERS.values())
    assert all(source.split(" ", 1)[0] in ("[doc]", "[pub]", "[inf]") for _, source in rows)
    assert all(windows.cmdlet_known(cmdlet) for cmdlet, _ in windows.PARAMETERS)
    specs = {s.name: {p.name.lower(): p.name for p in s.params} for s in (_COMMON | _WAP).values()}
    for cmdlet, parameter in windows.PARAMETERS:  # spelled as labsim models it, where labsim does
        assert specs.get(cmdlet, {}).get(parameter.lower(), parameter) == parameter, (cmdlet, parameter)


def test_a_lab_host_runs_only_what_its_windows_has(tmp_path: Path) -> None:
    """labsim answers from the same table: on the default lab's 2012 R2 WAP computers the 5.0 cmdlets are not
    there, and Get-Command lists only what exists."""
    from labsim.hosts import Recorded
    from labsim.pki import LabCA
    from labsim.runtime import Command as LabCommand
    from labsim.runtime import Session
    from labsim.state import LabState

    lab = load_lab(DEFAULT_LAB)
    rt = LabRuntime(lab, LabState.in_dir(tmp_path), LabCA.load_or_create(tmp_path / "pki", lab.name))
    table = rt.commands_for(lab.host("wapcomputer1"), Session("wapcomputer1", "u", "Microsoft.PowerShell", "basic",
                                                                 "S"))
    names = {s.name for s in table.values()}
    assert "Get-Package" not in names and "Start-Process" in names and "Get-FileHash" in names
    sink = Recorded()
    rt.run_pipeline(Session("wapcomputer1", "u", "Microsoft.PowerShell", "basic", "S"),
                    [[LabCommand("Get-Command", False, [("Name", ["Get-Package", "Get-FileHash"])])]], [], sink)
    assert [o.properties["Name"] for o in sink.outputs] == ["Get-FileHash"]
    assert sink.errors[0]["exception_type"] == "System.Management.Automation.CommandNotFoundException"
