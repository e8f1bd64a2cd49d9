"""The stack configuration: every problem reported at once, named by its config key."""

import pytest

from components.config import ConfigError, parse_stack_config

pytestmark = pytest.mark.unit

GOOD = {"clouds": [{"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"}]}


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw)
    return info.value.problems


def test_good_config_gets_defaults() -> None:
    config = parse_stack_config(GOOD)
    assert config.ca.key_type == "ecdsa-p256" and config.clouds[0].connector_fqdn == "wapcomputer1.contoso.com"


@pytest.mark.parametrize("raw, expected", [
    ({}, "wapconnector:clouds: missing"),
    ({"clouds": []}, "wapconnector:clouds: List should have at least 1 item"),
    ({**GOOD, "cluods": []}, "wapconnector:cluods: unknown setting"),
    ({"clouds": [{"name": "A", "connectorFqdn": "no_underscores.contoso.com"}]}, "wapconnector:clouds[0].connectorFqdn"),
    ({"clouds": [{"name": "A", "connectorFqdn": "wapcomputer1"}]}, "not a fully qualified domain name"),
    ({**GOOD, "ca": {"keyType": "dsa"}}, "wapconnector:ca.keyType"),
    ({**GOOD, "ca": {"validityDays": -1}}, "wapconnector:ca.validityDays"),
    ({"clouds": [{"name": "A", "connectorFqdn": "a.contoso.com"}, {"name": "a", "connectorFqdn": "b.contoso.com"}]},
     "cloud names must be unique"),
])
def test_bad_config_names_the_key(raw, expected) -> None:
    found = problems(raw)
    assert any(expected in p for p in found), found


def test_all_problems_are_reported_together() -> None:
    found = problems({"ca": {"keyType": "x"}, "clouds": [{"name": "A", "connectorFqdn": "bad"},
                                                         {"name": "a", "connectorFqdn": "b.contoso.com"}]})
    assert len(found) == 3, found
