"""components/config as a package: a host's settings are HostConnection's own (types and bounds), judged at once
with every other problem; the rules across keys still see a configuration whose values do not all validate; one
error type for a configuration that cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigurationError, HostConfig, parse_stack_config
from components.config.checks import Unusable, lenient
from components.config.models import StackConfig
from providers.errors import ConnectorError
from providers.transport import HostConnection
from tests.unit.test_stack_config import SECRET, lab_raw

pytestmark = pytest.mark.unit

NS = "wapconnector"


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, SECRET)
    assert isinstance(err.value, ConnectorError)  # what the program catches, the one error type
    return err.value.problems


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("port", 0, "Input should be greater than or equal to 1"),
    ("operationTimeout", 601, "Input should be less than or equal to 600"),
    ("readTimeout", 0, "Input should be greater than 0"),
    ("stepTimeouts", {"read site": -1}, "Input should be greater than 0"),
    ("auth", "digest", "Input should be 'basic', 'ntlm', 'negotiate', 'kerberos' or 'credssp'"),
])
def test_a_hosts_setting_is_bounded_as_the_connection_bounds_it_and_reported_with_the_rest(
        setting: str, value: Any, expected: str) -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"][setting] = value
    raw["clouds"][0]["trustHost"] = "nope"  # a rule across keys, reported in the same list
    found = problems(raw)
    assert any(p.startswith(f"{NS}:hosts.wapcomputer1.{setting}") and expected in p for p in found), found
    assert any(p.startswith(f"{NS}:clouds[0].trustHost: no host 'nope'") for p in found), found


def test_a_host_takes_exactly_the_connection_settings_the_stack_does_not_supply_itself() -> None:
    supplied = {"ca_pem", "username", "password", "settings_key", "connect_timeout"}
    assert set(HostConfig.model_fields) == set(HostConnection.model_fields) - supplied | {"credential"}
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"]["connectTimeout"] = 10
    assert problems(raw) == [f"{NS}:hosts.wapcomputer1.connectTimeout: unknown setting (check its spelling)"]


def test_the_rules_across_keys_read_a_configuration_whose_values_do_not_all_validate() -> None:
    raw = lab_raw()
    raw["clouds"][0]["tenantApiHosts"] = ["wapcomputer1", 7, "ghost"]
    raw["hosts"]["wapcomputer1"]["auth"] = ["negotiate"]
    raw["hosts"]["wapcomputer1"].pop("credential")
    view: Any = lenient(StackConfig).model_validate(raw)
    assert isinstance(view.clouds[0].tenant_api_hosts[1], Unusable)
    assert isinstance(view.hosts["wapcomputer1"].auth, Unusable)
    found = problems(raw)
    assert f"{NS}:clouds[0].tenantApiHosts[2]: no host 'ghost' in {NS}:hosts (hosts: AzS-ERCS01, AzS-HOST, " \
           f"AzS-WASP01, wapcomputer1, wapcomputer2)" in found
    assert f"{NS}:hosts.wapcomputer1.credential: ['negotiate'] authentication needs a credential (a name in " \
           f"{NS}:credentials)" in found
    assert f"{NS}:clouds[0].tenantApiHosts[1]: Input should be a valid string" in found
