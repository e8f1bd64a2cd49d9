"""A stack configuration with a value of the wrong type: the operator gets that value's field error, the rules across
keys still judge everything else (by the index and name the operator wrote), and no rule trips over the mistyped
value to add a second, misleading line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigurationError, parse_stack_config
from tests.unit.test_stack_config import SECRET, lab_raw

pytestmark = pytest.mark.unit

NS = "wapconnector"
HOSTS = "AzS-ERCS01, AzS-HOST, AzS-WASP01, wapcomputer1, wapcomputer2"


def problems(change: Callable[[dict[str, Any]], object]) -> list[str]:
    raw = lab_raw()
    change(raw)
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, SECRET)
    return err.value.problems


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: r["clouds"][0].update(connectorCertificate="pfx"),
     f"{NS}:clouds[0].connectorCertificate: Input should be a valid dictionary or instance of "
     f"ConnectorCertificateConfig"),
    (lambda r: r["hosts"].update(wapcomputer2="wapcomputer2.contoso.com"),
     f"{NS}:hosts.wapcomputer2: Input should be a valid dictionary or instance of HostConfig"),
    (lambda r: r["hosts"].update({"AzS-ERCS01": "pep.contoso.com"}),
     f"{NS}:hosts.AzS-ERCS01: Input should be a valid dictionary or instance of HostConfig"),
    (lambda r: r.update(azureStack="AzS-ERCS01"),
     f"{NS}:azureStack: Input should be a valid dictionary or instance of AzureStackConfig"),
    (lambda r: r["azureStack"].update(privilegedEndpoint=["AzS-ERCS01"]),
     f"{NS}:azureStack.privilegedEndpoint: Input should be a valid string"),
    (lambda r: r["clouds"][0].update(tenantApiHosts="wapcomputer1"),
     f"{NS}:clouds[0].tenantApiHosts: Input should be a valid list"),
    (lambda r: r["clouds"][0].update(sqlCredential=5), f"{NS}:clouds[0].sqlCredential: Input should be a valid string"),
])
def test_a_mistyped_value_is_its_own_one_line(change: Callable[[dict[str, Any]], object], expected: str) -> None:
    assert problems(change) == [expected]


def test_a_mistyped_cloud_leaves_the_others_judged_under_their_own_index() -> None:
    def change(r: dict[str, Any]) -> None:
        r["clouds"].insert(0, "AzurePack_0")
        r["clouds"][2]["tenantApiHosts"] = ["ghost"]

    assert problems(change) == [
        f"{NS}:clouds[2].tenantApiHosts[0]: no host 'ghost' in {NS}:hosts (hosts: {HOSTS})",
        f"{NS}:clouds[0]: Input should be a valid dictionary or instance of CloudConfig"]


def test_a_mistyped_hosts_section_still_shows_every_reference_to_a_host() -> None:
    found = problems(lambda r: r.update(hosts=["wapcomputer1"]))
    assert found[0] == f"{NS}:hosts: missing; azureStack needs the hosts it names"
    assert found[-1] == f"{NS}:hosts: Input should be a valid dictionary"
    assert f"{NS}:clouds[1].tenantApiHosts[0]: no host 'wapcomputer2' in {NS}:hosts (hosts: none configured)" in found


def test_a_mistyped_credentials_section_still_shows_every_reference_to_a_credential() -> None:
    found = problems(lambda r: r.update(credentials="all"))
    assert found[-1] == f"{NS}:credentials: Input should be a valid dictionary"
    assert found[:-1] == [
        f"{NS}:hosts.{host}.credential: no credential '{host.lower()}' in {NS}:credentials; add it with pulumi "
        f"config set --secret --path '{NS}:credentials.{host.lower()}.password' ..."
        for host in ("AzS-ERCS01", "AzS-WASP01", "AzS-HOST", "wapcomputer1", "wapcomputer2")]


def test_an_empty_host_list_and_a_missing_bundle_say_what_to_set() -> None:
    def change(r: dict[str, Any]) -> None:
        r["clouds"][1]["tenantPortalHosts"] = []
        r.pop("bundle")

    assert problems(change) == [
        f"{NS}:clouds[1].tenantPortalHosts: list at least one host of {NS}:hosts",
        f"{NS}:bundle: missing; set bundle.sourceDir to the extracted WAPConnector folder"]


def test_a_pki_only_stack_needs_no_hosts_bundle_or_host_lists() -> None:
    config = parse_stack_config({"clouds": [{"name": "A", "tenantPortalFqdn": "tenant.contoso.com"}]})
    assert config.clouds[0].endpoint_fqdn == "tenant.contoso.com" and not config.deploys_lab
