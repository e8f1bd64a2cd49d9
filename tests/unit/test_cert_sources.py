"""The connector certificate sources: the fitness rules of providers/certs, and the
stack configuration's ``connectorCertificate`` keys with the operator's files (every bad PFX an operator can
bring), each problem one line naming the key, never the password."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.config import ConfigurationError, parse_stack_config, plain_text_paths
from providers import certs as K
from tests.cert_factory import NOW, Issued, org_ca, web_server_cert

pytestmark = pytest.mark.unit

FQDN = "wapcomputer1.contoso.com"
PASSWORD = "Pfx-S3cret-'$(x)"  # never appears in a message
ROOT = org_ca("Contoso Root CA")
ISSUING = org_ca("Contoso Issuing CA", parent=ROOT)
LEAF = web_server_cert(ISSUING, (FQDN,))


# -- certificate_problems --------------------------------------------------------------------------------------


def test_a_web_server_certificate_from_the_issuing_ca_is_fit() -> None:
    assert K.certificate_problems(LEAF.cert, fqdn=FQDN, issuer=ISSUING.cert) == []
    wildcard = web_server_cert(ISSUING, ("*.contoso.com",))
    assert K.certificate_problems(wildcard.cert, fqdn=FQDN, issuer=ISSUING.cert) == []


@pytest.mark.parametrize("cert, issuer, expected", [
    (web_server_cert(None), None, "is self-signed"),
    (ISSUING.cert, ROOT.cert, "is a CA certificate"),
    (web_server_cert(ISSUING, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1)), None,
     "expired on"),
    (web_server_cert(ISSUING, not_after=NOW + dt.timedelta(days=10)), None, "within 30 days: renew it first"),
    (web_server_cert(ISSUING, not_before=NOW + dt.timedelta(days=2)), None, "check the issuing machine's clock"),
    (web_server_cert(ISSUING, ("other.contoso.com",)), None, f"does not name {FQDN}"),
    (web_server_cert(ISSUING, ("*.other.contoso.com",)), None, "its DNS subject alternative names: *.other"),
    (web_server_cert(ISSUING, eku=None), None, "has no enhanced key usage"),
    (web_server_cert(ISSUING, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)), None, "is not for server authentication"),
    (web_server_cert(ISSUING, key_usage_signature=False), None, "allows neither digital signature"),
    (LEAF.cert, ROOT.cert, "was not issued by CA"),
    (LEAF.cert, org_ca("Contoso Issuing CA").cert, "was not issued by CA"),  # same name, other key
    (LEAF.cert, web_server_cert(ISSUING).cert, "is not a CA certificate"),
])
def test_each_unfit_certificate_is_named(cert: Issued | x509.Certificate, issuer: x509.Certificate | None,
                                         expected: str) -> None:
    found = K.certificate_problems(cert.cert if hasattr(cert, "cert") else cert, fqdn=FQDN, issuer=issuer)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    bad = web_server_cert(None, ("other.contoso.com",), eku=None,
                          not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1))
    found = K.certificate_problems(bad.cert, fqdn=FQDN, issuer=ISSUING.cert)
    assert len(found) == 5, found  # self-signed, expired, SAN, EKU, issuer


# -- PFX -------------------------------------------------------------------------------------------------------


def pfx_found(data: bytes, password: str = PASSWORD) -> list[str]:
    return K.pfx_problems(K.open_pfx(data, password), fqdn=FQDN, issuer=ISSUING.cert)


def test_a_pfx_exported_with_its_key_and_chain_is_fit() -> None:
    assert pfx_found(LEAF.pfx(PASSWORD)) == []
    assert pfx_found(LEAF.pfx("", chain=[ISSUING.cert]), "") == []  # an empty password, the issuing CA only


def test_a_wrong_password_does_not_open_it_and_is_not_echoed() -> None:
    with pytest.raises(ValueError) as err:
        K.open_pfx(LEAF.pfx(PASSWORD), "Guess-42")
    assert "does not open" in str(err.value) and "Guess-42" not in str(err.value)
    with pytest.raises(ValueError):
        K.open_pfx(b"not a pfx", PASSWORD)


@pytest.mark.parametrize("make, expected", [
    (lambda: LEAF.pfx(PASSWORD, with_key=False), "without its private key"),
    (lambda: LEAF.pfx(PASSWORD, key=web_server_cert(ISSUING).key), "private key does not belong"),
    (lambda: ISSUING.pfx(PASSWORD, with_key=False, chain=[]), "holds no certificate"),
    (lambda: LEAF.pfx(PASSWORD, chain=[]), "does not hold the chain"),
    (lambda: LEAF.pfx(PASSWORD, chain=[ISSUING.cert, ROOT.cert, org_ca("Fabrikam CA").cert]),
     "also holds certificates outside the chain"),
    (lambda: web_server_cert(ISSUING, ("other.contoso.com",)).pfx(PASSWORD), "does not name"),
    (lambda: web_server_cert(None).pfx(PASSWORD, chain=[]), "is self-signed"),
])
def test_each_bad_pfx_is_named(make: Callable[[], bytes], expected: str) -> None:
    found = pfx_found(make())
    assert any(expected in p for p in found), found
    assert all(PASSWORD not in p for p in found)


def test_a_pfx_whose_key_is_another_certificates_is_refused() -> None:
    other = web_server_cert(ISSUING)
    pfx = K.Pfx(other.key, LEAF.cert, [ISSUING.cert, ROOT.cert])
    assert any("private key does not belong" in p for p in K.pfx_problems(pfx, fqdn=FQDN, issuer=ISSUING.cert))
    assert any("without its private key" in p
               for p in K.pfx_problems(K.Pfx(None, LEAF.cert, [ISSUING.cert]), fqdn=FQDN, issuer=ISSUING.cert))


def test_chain_path_walks_up_by_signature() -> None:
    assert [c.subject for c in K.chain_path(ISSUING.cert, [ROOT.cert, org_ca("x").cert])] == \
        [ISSUING.cert.subject, ROOT.cert.subject]


# -- small parsers ---------------------------------------------------------------------------------------------


def test_thumbprints_as_copied_from_windows_are_normalized() -> None:
    t = LEAF.thumbprint
    spaced = "\u200e" + " ".join(t[i:i + 2] for i in range(0, 40, 2)).lower()
    assert K.normalize_thumbprint(spaced) == t
    for bad in ("", "AB12", t + "00", "Z" * 40):
        with pytest.raises(ValueError):
            K.normalize_thumbprint(bad)


def test_ca_files_are_pem_or_der_with_one_certificate() -> None:
    assert K.load_certificate_file(ISSUING.pem.encode()) == ISSUING.cert
    assert K.load_certificate_file(ISSUING.der) == ISSUING.cert
    for data, expected in [((ISSUING.pem + ROOT.pem).encode(), "holds 2 PEM certificates"),
                           (b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n", "holds a private key"),
                           (b"garbage", "neither a PEM nor a DER")]:
        with pytest.raises(ValueError, match=expected):
            K.load_certificate_file(data)


# -- the stack configuration -------------------------------------------------------------------------------------

KEY = "wapconnector:clouds[0].connectorCertificate"


def stack(cc: dict | None) -> dict:
    cloud: dict[str, Any] = {"name": "AzurePack_1", "tenantPortalFqdn": FQDN}
    if cc is not None:
        cloud["connectorCertificate"] = cc
    return {"clouds": [cloud]}


def files(tmp_path: Path, pfx: bytes | None = None, ca: bytes | None = None) -> dict:
    (tmp_path / "certs").mkdir(exist_ok=True)
    (tmp_path / "certs" / "connector.pfx").write_bytes(LEAF.pfx(PASSWORD) if pfx is None else pfx)
    (tmp_path / "certs" / "ca.cer").write_bytes(ISSUING.der if ca is None else ca)
    return {"source": "pfx", "pfxFile": "certs/connector.pfx", "pfxPassword": PASSWORD,
            "issuingCaFile": "certs/ca.cer"}


def config_problems(raw: dict, tmp_path: Path, secret_keys: set[str] | None = None, **kw: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, secret_keys, project_dir=tmp_path, **kw)
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value)
    return err.value.problems


def test_the_default_source_is_the_lab_ca() -> None:
    assert parse_stack_config(stack(None)).clouds[0].connector_certificate.source == "labCa"


def test_a_good_pfx_and_its_ca_validate_and_the_password_stays_hidden(tmp_path: Path) -> None:
    config = parse_stack_config(stack(files(tmp_path)), {"wapconnector:clouds"}, project_dir=tmp_path)
    cc = config.clouds[0].connector_certificate
    assert cc.source == "pfx" and PASSWORD not in repr(config) and PASSWORD not in str(config.clouds)
    absolute = {**files(tmp_path), "pfxFile": str(tmp_path / "certs" / "connector.pfx"),
                "issuingCaFile": str(tmp_path / "certs" / "ca.cer")}
    parse_stack_config(stack(absolute), project_dir=Path("/nonexistent"))


def test_a_store_thumbprint_is_normalized(tmp_path: Path) -> None:
    files(tmp_path)
    cc = {"source": "store", "thumbprint": " ".join(LEAF.thumbprint[i:i + 4] for i in range(0, 40, 4)).lower(),
          "issuingCaFile": "certs/ca.cer"}
    config = parse_stack_config(stack(cc), project_dir=tmp_path)
    assert config.clouds[0].connector_certificate.thumbprint == LEAF.thumbprint


@pytest.mark.parametrize("cc, expected", [
    ({"source": "pfx"}, [f"{KEY}.pfxFile: missing", f"{KEY}.pfxPassword: missing", f"{KEY}.issuingCaFile: missing"]),
    ({"source": "store"}, [f"{KEY}.thumbprint: missing", f"{KEY}.issuingCaFile: missing"]),
    ({"source": "labCa", "thumbprint": "AB" * 20}, [f"{KEY}.thumbprint: only for source store"]),
    ({"source": "store", "thumbprint": "AB" * 20, "issuingCaFile": "c.cer", "pfxFile": "x.pfx"},
     [f"{KEY}.pfxFile: only for source pfx"]),
    ({"source": "store", "thumbprint": "not-hex", "issuingCaFile": "c.cer"},
     [f"{KEY}.thumbprint: is not a certificate thumbprint"]),
    ({"source": "vault"}, [f"{KEY}.source: Input should be 'labCa', 'pfx' or 'store'"]),
    ({"source": "pfx", "pfxFile": "x.pfx", "pfxPassword": "p", "issuingCaFile": "c.cer", "pfxPasword": "typo"},
     [f"{KEY}.pfxPasword: unknown setting"]),
])
def test_keys_each_source_needs_or_refuses(cc: dict[str, str], expected: list[str], tmp_path: Path) -> None:
    found = config_problems(stack(cc), tmp_path)
    for e in expected:
        assert any(p.startswith(e) for p in found), (e, found)


def test_a_plain_text_password_is_refused(tmp_path: Path) -> None:
    found = config_problems(stack(files(tmp_path)), tmp_path, secret_keys={"wapconnector:credentials"})
    assert found == [f"{KEY}.pfxPassword: in plain text; set it as a secret: pulumi config set --secret --path "
                     f"'{KEY}.pfxPassword'"]
    # clouds holds another secret, but the stack file shows this password in plain text.
    found = config_problems(stack(files(tmp_path)), tmp_path, secret_keys={"wapconnector:clouds"},
                            plain_paths={"clouds[0].connectorCertificate.pfxPassword"})
    assert len(found) == 1 and "in plain text in the stack file" in found[0]


def test_plain_text_paths_reads_the_stack_file(tmp_path: Path) -> None:
    f = tmp_path / "Pulumi.lab.yaml"
    f.write_text("config:\n  wapconnector:clouds:\n    - name: A\n      connectorCertificate:\n"
                 "        pfxPassword: plain\n    - name: B\n      connectorCertificate:\n"
                 "        pfxPassword:\n          secure: v1:abc\n  other:clouds: {pfxPassword: x}\n")
    assert plain_text_paths(f) == {"clouds[0].connectorCertificate.pfxPassword"}
    assert plain_text_paths(tmp_path / "missing.yaml") == set()


OTHER = web_server_cert(org_ca("Fabrikam CA"), (FQDN,))


@pytest.mark.parametrize("pfx, ca, password, expected", [
    (b"", None, None, f"{KEY}.pfxPassword: does not open {KEY}.pfxFile"),
    (None, None, "wrong password", f"{KEY}.pfxPassword: does not open {KEY}.pfxFile"),
    (b"\x30\x82garbage", None, None, f"{KEY}.pfxPassword: does not open"),
    (LEAF.pfx(PASSWORD, with_key=False), None, None,
     f"{KEY}.pfxFile: holds certificate {LEAF.thumbprint} without its private key"),
    (LEAF.pfx(PASSWORD, key=web_server_cert(ISSUING).key), None, None,
     f"{KEY}.pfxFile: its private key does not belong"),
    (LEAF.pfx(PASSWORD, chain=[]), None, None, f"{KEY}.pfxFile: does not hold the chain"),
    (LEAF.pfx(PASSWORD, chain=[ISSUING.cert, org_ca("Fabrikam CA").cert]), None, None,
     f"{KEY}.pfxFile: also holds certificates outside the chain"),
    (web_server_cert(None).pfx(PASSWORD, chain=[]), None, None, f"{KEY}.pfxFile: certificate"),
    (web_server_cert(ISSUING, ("x.contoso.com",)).pfx(PASSWORD), None, None, f"does not name {FQDN}"),
    (web_server_cert(ISSUING, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=2))
     .pfx(PASSWORD), None, None, f"{KEY}.pfxFile: certificate"),
    (web_server_cert(ISSUING, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)).pfx(PASSWORD), None, None,
     "is not for server authentication"),
    (OTHER.pfx(PASSWORD), None, None, "was not issued by CA"),
    (None, ROOT.pem.encode() + ISSUING.pem.encode(), None, f"{KEY}.issuingCaFile: holds 2 PEM certificates"),
    (None, LEAF.pem.encode(), None, f"{KEY}.issuingCaFile: certificate {LEAF.thumbprint}"),
    (None, b"junk", None, f"{KEY}.issuingCaFile: is neither a PEM nor a DER certificate"),
])
def test_every_bad_pfx_or_ca_file_is_one_line_naming_the_key(tmp_path: Path, pfx: bytes | None, ca: bytes | None,
                                                             password: str | None, expected: str) -> None:
    cc = files(tmp_path, pfx, ca)
    if password is not None:
        cc["pfxPassword"] = password
    found = config_problems(stack(cc), tmp_path)
    assert any(expected in p for p in found), found
    assert all(p.startswith(f"{KEY}.") for p in found), found


def test_missing_files_name_the_key_and_the_path(tmp_path: Path) -> None:
    cc = {"source": "pfx", "pfxFile": "certs/none.pfx", "pfxPassword": PASSWORD, "issuingCaFile": "certs/none.cer"}
    found = config_problems(stack(cc), tmp_path)
    assert [p.split(":", 2)[1] for p in found] == ["clouds[0].connectorCertificate.issuingCaFile",
                                                   "clouds[0].connectorCertificate.pfxFile"], found
    assert all("cannot read" in p and str(tmp_path / "certs") in p for p in found)


def test_an_expired_issuing_ca_is_refused_for_the_store_source(tmp_path: Path) -> None:
    old = org_ca("Old CA", not_after=NOW - dt.timedelta(days=1))
    files(tmp_path, ca=old.der)
    found = config_problems(stack({"source": "store", "thumbprint": "AB" * 20, "issuingCaFile": "certs/ca.cer"}),
                            tmp_path)
    expired = f"{old.cert.not_valid_after_utc:%Y-%m-%d}"
    assert found == [f"{KEY}.issuingCaFile: CA certificate {old.thumbprint} expired on {expired}"]


def test_the_example_real_stack_validates_with_its_certificate_files(tmp_path: Path) -> None:
    """stacks/Pulumi.example-real.yaml, with the files it names and the secrets it asks for: no problem."""
    import yaml

    example = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.example-real.yaml"
    raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(example.read_text())["config"].items()}
    for cred in raw["credentials"].values():
        cred["password"] = "set-as-secret"
    clouds = raw["clouds"]
    pfx, store = clouds[0]["connectorCertificate"], clouds[1]["connectorCertificate"]
    assert (pfx["source"], store["source"]) == ("pfx", "store")
    pfx["pfxPassword"] = PASSWORD
    (tmp_path / "certs").mkdir()
    (tmp_path / pfx["pfxFile"]).write_bytes(web_server_cert(ISSUING, (clouds[0]["tenantPortalFqdn"],)).pfx(PASSWORD))
    (tmp_path / pfx["issuingCaFile"]).write_bytes(ISSUING.der)
    config = parse_stack_config(raw, {"wapconnector:credentials", "wapconnector:clouds"}, project_dir=tmp_path)
    assert config.clouds[1].connector_certificate.thumbprint == store["thumbprint"]
