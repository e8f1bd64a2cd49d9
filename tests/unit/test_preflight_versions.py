"""The update rollup checks on a host with several Windows Azure Pack (or System Center) components at mixed
versions: one component left behind fails the host, whatever else is current, and the row names it."""

from __future__ import annotations

import pytest

from components import preflight as P
from tests.unit.test_preflight import NOW, _config, _healthy

pytestmark = pytest.mark.unit

CURRENT = "3.50.48.0"  # UR9.1 as preflight infers it (P.MIN_WAP_VERSION)
OUTDATED = "3.30.0.0"


def wap_rows(packages: list[dict[str, str]]) -> dict[str, P.Row]:
    config = _config(sqlServer="sql01")
    facts = _healthy(config)
    facts["api1"].sections = {**facts["api1"].sections, "packages": packages}
    rows = P.evaluate(config, P.targets(config), facts, bundle_bytes=1000, now=NOW)
    return {r.check: r for r in rows if r.host == "api1"}


def product(name: str, version: str) -> dict[str, str]:
    """An installed product as the host's probe reports it (the shape the healthy host of test_preflight uses)."""
    name_key, version_key = _healthy(_config())["api1"].sections["packages"][0]
    return {name_key: name, version_key: version}


def wap(component: str, version: str) -> dict[str, str]:
    return product(f"Windows Azure Pack - {component} - 2013", version)


@pytest.mark.parametrize("order", [1, -1])
def test_one_outdated_wap_component_next_to_current_ones_fails_the_host(order: int) -> None:
    packages = [wap("Tenant API", CURRENT), wap("Admin API", OUTDATED), wap("Tenant Site", "3.51.0.0")][::order]
    row = wap_rows(packages)["WAP Update Rollup"]
    assert row.status == P.FAIL, row
    assert "Admin API" in row.result and "3.30.0.0" in row.result and "older than UR9.1" in row.result
    assert row.todo


def test_every_wap_component_current_passes() -> None:
    row = wap_rows([wap("Tenant API", CURRENT), wap("Tenant Site", "3.51.0.0")])["WAP Update Rollup"]
    assert row.status == P.PASS and "UR9.1 or later" in row.result


def test_the_connector_is_not_a_wap_component() -> None:
    """The connector installs as a Windows Azure Pack package of its own version; it is not the rollup."""
    row = wap_rows([wap("Tenant API", CURRENT), wap("Connector", "1.0.0.0")])["WAP Update Rollup"]
    assert row.status == P.PASS


def test_an_outdated_system_center_component_next_to_a_current_one_fails() -> None:
    spf_old = product("System Center Service Provider Foundation Update Rollup", "7.2.1000.0")
    spf_new = product("Service Provider Foundation", "7.3.100.0")
    rows = wap_rows([wap("Tenant API", CURRENT), spf_new, spf_old])
    assert rows["SPF Update Rollup"].status == P.FAIL and "7.2.1000.0" in rows["SPF Update Rollup"].result
    rows = wap_rows([wap("Tenant API", CURRENT), spf_new])
    assert rows["SPF Update Rollup"].status == P.PASS
