"""Each setting of the stack configuration: what it is when not given, and how far it may go, the refusal naming
the setting (its camelCase key under wapconnector) and the bound. A host's connection as the resources take it:
its CA by content, its own configuration name, its credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigurationError, CredentialConfig, parse_stack_config
from tests.unit.test_stack_config import SECRET, lab_raw

pytestmark = pytest.mark.unit

NS = "wapconnector"
CLOUD = {"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"}


def refused(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw)
    return err.value.problems


def test_what_a_stack_gets_when_it_sets_only_a_cloud() -> None:
    config = parse_stack_config({"clouds": [CLOUD]})
    assert (config.ca.common_name, config.ca.organization, config.ca.key_type, config.ca.validity_days) == (
        "WAP Connector Lab Root CA", None, "ecdsa-p256", 3650)
    cloud = config.clouds[0]
    assert (cloud.connector_port, cloud.certificate_validity_days, cloud.certificate_key_type) == (
        40005, 397, "ecdsa-p256")
    assert cloud.endpoint_fqdn == "wapcomputer1.contoso.com"
    assert cloud.endpoint == "https://wapcomputer1.contoso.com:40005"
    assert cloud.connector_certificate.source == "labCa" and cloud.adopt is None
    assert (config.adopt, config.preflight, config.provider_processes, config.hosts, config.credentials) == (
        False, "enforce", None, {}, {})


def test_the_connector_endpoint_answers_on_the_tenant_portal_name_unless_given_its_own() -> None:
    cloud = {"name": "A", "tenantPortalFqdn": "tenant.contoso.com", "connectorPort": 443}
    config = parse_stack_config({"clouds": [cloud, {**cloud, "name": "B", "connectorFqdn": "wap.contoso.com"}]})
    assert [c.endpoint for c in config.clouds] == ["https://tenant.contoso.com:443", "https://wap.contoso.com:443"]


def test_the_azure_stack_side_and_the_bundle_have_their_defaults() -> None:
    config = parse_stack_config(lab_raw(), SECRET)
    assert config.azure_stack is not None and config.bundle is not None
    raw = lab_raw()
    raw["azureStack"] = {k: v for k, v in raw["azureStack"].items() if k not in ("cloudName", "portalFqdn")}
    raw["bundle"] = {"sourceDir": raw["bundle"]["sourceDir"]}
    config = parse_stack_config(raw, SECRET)
    assert config.azure_stack is not None and config.bundle is not None
    assert (config.azure_stack.cloud_name, config.azure_stack.portal_fqdn) == (
        "AzureStack", "portal.local.azurestack.external")
    assert config.bundle.destination == "C:\\temp\\WAPConnector"


@pytest.mark.parametrize(("accepted", "beyond", "problem"), [
    ({"ca": {"commonName": "x" * 64}}, {"ca": {"commonName": "x" * 65}},
     "ca.commonName: String should have at most 64"),
    ({"ca": {"commonName": "x"}}, {"ca": {"commonName": ""}}, "ca.commonName: String should have at least 1"),
    ({"ca": {"organization": "x" * 64}}, {"ca": {"organization": "x" * 65}}, "ca.organization: String should have at "
                                                                            "most 64"),
    ({"ca": {"validityDays": 36500}}, {"ca": {"validityDays": 36501}}, "ca.validityDays: Input should be less than "
                                                                      "or equal to 36500"),
    ({"ca": {"validityDays": 31}}, {"ca": {"validityDays": 30}}, "ca.validityDays: 30 days is within the 30-day "
                                                                 "renewal window"),
    ({"clouds": [{**CLOUD, "connectorPort": 65535}]}, {"clouds": [{**CLOUD, "connectorPort": 65536}]},
     "clouds[0].connectorPort: Input should be less than or equal to 65535"),
    ({"clouds": [{**CLOUD, "connectorPort": 1}]}, {"clouds": [{**CLOUD, "connectorPort": 0}]},
     "clouds[0].connectorPort: Input should be greater than or equal to 1"),
    ({"clouds": [{**CLOUD, "certificateValidityDays": 3650}]}, {"clouds": [{**CLOUD, "certificateValidityDays": 3651}]},
     "clouds[0].certificateValidityDays: Input should be less than or equal to 3650"),
    ({"clouds": [{**CLOUD, "certificateValidityDays": 31}]}, {"clouds": [{**CLOUD, "certificateValidityDays": 30}]},
     "clouds[0].certificateValidityDays: 30 days is within the 30-day renewal window: the certificate would be "
     "renewed on every run; give more than 30"),
    ({"clouds": [{**CLOUD, "name": "x" * 64}]}, {"clouds": [{**CLOUD, "name": "x" * 65}]},
     "clouds[0].name: String should have at most 64"),
    ({"clouds": [{**CLOUD, "name": "Azure.Pack-1_x"}]}, {"clouds": [{**CLOUD, "name": "Azure Pack"}]},
     "clouds[0].name: String should match pattern"),
    ({"providerProcesses": 64}, {"providerProcesses": 65}, "providerProcesses: Input should be less than or equal "
                                                           "to 64"),
    ({"providerProcesses": 1}, {"providerProcesses": 0}, "providerProcesses: Input should be greater than or equal "
                                                         "to 1"),
    ({"preflight": "warn"}, {"preflight": "skip"}, "preflight: Input should be 'enforce' or 'warn'"),
])
def test_each_setting_is_bounded_and_its_refusal_names_it(accepted: dict[str, Any], beyond: dict[str, Any],
                                                          problem: str) -> None:
    parse_stack_config({"clouds": [CLOUD], **accepted})
    [found] = refused({"clouds": [CLOUD], **beyond})
    assert found.startswith(f"{NS}:{problem}"), found


def test_the_azure_stack_cloud_name_is_bounded_by_its_key() -> None:
    raw = lab_raw()
    raw["azureStack"]["cloudName"] = "x" * 65
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, SECRET)
    assert err.value.problems == [f"{NS}:azureStack.cloudName: String should have at most 64 characters"]


def test_a_host_connection_carries_a_ca_file_it_cannot_read_by_path_and_its_own_configuration_name(
        tmp_path: Path) -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"].update(caFile="ca.pem", configurationName="Microsoft.PowerShell")
    config = parse_stack_config(raw, SECRET)
    conn = config.connection("wapcomputer1", project_dir=tmp_path)
    assert conn["ca_file"] == str(tmp_path / "ca.pem") and "ca_pem" not in conn  # the connection names it
    assert conn["configuration_name"] == "Microsoft.PowerShell"
    assert config.connection("wapcomputer1", configuration_name="PrivilegedEndpoint", project_dir=tmp_path)[
        "configuration_name"] == "PrivilegedEndpoint"
    (tmp_path / "ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n\xff\n")
    conn = config.connection("wapcomputer1", project_dir=tmp_path)
    assert conn["ca_pem"] == "-----BEGIN CERTIFICATE-----\n\ufffd\n" and "ca_file" not in conn


def test_a_host_with_an_absolute_ca_file_reads_it_there() -> None:
    raw = lab_raw()
    raw["hosts"]["wapcomputer1"]["caFile"] = "/nonexistent/ca.pem"
    conn = parse_stack_config(raw, SECRET).connection("wapcomputer1", project_dir=Path("/project"))
    assert conn["ca_file"] == "/nonexistent/ca.pem"


def test_a_credential_prints_its_user_but_never_its_password() -> None:
    cred = CredentialConfig(username="CONTOSO\\WapAdmin", password="Sw0rdfish-9")
    assert str(cred) == repr(cred) == "CredentialConfig(username='CONTOSO\\\\WapAdmin', password='****')"


def test_a_missing_setting_says_where_to_set_it_and_a_missing_password_how() -> None:
    assert refused({}) == [f"{NS}:clouds: missing; set it in stacks/Pulumi.<stack>.yaml"]
    raw = lab_raw()
    del raw["credentials"]["wapcomputer1"]["password"]
    raw["credentials"]["wapcomputer2"]["password"] = ""
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, SECRET)
    assert err.value.problems == [
        f"{NS}:credentials.wapcomputer1.password: missing; set it with pulumi config set --secret --path "
        f"'{NS}:credentials.wapcomputer1.password'",
        f"{NS}:credentials.wapcomputer2.password: String should have at least 1 character"]


def test_a_plain_text_pfx_password_is_reported_once_though_both_the_engine_and_the_stack_file_show_it(
        tmp_path: Path) -> None:
    key = f"{NS}:clouds[0].connectorCertificate.pfxPassword"
    raw = {"clouds": [{**CLOUD, "connectorCertificate": {"source": "pfx", "pfxFile": "c.pfx", "pfxPassword": "p",
                                                         "issuingCaFile": "ca.cer"}}]}
    with pytest.raises(ConfigurationError) as err:
        parse_stack_config(raw, {f"{NS}:credentials"}, plain_paths={"clouds[0].connectorCertificate.pfxPassword"},
                           project_dir=tmp_path)
    assert err.value.problems == [f"{key}: in plain text; set it as a secret: pulumi config set --secret --path "
                                  f"'{key}'"]
