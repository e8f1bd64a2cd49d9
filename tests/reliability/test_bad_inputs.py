"""The bad-input corpus: the stack config (components/config/), the lab file
(labsim/lab.py load_lab) and every resource input (each provider's check, and create as the last line of
defence), each with hand-written cases and hypothesis mutations of a valid value.

Every case is either valid or gets a clear error before any host is contacted:
* config: ConfigurationError, each problem naming its ``wapconnector:`` key; no password in the message; a config it
  accepts yields connection settings HostConnection accepts too (nothing bad slips through to a resource);
* lab file: LabFileError naming the location; no password in the message;
* resources: check() returns failures naming the property, no secret in a reason, no exception; create() with the
  same inputs raises ConfigurationError; labsim recorded no invocation (and saw no request at all).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pulumi.dynamic import ResourceProvider

from components.config import parse_stack_config
from labsim.lab import DEFAULT_LAB, LabFileError, load_lab
from labsim.server import LabServer
from providers.errors import ConfigurationError
from providers.transport import HostConnection, PsrpTransport
from tests.cert_factory import make_ca
from tests.lab_state import lab_state
from tests.reliability import figures
from tests.reliability.corpus import (
    DEFAULT_POLLING,
    RESOURCES,
    mutate,
    mutated_at,
    mutation_strategy,
    scheme_recorder,
    valid_resource_inputs,
)

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "60"))
HYPO = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])
SEEN: dict[str, dict[str, set[str]]] = {}  # target -> outcome -> distinct inputs (digests)


def _identity(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode("utf-8", "surrogatepass")
                          ).hexdigest()[:16]


def count(target: str, outcome: str, value: Any) -> None:
    """outcome: rejected (clear error, nothing sent: a bad input) or valid (a mutation that is still a valid
    input: not counted as a bad input). ``value``: the input itself, so a repeat is counted once."""
    SEEN.setdefault(target, {"rejected": set(), "valid": set()})[outcome].add(_identity(value))


Mutation = tuple[tuple, str, Any]  # (path, op, value) as corpus.mutate takes them
Judge = Callable[[Any, tuple | None], str | None]  # (input, path mutated) -> rejected | valid | None: unjudged


def run_mutations(target: str, valid: Any, judge: Judge, refused: Sequence[Mutation]) -> None:
    """``valid`` must pass ``judge``; then hypothesis' mutations of it are judged, ``refused`` among them (mutations
    that break a setting: each must be rejected, its error naming the setting) on the same path, so a judge handed
    anything but the mutated input fails the test. A mutation that leaves the input unchanged is skipped."""
    assert judge(valid, None) == "valid", f"{target}: the valid input itself is refused"
    must_fail = {_identity(mutate(valid, *m)) for m in refused}

    def run(m: Mutation) -> None:
        mutated = mutate(valid, *m)
        assume(mutated != valid)
        where = mutated_at(valid, *m)
        verdict = judge(mutated, where)
        if _identity(mutated) in must_fail:
            assert verdict == "rejected", f"{target}: {where} broken, and the input still judged {verdict}"
        if verdict is not None:
            count(target, verdict, mutated)

    judged = given(mutation_strategy(valid))(run)
    for m in refused:
        judged = example(m)(judged)
    HYPO(judged)()


@pytest.fixture(scope="module", autouse=True)
def _record_counts() -> Iterator[None]:
    yield
    figures.record_items("bad_inputs", "bad_inputs", [f"{t}:{d}" for t, c in SEEN.items() for d in c["rejected"]])
    figures.record_items("bad_inputs", "valid_mutations_not_counted",
                         [f"{t}:{d}" for t, c in SEEN.items() for d in c["valid"]])
    for target, c in sorted(SEEN.items()):
        figures.record("bad_inputs", f"bad_inputs:{target}", len(c["rejected"]))
    SEEN.clear()


def _key_path(path: tuple) -> str:
    out = "wapconnector:" + str(path[0])
    for p in path[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


# =================================================================================================================
# Stack config
# =================================================================================================================
_CA_PEM = make_ca("WinRM test CA").pem


def valid_config(tmp: Path) -> tuple[dict[str, Any], set[str], list[str]]:
    """(raw wapconnector:* values without the namespace, secret keys, passwords) for the default lab."""
    from labsim.lab import DEFAULT_LAB, load_lab
    from labsim.stack_config import stack_config

    lab_ = load_lab(DEFAULT_LAB)
    (tmp / "state" / "pki").mkdir(parents=True, exist_ok=True)
    (tmp / "state" / "pki" / "ca.pem").write_text(_CA_PEM)  # connections carry its content
    plain, secrets = stack_config(lab_, state_dir=tmp / "state", bundle_dir=tmp / "bundle", project_dir=tmp)
    raw = {k.partition(":")[2]: v for k, v in plain.items()}
    for path, password in secrets.items():
        name = path.split(".")[1]
        raw["credentials"][name]["password"] = password
    return raw, {"wapconnector:credentials"}, sorted(secrets.values())


def check_config(raw: dict[str, Any], secret_keys: set[str], passwords: list[str], tmp: Path,
                 mutated: tuple | None) -> str:
    try:
        config = parse_stack_config(raw, secret_keys)
    except ConfigurationError as exc:
        msg = str(exc)
        assert exc.problems, msg
        assert all(p.startswith("wapconnector:") for p in exc.problems), msg
        assert not [pw for pw in passwords if pw in msg], f"a password is echoed: {msg}"
        if mutated is not None:
            names = [_key_path(mutated[:i]) for i in range(len(mutated), 0, -1)] + [str(mutated[-1])]
            assert any(n in msg for n in names), f"{_key_path(mutated)} not named in:\n{msg}"
        return "rejected"
    # Accepted: every host's connection settings must be usable as they are (a value the config lets through
    # would otherwise fail later, in a resource, without naming the config key).
    if config.azure_stack is None:
        return "valid"  # a PKI-only stack: hosts are not used
    pep = config.azure_stack.privileged_endpoint
    for name in config.hosts:
        try:
            HostConnection.parse(config.connection(name, project_dir=tmp, configuration_name=(
                "PrivilegedEndpoint" if name == pep else None)))
        except ConfigurationError as exc:
            # Whether ca_file exists is checked at deploy time (labsim writes its CA when it starts); the resource
            # then names connection.ca_file. Anything else must have been refused here, naming the config key.
            if [p for p in exc.problems if "does not exist or is not a file" not in p]:
                raise AssertionError(
                    f"the config accepted hosts.{name}, but its connection is refused later:\n{exc}") from exc
    return "valid"


CONFIG_CASES = [
    ("no clouds", lambda r: r.pop("clouds"), "wapconnector:clouds"),
    ("empty clouds", lambda r: r.update(clouds=[]), "wapconnector:clouds"),
    ("cloud name with spaces", lambda r: r["clouds"][0].update(name="Azure Pack 1"), "wapconnector:clouds[0].name"),
    ("duplicate cloud names", lambda r: r["clouds"][1].update(name=r["clouds"][0]["name"].upper()),
     "wapconnector:clouds"),
    ("malformed tenant portal FQDN", lambda r: r["clouds"][0].update(tenantPortalFqdn="wap..contoso.com"),
     "wapconnector:clouds[0].tenantPortalFqdn"),
    ("single-label FQDN", lambda r: r["clouds"][0].update(tenantApiFqdn="wapcomputer1"),
     "wapconnector:clouds[0].tenantApiFqdn"),
    ("connector port out of range", lambda r: r["clouds"][0].update(connectorPort=70000),
     "wapconnector:clouds[0].connectorPort"),
    ("connector port zero", lambda r: r["clouds"][0].update(connectorPort=0), "wapconnector:clouds[0].connectorPort"),
    ("connector port as text", lambda r: r["clouds"][0].update(connectorPort="https"),
     "wapconnector:clouds[0].connectorPort"),
    ("unknown cloud key", lambda r: r["clouds"][0].update(tenantPortalFQDN="x.contoso.com"),
     "wapconnector:clouds[0].tenantPortalFQDN"),
    ("unknown top-level key", lambda r: r.update(hostz={}), "wapconnector:hostz"),
    ("tenant portal host not in hosts", lambda r: r["clouds"][0].update(tenantPortalHosts=["nosuchhost"]),
     "wapconnector:clouds[0].tenantPortalHosts[0]"),
    ("trust host not a tenant API host", lambda r: r["clouds"][0].update(trustHost="AzS-HOST"),
     "wapconnector:clouds[0].trustHost"),
    ("sql credential unknown", lambda r: r["clouds"][0].update(sqlCredential="sa"),
     "wapconnector:clouds[0].sqlCredential"),
    ("PEP not credssp", lambda r: r["hosts"]["AzS-ERCS01"].update(auth="negotiate"),
     "wapconnector:hosts.AzS-ERCS01.auth"),
    ("unknown auth", lambda r: r["hosts"]["wapcomputer1"].update(auth="digest"),
     "wapconnector:hosts.wapcomputer1.auth"),
    ("host port out of range", lambda r: r["hosts"]["wapcomputer1"].update(port=65536),
     "wapconnector:hosts.wapcomputer1.port"),
    ("host port negative", lambda r: r["hosts"]["wapcomputer1"].update(port=-5986),
     "wapconnector:hosts.wapcomputer1.port"),
    ("host FQDN with underscore", lambda r: r["hosts"]["wapcomputer1"].update(fqdn="wap_1.contoso.com"),
     "wapconnector:hosts.wapcomputer1.fqdn"),
    ("host FQDN hostile", lambda r: r["hosts"]["wapcomputer1"].update(fqdn="x.com; Remove-Item C:\\"),
     "wapconnector:hosts.wapcomputer1.fqdn"),
    ("host address malformed", lambda r: r["hosts"]["wapcomputer1"].update(address="127.0.0.999 x"),
     "wapconnector:hosts.wapcomputer1.address"),
    ("host credential unknown", lambda r: r["hosts"]["wapcomputer1"].update(credential="nobody"),
     "wapconnector:hosts.wapcomputer1.credential"),
    ("host without credential", lambda r: r["hosts"]["wapcomputer1"].pop("credential"),
     "wapconnector:hosts.wapcomputer1.credential"),
    ("credssp on a WAP host", lambda r: r["hosts"]["wapcomputer1"].update(auth="credssp"),
     "wapconnector:hosts.wapcomputer1"),
    ("basic over http", lambda r: r["hosts"]["wapcomputer1"].update(auth="basic", https=False, caFile=None),
     "wapconnector:hosts.wapcomputer1"),
    ("read timeout below operation timeout", lambda r: r["hosts"]["wapcomputer1"].update(operationTimeout=60,
                                                                                         readTimeout=30),
     "wapconnector:hosts.wapcomputer1"),
    ("ca file with http", lambda r: r["hosts"]["wapcomputer1"].update(https=False),
     "wapconnector:hosts.wapcomputer1"),
    ("ca file with verify off", lambda r: r["hosts"]["wapcomputer1"].update(verify=False),
     "wapconnector:hosts.wapcomputer1"),
    ("password missing", lambda r: r["credentials"]["wapcomputer1"].pop("password"),
     "wapconnector:credentials.wapcomputer1.password"),
    ("password empty", lambda r: r["credentials"]["wapcomputer1"].update(password=""),
     "wapconnector:credentials.wapcomputer1.password"),
    ("password as a number", lambda r: r["credentials"]["wapcomputer1"].update(password=12345678),
     "wapconnector:credentials.wapcomputer1.password"),
    ("ca validity 0", lambda r: r["ca"].update(validityDays=0), "wapconnector:ca.validityDays"),
    ("ca key type unknown", lambda r: r["ca"].update(keyType="dsa-1024"), "wapconnector:ca.keyType"),
    ("azureStack PEP unknown", lambda r: r["azureStack"].update(privilegedEndpoint="AzS-ERCS09"),
     "wapconnector:azureStack.privilegedEndpoint"),
    ("azureStack portal FQDN malformed", lambda r: r["azureStack"].update(portalFqdn="portal"),
     "wapconnector:azureStack.portalFqdn"),
    ("bundle missing", lambda r: r.pop("bundle"), "wapconnector:bundle"),
    ("bundle source missing", lambda r: r["bundle"].pop("sourceDir"), "wapconnector:bundle.sourceDir"),
    ("bundle destination hostile", lambda r: r["bundle"].update(destination="C:\\x'; calc; '"),
     "wapconnector:bundle.destination"),
    ("hosts not a mapping", lambda r: r.update(hosts=["AzS-ERCS01"]), "wapconnector:hosts"),
    ("clouds not a list", lambda r: r.update(clouds={"name": "x"}), "wapconnector:clouds"),
    ("step timeout negative", lambda r: r["hosts"]["wapcomputer1"].update(stepTimeouts={"x": -1}),
     "wapconnector:hosts.wapcomputer1.stepTimeouts"),
]


@pytest.mark.unit
@pytest.mark.parametrize("case, change, key", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_hand_cases(tmp_path: Path, case: str, change: Callable[[dict[str, Any]], object], key: str) -> None:
    raw, secret_keys, passwords = valid_config(tmp_path)
    assert check_config(raw, secret_keys, passwords, tmp_path, None) == "valid"
    change(raw)
    with pytest.raises(ConfigurationError) as e:
        parse_stack_config(raw, secret_keys)
    msg = str(e.value)
    assert key in msg, msg
    assert not [pw for pw in passwords if pw in msg], msg
    assert all(p.startswith("wapconnector:") for p in e.value.problems), msg
    count("config", "rejected", raw)


@pytest.mark.unit
def test_config_passwords_in_plain_text_are_refused(tmp_path: Path) -> None:
    raw, _, passwords = valid_config(tmp_path)
    with pytest.raises(ConfigurationError) as e:
        parse_stack_config(raw, set())
    assert "wapconnector:credentials" in str(e.value) and not [p for p in passwords if p in str(e.value)]
    count("config", "rejected", {"secret keys": [], "config": raw})


@pytest.mark.unit
def test_config_mutations(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("config")
    raw, secret_keys, passwords = valid_config(tmp)

    def judge(mutated: Any, where: tuple | None) -> str:
        return check_config(mutated, secret_keys, passwords, tmp, where)

    run_mutations("config", raw, judge, refused=[(("clouds",), "delete", None),
                                                  (("ca", "validityDays"), "replace", 0),
                                                  (("ca",), "extra", "bogusSetting")])


# =================================================================================================================
# Lab file
# =================================================================================================================
def _lab_raw() -> dict[str, Any]:
    return yaml.safe_load(Path(DEFAULT_LAB).read_text())


LAB_PASSWORDS = sorted({u["password"] for h in _lab_raw()["hosts"] for u in h["users"]})


def check_lab(tmp: Path, text: str, mutated: tuple | None) -> str:
    path = tmp / "lab.yaml"
    path.write_text(text)
    try:
        load_lab(path)
    except LabFileError as exc:
        msg = str(exc)
        assert str(path) in msg, msg
        assert not [pw for pw in LAB_PASSWORDS if pw in msg], f"a password is echoed: {msg}"
        if mutated is not None:
            names = [".".join(str(p) for p in mutated[:i]) for i in range(len(mutated), 0, -1)]
            assert any(n in msg for n in names) or "(top level)" in msg, f"{mutated} not named in:\n{msg}"
        return "rejected"
    return "valid"


LAB_CASES = [
    ("no hosts", lambda r: r.pop("hosts"), "hosts"),
    ("bad lab name", lambda r: r.update(name="my lab!"), "name"),
    ("host FQDN malformed", lambda r: r["hosts"][0].update(fqdn="azs..local"), "hosts.0.fqdn"),
    ("host address not loopback", lambda r: r["hosts"][0].update(address="10.0.0.1"), "hosts.0.address"),
    ("host address not an IP", lambda r: r["hosts"][0].update(address="localhost"), "hosts.0.address"),
    ("https port out of range", lambda r: r["hosts"][1].setdefault("winrm", {}).update(https_port=70000),
     "hosts.1.winrm.https_port"),
    ("http port = https port", lambda r: r["hosts"][1].setdefault("winrm", {}).update(https_port=5985),
     "hosts.1.winrm"),
    ("no listener", lambda r: r["hosts"][1].setdefault("winrm", {}).update(https_port=None, http_port=None),
     "hosts.1.winrm"),
    ("unknown auth", lambda r: r["hosts"][1].setdefault("winrm", {}).update(auth=["digest"]), "hosts.1.winrm.auth"),
    ("PEP without credssp", lambda r: r["hosts"][0]["winrm"].update(auth=["negotiate"]), "hosts.0"),
    ("unknown role", lambda r: r["hosts"][0].update(roles=["domain_controller"]), "hosts.0.roles.0"),
    ("no users", lambda r: r["hosts"][0].update(users=[]), "hosts.0.users"),
    ("empty password", lambda r: r["hosts"][0]["users"][0].update(password=""), "hosts.0.users.0.password"),
    ("password as a list", lambda r: r["hosts"][0]["users"][0].update(password=["x"]), "hosts.0.users.0.password"),
    ("unknown host key", lambda r: r["hosts"][0].update(ip="127.0.0.1"), "hosts.0.ip"),
    ("duplicate host name", lambda r: r["hosts"][1].update(name=r["hosts"][0]["name"].upper()), "(top level)"),
    ("cloud not declared", lambda r: r["hosts"][3].update(cloud="Nowhere"), "(top level)"),
    ("cloud on a non-WAP host", lambda r: r["hosts"][1].update(cloud="AzurePack_1"), "(top level)"),
    ("negative polling", lambda r: r["settings"].update(pep_polling_seconds=-1), "settings.pep_polling_seconds"),
    ("operation timeout over pypsrp's read timeout", lambda r: r["settings"].update(operation_timeout=45),
     "settings.operation_timeout"),
    ("latency as text", lambda r: r["settings"].update(latency_factor="fast"), "settings.latency_factor"),
]


@pytest.mark.unit
@pytest.mark.parametrize("case, change, where", LAB_CASES, ids=[c[0] for c in LAB_CASES])
def test_lab_hand_cases(tmp_path: Path, case: str, change: Callable[[dict[str, Any]], object], where: str) -> None:
    raw = _lab_raw()
    change(raw)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(LabFileError) as e:
        load_lab(path)
    assert where in str(e.value), str(e.value)
    assert not [pw for pw in LAB_PASSWORDS if pw in str(e.value)]
    count("lab_file", "rejected", raw)


@pytest.mark.unit
@pytest.mark.parametrize("text, words", [
    ("name: x\nhosts: [\n", "not valid YAML"), ("- a\n- b\n", "must hold a mapping"), ("", "must hold a mapping"),
    ("\x00\x01binary", "not valid YAML"), ("name: !!python/object:os.system x\n", "not valid YAML"),
])
def test_lab_file_that_is_not_a_lab(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    with pytest.raises(LabFileError, match=words):
        load_lab(path)
    count("lab_file", "rejected", text)


@pytest.mark.unit
@pytest.mark.parametrize("mangle", [
    # Found by exploration: a lost ": " turns a user's password into a key of the user entry.
    lambda pw: (f"password: '{pw}'", f"password {pw}: 1"),
    lambda pw: (f"password: '{pw}'", f"'{pw}': x"),
], ids=["key-with-password", "password-as-key"])
def test_lab_password_turned_into_a_key_is_not_echoed(tmp_path: Path, mangle: Callable[[str], tuple[str, str]]) -> None:
    text = Path(DEFAULT_LAB).read_text()
    pw = LAB_PASSWORDS[0]
    old, new = mangle(pw)
    assert old in text
    path = tmp_path / "lab.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(LabFileError) as e:
        load_lab(path)
    assert "users.0" in str(e.value) and "unexpected key, not shown" in str(e.value), str(e.value)
    assert not [p for p in LAB_PASSWORDS if p in str(e.value)], str(e.value)
    count("lab_file", "rejected", path.read_text())


@pytest.mark.unit
def test_lab_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabFileError, match="cannot read lab file"):
        load_lab(tmp_path / "nope.yaml")
    count("lab_file", "rejected", "(no such file)")


@pytest.mark.unit
def test_lab_mutations(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("lab")
    raw = _lab_raw()

    def judge(mutated: Any, where: tuple | None) -> str | None:
        try:
            text = yaml.safe_dump(mutated)
        except yaml.YAMLError:
            return None
        return check_lab(tmp, text, where)

    run_mutations("lab_file", raw, judge, refused=[(("hosts",), "delete", None),
                                                    (("hosts", 0, "fqdn"), "replace", "azs..local"),
                                                    (("name",), "replace", "my lab!")])


@pytest.mark.unit
def test_lab_text_corruption(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("labtext")
    text = Path(DEFAULT_LAB).read_text()

    @HYPO
    @given(st.integers(0, len(text)), st.integers(0, 40), st.text(max_size=12))
    def run(at: int, cut: int, insert: str) -> None:
        corrupted = text[:at] + insert + text[at + cut:]
        count("lab_file", check_lab(tmp, corrupted, None), corrupted)

    run()


# =================================================================================================================
# Resource inputs (against labsim: nothing may reach a host)
# =================================================================================================================
@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": DEFAULT_POLLING}


def _last_id(server: LabServer) -> int:
    return max([i["id"] for i in lab_state(server).invocations()] + [0])


def secrets_of(props: dict[str, Any]) -> list[str]:
    out = []

    def walk(v: Any, key: str = "") -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, str(k))
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and len(v) >= 6 and ("password" in key or key == "pfx_base64"):
            out.append(v)

    walk(props)
    return out


def _root(prop: str) -> str:
    return prop.split(".")[0].split("[")[0]


def check_resource(server: LabServer, provider: ResourceProvider, props: dict[str, Any], secrets: list[str],
                   mutated: tuple | None) -> str:
    before = _last_id(server)
    with scheme_recorder() as seen:
        result = provider.check({}, props)  # must not raise, whatever the input
        failures = list(result.failures)
        if not failures:
            assert seen.count() == 0
            return "valid"
        for f in failures:
            assert isinstance(f.property, str) and f.property and isinstance(f.reason, str) and f.reason, f
            leaked = [s for s in secrets if s in f.reason or s in f.property]
            assert not leaked, f"check echoes a secret: {f.property}: {f.reason}"
        if mutated is not None:
            # The failure names the mutated property, or (a rule across properties) another real property.
            root = str(mutated[0])
            named = any(_root(f.property) == root or root in f.reason for f in failures)
            assert named or all(_root(f.property) in props for f in failures), \
                (mutated, [(f.property, f.reason) for f in failures])
        # The engine stops at check; create is the last line of defence and must refuse the same inputs.
        try:
            provider.create(props)
        except ConfigurationError as exc:
            msg = str(exc)
            assert not [s for s in secrets if s in msg], f"create echoes a secret: {msg}"
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"create with inputs check refuses raised {type(exc).__name__}, not a "
                                 f"ConfigurationError: {exc}") from exc
        else:
            raise AssertionError(f"create accepted inputs check refuses: {[(f.property, f.reason) for f in failures]}")
        assert seen.count() == 0, f"a request reached labsim: {seen.seen}"
    assert _last_id(server) == before, "labsim recorded an invocation for refused inputs"
    return "rejected"


def _conn_change(**kw: Any) -> Callable[[dict[str, Any], str], None]:
    def change(p: dict[str, Any], key: str) -> None:
        p[key] = {**p[key], **kw}
    return change


def _drop(field: str) -> Callable[[dict[str, Any], str], None]:
    def change(p: dict[str, Any], key: str) -> None:
        p[key] = {k: v for k, v in p[key].items() if k != field}
    return change


def _set(**kw: Any) -> Callable[[dict[str, Any], str], None]:
    return lambda p, key: p.update(kw)


CONNECTION_CASES = [
    ("fqdn malformed", _conn_change(fqdn="wap..contoso.com")),
    ("fqdn an IP", _conn_change(fqdn="127.0.0.1")),
    ("fqdn hostile", _conn_change(fqdn="x.com'; calc; '")),
    ("address malformed", _conn_change(address="127.0.0.1; calc")),
    ("port out of range", _conn_change(port=65536)),
    ("port zero", _conn_change(port=0)),
    ("port as text", _conn_change(port="https")),
    ("auth unknown", _conn_change(auth="digest")),
    ("no username", _drop("username")),
    ("no password", _drop("password")),
    ("empty password", _conn_change(password="")),
    ("password as a number", _conn_change(password=12345678)),
    ("unknown setting", _conn_change(pasword="x")),
    ("configuration name hostile", _conn_change(configuration_name="Microsoft.PowerShell; calc")),
    ("read timeout below operation timeout", _conn_change(operation_timeout=30, read_timeout=10)),
    ("negative timeout", _conn_change(connect_timeout=-1)),
    ("ca file missing", _conn_change(ca_file="/nonexistent/ca.pem")),
    ("connection not a mapping", lambda p, key: p.update({key: "wapcomputer1.contoso.com"})),
    ("connection missing", lambda p, key: p.pop(key)),
]

RESOURCE_CASES: dict[str, list[tuple[str, Any, str]]] = {
    "ConnectorSite": [
        ("tenant portal FQDN malformed", _set(tenant_portal_fqdn="wap..x"), "tenant_portal_fqdn"),
        ("tenant API FQDN hostile", _set(tenant_api_fqdn="$(calc).contoso.com"), "tenant_api_fqdn"),
        ("portal FQDN missing", lambda p, k: p.pop("azure_stack_portal_fqdn"), "azure_stack_portal_fqdn"),
        ("thumbprint short", _set(certificate_thumbprint="ABCD"), "certificate_thumbprint"),
        ("thumbprint not hex", _set(certificate_thumbprint="Z" * 40), "certificate_thumbprint"),
        ("bundle path relative", _set(bundle_path="temp\\WAPConnector"), "bundle_path"),
        ("bundle path hostile", _set(bundle_path="C:\\x'; calc; '"), "bundle_path"),
        ("bundle path too long", _set(bundle_path="C:\\" + "a" * 300), "bundle_path"),
        ("the PEP as the host", _conn_change(configuration_name="PrivilegedEndpoint", auth="credssp"), "connection"),
    ],
    "Certificate": [
        ("store unknown", _set(store="Personal"), "store"),
        ("cert not PEM", _set(cert_pem="MIIB..."), "cert_pem"),
        ("cert a chain", lambda p, k: p.update(cert_pem=p["cert_pem"] * 2), "cert_pem"),
        ("serves FQDN malformed", _set(serves_fqdns=["a..b"]), "serves_fqdns"),
        ("serves FQDN not covered", _set(serves_fqdns=["other.contoso.com"]), "serves_fqdns"),
        ("threshold negative", _set(expiry_threshold_days=-1), "expiry_threshold_days"),
        ("staging dir hostile", _set(staging_dir="C:\\x;calc"), "staging_dir"),
        ("My without PFX", lambda p, k: p.pop("pfx_base64"), "pfx_base64"),
        ("My without PFX password", lambda p, k: p.pop("pfx_password"), "pfx_password"),
    ],
    "ConnectorBundle": [
        ("destination relative", _set(destination="WAPConnector"), "destination"),
        ("destination hostile", _set(destination="C:\\x'; Remove-Item C:\\ -Recurse; '"), "destination"),
        ("chunk size zero", _set(chunk_size=0), "chunk_size"),
        ("files not a mapping", _set(files=["a"]), "files"),
        ("source dir missing", _set(source_dir="/nonexistent/bundle"), "source_dir"),
    ],
    "TenantApiUpdate": [
        ("script folder unknown", _set(script_folder="Tools"), "script_folder"),
        ("product code malformed", _set(expected_product_code="CF41308C"), "expected_product_code"),
        ("bundle path hostile", _set(bundle_path="C:\\x`calc`"), "bundle_path"),
    ],
    "TenantApiTrust": [
        ("data file not JSON", _set(data_file_content="not json {"), "data_file_content"),
        ("data file name with a path", _set(data_file_name="..\\..\\x.txt"), "data_file_name"),
        ("data file name hostile", _set(data_file_name="x'; calc; '.txt"), "data_file_name"),
        ("sql server hostile", _set(sql_server="sql01;Password=x"), "sql_server"),
        ("sql credential without password", _set(sql_credential={"username": "sa"}), "sql_credential"),
        ("sql user with a line break", _set(sql_credential={"username": "sa\nx", "password": "Sql-Pass-1!"}),
         "sql_credential"),
    ],
    "AzurePackConnector": [
        ("no clouds", _set(clouds=[]), "clouds"),
        ("cloud endpoint http", _set(clouds=[{"cloud_name": "A", "cloud_endpoint": "http://wap.contoso.com:40005"}]),
         "clouds"),
        ("cloud endpoint with a path", _set(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w.x.com/a"}]),
         "clouds"),
        ("cloud endpoint port out of range", _set(clouds=[{"cloud_name": "A",
                                                           "cloud_endpoint": "https://w.x.com:99999"}]), "clouds"),
        ("cloud extra key", _set(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w.x.com", "x": 1}]),
         "clouds"),
        ("duplicate cloud names", _set(clouds=[{"cloud_name": "A", "cloud_endpoint": "https://w.x.com"},
                                               {"cloud_name": "a", "cloud_endpoint": "https://v.x.com"}]), "clouds"),
        ("stack name = cloud name", _set(azure_stack_cloud_name="AzurePack_1"), "azure_stack_cloud_name"),
        ("stack name blank", _set(azure_stack_cloud_name="  "), "azure_stack_cloud_name"),
        ("timeout zero", _set(timeout_seconds=0), "timeout_seconds"),
        ("PEP with ntlm", _conn_change(auth="ntlm", configuration_name="Microsoft.PowerShell"), "connection"),
        ("share is the PEP", lambda p, k: p.update(share_connection=dict(p["connection"])), "share_connection"),
    ],
}

HAND_CASES: list[tuple[str, str, Any, str | None]] = [
    (r, name, change, prop) for r, cases in RESOURCE_CASES.items() for name, change, prop in cases]
HAND_CASES += [(r, f"{r} connection: {name}", change, None) for r in RESOURCES for name, change in CONNECTION_CASES
               if r != "AzurePackConnector" or "PEP" in name]
HAND_CASES += [("AzurePackConnector", f"AzurePackConnector PEP connection: {name}", change, None)
               for name, change in CONNECTION_CASES]


@pytest.mark.sim
@pytest.mark.parametrize("resource, case, change, prop", HAND_CASES, ids=[c[1] for c in HAND_CASES])
def test_resource_hand_cases(labsim: LabServer, sim: PsrpTransport, tmp_path: Path, resource: str, case: str,
                             change: Callable[[dict[str, Any], str], object], prop: str | None) -> None:
    provider, props, key = valid_resource_inputs(labsim, resource, tmp_path, sim)
    assert provider.check({}, props).failures == []
    secrets = secrets_of(props)
    change(props, key)
    expected = prop or key
    failures = provider.check({}, props).failures
    assert any(_root(f.property) == expected for f in failures), \
        (expected, [(f.property, f.reason) for f in failures])
    assert check_resource(labsim, provider, props, secrets, None) == "rejected"
    count(f"resource:{resource.split('.')[0]}", "rejected", props)


@pytest.mark.sim
@pytest.mark.parametrize("resource", [r for r in RESOURCES if "." not in r])
def test_resource_mutations(labsim: LabServer, sim: PsrpTransport, tmp_path: Path, resource: str) -> None:
    provider, valid, key = valid_resource_inputs(labsim, resource, tmp_path, sim)
    secrets = secrets_of(valid)

    def judge(mutated: Any, where: tuple | None) -> str:
        return check_resource(labsim, provider, mutated, secrets, where)

    broken_host = ((key, "fqdn"), "replace", "x.com; Remove-Item C:\\")
    run_mutations(f"resource:{resource}", valid, judge, refused=[((key,), "delete", None), broken_host])
