"""The stack configuration: every problem reported at once, named by its config key."""

from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigurationError, parse_stack_config

pytestmark = pytest.mark.unit

GOOD = {"clouds": [{"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"}]}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        parse_stack_config(raw)
    return info.value.problems


def test_good_config_gets_defaults() -> None:
    config = parse_stack_config(GOOD)
    assert config.ca.key_type == "ecdsa-p256" and config.clouds[0].connector_fqdn == "wapcomputer1.contoso.com"


@pytest.mark.parametrize("raw, expected", [
    ({}, "wapconnector:clouds: missing"),
    ({"clouds": []}, "wapconnector:clouds: List should have at least 1 item"),
    ({**GOOD, "cluods": []}, "wapconnector:cluods: unknown setting"),
    ({"clouds": [{"name": "A", "connectorFqdn": "no_underscores.contoso.com"}]},
     "wapconnector:clouds[0].connectorFqdn"),
    ({"clouds": [{"name": "A", "connectorFqdn": "wapcomputer1"}]}, "not a fully qualified domain name"),
    ({**GOOD, "ca": {"keyType": "dsa"}}, "wapconnector:ca.keyType"),
    ({**GOOD, "ca": {"validityDays": -1}}, "wapconnector:ca.validityDays"),
    ({"clouds": [{"name": "A", "connectorFqdn": "a.contoso.com"}, {"name": "a", "connectorFqdn": "b.contoso.com"}]},
     "cloud names must be unique"),
])
def test_bad_config_names_the_key(raw: dict[str, Any], expected: str) -> None:
    found = problems(raw)
    assert any(expected in p for p in found), found


def test_all_problems_are_reported_together() -> None:
    found = problems({"ca": {"keyType": "x"}, "clouds": [{"name": "A", "connectorFqdn": "bad"},
                                                         {"name": "a", "connectorFqdn": "b.contoso.com"}]})
    assert len(found) == 3, found


# --- whole-lab configuration (hosts, credentials, Azure Stack) ---------------------------------------------------

from pathlib import Path  # noqa: E402

from labsim.lab import DEFAULT_LAB, load_lab  # noqa: E402
from labsim.stack_config import stack_config  # noqa: E402


def lab_raw() -> dict:
    """The default labsim lab's generated configuration, as the program would read it."""
    root = Path("/project")
    plain, secrets = stack_config(load_lab(DEFAULT_LAB), state_dir=root / ".labsim/x", bundle_dir=root / "bundle",
                                  project_dir=root, lab_file=root / "lab.yaml")
    raw = {k.split(":", 1)[1]: v for k, v in plain.items()}
    for path, value in secrets.items():
        raw["credentials"][path.split(".")[1]]["password"] = value
    return raw


SECRET = {"wapconnector:credentials"}


def test_generated_lab_config_is_valid_and_builds_connections() -> None:
    config = parse_stack_config(lab_raw(), SECRET)
    assert config.deploys_lab and [c.name for c in config.clouds] == ["AzurePack_1", "AzurePack_2"]
    assert config.azure_stack is not None
    pep = config.connection(config.azure_stack.privileged_endpoint, configuration_name="PrivilegedEndpoint",
                            project_dir=Path("/project"))
    assert pep["auth"] == "credssp" and pep["address"] == "127.0.10.1" and pep["username"] == "AZURESTACK\\CloudAdmin"
    assert pep["ca_file"] == "/project/.labsim/x/pki/ca.pem"  # not there: HostConnection names the missing file
    assert config.clouds[0].endpoint == "https://wapcomputer1.contoso.com:40005"
    assert "LabOnly" not in repr(config.credentials)


def test_a_host_connection_carries_its_ca_by_content_the_same_from_every_checkout(tmp_path: Path) -> None:
    from tests.cert_factory import make_ca

    config = parse_stack_config(lab_raw(), SECRET)
    pem = make_ca("WinRM CA").pem
    conns = []
    for checkout in ("alice/wap", "bob/src/wap"):
        project = tmp_path / checkout
        (project / ".labsim/x/pki").mkdir(parents=True)
        (project / ".labsim/x/pki/ca.pem").write_text(pem)
        conns.append(config.connection("wapcomputer1", project_dir=project))
    assert conns[0] == conns[1] and conns[0]["ca_pem"] == pem and "ca_file" not in conns[0]


def test_a_ca_file_that_is_not_pem_is_named_by_its_key(tmp_path: Path) -> None:
    raw = lab_raw()
    (tmp_path / "ca.der").write_bytes(b"\x30\x82\x01\xff binary")
    raw["hosts"]["wapcomputer1"]["caFile"] = str(tmp_path / "ca.der")
    found = problems_of(raw)
    assert any(p.startswith("wapconnector:hosts.wapcomputer1.caFile: holds no PEM certificate") for p in found), found


