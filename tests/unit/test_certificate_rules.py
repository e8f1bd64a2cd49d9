"""The connector certificate's fitness rules (providers/certs) where the defaults hide them: a renewal
margin other than 30 days, and the key usages TLS accepts for each kind of key (RSA key exchange needs
keyEncipherment; an EC key only signs, so only digitalSignature lets it serve TLS)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from providers import certificate as C
from providers import certs
from providers.transport import FakeTransport
from tests.cert_factory import Issued, org_ca

pytestmark = pytest.mark.unit

FQDN = "tenant.contoso.com"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@cache
def _ca() -> Issued:
    return org_ca()


@cache
def _key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    return rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())


def leaf(*, kind: str = "ec", days_left: int = 365, signature: bool = True, encipherment: bool = False,
         key_agreement: bool = False, not_after: dt.datetime | None = None, not_before: dt.datetime | None = None,
         names: tuple[str, ...] = (FQDN,)) -> x509.Certificate:
    """A web server certificate for ``names`` issued by the organization's CA, valid until NOW + ``days_left``."""
    ca, key = _ca(), _key(kind)
    usage = x509.KeyUsage(digital_signature=signature, key_encipherment=encipherment, key_agreement=key_agreement,
                          content_commitment=False, data_encipherment=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FQDN)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - dt.timedelta(days=30))
            .not_valid_after(not_after or NOW + dt.timedelta(days=days_left))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(usage, critical=True)
            .sign(ca.key, hashes.SHA256()))


def problems(cert: x509.Certificate, **kw: Any) -> list[str]:
    return certs.certificate_problems(cert, fqdn=FQDN, issuer=_ca().cert, now=NOW, **kw)


# -- the renewal margin -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("days_left, threshold, expiring", [
    (45, 30, False), (45, 60, True), (20, 10, False), (20, 30, True), (5, 0, False), (61, 60, False)])
def test_expiry_is_judged_on_the_callers_threshold(days_left: int, threshold: int, expiring: bool) -> None:
    found = problems(leaf(days_left=days_left), expiry_threshold_days=threshold)
    assert any(f"within {threshold} days" in p for p in found) is expiring, found
    assert not expiring or len(found) == 1


def test_the_default_threshold_is_30_days() -> None:
    assert any("within 30 days" in p for p in problems(leaf(days_left=29)))
    assert problems(leaf(days_left=31)) == []


def test_an_opened_pfx_is_judged_on_the_callers_threshold_too() -> None:
    cert, ca = leaf(days_left=45), _ca()
    pfx = certs.Pfx(_key("ec"), cert, [ca.cert])
    assert certs.pfx_problems(pfx, fqdn=FQDN, issuer=ca.cert, now=NOW) == []
    found = certs.pfx_problems(pfx, fqdn=FQDN, issuer=ca.cert, now=NOW, expiry_threshold_days=60)
    assert len(found) == 1 and "within 60 days" in found[0]


def test_the_certificate_resource_checks_its_own_threshold() -> None:
    from tests.cert_factory import make_ca, make_leaf

    ca = make_ca()
    soon = make_leaf(ca, not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=45))
    props = {"connection": {"fqdn": "wapcomputer1.contoso.com", "auth": "ntlm", "username": "u", "password": "p"},
             "store": "My", "cert_pem": soon.pem, "pfx_base64": soon.pfx_base64("pw"), "pfx_password": "pw",
             "serves_fqdns": ["wapcomputer1.contoso.com"], "staging_dir": "C:\\temp"}

    def reasons(days: int) -> list[str]:
        return [f.reason for f in C.CertificateProvider(FakeTransport({})).check(
            {}, {**props, "expiry_threshold_days": days}).failures]

    assert reasons(30) == []
    assert any("expiry_threshold_days (60)" in r for r in reasons(60))


# -- key usage ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, signature, encipherment, fit", [
    ("ec", True, False, True),
    ("ec", False, True, False),   # an EC key cannot encipher a key exchange: keyEncipherment does not make it fit
    ("ec", False, False, False),
    ("rsa", True, False, True),
    ("rsa", False, True, True),   # RSA key exchange
    ("rsa", False, False, False),
])
def test_key_usage_that_tls_can_use_depends_on_the_key(kind: str, signature: bool, encipherment: bool,
                                                       fit: bool) -> None:
    cert = leaf(kind=kind, signature=signature, encipherment=encipherment, key_agreement=not (signature or
                                                                                            encipherment))
    found = certs.usage_problems(cert)
    assert (found == []) is fit, found
    if not fit:
        assert "allows neither digital signature nor key encipherment" in found[0]
        assert problems(cert) == found


# -- reading what the operator gives ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["AB" * 19, "ZZ" * 20, "", "AB" * 21])
def test_a_thumbprint_that_is_not_40_hex_digits_says_where_to_copy_one(value: str) -> None:
    with pytest.raises(ValueError) as err:
        certs.normalize_thumbprint(value)
    assert str(err.value) == ("is not a certificate thumbprint (40 hexadecimal digits, as Get-ChildItem "
                              "Cert:\\LocalMachine\\My shows it)")


