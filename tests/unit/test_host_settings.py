"""A host's settings in the stack configuration are built from HostConnection's own fields: every setting the
stack does not supply itself, with HostConnection's bounds and descriptions; the security choices recorded in every
connection with HostConnection's defaults, the rest absent (None) unless given, so the connection's own default
applies. Judged on the builder itself, not only on the HostConfig it made when the module was imported."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError, create_model

from components.config import models
from providers.transport import HostConnection

pytestmark = pytest.mark.unit

SUPPLIED = {"ca_pem", "username", "password", "settings_key", "connect_timeout"}


def host_model() -> Any:
    return create_model("Host", **models._host_settings())


def test_every_connection_setting_but_those_the_stack_supplies_is_a_host_setting_in_its_order() -> None:
    assert list(models._host_settings()) == [n for n in HostConnection.model_fields if n not in SUPPLIED]
    assert models.HOST_SETTINGS == tuple(models._host_settings())


def test_the_security_choices_take_the_connections_defaults_and_the_rest_are_absent_unless_given() -> None:
    host = host_model()(fqdn="wapcomputer1.contoso.com")
    assert (host.https, host.verify, host.auth, host.allow_credssp, host.allow_basic_over_http) == (
        True, True, "negotiate", False, False)
    for name in ("address", "port", "ca_file", "tls_server_name", "configuration_name", "operation_timeout",
                 "read_timeout", "step_timeout", "step_timeouts"):
        assert getattr(host, name) is None, name


@pytest.mark.parametrize(("setting", "value"), [("operation_timeout", 601), ("read_timeout", 0), ("port", 65536),
                                                ("step_timeout", 0), ("auth", "digest")])
def test_a_host_setting_is_bounded_as_the_connection_bounds_it(setting: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        host_model()(fqdn="wapcomputer1.contoso.com", **{setting: value})


def test_the_host_must_be_named_and_each_setting_is_described_as_the_connection_describes_it() -> None:
    with pytest.raises(ValidationError):
        host_model()()
    for name, (_, field) in models._host_settings().items():
        assert field.description == HostConnection.model_fields[name].description, name