def test_plain_text_credentials_are_refused() -> None:
    found = problems_of(lab_raw(), secret_keys=set())
    assert any("wapconnector:credentials: holds passwords in plain text" in p and "--secret" in p for p in found)


def problems_of(raw: dict[str, Any], secret_keys: set[str] | None = SECRET) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        parse_stack_config(raw, secret_keys)
    return info.value.problems


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["azureStack"].update(privilegedEndpoint="AzS-NOPE"),
     "azureStack.privilegedEndpoint: no host 'AzS-NOPE'"),
    (lambda r: r["hosts"]["AzS-ERCS01"].update(auth="ntlm"), "accepts only CredSSP"),
    (lambda r: r["hosts"]["wapcomputer1"].update(auth="digest"), "wapconnector:hosts.wapcomputer1.auth"),
    (lambda r: r["hosts"]["wapcomputer1"].update(port=70000), "wapconnector:hosts.wapcomputer1.port"),
    (lambda r: r["hosts"]["wapcomputer1"].update(fqdn="wap computer"), "not a fully qualified domain name"),
    (lambda r: r["hosts"]["wapcomputer1"].pop("credential"), "needs a credential"),
    (lambda r: r["hosts"]["wapcomputer1"].update(credential="ghost"), "no credential 'ghost'"),
    (lambda r: r["clouds"][0].update(tenantApiHosts=[]), "clouds[0].tenantApiHosts: list at least one host"),
    (lambda r: r["clouds"][1].update(name="azurepack_1"), "cloud names must be unique"),
    (lambda r: r["clouds"][0].update(trustHost="wapcomputer2"), "must be one of the cloud's tenantApiHosts"),
    (lambda r: r.pop("bundle"), "wapconnector:bundle: missing"),
])
def test_bad_lab_config_names_the_key(mutate: Callable[[dict[str, Any]], object], expected: str) -> None:
    raw = lab_raw()
    mutate(raw)
    found = problems_of(raw)
    assert any(expected in p for p in found), found


def test_no_problem_message_echoes_a_password() -> None:
    raw = lab_raw()
    raw["credentials"]["wapcomputer1"]["password"] = ["not", "a", "string"]
    raw["hosts"]["wapcomputer1"]["port"] = -1
    found = problems_of(raw)
    assert found and not any("LabOnly" in p for p in found)


def test_a_password_turned_into_a_credential_key_is_not_echoed() -> None:
    raw = lab_raw()
    cred = raw["credentials"]["wapcomputer1"]
    cred[cred.pop("password")] = "oops"
    found = problems_of(raw)
    assert any("credentials.wapcomputer1: an unknown setting (its name is not shown" in p for p in found), found
    assert not any("LabOnly" in p for p in found), found


def test_tls_server_name_reaches_the_connection_and_is_checked() -> None:
    raw = lab_raw()
    raw["hosts"]["AzS-ERCS01"]["tlsServerName"] = "azs-ercs01.azurestack.local"
    config = parse_stack_config(raw, SECRET)
    pep = config.connection("AzS-ERCS01", project_dir=Path("/project"))
    assert pep["tls_server_name"] == "azs-ercs01.azurestack.local" and pep["address"] == "127.0.10.1"
    assert "tls_server_name" not in config.connection("wapcomputer1", project_dir=Path("/project"))
    raw["hosts"]["AzS-ERCS01"]["tlsServerName"] = "10.0.0.1"
    found = problems_of(raw)
    assert any("wapconnector:hosts.AzS-ERCS01.tlsServerName: '10.0.0.1' is not a host name" in p for p in found), found


# --- adoption: wapconnector:adopt, stack-wide or per cloud ----------------------------------------------------------

@pytest.mark.parametrize("stack_wide, per_cloud, expected", [
    (None, None, (False, False)),
    (True, None, (True, True)),
    ("true", None, (True, True)),  # top-level config values reach the program as text
    ("False", True, (False, True)),
    (True, False, (True, False)),
])
def test_adopt_stack_wide_or_per_cloud(stack_wide: bool | str | None, per_cloud: bool | None,
                                       expected: tuple[bool, bool]) -> None:
    raw: dict[str, Any] = {"clouds": [{**GOOD["clouds"][0], **({} if per_cloud is None else {"adopt": per_cloud})}]}
    if stack_wide is not None:
        raw["adopt"] = stack_wide
    config = parse_stack_config(raw)
    assert (config.adopts(), config.adopts(config.clouds[0])) == expected


