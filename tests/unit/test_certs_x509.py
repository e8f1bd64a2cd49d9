"""What providers/certs reads from an X.509 certificate: the names Windows knows it by (thumbprint, DNS names as
the SAN lists them, lower-cased), the kind of key and the key usages it allows, the enhanced key usages, whether
it is a CA or self-signed (by signature, not by name), and whether a private key is its own."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from providers import certs
from tests.cert_factory import org_ca, web_server_cert

pytestmark = pytest.mark.unit

NOW = dt.datetime.now(dt.UTC)
ISSUING = org_ca("Contoso Issuing CA")


def certificate(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, *,
                signer: ec.EllipticCurvePrivateKey | None = None, issuer: x509.Name | None = None,
                extensions: tuple[x509.ExtensionType, ...] = (), cn: str = "wapcomputer1.contoso.com"
                ) -> x509.Certificate:
    """A certificate for ``key``, signed by ``signer`` (default: the issuing CA), with only ``extensions``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or ISSUING.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=90)))
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer or ISSUING.key, hashes.SHA256())


def usage(**bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign")
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names}, encipher_only=False, decipher_only=False)


def test_the_thumbprint_is_the_sha1_of_the_certificate_in_upper_case_hex() -> None:
    der = ISSUING.cert.public_bytes(serialization.Encoding.DER)
    assert certs.thumbprint(ISSUING.cert) == hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - Windows' name


def test_a_certificate_is_read_from_pem_text_or_bytes_and_written_back_as_pem() -> None:
    pem = certs.to_pem(ISSUING.cert)
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert certs.load_certificate(pem) == certs.load_certificate(pem.encode()) == ISSUING.cert


def test_dns_names_are_the_sans_lower_cased_and_none_without_a_san() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("WapComputer1.Contoso.COM"),
                                       x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                                       x509.DNSName("*.Api.contoso.com")])
    assert certs.dns_names(certificate(key, extensions=(san,))) == ["wapcomputer1.contoso.com", "*.api.contoso.com"]
    assert certs.dns_names(certificate(key)) == []


@pytest.mark.parametrize(("key", "kind"), [
    (rsa.generate_private_key(65537, 2048), "rsa"),
    (ec.generate_private_key(ec.SECP256R1()), "ec"),
    (ed25519.Ed25519PrivateKey.generate(), "other"),
])
def test_the_kind_of_key_is_described(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                                      | ed25519.Ed25519PrivateKey, kind: str) -> None:
    assert certs.describe(certificate(key)).key_kind == kind


def test_a_key_other_than_rsa_cannot_use_key_encipherment_for_tls() -> None:
    cert = certificate(ed25519.Ed25519PrivateKey.generate(), extensions=(usage(key_encipherment=True),))
    assert not certs.describe(cert).tls_key_usage


def test_the_key_usages_set_are_named_and_none_means_no_restriction() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    every = usage(digital_signature=True, content_commitment=True, key_encipherment=True, data_encipherment=True,
                  key_agreement=True, key_cert_sign=True, crl_sign=True)
    assert certs.describe(certificate(key, extensions=(every,))).key_usage == frozenset({
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
        "key_cert_sign", "crl_sign"})
    assert certs.describe(certificate(key, extensions=(usage(crl_sign=True),))).key_usage == frozenset({"crl_sign"})
    unrestricted = certs.describe(certificate(key))
    assert unrestricted.key_usage is None and unrestricted.tls_key_usage


def test_the_enhanced_key_usages_are_their_oids_and_an_absent_extension_is_none_listed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH])
    assert certs.describe(certificate(key, extensions=(eku,))).extended_key_usage == (
        "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1")
    assert certs.describe(certificate(key)).extended_key_usage == ()


def test_a_ca_is_known_by_its_basic_constraints() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert certs.is_ca(ISSUING.cert) and certs.describe(ISSUING.cert).is_ca
    assert not certs.is_ca(certificate(key, extensions=(x509.BasicConstraints(ca=False, path_length=None),)))
    assert not certs.is_ca(certificate(key))


def test_self_signed_means_signed_by_its_own_key_not_only_named_after_itself() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wapcomputer1.contoso.com")])
    own = certificate(key, signer=key, issuer=name)
    look_alike = certificate(key, signer=ISSUING.key, issuer=name)  # its own name as issuer, the CA's signature
    assert certs.is_self_signed(own) and certs.describe(own).self_signed
    assert not certs.is_self_signed(look_alike)
    assert not certs.is_self_signed(web_server_cert(ISSUING).cert)


def test_a_certificate_is_signed_by_its_issuer_only() -> None:
    leaf = web_server_cert(ISSUING)
    assert certs.signed_by(leaf.cert, ISSUING.cert)
    assert not certs.signed_by(leaf.cert, org_ca("Contoso Issuing CA").cert)  # same name, another key
    assert not certs.signed_by(ISSUING.cert, leaf.cert)


def test_a_private_key_matches_only_its_own_certificate_in_pem_text_or_bytes() -> None:
    leaf, other = web_server_cert(ISSUING), web_server_cert(ISSUING)
    pem = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    assert certs.public_key_matches(leaf.cert, pem) and certs.public_key_matches(leaf.cert, pem.decode())
    assert not certs.public_key_matches(other.cert, pem)
    assert certs.key_matches(leaf.cert, leaf.key) and not certs.key_matches(other.cert, leaf.key)


def test_the_description_carries_what_the_certificate_says() -> None:
    leaf = web_server_cert(ISSUING, ("wapcomputer1.contoso.com", "wap.contoso.com"))
    info = certs.describe(leaf.cert, has_private_key=True)
    assert info.thumbprint == leaf.thumbprint
    assert (info.subject, info.issuer) == ("CN=wapcomputer1.contoso.com,O=Contoso", "CN=Contoso Issuing CA,O=Contoso")
    assert info.dns_names == ("wapcomputer1.contoso.com", "wap.contoso.com")
    assert (info.not_before, info.not_after) == (leaf.cert.not_valid_before_utc, leaf.cert.not_valid_after_utc)
    assert info.has_private_key is True and certs.describe(leaf.cert).has_private_key is None
    assert not info.is_ca and not info.self_signed


def test_a_pem_file_with_one_certificate_among_other_text_is_read() -> None:
    data = b"Subject: CN=Contoso Issuing CA\n" + certs.to_pem(ISSUING.cert).encode() + b"\n"
    assert certs.load_certificate_file(data) == ISSUING.cert
