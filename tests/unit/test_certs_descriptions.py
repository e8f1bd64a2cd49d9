"""providers/certs: one description of a certificate, whatever it was read from. A certificate read as X.509 and
the same certificate as a host's store lists it describe the same names, dates and usages; the store object's
rules give exactly what the preflight reports today, so the preflight can take them over."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import preflight as P
from providers import certs
from tests.cert_factory import org_ca, web_server_cert

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
FQDN = "tenant.contoso.com"
CA = "CN=Contoso Issuing CA"
GOOD: dict[str, Any] = {
    "Thumbprint": "AB" * 20, "Subject": f"CN={FQDN}", "Issuer": CA,
    "NotBefore": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "NotAfter": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    "HasPrivateKey": True, "DnsNameList": [{"Punycode": FQDN, "Unicode": FQDN}],
    "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication", "ObjectId": "1.3.6.1.5.5.7.3.1"}]}


def _ms(when: dt.datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)})/"


@pytest.mark.parametrize("change", [
    {}, {"Issuer": f"CN={FQDN}"}, {"Issuer": "CN=Someone Else"}, {"Issuer": ""}, {"Subject": "", "Issuer": ""},
    {"DnsNameList": ["other.contoso.com"]}, {"DnsNameList": ["*.contoso.com"]}, {"DnsNameList": ["*.Contoso.com."]},
    {"DnsNameList": []}, {"DnsNameList": None},
    {"NotAfter": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)}, {"NotAfter": NOW}, {"NotAfter": _ms(NOW)},
    {"NotAfter": NOW + dt.timedelta(days=30)}, {"NotAfter": NOW + dt.timedelta(days=29, hours=23)},
    {"NotAfter": "2026-06-11T00:00:00Z"}, {"NotAfter": "2026-06-11T00:00:00"}, {"NotAfter": "soon"},
    {"NotAfter": None}, {"NotBefore": NOW + dt.timedelta(minutes=1)}, {"NotBefore": _ms(NOW)},
    {"NotBefore": dt.datetime(2026, 7, 1), "NotAfter": dt.datetime(2020, 1, 1)},
    {"HasPrivateKey": False}, {"HasPrivateKey": None},
    {"EnhancedKeyUsageList": ["Client Authentication (1.3.6.1.5.5.7.3.2)"]}, {"EnhancedKeyUsageList": []},
    {"EnhancedKeyUsageList": ["1.3.6.1.5.5.7.3.1"]}, {"EnhancedKeyUsageList": [{"FriendlyName": "Code Signing"}]},
    {"Thumbprint": None},
])
def test_store_rules_report_what_the_preflight_reports(change: dict[str, Any]) -> None:
    obj = {**GOOD, **change}
    assert certs.store_problems(obj, FQDN, {CA}, NOW) == P.certificate_problems(obj, FQDN, {CA}, NOW)


def test_a_longer_oid_that_starts_with_server_auth_is_not_server_auth() -> None:
    # 1.3.6.1.5.5.7.3.14 (EAP over LAN) begins with the text of 1.3.6.1.5.5.7.3.1: a usage is matched by its OID.
    eap = {**GOOD, "EnhancedKeyUsageList": ["EAP over LAN (1.3.6.1.5.5.7.3.14)"]}
    problems, _ = certs.store_problems(eap, FQDN, {CA}, NOW)
    assert problems == ["not for server authentication (its usages: EAP over LAN (1.3.6.1.5.5.7.3.14))"]


def test_a_store_object_and_its_certificate_describe_the_same_certificate() -> None:
    cert = web_server_cert(org_ca(), names=(FQDN, "*.api.contoso.com"), eku=(ExtendedKeyUsageOID.SERVER_AUTH,)).cert
    from_x509 = certs.describe(cert, has_private_key=True)
    from_store = certs.from_store_object({
        "Thumbprint": certs.thumbprint(cert), "Subject": cert.subject.rfc4514_string(),
        "Issuer": cert.issuer.rfc4514_string(), "DnsNameList": [{"Unicode": n} for n in certs.dns_names(cert)],
        "NotBefore": _ms(cert.not_valid_before_utc), "NotAfter": cert.not_valid_after_utc.isoformat(),
        "HasPrivateKey": True, "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication",
                                                          "ObjectId": ExtendedKeyUsageOID.SERVER_AUTH.dotted_string}]})
    for field in ("thumbprint", "subject", "issuer", "dns_names", "not_after", "has_private_key"):
        assert getattr(from_store, field) == getattr(from_x509, field), field
    assert from_store.not_before is not None and from_x509.not_before is not None
    assert abs(from_store.not_before - from_x509.not_before) < dt.timedelta(seconds=1)
    assert from_store.for_server_auth and from_x509.for_server_auth
    assert from_x509.names("x.api.contoso.com") and from_store.names("X.API.contoso.com.")
    assert not from_x509.names("a.b.api.contoso.com") and not from_store.names(".api.contoso.com")


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-01-01T00:00:00Z", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ("2027-01-01T00:00:00", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ("2027-01-01T02:00:00+02:00", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ("/Date(1798761600000)/", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ("\\/Date(1798761600000)\\/", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ("soon", None), ("", None), (None, None), (1798761600, None),
])
def test_one_date_parser_reads_every_form_a_host_or_a_file_gives(text: Any, expected: dt.datetime | None) -> None:
    assert certs.when(text) == expected
    if expected is not None:
        assert certs.parse_time(text) == expected


def test_the_renewal_margin_is_one_number_everyone_uses() -> None:
    from components import config
    from providers import certificate, pki

    assert certs.RENEWAL_MARGIN_DAYS == 30
    assert certificate.CertificateInputs.model_fields["expiry_threshold_days"].default == certs.RENEWAL_MARGIN_DAYS
    assert pki.IssuedCertificateInputs.model_fields["renew_before_days"].default == certs.RENEWAL_MARGIN_DAYS
    with pytest.raises(ValueError, match="within the 30-day renewal window"):
        config.CaConfig(validity_days=30)
