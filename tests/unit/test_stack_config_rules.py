"""The rules across keys of the stack configuration, each message exactly as the operator reads it: the key to fix
first, then what to set. Cases the lab's own configuration does not show: CredSSP on a host that is not the
privileged endpoint, several repeated cloud names, a host naming a credential that is not there, a certificate
setting its source does not take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigurationError, parse_stack_config
from tests.unit.test_stack_config import SECRET, lab_raw

pytestmark = pytest.mark.unit

NS = "wapconnector"


def problems(change: Callable[[dict[str, Any]], object], secret_keys: set[str] = SECRET) -> list[str]:
    raw = lab_raw()
    change(raw)
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, secret_keys)
    return err.value.problems


def test_credssp_on_a_host_that_is_not_the_privileged_endpoint_is_refused_naming_the_host() -> None:
    found = problems(lambda r: r["hosts"]["wapcomputer1"].update(auth="credssp"))
    assert found == [f"{NS}:hosts.wapcomputer1: auth credssp hands the password to wapcomputer1.contoso.com; it is "
                     f"only used for the PrivilegedEndpoint endpoint: use ntlm/negotiate, or set allow_credssp: true "
                     f"if this host really demands delegation"]


def test_the_privileged_endpoint_is_reached_with_credssp_without_allowing_it_anywhere_else() -> None:
    config = parse_stack_config(lab_raw(), SECRET)
    assert config.hosts["AzS-ERCS01"].auth == "credssp" and config.hosts["AzS-ERCS01"].settings()["allow_credssp"] \
        is False


def test_every_repeated_cloud_name_is_listed_once_as_compared() -> None:
    clouds = [{"name": n, "connectorFqdn": f"c{i}.contoso.com"}
              for i, n in enumerate(["AzurePack_1", "Other", "azurepack_1", "B", "b", "Other"])]
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config({"clouds": clouds})
    assert err.value.problems == [f"{NS}:clouds: cloud names must be unique (case-insensitively); repeated: "
                                  f"azurepack_1, b, other"]


def test_a_host_naming_a_credential_that_is_not_there_says_how_to_add_it() -> None:
    found = problems(lambda r: r["hosts"]["wapcomputer2"].update(credential="ghost"))
    assert found == [f"{NS}:hosts.wapcomputer2.credential: no credential 'ghost' in {NS}:credentials; add it with "
                     f"pulumi config set --secret --path '{NS}:credentials.ghost.password' ..."]


@pytest.mark.parametrize(("auth", "refused"), [("ntlm", True), ("basic", True), ("negotiate", True),
                                               ("kerberos", False)])
def test_only_kerberos_works_without_a_credential(auth: str, refused: bool) -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer2"].update(auth=auth)
    raw["hosts"]["wapcomputer2"].pop("credential")
    if not refused:
        assert parse_stack_config(raw, SECRET).connection("wapcomputer2")["auth"] == "kerberos"
        return
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, SECRET)
    assert err.value.problems == [f"{NS}:hosts.wapcomputer2.credential: {auth} authentication needs a credential (a "
                                  f"name in {NS}:credentials)"]


@pytest.mark.parametrize(("given", "key", "users"), [
    ({"pfxPassword": "x"}, "pfxPassword", "pfx"),
    ({"pfxFile": "c.pfx"}, "pfxFile", "pfx"),
    ({"thumbprint": "AB" * 20}, "thumbprint", "store"),
])
def test_a_certificate_setting_the_lab_ca_source_does_not_take_is_refused_naming_who_takes_it(
        given: dict[str, str], key: str, users: str) -> None:
    found = problems(lambda r: r["clouds"][1].update(connectorCertificate={"source": "labCa", **given}),
                     SECRET | {f"{NS}:clouds"})
    assert found == [f"{NS}:clouds[1].connectorCertificate.{key}: only for source {users} (this cloud's source is "
                     f"labCa): remove it"]
