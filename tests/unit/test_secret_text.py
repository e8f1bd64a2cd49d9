"""Every object that holds a password or a PFX prints none of it: not with repr(), str(), an f-string, %s or
format(). A log line, an exception message or a debugger shows the object, never the secret it carries."""

from __future__ import annotations

import base64

import pytest

from components.config import (
    ConnectorCertificateConfig,
    CredentialConfig,
    OperatorCertificate,
    StackConfig,
    parse_stack_config,
)
from providers import certificate as C
from providers import connector_site as cs
from providers import tenant_api_trust as T
from providers.transport import Credential, HostConnection, Secret
from tests.cert_factory import make_ca, make_leaf
from tests.providers.test_tenant_api_trust import trust_props

pytestmark = pytest.mark.unit

PASSWORD = "Sw0rdfish-Not-Real-9"
PFX_PASSWORD = "Pfx-Secret-Not-Real-7"
CA = make_ca()
LEAF = make_leaf(CA)
PFX_B64 = LEAF.pfx_base64(PFX_PASSWORD)
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
        "username": "CONTOSO\\WapAdmin", "password": PASSWORD}


def stack_config() -> StackConfig:
    return parse_stack_config({
        "azureStack": {"privilegedEndpoint": "pep", "userPortalHost": "wap", "shareHost": "wap"},
        "hosts": {"pep": {"fqdn": "pep.contoso.com", "auth": "credssp", "credential": "c"},
                  "wap": {"fqdn": "wap.contoso.com", "credential": "c"}},
        "credentials": {"c": {"username": "CONTOSO\\admin", "password": PASSWORD}},
        "bundle": {"sourceDir": "bundle"},
        "clouds": [{"name": "C1", "tenantPortalFqdn": "tenant.contoso.com", "tenantApiFqdn": "api.contoso.com",
                    "tenantPortalHosts": ["wap"],
                    "tenantApiHosts": ["wap"]}],
    })


SECRET_BEARERS = {
    "CredentialConfig": lambda: CredentialConfig(username="CONTOSO\\admin", password=PASSWORD),
    "StackConfig": stack_config,
    "StackConfig.credentials": lambda: stack_config().credentials,
    "ConnectorCertificateConfig": lambda: ConnectorCertificateConfig(
        source="pfx", pfx_file="c.pfx", pfx_password=PASSWORD, issuing_ca_file="ca.cer"),
    "OperatorCertificate": lambda: OperatorCertificate("pfx", CA.pem, CA.thumbprint, LEAF.thumbprint,
                                                       cert_pem=LEAF.pem, pfx_base64=PFX_B64),
    "HostConnection": lambda: HostConnection(**CONN),
    "Secret": lambda: Secret(PASSWORD),
    "Credential": lambda: Credential("CONTOSO\\admin", Secret(PASSWORD)),
    "TenantApiTrustInputs": lambda: T.TenantApiTrustInputs.parse({
        **trust_props(), "connection": CONN, "sql_credential": {"username": "sa", "password": PASSWORD}}),
    "CertificateInputs": lambda: C.CertificateInputs.parse({
        "connection": CONN, "store": "My", "cert_pem": LEAF.pem, "pfx_base64": PFX_B64,
        "pfx_password": PFX_PASSWORD, "serves_fqdns": ["wapcomputer1.contoso.com"]}),
    "ConnectorSiteInputs": lambda: cs.ConnectorSiteInputs.parse({
        "connection": CONN, "tenant_portal_fqdn": "wapcomputer1.contoso.com",
        "tenant_api_fqdn": "wapcomputer1.contoso.com", "azure_stack_portal_fqdn": "portal.local.azurestack.external"}),
}

# A secret shows in any of these forms if it shows at all (the PFX: any 24 characters of its base64).
SECRETS = [PASSWORD, PFX_PASSWORD, *(PFX_B64[i:i + 24] for i in range(0, len(PFX_B64) - 24, 24)),
           base64.b64decode(PFX_B64)[:16].hex()]


def printed_forms(obj: object) -> dict[str, str]:
    old_style = "%s" % (obj,)  # noqa: UP031 - the form a log call's arguments take
    return {"repr": repr(obj), "str": str(obj), "f-string": f"{obj}", "f-string !r": f"{obj!r}", "%s": old_style,
            "format": format(obj), "in a list": str([obj]), "in a dict": str({"k": obj})}


@pytest.mark.parametrize("name", list(SECRET_BEARERS))
def test_no_printed_form_shows_a_secret(name: str) -> None:
    obj = SECRET_BEARERS[name]()
    for form, text in printed_forms(obj).items():
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, f"{name}: {form} shows a secret: {text[:300]}"


@pytest.mark.parametrize("name", ["CredentialConfig", "HostConnection", "Credential"])
def test_the_printed_form_still_says_who(name: str) -> None:
    """Masking keeps what a reader needs: the user name is shown, the password replaced."""
    text = str(SECRET_BEARERS[name]())
    assert "admin" in text.lower() or "wapadmin" in text.lower()
    assert "****" in text or "**********" in text
