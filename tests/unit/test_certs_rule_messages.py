"""The certificate rules as the operator reads them: each message whole (what is wrong, with the thumbprint, then
what to do), the caller's name for its expiry threshold, a certificate judged for no particular name, and a
certificate a host's store shows judged on its own (no private key, an issuer the host does not trust, the
renewal margin when nothing else is wrong)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from providers import certs
from tests.cert_factory import org_ca, web_server_cert

pytestmark = pytest.mark.unit

FQDN = "wapcomputer1.contoso.com"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ISSUING = org_ca("Contoso Issuing CA")


def info(**fields: Any) -> certs.CertificateInfo:
    base: dict[str, Any] = {"thumbprint": "AB" * 20, "dns_names": (FQDN,), "not_before": NOW - dt.timedelta(days=1),
                            "not_after": NOW + dt.timedelta(days=200), "key_kind": "ec",
                            "key_usage": frozenset({"digital_signature"}),
                            "extended_key_usage": (certs.SERVER_AUTH_OID,)}
    return certs.CertificateInfo(**{**base, **fields})


T = "AB" * 20


@pytest.mark.parametrize(("change", "message"), [
    ({"self_signed": True}, f"certificate {T} is self-signed; the connector needs a certificate issued by your "
                            f"organization's certification authority"),
    ({"is_ca": True}, f"certificate {T} is a CA certificate; give the connector endpoint's own certificate"),
    ({"not_after": NOW - dt.timedelta(days=3)}, f"certificate {T} expired on 2026-05-29: issue a new one"),
    ({"not_after": NOW + dt.timedelta(days=3)},
     f"certificate {T} expires on 2026-06-04, within 30 days: renew it first"),
    ({"not_before": NOW + dt.timedelta(hours=2)},
     f"certificate {T} is not valid before 2026-06-01 14:00 UTC: check the issuing machine's clock"),
    ({"extended_key_usage": ()}, f"certificate {T} has no enhanced key usage; it needs server authentication "
                                 f"(1.3.6.1.5.5.7.3.1): issue it from a web server template"),
    ({"extended_key_usage": ("1.3.6.1.5.5.7.3.2",)},
     f"certificate {T} is not for server authentication (its enhanced key usage lacks 1.3.6.1.5.5.7.3.1): issue it "
     f"from a web server template"),
    ({"key_usage": frozenset({"key_agreement"})},
     f"certificate {T}'s key usage allows neither digital signature nor key encipherment: TLS cannot use it"),
])
def test_each_rule_reads_whole(change: dict[str, Any], message: str) -> None:
    assert certs.info_problems(info(**change), fqdn=FQDN, now=NOW) == [message]


def test_a_description_that_does_not_know_the_usages_or_dates_is_not_judged_on_them() -> None:
    unknown = info(not_before=None, not_after=None, key_usage=None, extended_key_usage=None, key_kind=None)
    assert certs.info_problems(unknown, fqdn=FQDN, now=NOW) == []


def test_a_certificate_judged_for_no_particular_name_is_not_judged_on_its_names() -> None:
    assert certs.info_problems(info(dns_names=()), fqdn=None, now=NOW) == []
    assert certs.certificate_problems(web_server_cert(ISSUING, ("other.contoso.com",)).cert, fqdn=None,
                                      issuer=ISSUING.cert) == []


def test_the_threshold_is_named_as_the_caller_names_it() -> None:
    soon = info(not_after=NOW + dt.timedelta(days=40))
    assert certs.validity_problems(soon, NOW, 45, "expiry_threshold_days") == [
        f"certificate {T} expires on 2026-07-11, within expiry_threshold_days (45): renew it first"]
    assert certs.validity_problems(soon, NOW, 45) == [
        f"certificate {T} expires on 2026-07-11, within 45 days: renew it first"]
    assert certs.validity_problems(soon, NOW, 39, "expiry_threshold_days") == []


def test_without_a_clock_given_the_rules_judge_against_now() -> None:
    fresh = web_server_cert(ISSUING, (FQDN,), not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=40))
    assert certs.certificate_problems(fresh.cert, fqdn=FQDN, issuer=ISSUING.cert) == []
    assert len(certs.certificate_problems(fresh.cert, fqdn=FQDN, issuer=ISSUING.cert, expiry_threshold_days=45)) == 1


def test_the_issuer_must_be_a_ca_and_have_signed_it_each_message_naming_both() -> None:
    leaf, other = web_server_cert(ISSUING, (FQDN,)), web_server_cert(ISSUING, (FQDN,))
    lt, it = certs.thumbprint(leaf.cert), ISSUING.thumbprint
    assert certs.issuer_problems(leaf.cert, ISSUING.cert) == []
    assert certs.issuer_problems(leaf.cert, other.cert) == [
        f"certificate {other.thumbprint} (CN={FQDN},O=Contoso) is not a CA certificate; give the CA that issued "
        f"certificate {lt}"]
    twin = org_ca("Contoso Issuing CA")  # the same name, another key
    assert certs.issuer_problems(leaf.cert, twin.cert) == [
        f"certificate {lt} was not issued by CA {twin.thumbprint} (CN=Contoso Issuing CA,O=Contoso); its issuer is "
        f"CN=Contoso Issuing CA,O=Contoso: give that CA's certificate"]
    assert it != twin.thumbprint


def test_the_rules_of_an_x509_certificate_are_those_of_its_description() -> None:
    leaf = web_server_cert(ISSUING, ("other.contoso.com",), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert certs.certificate_problems(leaf.cert, fqdn=FQDN) == certs.info_problems(
        certs.describe(leaf.cert), fqdn=FQDN)
    assert len(certs.certificate_problems(leaf.cert, fqdn=FQDN)) == 2


# -- a certificate as a host's store shows it ----------------------------------------------------------------------
CA = "CN=Contoso Issuing CA"
STORE: dict[str, Any] = {
    "Thumbprint": T, "Subject": f"CN={FQDN}", "Issuer": CA, "NotBefore": NOW - dt.timedelta(days=10),
    "NotAfter": dt.datetime(2026, 12, 1, tzinfo=dt.UTC), "HasPrivateKey": True,
    "DnsNameList": [{"Punycode": FQDN, "Unicode": FQDN}],
    "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication", "ObjectId": certs.SERVER_AUTH_OID}]}


def store(**change: Any) -> tuple[list[str], str]:
    return certs.store_problems({**STORE, **change}, FQDN, {CA, "CN=Contoso Root CA"}, NOW)


def test_a_fit_store_certificate_is_summarised_by_thumbprint_and_expiry() -> None:
    assert store() == ([], f"{T}, expires 2026-12-01")
    assert store(NotAfter=None) == ([], f"{T}, expires ?")


@pytest.mark.parametrize(("change", "problem"), [
    ({"Issuer": "CN=Fabrikam CA"}, "its issuer 'CN=Fabrikam CA' is not in the host's Root or CA store: import the "
                                   "issuing CA chain"),
    ({"Issuer": f"CN={FQDN}"}, "self-signed (Configure-Certificates.ps1 refuses it): use a certificate issued by a CA"),
    ({"HasPrivateKey": False}, "no private key on this host"),
    ({"DnsNameList": ["wap.contoso.com", "*.api.contoso.com"]},
     f"its names (wap.contoso.com, *.api.contoso.com) do not include {FQDN}"),
    ({"DnsNameList": []}, f"its names (none) do not include {FQDN}"),
    ({"NotAfter": NOW - dt.timedelta(days=1)}, "expired on 2026-05-31"),
    ({"NotBefore": NOW + dt.timedelta(minutes=1)}, "not valid before 2026-06-01"),  # a host's store: no skew
    ({"EnhancedKeyUsageList": [{"FriendlyName": "Client Authentication", "ObjectId": "1.3.6.1.5.5.7.3.2"}]},
     "not for server authentication (its usages: Client Authentication, 1.3.6.1.5.5.7.3.2)"),
    ({"NotAfter": NOW + dt.timedelta(days=29, hours=23)}, "expires in 29 day(s)"),
])
def test_each_store_problem_reads_whole(change: dict[str, Any], problem: str) -> None:
    assert store(**change)[0] == [problem]


def test_the_renewal_margin_is_reported_only_when_nothing_else_is_wrong_and_strictly_within_it() -> None:
    assert store(NotAfter=NOW + dt.timedelta(days=30))[0] == []
    assert store(NotAfter=NOW + dt.timedelta(days=10), HasPrivateKey=False)[0] == ["no private key on this host"]


def test_a_store_object_names_its_usages_and_names_however_they_arrive() -> None:
    described = certs.from_store_object({
        **STORE, "DnsNameList": "single.contoso.com",
        "EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication"}, {"ObjectId": "1.3.6.1.5.5.7.3.2"}]})
    assert described.dns_names == ("single.contoso.com",)
    assert described.extended_key_usage == ("Server Authentication", "1.3.6.1.5.5.7.3.2")
    punycode = certs.from_store_object({**STORE, "DnsNameList": [{"Punycode": "xn--bcher-kva.contoso.com"}]})
    assert punycode.dns_names == ("xn--bcher-kva.contoso.com",)
    bare = certs.from_store_object({})
    assert (bare.thumbprint, bare.subject, bare.self_signed, bare.has_private_key) == ("?", "", False, False)
    assert bare.extended_key_usage is None and bare.dns_names == ()


def test_a_store_object_that_does_not_say_its_issuer_is_not_judged_on_it() -> None:
    unknown_issuer = {k: v for k, v in STORE.items() if k != "Issuer"}
    assert certs.store_problems(unknown_issuer, FQDN, {CA}, NOW) == ([], f"{T}, expires 2026-12-01")
    assert certs.from_store_object(unknown_issuer).issuer == ""
