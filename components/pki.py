"""The lab's certificate chain: one CA and one CA-issued connector certificate per WAP cloud."""

from __future__ import annotations

import pulumi

from components.config import CaConfig, CloudConfig
from providers.pki import CertificateAuthority, IssuedCertificate


class LabPki(pulumi.ComponentResource):
    """Creates the lab CA and, for each cloud, the TLS certificate its connector endpoint (port 40005) serves."""

    ca: CertificateAuthority
    connector_certificates: dict[str, IssuedCertificate]

    def __init__(self, name: str, ca: CaConfig, clouds: list[CloudConfig],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("wapconnector:lab:Pki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ca = CertificateAuthority(
            f"{name}-ca", common_name=ca.common_name, organization=ca.organization, key_type=ca.key_type,
            validity_days=ca.validity_days, opts=child,
        )
        self.connector_certificates = {
            cloud.name: IssuedCertificate(
                f"{name}-{cloud.name}-connector",
                ca=self.ca,
                common_name=cloud.endpoint_fqdn,
                dns_names=[cloud.endpoint_fqdn],
                key_type=cloud.certificate_key_type,
                validity_days=cloud.certificate_validity_days,
                opts=child,
            )
            for cloud in clouds
        }
        self.register_outputs({
            "ca_thumbprint": self.ca.thumbprint,
            "connector_thumbprints": {k: c.thumbprint for k, c in self.connector_certificates.items()},
        })
