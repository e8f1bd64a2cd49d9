"""How the Add-AzurePackConnector output file's keys are read (providers/connector_output.py): without regard to
case, as ConvertFrom-Json does, but a key spelled exactly as documented wins over a differently cased twin
wherever it stands in the file; and a CloudName that is empty names no cloud, so the file is matched to its cloud
by endpoint. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from providers import azure_pack_connector as apc
from providers import connector_output as co

pytestmark = pytest.mark.unit

ENDPOINT = "https://wapcomputer1.contoso.com:40005"
REALM = "https://adfs.local.azurestack.external/adfs/x/"


def text(pairs: Iterable[tuple[str, object]],
         partner_pairs: Iterable[tuple[str, object]] = (("Realm", REALM), ("Certificate", "QUJD"))) -> str:
    """A JSON object written in the given key order (duplicates up to case are allowed in JSON)."""
    partner = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in partner_pairs) + "}"
    body = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs]
    return "{" + ", ".join([*body, f'"AuthenticationIdentityProviderPartner": {partner}']) + "}"


@pytest.mark.parametrize("twin_first", [True, False])
def test_the_exact_key_wins_over_its_twin_in_any_order(twin_first: bool) -> None:
    top = [("cloudname", "Twin"), ("CloudName", "Exact")]
    top += [("azurepackconnectorendpoint", "https://twin:40005"), ("AzurePackConnectorEndpoint", ENDPOINT)]
    partner = [("realm", "https://twin/adfs/"), ("Realm", REALM), ("CERTIFICATE", "VFdJTg=="), ("Certificate", "QUJD")]
    if not twin_first:
        top, partner = top[::-1], partner[::-1]
    parsed = co.parse(text(top, partner))
    assert (parsed.cloud_name, parsed.endpoint, parsed.realm, parsed.signing_certificate) == (
        "Exact", ENDPOINT, REALM, "QUJD")


def test_a_key_in_another_case_alone_is_read() -> None:
    parsed = co.parse(text([("CLOUDNAME", "Lower"), ("azurepackconnectorendpoint", ENDPOINT)],
                           [("REALM", REALM), ("certificate", "QUJD")]))
    assert (parsed.cloud_name, parsed.endpoint, parsed.realm) == ("Lower", ENDPOINT, REALM)


@pytest.mark.parametrize("cloud_name", ["", None])
def test_an_empty_or_absent_cloud_name_names_no_cloud(cloud_name: str | None) -> None:
    pairs = [("AzurePackConnectorEndpoint", ENDPOINT), ("AzureStackCloudName", "")]
    if cloud_name is not None:
        pairs.append(("CloudName", cloud_name))
    parsed = co.parse(text(pairs))
    assert parsed.cloud_name is None and parsed.stack_cloud_name is None


def test_a_file_with_an_empty_cloud_name_is_matched_to_its_cloud_by_endpoint() -> None:
    f = apc.parse_output_file("AzurePack-06-27-15-50.txt", text([("CloudName", ""), ("AzurePackConnectorEndpoint",
                                                                                     ENDPOINT)]))
    known = [{"cloud_name": "Other", "cloud_endpoint": "https://wap2.contoso.com:40005"},
             {"cloud_name": "WapCloud1", "cloud_endpoint": ENDPOINT}]
    assert list(apc.observed_clouds(apc.AzurePackConnectorObserved(files=(f,)), known)) == ["WapCloud1"]


@pytest.mark.parametrize("certificate", ["QUJD*", "QUJD QUJ!", "-----BEGIN CERTIFICATE-----\nQU$JD\n"])
def test_a_signing_certificate_with_characters_outside_base64_is_refused(certificate: str) -> None:
    with pytest.raises(ValueError, match="^the signing certificate is not base64$"):
        co.clean_certificate(certificate)


def test_armour_and_line_breaks_are_not_part_of_the_certificate() -> None:
    assert co.clean_certificate("-----BEGIN CERTIFICATE-----\r\nQU\nJD\n-----END CERTIFICATE-----\n") == "QUJD"


@pytest.mark.parametrize("content", ["[]", "42", '"text"', "null"])
def test_a_file_that_is_not_an_object_says_so(content: str) -> None:
    with pytest.raises(ValueError) as err:
        co.parse(content)
    assert str(err.value) == "expected a JSON object"
