"""The Add-AzurePackConnector output file: the providers' parser (providers/connector_output.py) and labsim's own
(labsim/hosts/wapconnector.py) held to one sample file, and to the files labsim's privileged endpoint writes.

The sample, tests/samples/AzurePack-06-27-15-50.txt, is inferred: the article names the file
(AzurePack-06-27-15-50.txt), AzurePackConnectorEndpoint and AuthenticationIdentityProviderPartner's Realm, never
the syntax; the JSON shape is host contract §8's. labsim writes the same shape into
\\\\su1fileserver\\SU1_Infrastructure_1\\AzurePackConnectorOutput (labsim/hosts/pep.py, output_file_text).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from labsim.hosts import LabRuntime
from labsim.hosts.pep import OUTPUT_DIR
from labsim.hosts.wapconnector import parse_output_file as labsim_parse
from providers import azure_pack_connector as apc
from providers import connector_output as co
from providers import tenant_api_trust as T
from providers.facts import tenant_api
from providers.facts.locations import OUTPUT_FILE_FILTER
from tests.labsim.hosts_helpers import ASDK, cmd, default_lab, pep_session, run, session

pytestmark = pytest.mark.unit
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "AzurePack-06-27-15-50.txt"


def sample() -> str:
    return SAMPLE.read_bytes().decode("utf-8")


def providers_fields(parsed: co.ConnectorOutput) -> dict[str, str]:
    """The providers' reading in the shape labsim's parser returns."""
    return {"Realm": parsed.realm, "Certificate": parsed.signing_certificate, "Endpoint": parsed.endpoint}


def test_sample_reads_alike_with_the_providers_and_labsim() -> None:
    text = sample()
    parsed = co.parse(text)
    assert labsim_parse(text) == providers_fields(parsed)
    raw = json.loads(text)
    assert (parsed.cloud_name, parsed.stack_cloud_name) == (raw["CloudName"], raw["AzureStackCloudName"])
    # Both resources read it through the one parser, each with its own tolerance.
    f = apc.parse_output_file(SAMPLE.name, text)
    assert (f.endpoint, f.realm, f.signing_certificate, f.cloud_name, f.stack_cloud_name) == (
        parsed.endpoint, parsed.realm, parsed.signing_certificate, parsed.cloud_name, parsed.stack_cloud_name)
    der = base64.b64decode(parsed.signing_certificate)
    x509.load_der_x509_certificate(der)  # a real certificate, as labsim's parser demands
    expected = tenant_api.TrustData(parsed.realm, parsed.endpoint, hashlib.sha1(der).hexdigest().upper())
    assert T.parse_data_file(text) == expected


def test_labsim_written_files_parse_with_the_providers_parser(tmp_path: Path) -> None:
    rt = LabRuntime.open(default_lab(), tmp_path / "state")
    clouds = [{"CloudName": "AzurePack_1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"},
              {"CloudName": "AzurePack_2", "CloudEndpoint": "https://wapcomputer2.contoso.com:40005"}]
    run(rt, pep_session(), cmd("Add-AzurePackConnector", AzurePackClouds=clouds, AzureStackCloudName="AzureStack")).ok()
    share = session(ASDK, "AZURESTACK\\AzureStackAdmin")
    listing = run(rt, share, cmd("Get-ChildItem", Path=OUTPUT_DIR, Filter=OUTPUT_FILE_FILTER)).ok().outputs
    assert len(listing) == len(clouds)
    shape = json.loads(sample())
    by_cloud = {}
    for entry in listing:
        name = entry.properties["Name"]
        text = run(rt, share, cmd("Get-Content", Path=entry.properties["FullName"], Raw=True)).ok().outputs[0]
        written = json.loads(text)
        # The sample keeps labsim's shape: same keys, at the same places.
        assert written.keys() == shape.keys() and written[co.KEY_PARTNER].keys() == shape[co.KEY_PARTNER].keys()
        f = apc.parse_output_file(name, text)
        assert labsim_parse(text) == providers_fields(co.parse(text))
        assert T.parse_data_file(text).realm == f.realm
        by_cloud[f.cloud_name] = f
    assert {n: f.endpoint for n, f in by_cloud.items()} == {c["CloudName"]: c["CloudEndpoint"] for c in clouds}
    assert {f.stack_cloud_name for f in by_cloud.values()} == {"AzureStack"}
    pep = rt.state.read().doc("AzS-ERCS01")["pep"]
    assert {(f.realm, f.signing_certificate) for f in by_cloud.values()} == {(pep["realm"], pep["token_signing_der"])}


# -- the parser's own rules ------------------------------------------------------------------------------------
def _doc(**partner: Any) -> dict[str, Any]:
    partner = {"Realm": "https://adfs/adfs/x/", "Certificate": "QUJD", **partner}
    return {"AzurePackConnectorEndpoint": "https://wap1:40005", "AuthenticationIdentityProviderPartner": partner}


def test_keys_match_without_regard_to_case_exact_first() -> None:
    lower = json.dumps({"azurepackconnectorendpoint": "https://wap1:40005", "cloudname": "A",
                        "authenticationidentityproviderpartner": {"realm": "https://adfs/adfs/x/",
                                                                  "CERTIFICATE": "QUJD"}})
    assert co.parse(lower) == co.ConnectorOutput("https://wap1:40005", "https://adfs/adfs/x/", "QUJD", "A", None)
    both = json.dumps(_doc(realm="https://other/adfs/y/"))
    assert co.parse(both).realm == "https://adfs/adfs/x/"


@pytest.mark.parametrize("content, fields", [
    ("[1]", co.OutputFields(is_object=False, has_partner=False)),
    (json.dumps({"AuthenticationIdentityProviderPartner": {"Realm": "r"}}), co.OutputFields(True, True, realm="r")),
    (json.dumps({"AzurePackConnectorEndpoint": 5, "AuthenticationIdentityProviderPartner": "x"}),
     co.OutputFields(True, False)),
    ("\ufeff" + json.dumps(_doc(Certificate=" not base64 ")),
     co.OutputFields(True, True, "https://wap1:40005", "https://adfs/adfs/x/", " not base64 ")),
])
def test_read_fields_takes_what_is_there(content: str, fields: co.OutputFields) -> None:
    assert co.read_fields(content) == fields


def test_not_json_says_where() -> None:
    with pytest.raises(co.NotJson, match=r"^is not JSON \(Expecting value at line 2\)$"):
        co.read_fields("\n?")


@pytest.mark.parametrize("content, reason", [
    (json.dumps({"AzurePackConnectorEndpoint": "", "AuthenticationIdentityProviderPartner": {}}),
     "AzurePackConnectorEndpoint is missing"),
    (json.dumps(_doc(Realm="")), "AuthenticationIdentityProviderPartner.Realm is missing"),
    (json.dumps(_doc(Certificate=None)), "AuthenticationIdentityProviderPartner.Certificate is missing"),
    (json.dumps(_doc(Certificate="QUJ")), "the signing certificate is not base64"),
])
def test_parse_refuses_an_incomplete_file(content: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}$"):
        co.parse(content)


@pytest.mark.parametrize("value, thumbprint", [
    ("QUJD", hashlib.sha1(b"ABC").hexdigest().upper()), ("QU\r\nJD ", hashlib.sha1(b"ABC").hexdigest().upper()),
    ("", None), ("   ", None), (None, None), (42, None), ("-----BEGIN CERTIFICATE-----QUJD", None),
])
def test_certificate_thumbprint(value: int | str | None, thumbprint: str | None) -> None:
    assert co.certificate_thumbprint(value) == thumbprint
