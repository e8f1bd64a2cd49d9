"""What an operator reads when the stack configuration is wrong: the whole list of problems, each line exactly as
printed (the config key first, then what to set), and never a value that may be a password. And what a valid
configuration turns into: a host's connection settings, adoption per cloud."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigurationError, parse_stack_config
from tests.unit.test_stack_config import SECRET, lab_raw

pytestmark = pytest.mark.unit

NS = "wapconnector"


def problems(mutate: Callable[[dict[str, Any]], object], secret_keys: set[str] | None = SECRET) -> list[str]:
    raw = lab_raw()
    mutate(raw)
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, secret_keys)
    assert str(err.value) == "invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in err.value.problems)
    return err.value.problems


def first_credential(raw: dict[str, Any]) -> dict:
    return raw["credentials"]["azs-ercs01"]


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["hosts"]["AzS-ERCS01"].update(auth="ntlm"),
     [f"{NS}:hosts.AzS-ERCS01.auth: the privileged endpoint accepts only CredSSP: set auth: credssp"]),
    (lambda r: first_credential(r).pop("password"),
     [f"{NS}:credentials.azs-ercs01.password: missing; set it with pulumi config set --secret --path "
      f"'{NS}:credentials.azs-ercs01.password'"]),
    (lambda r: first_credential(r).update({"Secret123": "x"}),
     [f"{NS}:credentials.azs-ercs01: an unknown setting (its name is not shown: it may be a password); a "
      f"credential has only username and password"]),
    (lambda r: r["hosts"]["wapcomputer1"].update(colour="blue"),
     [f"{NS}:hosts.wapcomputer1.colour: unknown setting (check its spelling)"]),
    (lambda r: r["clouds"][0].update(sqlCredential="ghost"),
     [f"{NS}:clouds[0].sqlCredential: no credential 'ghost' in {NS}:credentials; add it with pulumi config set "
      f"--secret --path '{NS}:credentials.ghost.password' ..."]),
    (lambda r: r["clouds"][0].update(trustHost="nope"),
     [f"{NS}:clouds[0].trustHost: no host 'nope' in {NS}:hosts (hosts: AzS-ERCS01, AzS-HOST, AzS-WASP01, "
      f"wapcomputer1, wapcomputer2)", f"{NS}:clouds[0].trustHost: must be one of the cloud's tenantApiHosts"]),
    (lambda r: r["clouds"][0].update(connectorCertificate={"source": "pfx"}),
     [f"{NS}:clouds[0].connectorCertificate.pfxFile: missing; source pfx needs it: set it in "
      f"stacks/Pulumi.<stack>.yaml",
      f"{NS}:clouds[0].connectorCertificate.pfxPassword: missing; source pfx needs it: set it with pulumi config set "
      f"--secret --path '{NS}:clouds[0].connectorCertificate.pfxPassword' (it prompts)",
      f"{NS}:clouds[0].connectorCertificate.issuingCaFile: missing; source pfx needs it: set it in "
      f"stacks/Pulumi.<stack>.yaml"]),
    (lambda r: r["clouds"][0].update(connectorCertificate={"source": "store", "thumbprint": "AB" * 20,
                                                           "issuingCaFile": "ca.cer", "pfxFile": "x.pfx"}),
     [f"{NS}:clouds[0].connectorCertificate.pfxFile: only for source pfx (this cloud's source is store): "
      f"remove it"]),
    (lambda r: r["clouds"][0].update(connectorCertificate={"source": "labCa", "thumbprint": "AB" * 20}),
     [f"{NS}:clouds[0].connectorCertificate.thumbprint: only for source store (this cloud's source is labCa): "
      f"remove it"]),
    (lambda r: r["clouds"][0].update(connectorCertificate={"source": "labCa", "issuingCaFile": "ca.cer"}),
     [f"{NS}:clouds[0].connectorCertificate.issuingCaFile: only for source pfx and store (this cloud's source is "
      f"labCa): remove it"]),
    (lambda r: r.update(adopt="yes"), [f"{NS}:adopt: must be true or false (got 'yes')"]),
    (lambda r: r["clouds"][0].pop("tenantPortalFqdn"),
     [f"{NS}:clouds[0]: set tenantPortalFqdn and tenantApiFqdn (Configure-WapConnector.ps1 needs both)",
      f"{NS}:clouds[0]: set tenantPortalFqdn (or connectorFqdn), the name the connector endpoint answers on"]),
    (lambda r: r["hosts"]["wapcomputer1"].pop("credential"),
     [f"{NS}:hosts.wapcomputer1.credential: negotiate authentication needs a credential (a name in "
      f"{NS}:credentials)"]),
])
def test_each_problem_reads_exactly(mutate: Callable[[dict[str, Any]], object], expected: list[str]) -> None:
    assert problems(mutate) == expected


def test_a_stack_without_hosts_lists_every_reference_to_them() -> None:
    found = problems(lambda r: r.pop("hosts"))
    assert found[0] == f"{NS}:hosts: missing; azureStack needs the hosts it names"
    assert found[1] == f"{NS}:azureStack.privilegedEndpoint: no host 'AzS-ERCS01' in {NS}:hosts (hosts: none " \
                       f"configured)"
    assert len(found) == 8 and all("(hosts: none configured)" in p for p in found[1:])


def test_kerberos_needs_no_credential() -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"].update(auth="kerberos")
    raw["hosts"]["wapcomputer1"].pop("credential")
    conn = parse_stack_config(raw, SECRET).connection("wapcomputer1")
    assert conn["auth"] == "kerberos" and "username" not in conn and "password" not in conn


def test_a_password_in_plain_text_is_refused_by_key_never_by_value() -> None:
    found = problems(lambda r: None, secret_keys=set())
    assert found == [f"{NS}:credentials: holds passwords in plain text; set each password with pulumi config set "
                     f"--secret --path '{NS}:credentials.<name>.password' <value>"]
    raw = lab_raw()
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, set(), plain_paths={"credentials.wapcomputer1.password"})
    assert err.value.problems == [f"{NS}:credentials.wapcomputer1.password: in plain text in the stack file; set it "
                                  f"as a secret: pulumi config set --secret --path "
                                  f"'{NS}:credentials.wapcomputer1.password'"]
    assert parse_stack_config(raw, SECRET, plain_paths=set()).deploys_lab


def test_a_hosts_connection_settings_are_what_the_resources_take() -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"].update(operationTimeout=25, readTimeout=40.0, stepTimeout=900.0,
                                        stepTimeouts={"install the connector": 1200.0}, tlsServerName="wap1.lab",
                                        allowBasicOverHttp=False)
    config = parse_stack_config(raw, SECRET)
    conn = config.connection("wapcomputer1", project_dir=Path("/project"))
    password = config.credentials["wapcomputer1"].password
    assert {k: v for k, v in conn.items() if k != "ca_file"} == {
        "fqdn": "wapcomputer1.contoso.com", "settings_key": f"{NS}:hosts.wapcomputer1", "https": True,
        "verify": True, "auth": "negotiate", "allow_credssp": False, "allow_basic_over_http": False,
        "address": raw["hosts"]["wapcomputer1"]["address"], "port": raw["hosts"]["wapcomputer1"]["port"],
        "operation_timeout": 25, "read_timeout": 40.0, "step_timeout": 900.0,
        "step_timeouts": {"install the connector": 1200.0}, "tls_server_name": "wap1.lab",
        "username": "CONTOSO\\WapAdmin", "password": password}
    assert config.connection("wapcomputer1", configuration_name="PrivilegedEndpoint")["configuration_name"] == \
        "PrivilegedEndpoint"
    assert "configuration_name" not in conn


@pytest.mark.parametrize("value, adopt", [(True, True), (False, False), ("true", True), (" FALSE ", False),
                                          ("True", True)])
def test_adopt_takes_true_or_false_in_any_case(value: bool | str, adopt: bool) -> None:
    raw = lab_raw()
    raw["adopt"] = value
    config = parse_stack_config(raw, SECRET)
    assert config.adopt is adopt and config.adopts() is adopt and config.adopts(config.clouds[0]) is adopt


@pytest.mark.parametrize("value", [1, 0, "on", "yes", None])
def test_adopt_refuses_anything_else(value: int | str | None) -> None:
    assert problems(lambda r: r.update(adopt=value)) == [f"{NS}:adopt: must be true or false (got {value!r})"]


def test_a_pki_only_stack_connects_to_no_host() -> None:
    config = parse_stack_config({"clouds": [{"name": "A", "connectorFqdn": "a.contoso.com"}]})
    assert not config.deploys_lab and config.preflight == "enforce" and config.provider_processes is None
