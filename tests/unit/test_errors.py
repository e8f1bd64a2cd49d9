"""The messages of providers/errors.py name the setting to change, as the operator wrote it."""

from __future__ import annotations

import pytest

from providers.errors import TlsVerificationFailed, settings_keys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("detail", ["certificate has expired", "certificate is not yet valid"])
def test_a_certificate_outside_its_validity_names_the_ca_setting_that_will_not_help(detail: str) -> None:
    with settings_keys({"wap1.contoso.com": "wapconnector:hosts.wap1"}):
        message = str(TlsVerificationFailed("wap1.contoso.com", "connect", detail))
    assert "renew it on the host" in message, message
    assert "another wapconnector:hosts.wap1.caFile will not help" in message, message
    assert "{" not in message, message
