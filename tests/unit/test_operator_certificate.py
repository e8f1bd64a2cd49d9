"""The operator's connector certificate as the stack loads it from this machine: what a good PFX or store source
gives the resources (the certificate, its issuer, when it expires), and what a bad issuing CA file does to the
rest of the judgement (one problem, about that file: the PFX is not judged against a CA that cannot be one)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from components.config import CloudConfig, OperatorCertificate, operator_certificate
from tests.cert_factory import NOW, Issued, org_ca, web_server_cert

pytestmark = pytest.mark.unit

FQDN = "wapcomputer1.contoso.com"
KEY = "wapconnector:clouds[0].connectorCertificate"
PASSWORD = "Pfx-Op3rator-Not-Real"
ISSUING = org_ca("Contoso Issuing CA")
LEAF = web_server_cert(ISSUING, (FQDN,))


def cloud(**certificate: Any) -> CloudConfig:
    return CloudConfig.model_validate({"name": "AzurePack_1", "tenantPortalFqdn": FQDN,
                                       "connectorCertificate": certificate})


def pfx_cloud(tmp_path: Path, leaf: Issued = LEAF, ca: bytes = ISSUING.der) -> CloudConfig:
    (tmp_path / "connector.pfx").write_bytes(leaf.pfx(PASSWORD))
    (tmp_path / "ca.cer").write_bytes(ca)
    return cloud(source="pfx", pfxFile="connector.pfx", pfxPassword=PASSWORD, issuingCaFile="ca.cer")


def test_a_good_pfx_gives_its_certificate_its_issuer_and_when_it_expires(tmp_path: Path) -> None:
    found, problems = operator_certificate(pfx_cloud(tmp_path), KEY, tmp_path)
    assert problems == []
    assert found is not None and found.source == "pfx"
    assert (found.thumbprint, found.issuer_thumbprint) == (LEAF.thumbprint, ISSUING.thumbprint)
    assert (found.cert_pem, found.issuer_pem) == (LEAF.pem, ISSUING.pem)
    assert found.expires_at == LEAF.cert.not_valid_after_utc.isoformat()
    assert found.pfx_base64 is not None and PASSWORD not in repr(found)


def test_a_store_certificate_gives_the_configured_thumbprint_and_its_issuer(tmp_path: Path) -> None:
    (tmp_path / "ca.cer").write_bytes(ISSUING.der)
    found, problems = operator_certificate(cloud(source="store", thumbprint=LEAF.thumbprint, issuingCaFile="ca.cer"),
                                           KEY, tmp_path)
    assert problems == [] and found == OperatorCertificate("store", ISSUING.pem, ISSUING.thumbprint, LEAF.thumbprint)
    assert found.expires_at is None and found.cert_pem is None  # known only from the hosts


def test_a_store_certificate_whose_ca_file_cannot_be_read_gives_nothing_but_the_problem(tmp_path: Path) -> None:
    (tmp_path / "ca.cer").write_bytes(b"not a certificate")
    found, problems = operator_certificate(cloud(source="store", thumbprint=LEAF.thumbprint, issuingCaFile="ca.cer"),
                                           KEY, tmp_path)
    assert found is None
    assert problems == [f"{KEY}.issuingCaFile: is neither a PEM nor a DER certificate (export it as .cer, Base-64 "
                        f"or DER)"]


def test_the_lab_ca_source_reads_no_file(tmp_path: Path) -> None:
    assert operator_certificate(cloud(), KEY, tmp_path) == (None, [])


def test_a_ca_file_that_is_no_ca_is_the_one_problem_of_an_otherwise_good_pfx(tmp_path: Path) -> None:
    """The PFX is still opened and judged on its own, but not against a 'CA' that is none: one line, the file's."""
    found, problems = operator_certificate(pfx_cloud(tmp_path, ca=LEAF.der), KEY, tmp_path)
    assert found is None
    assert problems == [f"{KEY}.issuingCaFile: certificate {LEAF.thumbprint} "
                        f"({LEAF.cert.subject.rfc4514_string()}) is not a CA certificate: give the issuing CA's"]


def test_an_issuing_ca_is_expired_from_the_moment_it_ends(tmp_path: Path) -> None:
    (tmp_path / "ca.cer").write_bytes(ISSUING.der)
    store = cloud(source="store", thumbprint=LEAF.thumbprint, issuingCaFile="ca.cer")
    ends = ISSUING.cert.not_valid_after_utc
    assert operator_certificate(store, KEY, tmp_path, now=ends - dt.timedelta(seconds=1))[1] == []
    assert operator_certificate(store, KEY, tmp_path, now=ends)[1] == [
        f"{KEY}.issuingCaFile: CA certificate {ISSUING.thumbprint} expired on {ends:%Y-%m-%d}"]


def test_a_pfx_that_cannot_be_read_is_named_with_the_ca_files_problem(tmp_path: Path) -> None:
    """Both files are reported at once, the CA file first."""
    (tmp_path / "ca.cer").write_bytes(b"junk")
    c = cloud(source="pfx", pfxFile="missing.pfx", pfxPassword=PASSWORD, issuingCaFile="ca.cer")
    found, problems = operator_certificate(c, KEY, tmp_path)
    missing = tmp_path / "missing.pfx"
    assert found is None and problems == [
        f"{KEY}.issuingCaFile: is neither a PEM nor a DER certificate (export it as .cer, Base-64 or DER)",
        f"{KEY}.pfxFile: cannot read {missing} (No such file or directory): give the path of the file, relative "
        f"to the project directory or absolute"]


def test_an_absolute_path_is_read_where_it_points_whatever_the_project_directory(tmp_path: Path) -> None:
    pfx_cloud(tmp_path)
    c = cloud(source="pfx", pfxFile=str(tmp_path / "connector.pfx"), pfxPassword=PASSWORD,
              issuingCaFile=str(tmp_path / "ca.cer"))
    found, problems = operator_certificate(c, KEY, tmp_path / "elsewhere")
    assert problems == [] and found is not None and found.thumbprint == LEAF.thumbprint


def test_a_pfx_that_expires_soon_is_refused_against_todays_date(tmp_path: Path) -> None:
    soon = web_server_cert(ISSUING, (FQDN,), not_after=NOW + dt.timedelta(days=10))
    found, problems = operator_certificate(pfx_cloud(tmp_path, leaf=soon), KEY, tmp_path)
    assert found is None and len(problems) == 1
    assert problems[0].startswith(f"{KEY}.pfxFile: certificate {soon.thumbprint} expires on") and \
        "within 30 days" in problems[0]


def test_the_pfx_is_judged_at_the_time_given_not_only_its_ca(tmp_path: Path) -> None:
    later = LEAF.cert.not_valid_after_utc + dt.timedelta(days=1)  # the CA is still valid then
    found, problems = operator_certificate(pfx_cloud(tmp_path), KEY, tmp_path, now=later)
    assert found is None and problems == [
        f"{KEY}.pfxFile: certificate {LEAF.thumbprint} expired on {LEAF.cert.not_valid_after_utc:%Y-%m-%d}: issue a "
        f"new one"]