@pytest.mark.parametrize("raw, key", [
    ({**GOOD, "adopt": "yes"}, "wapconnector:adopt: must be true or false (got 'yes')"),
    ({**GOOD, "adopt": 1}, "wapconnector:adopt: must be true or false (got 1)"),
    ({"clouds": [GOOD["clouds"][0], {"name": "B", "connectorFqdn": "b.contoso.com", "adopt": "maybe"}]},
     "wapconnector:clouds[1].adopt: must be true or false (got 'maybe')"),
])
def test_adopt_accepts_only_true_or_false_and_names_the_key(raw: dict[str, Any], key: str) -> None:
    assert key in problems(raw)


# --- passwords must be secrets, one by one ------------------------------------------------------------------------

from components.config import plaintext_secrets  # noqa: E402
from components.config.loading import _stack_file  # noqa: E402

SECURE = {"secure": "v1:abcd"}


def test_one_plain_password_among_secret_ones_is_named() -> None:
    """The engine only says that wapconnector:credentials holds *a* secret; the settings file says which."""
    settings = {
        "wapconnector:clouds": [{"name": "A"}],
        "wapconnector:credentials": {
            "cloudadmin": {"username": "AZURESTACK\\CloudAdmin", "password": SECURE},
            "wapadmin": {"username": "CONTOSO\\wapadmin", "password": "Pl41n!"},
            "sql": {"username": "sa", "password": SECURE},
        },
        "wapconnector:hosts": {"h": {"fqdn": "h.contoso.com"}},
        "other:password": "not ours",
    }
    assert plaintext_secrets(settings) == ["wapconnector:credentials.wapadmin.password"]
    with pytest.raises(ConfigurationError) as info:
        parse_stack_config(lab_raw(), SECRET, plain_paths={"credentials.wapadmin.password"})
    assert info.value.problems == [
        "wapconnector:credentials.wapadmin.password: in plain text in the stack file; set it as a secret: pulumi "
        "config set --secret --path 'wapconnector:credentials.wapadmin.password'"]
    assert "Pl41n!" not in str(info.value)


@pytest.mark.parametrize("settings, expected", [
    ({"wapconnector:credentials": SECURE}, []),  # the whole object set with --secret
    ({"wapconnector:credentials": {"a": SECURE}}, []),
    ({"wapconnector:credentials": {"a": {"username": "u", "password": "p"}, "b": {"username": "u", "password": "q"}}},
     ["wapconnector:credentials.a.password", "wapconnector:credentials.b.password"]),
    # Any password-like key, wherever it is (a PFX password in a cloud's certificate settings).
    ({"wapconnector:clouds": [{"name": "A", "certificate": {"pfxPassword": "x"}}]},
     ["wapconnector:clouds[0].certificate.pfxPassword"]),
    ({"wapconnector:clouds": [{"name": "A", "certificate": {"pfxPassword": SECURE}}]}, []),
    ({"wapconnector:credentials": {"a": {"username": "u"}}}, []),  # missing, not plain: reported elsewhere
    (None, []),
])
def test_plaintext_secrets_table(settings: dict[str, Any] | None, expected: list[str]) -> None:
    assert plaintext_secrets(settings) == expected


def test_stack_settings_file_follows_stack_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.lab.yaml").write_text("config: {}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.setattr(pulumi, "get_stack", lambda: "org/lab")
    assert _stack_file(tmp_path / "sub") == tmp_path / "stacks" / "Pulumi.lab.yaml"
    monkeypatch.setattr(pulumi, "get_stack", lambda: "other")
    assert _stack_file(tmp_path) is None


@pytest.mark.parametrize("raw, expected", [
    ({"clouds": [GOOD["clouds"][0], {"name": "B", "connectorFqdn": "b.contoso.com", "certificateValidityDays": 20}]},
     "wapconnector:clouds[1].certificateValidityDays: 20 days is within the 30-day renewal window"),
    ({**GOOD, "ca": {"validityDays": 30}}, "wapconnector:ca.validityDays: 30 days is within the 30-day renewal window"),
])
def test_a_validity_inside_the_renewal_window_names_the_key(raw: dict[str, Any], expected: str) -> None:
    """Not the provider's renew_before_days: the key the operator wrote."""
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_credentials_without_any_password_are_missing_not_plain_text() -> None:
    """An untouched copy of stacks/Pulumi.example-real.yaml: user names only, no password set yet."""
    raw = lab_raw()
    for cred in raw["credentials"].values():
        del cred["password"]
    found = problems_of(raw, secret_keys=set())
    assert not any("plain text" in p for p in found), found
    assert any(p.startswith("wapconnector:credentials.wapcomputer1.password: missing") for p in found), found
