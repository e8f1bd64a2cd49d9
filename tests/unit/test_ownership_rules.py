"""The ownership promise across a resource's whole life: what a stack adopted stays adopted through every update,
so its destroy never removes what existed before the stack (docs/ownership.md). In-memory hosts, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers import connector_site as cs
from providers import ownership as O
from providers import tenant_api_trust as T
from providers.facts import locations
from providers.ownership import Marker
from providers.transport import FakeTransport
from tests.fake_windows_host import FakeWindowsHost
from tests.outs import outs_of
from tests.providers.test_connector_site import checked, inputs, wap_host
from tests.providers.test_tenant_api_trust import DEST, REALM, data_file, host_with, trust_props

pytestmark = pytest.mark.unit

ME = "wap-connector/lab-a"
ROW = ("TenantAPI", "Authentication.IdentityProvider.Secondary")


def markers(host: FakeWindowsHost) -> dict[str, Any]:
    return {k: json.loads(v.decode()) for k, (_, v) in host.files.items() if O.is_marker_path(k)}


@pytest.mark.parametrize("marker", [
    Marker(ME, adopted=True, prior={"realm": "https://adfs.example/adfs/x/"}, resource="TenantApiTrust", thing="t"),
    Marker(ME, adopted=False, resource="ConnectorSite", thing="the connector"),
])
def test_the_state_recorded_by_create_gives_back_the_same_marker(marker: Marker) -> None:
    """update writes the marker again from the state when it went missing: the one create wrote, adoption and
    prior values included."""
    state = {"owner": ME, **O.outputs(marker)}
    assert O.from_state(state, marker.resource, marker.thing) == marker


def test_no_owner_in_the_state_means_no_marker() -> None:
    assert O.from_state({"adopted": True, "prior": {"x": 1}}, "ConnectorSite", "t") is None


@pytest.mark.parametrize("change", [{"operation_timeout": 25, "read_timeout": 40}, {"read_timeout": 50},
                                    {"address": "127.0.10.99"}])
def test_an_adopted_connector_survives_update_of_a_connection_setting_then_destroy(change: dict[str, Any]) -> None:
    host = wap_host(installed=True)
    provider = cs.ConnectorSiteProvider(FakeTransport(host))
    created = provider.create(checked(inputs(owner=ME)))
    assert outs_of(created)["adopted"] is True and host.ran == []

    updated = provider.update(created.id, outs_of(created),
                              checked(inputs(owner=ME, connection={**inputs()["connection"], **change})))
    assert outs_of(updated)["adopted"] is True
    assert all(m["adopted"] is True for m in markers(host).values())

    provider.delete(created.id, {**outs_of(created), **outs_of(updated)})
    assert host.packages and set(host.sites) == set(locations.CONNECTOR_SITES)  # still installed, still serving
    assert "Uninstall-Package" not in host.ran
    assert markers(host) == {}


def test_an_adopted_connector_survives_update_after_its_marker_went_missing() -> None:
    """Someone removed the marker folder by hand: update writes it again from the state, still adopted."""
    host = wap_host(installed=True)
    provider = cs.ConnectorSiteProvider(FakeTransport(host))
    created = provider.create(checked(inputs(owner=ME)))
    for key in list(markers(host)):
        del host.files[key]
    updated = provider.update(created.id, outs_of(created), checked(inputs(owner=ME)))
    assert [m["adopted"] for m in markers(host).values()] == [True]
    provider.delete(created.id, {**outs_of(created), **outs_of(updated)})
    assert host.packages and "Uninstall-Package" not in host.ran


def test_an_adopted_trust_survives_update_of_a_connection_setting_then_destroy() -> None:
    host = host_with("Setup\\Scripts\\Configure-TrustAzureStack.ps1")
    data_path = f"{DEST}\\AzurePack-06-27-15-50.txt"
    host.put_file(data_path, data_file().encode())
    signing = json.loads(data_file())["AuthenticationIdentityProviderPartner"]["Certificate"]
    host.rows[ROW] = json.dumps({"Realm": REALM, "Certificate": signing,
                                 "Endpoint": "https://wapcomputer1.contoso.com:40005"}, separators=(",", ":"))
    before = dict(host.rows)
    provider = T.TenantApiTrustProvider(host.transport)
    created = provider.create(trust_props(owner=ME))
    assert outs_of(created)["adopted"] is True

    slower = {"operation_timeout": 25, "read_timeout": 40}
    news = trust_props(owner=ME, connection={**trust_props()["connection"], **slower})
    updated = provider.update(created.id, outs_of(created), news)
    assert outs_of(updated)["adopted"] is True

    provider.delete(created.id, {**outs_of(created), **outs_of(updated)})
    assert host.rows == before  # the trust configured by hand is still there
    assert host.file(data_path) == data_file().encode()
    assert markers(host) == {}
