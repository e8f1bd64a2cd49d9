"""The worked example of docs/adding-a-resource.md, a seventh remote resource (docs/examples/registry_value.py),
against labsim: the template gives it the whole lifecycle, ownership included, from its hooks alone."""

from __future__ import annotations

from typing import Any

import pytest

from docs.examples import registry_value as R
from providers import ownership
from providers.errors import ConfigurationError
from providers.transport import Command, Transport
from tests.providers.labsim_helpers import admin, conn_dict, invocations, last_id

pytestmark = pytest.mark.sim

KEY = "HKLM:\\SOFTWARE\\Microsoft\\MgmtSvc\\TenantAPI"
ME = "wap-connector/lab-a"


def props(labsim: Any, **kw: Any) -> dict[str, Any]:
    return {"connection": conn_dict(labsim, "wapcomputer1"), "key": KEY, "name": "ExampleSetting", "value": "on",
            "owner": ME, **kw}


def outs_of(result: Any) -> dict[str, Any]:
    """The outputs of a create or read result (None only for a read of a thing gone)."""
    assert result.outs is not None
    return dict(result.outs)


def on_host(labsim: Any) -> Any:
    out = admin(labsim, "wapcomputer1", "read", Command("Get-ItemProperty", {"Path": KEY}))
    return next((o.get("ExampleSetting") for o in out.output), None)


def test_the_template_gives_the_example_its_whole_lifecycle(labsim: Any, sim: Transport) -> None:
    p = R.RegistryValueProvider(sim)
    created = p.create(props(labsim))
    outs = outs_of(created)
    assert on_host(labsim) == "on" and outs["value"] == "on" and outs["adopted"] is False
    read = outs_of(p.read(created.id, outs))
    assert read["observed_owner"] == ME and p.diff(created.id, read, props(labsim)).changes is False

    # Changed out of band: diff names the value, update writes it once and only it.
    admin(labsim, "wapcomputer1", "edit", Command("Set-ItemProperty", {"Path": KEY, "Name": "ExampleSetting",
                                                                       "Value": "off"}))
    drift = outs_of(p.read(created.id, outs))
    assert p.diff(created.id, drift, props(labsim)).changed == ["value"]
    mark = last_id(labsim)
    p.update(created.id, drift, props(labsim))
    assert on_host(labsim) == "on"
    assert [i["command"] for i in invocations(labsim, "wapcomputer1", since=mark)
            if i["command"] not in ("Get-ItemProperty", "Get-Content", "Write-Output")] == ["New-ItemProperty"]

    p.delete(created.id, outs)
    assert on_host(labsim) is None
    assert ownership.read(sim, p.parse_inputs(sim, props(labsim), None).connection, "check",
                          R.marker_path(KEY, "ExampleSetting")) is None
    assert p.read(created.id, outs).id == ""


def test_a_value_already_there_is_adopted_and_put_back_by_delete(labsim: Any, sim: Transport) -> None:
    admin(labsim, "wapcomputer1", "before", Command("New-ItemProperty", {"Path": KEY, "Name": "ExampleSetting",
                                                                         "Value": "theirs"}, ["Force"]))
    p = R.RegistryValueProvider(sim)
    with pytest.raises(ownership.OwnershipConflict, match="value is 'theirs', this stack wants 'on'"):
        p.create(props(labsim))
    created = p.create(props(labsim, adopt=True))
    outs = outs_of(created)
    assert outs["adopted"] is True and outs["prior"] == {"value": "theirs"}
    assert on_host(labsim) == "on"
    p.delete(created.id, outs)
    assert on_host(labsim) == "theirs"  # never removed: what it held goes back


def test_bad_inputs_name_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="key: 'HKCU:"):
        R.RegistryValueInputs.parse({"connection": {"fqdn": "h.contoso.com", "address": "127.0.0.1",
                                                    "auth": "ntlm", "username": "u", "password": "p"},
                                     "key": "HKCU:\\Software", "name": "n", "value": "v"})
