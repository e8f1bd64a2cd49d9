"""Hostile strings never become code.

Property-based (hypothesis) and hand-picked hostile strings (quotes, $(), ;, backticks, newlines, |, &, @{},
Unicode quotes, NUL where the protocol allows it) go:
* into command, parameter and switch names: refused by ``Command`` whenever an independent definition of a plain
  PowerShell command word (``plain_command_word`` below, written from PowerShell's tokenizer rules, not from the
  production regex) says the string is not one;
* through the transport's Command parameters directly (scalars, arrays, hashtable keys and values): labsim
  receives each verbatim as a parameter value (its invocation record) and echoes it back unchanged;
* through every free-text input of the remote resources (AzurePackConnector cloud_name and
  azure_stack_cloud_name, TenantApiTrust data file text, Certificate pfx_password, ConnectorBundle file names):
  verbatim on the host (invocation record, file bytes, a PFX that only imports with the exact password);
* into every strict-format input (FQDNs, thumbprints, paths, product codes, SQL server names, endpoints, session
  configuration names): refused by check, and by create, with nothing sent to labsim.
The proof that nothing ran as code is labsim's: every invocation it recorded in this module is a command its own
command tables know (a cmdlet it emulates or a WAPConnector script file), never script text; "executed as code"
on the page is the number of recorded invocations that were not (must be 0), counted over all of them.

Counts are of distinct strings, and a string counts as hostile only when ``hostile`` (independent of the code
under test) finds a PowerShell metacharacter in it; other generated strings are counted apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labsim.server import LabServer
from providers.errors import ConfigurationError, RemoteCommandFailed
from providers.transport import Command, HostConnection, PsrpTransport
from tests.lab_state import lab_state
from tests.outs import outs_of
from tests.providers.conftest import host_connection
from tests.reliability import figures
from tests.reliability.corpus import DEFAULT_POLLING, HOSTILE_STRINGS, hostile_text, valid_resource_inputs

pytestmark = pytest.mark.sim

N = int(os.environ.get("RELIABILITY_EXAMPLES", "60"))
FAST = settings(max_examples=max(N * 2, 50), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])
STRICT_SETTINGS = settings(max_examples=max(N // 2, 20), deadline=None, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.filter_too_much])
SLOW = settings(max_examples=max(N // 4, 10), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])
# Characters no strict format (FQDN, thumbprint, GUID, Windows path, SQL server name, URL) ever accepts.
META = set("'\"$;|&`(){}<>\n\r\x00@")
# Parameter and key names whose values labsim masks in its invocation log (docs/labsim.md).
SECRET_LIKE_NAME = re.compile(r"password|pfx|credential|secret", re.IGNORECASE)


# -- the oracle: PowerShell's own rules, written here independently of providers/transport ----------------------
# What each metacharacter would do if a value were pasted into PowerShell source (about_Quoting_Rules,
# about_Special_Characters, about_Parsing, about_Operators). PowerShell treats the Unicode single and double
# quotation marks as quotes too, and the en/em dashes and horizontal bar as '-'.
METACHARACTERS: dict[str, str] = {
    "quote": "'\"\u2018\u2019\u201a\u201b\u201c\u201d\u201e",
    "variable or subexpression": "$",
    "escape": "`",
    "statement separator": ";\n\r",
    "pipe or call": "|&",
    "grouping, script block or array/hashtable": "(){}@",
    "redirection": "<>",
    "comment": "#",
    "NUL": "\x00",
}
DASHES = "-\u2013\u2014\u2015"  # a leading one makes a bare word a parameter name


def hostile(s: str) -> list[str]:
    """Which metacharacter classes ``s`` holds (empty: pasted into source it would be plain text)."""
    found = [kind for kind, chars in METACHARACTERS.items() if any(c in s for c in chars)]
    if s[:1] and s[0] in DASHES:
        found.append("leading dash (a parameter name)")
    return found


def _word(p: str) -> bool:
    return bool(p) and (p[0].isalpha() or p[0] == "_") and all(c.isalnum() or c in "_-." for c in p)


def plain_command_word(s: str) -> bool:
    """One bare word PowerShell resolves as a command name and nothing else: letters, digits, '-', '_', '.',
    starting with a letter or '_', optionally after one ``Module\\`` qualifier. Anything else is a path to run
    (':' '\\' '/'), more than one token (whitespace, metacharacters), an operator or parameter (leading dash)."""
    parts = s.split("\\")
    return len(parts) <= 2 and all(_word(p) for p in parts)


def script_file_path(s: str) -> bool:
    """An absolute path to a .ps1 file with nothing in it PowerShell would read as more than a path."""
    return (s[:1].isascii() and s[:1].isalpha() and s[1:3] == ":\\" and s.lower().endswith(".ps1")
            and not (set(s) & set("'\"$`;|&<>{}()\r\n\x00\u2018\u2019\u201a\u201b\u201c\u201d\u201e")))


def plain_parameter_name(s: str) -> bool:
    return bool(s) and (s[0].isalpha() or s[0] == "_") and all(c.isalnum() or c == "_" for c in s)


TRIED: dict[str, set[str]] = {}


def tried(where: str, *values: str) -> None:
    """Record the distinct strings tried at one place (the page counts them, and which were hostile)."""
    TRIED.setdefault(where, set()).update(values)


def _digest(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@pytest.fixture(scope="module", autouse=True)
def _record() -> Iterator[None]:
    yield
    every = set().union(*TRIED.values()) if TRIED else set()
    bad = {s for s in every if hostile(s)}
    figures.record_items("injection", "hostile_strings", [_digest(s) for s in bad])
    figures.record_items("injection", "other_strings_not_hostile", [_digest(s) for s in every - bad])
    kinds: dict[str, int] = {}
    for s in bad:
        for k in hostile(s):
            kinds[k] = kinds.get(k, 0) + 1
    figures.record("injection", "hostile_strings_by_metacharacter",
                   ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
    for where, values in sorted(TRIED.items()):
        figures.record("injection", f"hostile:{where}", sum(1 for v in values if hostile(v)))
    TRIED.clear()


def known_to_labsim() -> set[str]:
    """Every command labsim emulates (its command tables) and the WAPConnector scripts it runs: a recorded
    invocation outside this set is script text, or a command PowerShell would not find."""
    from labsim import hosts
    from labsim.hosts import wapconnector

    return {*hosts._COMMON, *hosts._WAP, *hosts._PEP, *wapconnector.SCRIPTS}


def is_known_command(name: str) -> bool:
    known = known_to_labsim()
    leaf = name.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name.lower() in known or (name[1:3] == ":\\" and leaf.endswith(".ps1") and leaf in known)


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": DEFAULT_POLLING}


@pytest.fixture(scope="module")
def server(labsim: LabServer, sim: PsrpTransport) -> Iterator[LabServer]:
    """The module's lab, the real transport in use. After the module: every invocation labsim recorded was a
    command it knows, never script text."""
    yield labsim
    invocations = lab_state(labsim).invocations()
    scripts = [i["command"][:80] for i in invocations if not is_known_command(i["command"])]
    figures.record("injection", "labsim_invocations_checked", len(invocations))
    figures.record("injection", "executed_as_code", len(scripts))
    assert invocations and scripts == [], scripts[:5]


@pytest.fixture(scope="module")
def src_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Local files for the resources' inputs (bundle trees, data files)."""
    return tmp_path_factory.mktemp("injection-src")


