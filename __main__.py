"""The Pulumi program: one stack per lab (see stacks/). Configuration is validated before anything is
registered; resources live in providers/ (importable, so their pickled providers load in a fresh process)."""

import pulumi

from components.config import ConfigError, load_stack_config
from components.pki import LabPki

try:
    config = load_stack_config()
except ConfigError as exc:
    raise pulumi.RunError(str(exc)) from None

pki = LabPki("lab", config.ca, config.clouds)

pulumi.export("caThumbprint", pki.ca.thumbprint)
pulumi.export("caExpiresAt", pki.ca.expires_at)
pulumi.export("caCertificatePem", pki.ca.cert_pem)
pulumi.export(
    "connectorCertificates",
    {
        name: {"thumbprint": cert.thumbprint, "expiresAt": cert.expires_at, "fqdn": cloud.endpoint_fqdn}
        for (name, cert), cloud in zip(pki.connector_certificates.items(), config.clouds)
    },
)
