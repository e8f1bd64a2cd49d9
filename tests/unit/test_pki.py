"""Unit tables for the local PKI providers: every bad input gets one clear property error; good input issues a
CA-signed certificate with the requested SANs, and the diff replaces on any input change."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from providers.base import UNKNOWN
from providers.certs import KEY_USAGES, describe, is_self_signed, key_usage, load_certificate, public_key_matches
from providers.pki import CertificateAuthorityProvider, IssuedCertificateProvider
from tests.outs import outs_of

pytestmark = pytest.mark.unit

CA_INPUTS = {"common_name": "Unit CA", "organization": None, "key_type": "ecdsa-p256", "validity_days": 3650,
             "not_after": None, "renew_before_days": 30}


@pytest.fixture(scope="module")
def ca() -> dict:
    return outs_of(CertificateAuthorityProvider().create(dict(CA_INPUTS)))


@pytest.fixture(scope="module")
def other_ca() -> dict:
    return outs_of(CertificateAuthorityProvider().create({**CA_INPUTS, "common_name": "Other CA"}))


def leaf_inputs(ca: dict, **over: Any) -> dict:
    base = {"ca_cert_pem": ca["cert_pem"], "ca_private_key_pem": ca["private_key_pem"], "common_name": "wap1",
            "dns_names": ["wapcomputer1.contoso.com"], "ip_addresses": [], "key_type": "ecdsa-p256",
            "validity_days": 397, "not_after": None, "renew_before_days": 30}
    return {**base, **over}


def failures(provider: CertificateAuthorityProvider | IssuedCertificateProvider,
             props: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.property, f.reason) for f in provider.check({}, props).failures]


@pytest.mark.parametrize("over, prop, fragment", [
    ({"dns_names": [], "ip_addresses": []}, "dns_names", "at least one DNS name or IP address"),
    ({"key_type": "dsa-1024"}, "key_type", "'ecdsa-p256'"),
    ({"validity_days": None, "not_after": "2001-01-01T00:00:00Z"}, "not_after", "in the past"),
    ({"validity_days": None, "not_after": "next tuesday"}, "not_after", "ISO 8601"),
    ({"validity_days": 0}, "validity_days", "greater than 0"),
    ({"validity_days": None}, "validity_days", "exactly one of validity_days and not_after"),
    ({"dns_names": ["wap computer"]}, "dns_names", "is not a DNS name"),
    ({"dns_names": ["a.contoso.com", "A.contoso.com"]}, "dns_names", "listed twice"),
    ({"ip_addresses": ["300.1.1.1"]}, "ip_addresses", "not an IPv4 or IPv6 address"),
    ({"ca_cert_pem": "not a pem"}, "ca_cert_pem", "not a readable PEM certificate"),
    ({"validity_days": 5000}, "validity_days", "outlive its CA"),
    ({"validity_days": 20, "renew_before_days": 30}, "renew_before_days", "due for renewal at once"),
])
def test_issued_certificate_check_rejects(ca: dict[str, Any], over: dict[str, Any], prop: str, fragment: str) -> None:
    found = failures(IssuedCertificateProvider(), leaf_inputs(ca, **over))
    assert len(found) == 1, found
    assert found[0][0] == prop and fragment in found[0][1], found


def test_issued_certificate_check_rejects_a_key_of_another_ca(ca: dict[str, Any], other_ca: dict[str, Any]) -> None:
    found = failures(IssuedCertificateProvider(), leaf_inputs(ca, ca_private_key_pem=other_ca["private_key_pem"]))
    assert found == [("ca_private_key_pem", "does not belong to ca_cert_pem")]


def test_issued_certificate_check_rejects_a_leaf_as_issuer(ca: dict[str, Any]) -> None:
    leaf = outs_of(IssuedCertificateProvider().create(leaf_inputs(ca)))
    found = failures(IssuedCertificateProvider(), leaf_inputs(ca, ca_cert_pem=leaf["cert_pem"]))
    assert found and found[0][0] == "ca_cert_pem" and "not a CA certificate" in found[0][1]


def test_unknown_values_during_preview_are_not_errors(ca: dict[str, Any]) -> None:
    assert failures(IssuedCertificateProvider(), leaf_inputs(ca, ca_cert_pem=UNKNOWN, ca_private_key_pem=UNKNOWN)) == []


def test_ca_check_rejects_unknown_key_type_and_empty_name() -> None:
    found = failures(CertificateAuthorityProvider(), {**CA_INPUTS, "key_type": "ed448", "common_name": ""})
    assert sorted(p for p, _ in found) == ["common_name", "key_type"]


def test_issued_certificate_is_ca_signed_with_sans_and_a_matching_pfx(ca: dict[str, Any]) -> None:
    props = leaf_inputs(ca, dns_names=["wap1.contoso.com", "*.wap.contoso.com"], ip_addresses=["127.0.10.11"],
                        key_type="rsa-2048")
    outs = outs_of(IssuedCertificateProvider().create(props))
    cert = load_certificate(outs["cert_pem"])
    issuer = load_certificate(ca["cert_pem"])
    cert.verify_directly_issued_by(issuer)
    assert not is_self_signed(cert) and is_self_signed(issuer)
    assert public_key_matches(cert, outs["private_key_pem"])
    info = describe(cert)
    assert info.names("wap1.contoso.com") and info.names("x.wap.contoso.com")
    assert not info.names("a.b.wap.contoso.com") and not info.names("other.contoso.com")
    ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert [str(i) for i in ips] == ["127.0.10.11"]
    key, pfx_cert, chain = pkcs12.load_key_and_certificates(base64.b64decode(outs["pfx_base64"]),
                                                            outs["pfx_password"].encode())
    assert pfx_cert == cert and chain == [issuer]
    assert outs["thumbprint"] == outs["thumbprint"].upper() and len(outs["thumbprint"]) == 40
    assert outs["issuer_thumbprint"] == ca["thumbprint"]


def granted(pem: str) -> set[str]:
    """The key usages a certificate's KeyUsage extension grants; the extension must be critical."""
    ext = load_certificate(pem).extensions.get_extension_for_class(x509.KeyUsage)
    assert ext.critical
    return {u for u in KEY_USAGES if getattr(ext.value, u)}