def test_a_thumbprint_copied_from_the_certificate_dialog_is_cleaned() -> None:
    assert certs.normalize_thumbprint("\u200eab cd:" + "ef" * 18) == "ABCD" + "EF" * 18


@pytest.mark.parametrize("data, message", [
    (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "is not a readable PEM certificate"),
    (b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
     "holds a private key, not a certificate; give the CA's certificate (.cer) only"),
    (b"\x30\x03junk", "is neither a PEM nor a DER certificate (export it as .cer, Base-64 or DER)"),
])
def test_a_file_that_is_not_one_certificate_says_what_it_holds(data: bytes, message: str) -> None:
    with pytest.raises(ValueError) as err:
        certs.load_certificate_file(data)
    assert str(err.value) == message


def test_a_file_of_two_pem_certificates_is_refused_counting_them() -> None:
    pem = certs.to_pem(_ca().cert).encode()
    with pytest.raises(ValueError) as err:
        certs.load_certificate_file(pem + pem)
    assert str(err.value) == "holds 2 PEM certificates; give the issuing CA's certificate alone"
    assert certs.load_certificate_file(pem) == _ca().cert


# -- the edges of validity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("not_after, words", [
    (NOW, "expired on 2026-06-01"),                                      # ends now: already unusable
    (NOW + dt.timedelta(seconds=1), "within 30 days"),
    (NOW + dt.timedelta(days=30), "within 30 days"),                     # exactly the margin: renew
    (NOW + dt.timedelta(days=30, seconds=1), None),
])
def test_expiry_at_its_edges(not_after: dt.datetime, words: str | None) -> None:
    cert = leaf(not_after=not_after)
    found = problems(cert)
    assert (found == []) if words is None else (len(found) == 1 and words in found[0]), found
    if words:
        assert found[0].startswith(f"certificate {certs.thumbprint(cert)} ")


@pytest.mark.parametrize("ahead, flagged", [(dt.timedelta(minutes=1), False), (dt.timedelta(minutes=5), False),
                                            (dt.timedelta(minutes=5, seconds=1), True)])
def test_a_certificate_valid_from_a_few_minutes_ahead_is_clock_skew_not_a_problem(ahead: dt.timedelta,
                                                                                   flagged: bool) -> None:
    found = problems(leaf(not_before=NOW + ahead))
    assert any("is not valid before" in p and "check the issuing machine's clock" in p for p in found) is flagged


@pytest.mark.parametrize("names, shown", [(("a.contoso.com", "b.contoso.com"), "a.contoso.com, b.contoso.com")])
def test_a_name_mismatch_lists_the_names_the_certificate_has(names: tuple[str, ...], shown: str) -> None:
    cert = leaf(names=names)
    [found] = problems(cert)
    assert found == (f"certificate {certs.thumbprint(cert)} does not name {FQDN} (its DNS subject "
                     f"alternative names: {shown}): issue it with {FQDN} as a subject alternative name")


def test_a_certificate_without_names_says_none() -> None:
    ca, key = _ca(), _key("ec")
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FQDN)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    [found] = problems(cert)
    assert "(its DNS subject alternative names: none)" in found


def test_a_key_usage_problem_names_the_certificate() -> None:
    cert = leaf(signature=False, key_agreement=True)
    assert certs.usage_problems(cert) == [
        f"certificate {certs.thumbprint(cert)}'s key usage allows neither digital signature nor key "
        f"encipherment: TLS cannot use it"]


# -- PFX files --------------------------------------------------------------------------------------------------------
def test_a_pfx_that_does_not_open_says_so_without_the_password() -> None:
    with pytest.raises(ValueError) as err:
        certs.open_pfx(b"not a pfx", "Pfx-Secret-9")
    assert str(err.value) == "does not open the PFX (a wrong password, or the file is not PKCS#12)"


def test_a_pfx_without_its_key_finds_its_certificate_among_the_extras() -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    cert, ca = leaf(), _ca()
    data = pkcs12.serialize_key_and_certificates(b"x", None, None, [ca.cert, cert], BestAvailableEncryption(b"pw"))
    pfx = certs.open_pfx(data, "pw")
    assert pfx.key is None and pfx.certificate == cert and pfx.chain == [ca.cert]


def test_a_pfx_without_any_certificate_says_so() -> None:
    assert certs.pfx_problems(certs.Pfx(None, None), fqdn=FQDN, issuer=None) == ["holds no certificate"]


def test_the_issuer_is_found_among_look_alikes() -> None:
    """Two CAs with the same name: the one that signed the certificate is found, whichever comes first."""
    real, twin = _ca(), org_ca()  # org_ca names every CA alike
    cert = leaf()
    assert twin.cert.subject == real.cert.subject
    assert certs.issuer_in([twin.cert, real.cert], cert) == real.cert
    assert certs.issuer_in([twin.cert], cert) is None


def test_unrelated_certificates_in_a_pfx_are_each_named() -> None:
    ca, other1, other2 = _ca(), org_ca("Other CA 1"), org_ca("Other CA 2")
    cert = leaf()
    [found] = certs.chain_problems(cert, [ca.cert, other1.cert, other2.cert], ca.cert)
    thumbs = [certs.thumbprint(c.cert) for c in (other1, other2)]
    assert f"({thumbs[0]}, {thumbs[1]})" in found