BUNDLE_STAGED: set[int] = set()  # the labs (by id) whose wapcomputer1 has the bundle staged


def last_id(server: LabServer) -> int:
    return lab_state(server).last_invocation_id()


def since(server: LabServer, mark: int, host: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
    name = server.lab.host(host).name if host else None
    return lab_state(server).invocations(name, command, after=mark)


def assert_no_script(server: LabServer, mark: int) -> None:
    for inv in since(server, mark):
        assert is_known_command(inv["command"]), inv
        assert "script text" not in (inv["error"] or "") and "ScriptsNotAllowed" not in (inv["error"] or ""), inv


def params(inv: dict[str, Any]) -> dict[str, Any]:
    return {n: v for n, v in inv["parameters"]}


def test_the_oracle_itself() -> None:
    # The oracle is what every verdict below rests on: pin it to cases whose answer PowerShell documents.
    assert plain_command_word("Write-Output") and plain_command_word("Microsoft.PowerShell.Utility\\ConvertTo-Json")
    for s in ("", "-Recurse", "a b", "C:\\x.ps1", "x;y", "Write-Output\u2013x\u2019", "a\\b\\c", "9x"):
        assert not plain_command_word(s), s
    assert script_file_path("C:\\temp\\Install-Connector.ps1") and not script_file_path("C:\\x$(calc).ps1")
    assert hostile("a'b") == ["quote"] and hostile("$x") == ["variable or subexpression"]
    assert hostile("plain text, \u00e9\u4e2d") == [] and hostile("\u2013x") == ["leading dash (a parameter name)"]
    assert not plain_parameter_name("a-b") and plain_parameter_name("InputObject")


# -- the transport's Command parameters, directly ---------------------------------------------------------------
def test_hostile_command_names_and_parameter_names_are_refused_locally() -> None:
    # Every hand-picked string is hostile by the oracle (no skipping), and Command refuses each as a name.
    assert all(hostile(s) or not plain_command_word(s) for s in HOSTILE_STRINGS)
    for s in HOSTILE_STRINGS:
        assert not plain_command_word(s) and not plain_parameter_name(s), s
        with pytest.raises(ValueError, match="not a command name"):
            Command(s)
        with pytest.raises(ValueError, match="not a parameter name|not a switch name"):
            Command("Write-Output", {s: 1})
        with pytest.raises(ValueError, match="not a switch name"):
            Command("Write-Output", {}, [s])
    tried("command_and_parameter_names", *HOSTILE_STRINGS)


@given(name=hostile_text(max_size=40))
@FAST
def test_generated_names_follow_the_oracle(name: str) -> None:
    # Whatever the string, Command accepts it as a name only if PowerShell would read one plain command word (or
    # a script file path). The converse (every plain word accepted) is not a safety property and is not asserted.
    if not (plain_command_word(name) or script_file_path(name)):
        with pytest.raises(ValueError, match="not a command name"):
            Command(name)
    if not plain_parameter_name(name):
        with pytest.raises(ValueError, match="not a parameter name"):
            Command("Write-Output", {name: 1})
    tried("generated_names", name)


@given(value=hostile_text(max_size=80))
@FAST
def test_hostile_parameter_values_arrive_verbatim(server: LabServer, sim: PsrpTransport, value: str) -> None:
    conn = HostConnection.parse(host_connection(server, "wapcomputer1"))
    mark = last_id(server)
    out = sim.run(conn, "echo", Command("Write-Output", {"InputObject": value})).output
    # Windows PowerShell would hand back the same string; labsim echoes what it was given.
    assert out == [value]
    (inv,) = since(server, mark)
    assert inv["command"] == "Write-Output" and inv["parameters"] == [["InputObject", value]], inv
    assert_no_script(server, mark)
    tried("transport_scalar", value)


@given(a=hostile_text(max_size=30), b=hostile_text(max_size=30), key=hostile_text(max_size=12, nul=False))
@FAST
def test_hostile_values_in_arrays_and_hashtables_arrive_verbatim(server: LabServer, sim: PsrpTransport, a: str, b: str,
                                                                 key: str) -> None:
    conn = HostConnection.parse(host_connection(server, "wapcomputer1"))
    mark = last_id(server)
    assume(key.lower() not in ("list", "nested"))  # PowerShell hashtable keys are case-insensitive
    table = {key: a, "list": [a, b], "nested": {"x": b}}
    out = sim.run(conn, "echo", Command("ConvertTo-Json", {"InputObject": table, "Depth": 5}, ["Compress"]))
    assert json.loads(out.single()) == table
    (inv,) = since(server, mark)
    # The host gets the value verbatim; only labsim's invocation log masks a value under a secret-like key.
    logged = dict(table, **{key: "****"}) if SECRET_LIKE_NAME.search(key) else table
    assert params(inv)["InputObject"] == logged, inv
    assert_no_script(server, mark)
    tried("transport_collections", a, b, key)


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hand_picked_strings_as_path_values_stay_values(server: LabServer, sim: PsrpTransport, value: str) -> None:
    # A hostile -Path is a path that does not exist: Test-Path answers False, nothing else happens.
    conn = HostConnection.parse(host_connection(server, "wapcomputer1"))
    mark = last_id(server)
    try:
        out = sim.run(conn, "test", Command("Test-Path", {"Path": value or "C:\\nothing-here"})).output
        assert out in ([False], [True])
    except RemoteCommandFailed as exc:  # an unusable path is refused as an argument, never run
        assert exc.category in ("InvalidArgument", "ObjectNotFound"), exc
    (inv,) = since(server, mark)
    assert inv["parameters"] == [["Path", value or "C:\\nothing-here"]]
    assert_no_script(server, mark)
    tried("transport_path", value)


# -- free-text inputs of the resources ---------------------------------------------------------------------------
FREE_NAME = hostile_text(min_size=1, max_size=40, nul=False).filter(lambda s: s.strip() and len(s) <= 256)


@given(cloud=FREE_NAME, stack=FREE_NAME)
@SLOW
def test_azure_pack_connector_names_reach_the_pep_verbatim(server: LabServer, sim: PsrpTransport, src_dir: Path,
                                                           cloud: str, stack: str) -> None:
    from providers import azure_pack_connector as apc

    assume(cloud.casefold() != stack.casefold())
    provider, props, _ = valid_resource_inputs(server, "AzurePackConnector", src_dir, sim)
    props["clouds"] = [{"cloud_name": cloud, "cloud_endpoint": "https://wapcomputer1.contoso.com:40005"}]
    props["azure_stack_cloud_name"] = stack
    result = provider.check({}, props)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    mark = last_id(server)
    apc.enable(sim, apc.AzurePackConnectorInputs.parse(result.inputs))  # the step that carries the free text
    (inv,) = since(server, mark, "AzS-ERCS01", "Add-AzurePackConnector")
    assert params(inv)["AzurePackClouds"] == [{"CloudName": cloud,
                                               "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"}]
    assert params(inv)["AzureStackCloudName"] == stack
    assert_no_script(server, mark)
    tried("AzurePackConnector", cloud, stack)


@given(text=hostile_text(max_size=60))
@SLOW
def test_trust_data_file_text_arrives_byte_for_byte(server: LabServer, sim: PsrpTransport, src_dir: Path,
                                                    text: str) -> None:
    from tests.providers.conftest import stage_bundle
    from tests.providers.test_tenant_api_trust import data_file

    if id(server) not in BUNDLE_STAGED:
        stage_bundle(server, "wapcomputer1")
        BUNDLE_STAGED.add(id(server))
    content = data_file(CloudName=text, Notes=[text, {"x": text}])
    provider, props, _ = valid_resource_inputs(server, "TenantApiTrust", src_dir, sim)
    props["data_file_content"] = content
    assert provider.check({}, props).failures == []
    mark = last_id(server)
    created = provider.create(props)
    path = outs_of(created)["data_file_path"]
    staged = [i for i in since(server, mark, "wapcomputer1") if i["command"] in ("Set-Content", "Add-Content")
              and params(i)["Path"].lower() == path.lower()]
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
    assert staged and all(str(params(i)["Value"]).startswith("<byte[") for i in staged), staged
    if len(staged) == 1:
        assert params(staged[0])["Value"] == f"<byte[{len(content.encode('utf-8'))}] sha256={digest}>"
    with lab_state(server).tx() as tx:
        assert tx.read_file("wapcomputer1", path) == content.encode("utf-8")
    script = since(server, mark, "wapcomputer1", "Configure-TrustAzureStack.ps1")
    assert [params(i)["DataFile"] for i in script] in ([], [path])
    assert_no_script(server, mark)
    provider.delete(created.id, outs_of(created))
    tried("TenantApiTrust", text)


@given(password=hostile_text(min_size=1, max_size=40, nul=False))
@SLOW
def test_pfx_password_arrives_verbatim(server: LabServer, sim: PsrpTransport, src_dir: Path, password: str) -> None:
    from tests.reliability.corpus import _leaf

    leaf = _leaf()
    provider, props, _ = valid_resource_inputs(server, "Certificate", src_dir, sim)
    props.update(pfx_base64=leaf.pfx_base64(password), pfx_password=password)
    assert provider.check({}, props).failures == []
    mark = last_id(server)
    created = provider.create(props)  # the PFX only opens with the exact password
    try:
        assert outs_of(created)["has_private_key"] is True
        (imp,) = since(server, mark, "wapcomputer1", "Import-PfxCertificate")
        assert params(imp)["Password"] == "****" and imp["outcome"] == "ok"
        if len(password) >= 8:  # (a short string may occur in the record by chance)
            assert password not in json.dumps(since(server, mark), ensure_ascii=False)
        assert_no_script(server, mark)
    finally:
        provider.delete(created.id, outs_of(created))
    tried("Certificate.pfx_password", password)


# Characters Windows file names may hold, biased to PowerShell metacharacters.
FILE_NAME = st.text(alphabet="'$(){}[];&`@#%!,=+~^ -_.ab\u00e9\u4e2d", min_size=1, max_size=24).filter(
    lambda s: s.strip(" .") == s and s not in (".", "..") and s.strip())


@given(name=FILE_NAME)
@SLOW
def test_bundle_file_names_reach_the_host_as_path_values(server: LabServer, sim: PsrpTransport, src_dir: Path,
                                                         name: str) -> None:
    from providers import bundle as B

    provider, props, _ = valid_resource_inputs(server, "ConnectorBundle", src_dir, sim)
    root = src_dir / f"hostile-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    (root / "Setup").mkdir(parents=True, exist_ok=True)
    (root / "Setup" / name).write_bytes(b"harmless")
    props.update(source_dir=str(root), files=B.hash_tree(root), destination="C:\\temp\\Hostile")
    result = provider.check({}, props)
    if result.failures:  # the provider's own file-name rules may refuse it: then nothing was sent
        assert [f.property for f in result.failures] in (["files"], ["source_dir"]), result.failures
        tried("ConnectorBundle.file_name_refused", name)
        return
    mark = last_id(server)
    created = provider.create(props)
    try:
        target = "C:\\temp\\Hostile\\Setup\\" + name
        paths: set[str | None] = set()
        for i in since(server, mark, "wapcomputer1"):
            p = params(i).get("Path")
            paths.update(p if isinstance(p, list) else [p])
        assert target in paths, sorted(p for p in paths if p)
        with lab_state(server).tx() as tx:
            assert tx.read_file("wapcomputer1", target) == b"harmless"
        assert_no_script(server, mark)
    finally:
        provider.delete(created.id, outs_of(created))
    tried("ConnectorBundle.file_name", name)


# -- strict formats: refused by check and create, nothing sent ---------------------------------------------------
STRICT = [
    ("ConnectorSite", ("tenant_portal_fqdn",)), ("ConnectorSite", ("tenant_api_fqdn",)),
    ("ConnectorSite", ("azure_stack_portal_fqdn",)), ("ConnectorSite", ("certificate_thumbprint",)),
    ("ConnectorSite", ("bundle_path",)),
    ("Certificate", ("staging_dir",)), ("Certificate", ("serves_fqdns", 0)), ("Certificate", ("store",)),
    ("ConnectorBundle", ("destination",)),
    ("TenantApiUpdate", ("bundle_path",)), ("TenantApiUpdate", ("expected_product_code",)),
    ("TenantApiUpdate", ("script_folder",)),
    ("TenantApiTrust", ("bundle_path",)), ("TenantApiTrust", ("data_file_name",)),
    ("TenantApiTrust", ("sql_server",)),
    ("AzurePackConnector", ("clouds", 0, "cloud_endpoint")),
    ("AzurePackConnector", ("connection", "fqdn")), ("AzurePackConnector", ("connection", "address")),
    ("AzurePackConnector", ("share_connection", "configuration_name")),
    ("ConnectorSite", ("connection", "fqdn")), ("TenantApiTrust", ("connection", "address")),
    ("ConnectorBundle", ("connection", "configuration_name")),
]


@pytest.mark.parametrize("resource, path", STRICT, ids=[f"{r}.{'.'.join(map(str, p))}" for r, p in STRICT])
def test_strict_formats_refuse_hostile_strings(server: LabServer, sim: PsrpTransport, src_dir: Path, resource: str,
                                               path: tuple[str | int, ...]) -> None:
    from tests.reliability.corpus import mutate

    provider, valid, _ = valid_resource_inputs(server, resource, src_dir, sim)

    @given(value=hostile_text(max_size=50).filter(lambda s: bool(set(s) & META)))
    @STRICT_SETTINGS
    def run(value: str) -> None:
        props = mutate(valid, path, "replace", value)
        mark = last_id(server)
        failures = provider.check({}, props).failures
        assert failures and failures[0].property.split(".")[0].split("[")[0] == path[0], \
            (value, [(f.property, f.reason) for f in failures])
        with pytest.raises(ConfigurationError):
            provider.create(props)
        assert last_id(server) == mark
        tried("strict_formats_refused", value)

    run()