@pytest.mark.parametrize("key_type, usages", [("ecdsa-p256", {"digital_signature"}),
                                              ("rsa-2048", {"digital_signature", "key_encipherment"})])
def test_a_server_certificate_may_sign_and_an_rsa_one_also_encipher_keys_nothing_more(ca: dict[str, Any],
                                                                                      key_type: str,
                                                                                      usages: set[str]) -> None:
    outs = outs_of(IssuedCertificateProvider().create(leaf_inputs(ca, key_type=key_type)))
    assert granted(outs["cert_pem"]) == usages


def test_the_ca_signs_certificates_and_revocation_lists(ca: dict[str, Any]) -> None:
    assert granted(ca["cert_pem"]) == {"digital_signature", "key_cert_sign", "crl_sign"}


def test_a_key_usage_of_another_spelling_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"not key usages: \['keyEncipherment'\]"):
        key_usage("digital_signature", "keyEncipherment")


def test_diff_is_empty_for_same_inputs_and_replaces_on_change(ca: dict[str, Any]) -> None:
    provider = IssuedCertificateProvider()
    props = leaf_inputs(ca)
    outs = outs_of(provider.create(props))
    assert provider.diff(outs["thumbprint"], outs, props).changes is False
    changed = provider.diff(outs["thumbprint"], outs, {**props, "dns_names": ["other.contoso.com"]})
    assert changed.changes and changed.replaces == ["dns_names"]
    unknown = provider.diff(outs["thumbprint"], outs, {**props, "ca_cert_pem": UNKNOWN})
    assert unknown.replaces == ["ca_cert_pem"]


def test_diff_renews_a_certificate_close_to_expiry(ca: dict[str, Any]) -> None:
    provider = IssuedCertificateProvider()
    props = leaf_inputs(ca)
    outs = outs_of(provider.create(props))
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    result = provider.diff(outs["thumbprint"], {**outs, "expires_at": soon}, props)
    assert result.changes and "expires_at" in (result.replaces or [])


def test_resources_declare_the_validity_given_and_every_generated_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """A not_after replaces the default validity_days; the generated outputs are declared (unknown until create),
    and the keys and PFX are secrets."""
    from providers.pki import CertificateAuthority, IssuedCertificate

    captured: list[tuple[dict[str, Any], Any]] = []

    def fake_init(self: object, provider: object, name: str, props: dict[str, Any], opts: Any = None) -> None:
        captured.append((props, opts))
        vars(self).update(props)  # the outputs a dependent resource takes (ca.cert_pem), as Pulumi sets them

    monkeypatch.setattr("pulumi.dynamic.Resource.__init__", fake_init)
    authority = CertificateAuthority("ca", common_name="Lab CA", not_after="2030-01-01T00:00:00Z")
    IssuedCertificate("leaf", ca=authority, common_name="wap", dns_names=["wap.contoso.com"])
    (ca_props, ca_opts), (leaf_props, _) = captured
    assert (ca_props["validity_days"], ca_props["not_after"]) == (None, "2030-01-01T00:00:00Z")
    assert (leaf_props["validity_days"], leaf_props["not_after"]) == (397, None)
    generated = ("cert_pem", "private_key_pem", "thumbprint", "expires_at", "serial_number", "valid_from")
    assert all(k in ca_props and ca_props[k] is None for k in generated)
    assert all(leaf_props[k] is None for k in (*generated, "chain_pem", "pfx_base64", "pfx_password",
                                               "issuer_thumbprint"))
    assert {"private_key_pem", "pfx_base64", "pfx_password"} <= set(ca_opts.additional_secret_outputs)
