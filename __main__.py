"""The Pulumi program: one stack per lab (see stacks/). Configuration is validated before anything is
registered; resources live in providers/ (importable, so their pickled providers load in a fresh process)."""

import sys
from typing import NoReturn

import pulumi

from components.config import load_stack_config
from components.lab import Lab
from components.pki import LabPki
from components.preflight import preflight_mode, run_preflight
from providers.errors import ConnectorError

# The Python launcher's code for "the program showed its own message" (pulumi-language-python-exec): the language
# host then adds nothing. pulumi.RunError exits 1, to which it adds "program exited with non-zero exit code: 1".
SHOWN_ITS_MESSAGE = 32


def refuse(message: str) -> NoReturn:
    """Stop the program with the project's message as the run's only error."""
    pulumi.log.error(message)
    sys.exit(SHOWN_ITS_MESSAGE)


try:
    config = load_stack_config()
    mode = preflight_mode(config) if config.deploys_lab else None
except ConnectorError as exc:  # a ConfigurationError: every problem, each naming the setting to fix
    refuse(str(exc))

if config.deploys_lab:
    # Look before touching: every host is probed read-only before any resource is registered, so a lab that
    # cannot take the procedure shows its problems in the preview and `up` sends no write command at all.
    report = run_preflight(config)
    if not report.ok and mode == "enforce":
        refuse(f"{report.summary()}; nothing was changed. Fix what the table says (or set "
                              f"wapconnector:preflight to warn to go on anyway):\n{report.table()}")
    if not report.ok:
        pulumi.log.warn(f"{report.summary()}; going on (preflight mode warn):\n{report.table()}")
    else:
        pulumi.log.info(report.summary())
    lab = Lab("lab", config)
    pki = lab.pki
    azs = config.azure_stack
    assert azs is not None  # deploys_lab
    pulumi.export("azureStack", {
        "cloudName": azs.cloud_name, "portalFqdn": azs.portal_fqdn,
        "multiCloudEnabled": lab.connector.multi_cloud_enabled,
        "userPortalTrustsCa": lab.portal_ca.thumbprint,
        # Every CA AzS-WASP01 got for the connector certificates (the lab CA and/or the operators' issuing CAs).
        "userPortalTrusts": [c.thumbprint for c in lab.portal_cas.values()],
    })
    pulumi.export("clouds", {
        name: {
            "endpoint": cloud.endpoint, "thumbprint": cloud.thumbprint, "expiresAt": cloud.expires_at,
            "certificateSource": next(c for c in config.clouds if c.name == name).connector_certificate.source,
            "realm": cloud.realm,
            "tenantPortalHosts": next(c for c in config.clouds if c.name == name).tenant_portal_hosts,
            "tenantApiHosts": next(c for c in config.clouds if c.name == name).tenant_api_hosts,
        }
        for name, cloud in lab.clouds.items()
    })
else:  # PKI only: no hosts configured yet
    pki = LabPki("lab", config.ca, config.clouds)
    pulumi.export("connectorCertificates", {
        cloud.name: {"thumbprint": pki.connectors[cloud.name].thumbprint,
                     "expiresAt": pki.connectors[cloud.name].expires_at, "fqdn": cloud.endpoint_fqdn,
                     "certificateSource": cloud.connector_certificate.source}
        for cloud in config.clouds
    })

if pki.ca is not None:  # no lab CA when every cloud brings the operator's certificate
    pulumi.export("caThumbprint", pki.ca.thumbprint)
    pulumi.export("caExpiresAt", pki.ca.expires_at)
    pulumi.export("caCertificatePem", pki.ca.cert_pem)
