"""The lab's certificates: each cloud's connector certificate from its source, and the lab CA when one needs it.

Sources (``wapconnector:clouds[i].connectorCertificate``): ``labCa`` (default) issues the certificate from the
stack's own lab CA; ``pfx`` takes the operator's PFX file (imported by the stack); ``store`` names a certificate
already in every tenant portal VM's ``Cert:\\LocalMachine\\My`` by thumbprint (the operator's: never imported or
removed). Whatever the source, a cloud gets one :class:`ConnectorCertificate`: what WapCloud installs or verifies,
and the issuing CA that AzS-WASP01 and the endpoint check trust.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import NAMESPACE, CaConfig, CloudConfig, operator_certificate
from providers.pki import CertificateAuthority, IssuedCertificate

LAB_CA = "labCa"


@dataclass
class ConnectorCertificate:
    """One cloud's connector certificate, whatever its source."""

    source: str
    thumbprint: pulumi.Input[str]
    issuer_pem: pulumi.Input[str]
    # Which CA AzS-WASP01 must trust: "labCa" or the operator CA's thumbprint (clouds sharing one CA share it).
    issuer_key: str
    expires_at: pulumi.Input[str] | None = None  # store: read from the tenant portal VMs
    # labCa and pfx: what is imported into My (the PFX and its password are secrets); store: nothing.
    cert_pem: pulumi.Input[str] | None = None
    pfx_base64: pulumi.Input[str] | None = None
    pfx_password: pulumi.Input[str] | None = None


class LabPki(pulumi.ComponentResource):
    """The lab CA (only when a cloud uses it) with one issued connector certificate per such cloud, and every
    cloud's :class:`ConnectorCertificate`."""

    ca: CertificateAuthority | None
    connector_certificates: dict[str, IssuedCertificate]  # the lab-issued ones, by cloud name
    connectors: dict[str, ConnectorCertificate]  # every cloud's, by cloud name

    def __init__(self, name: str, ca: CaConfig, clouds: list[CloudConfig],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("wapconnector:lab:Pki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        lab_clouds = [c for c in clouds if c.connector_certificate.source == LAB_CA]
        self.ca = None
        self.connector_certificates = {}
        if lab_clouds:
            authority = self.ca = CertificateAuthority(
                f"{name}-ca", common_name=ca.common_name, organization=ca.organization, key_type=ca.key_type,
                validity_days=ca.validity_days, opts=child,
            )
            self.connector_certificates = {
                cloud.name: IssuedCertificate(
                    f"{name}-{cloud.name}-connector",
                    ca=authority,
                    common_name=cloud.endpoint_fqdn,
                    dns_names=[cloud.endpoint_fqdn],
                    key_type=cloud.certificate_key_type,
                    validity_days=cloud.certificate_validity_days,
                    opts=child,
                )
                for cloud in lab_clouds
            }
        self.connectors = {}
        for i, cloud in enumerate(clouds):
            issued = self.connector_certificates.get(cloud.name)
            if issued is not None:
                assert self.ca is not None
                self.connectors[cloud.name] = ConnectorCertificate(
                    LAB_CA, issued.thumbprint, self.ca.cert_pem, LAB_CA, issued.expires_at, issued.cert_pem,
                    issued.pfx_base64, issued.pfx_password)
                continue
            own, problems = operator_certificate(cloud, f"{NAMESPACE}:clouds[{i}].connectorCertificate")
            if own is None or problems:  # validated with the configuration; the files changed since
                raise ValueError("; ".join(problems) or f"{NAMESPACE}:clouds[{i}].connectorCertificate: unusable")
            password = cloud.connector_certificate.pfx_password
            self.connectors[cloud.name] = ConnectorCertificate(
                own.source, own.thumbprint, own.issuer_pem, own.issuer_thumbprint, own.expires_at, own.cert_pem,
                None if own.pfx_base64 is None else pulumi.Output.secret(own.pfx_base64),
                None if password is None else pulumi.Output.secret(password.get_secret_value()))
        self.register_outputs({
            "ca_thumbprint": self.ca.thumbprint if self.ca else None,
            "connector_thumbprints": {k: c.thumbprint for k, c in self.connectors.items()},
        })
