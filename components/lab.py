"""A lab: one Azure Stack and its Windows Azure Pack clouds, wired into one dependency graph.

Azure Stack side: multi-cloud mode with every cloud on the privileged endpoint (its output file per cloud is
read from the infrastructure share), and in AzS-WASP01's CA store the CA that issued each cloud's connector
certificate (the lab CA, or the operator's issuing CA; each distinct one once) so the user portal trusts the
connector endpoints. WAP side: one :class:`WapCloud` per cloud, whose trust is wired to that cloud's output
file. Everything else runs in parallel across hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from components.cloud import WapCloud, WapCloudArgs
from components.config import StackConfig
from components.pki import LabPki
from components.providers import ProviderGroups
from providers.azure_pack_connector import AzurePackConnector
from providers.certificate import Certificate
from providers.remote import password_secret
from providers.transport import PRIVILEGED_ENDPOINT


def _cloud_output(cloud_name: str) -> Callable[[dict[str, Any]], Any]:
    """One cloud's entry of AzurePackConnector's cloud_outputs."""
    return lambda outputs: outputs[cloud_name]


def owner_of_stack() -> str:
    """``project/stack``: the owner every marker names."""
    return f"{pulumi.get_project()}/{pulumi.get_stack()}"


class Lab(pulumi.ComponentResource):
    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("wapconnector:lab:Lab", name, None, opts)
        azs = config.azure_stack
        assert azs is not None, "a lab needs wapconnector:azureStack"
        child = pulumi.ResourceOptions(parent=self)
        # Dealt role by role: hosts of one role run the same long step at the same moment (every tenant portal
        # VM's three MSIs in up, their uninstall in destroy), so each role spreads evenly over the processes'
        # workers. Dealt cloud by cloud, 4 hosts a cloud over 8 processes put every portal VM in 4 of them: a
        # 12-cloud destroy queued 8 of its 24 uninstalls behind the others (docs/performance.md).
        hosts = [*(h for c in config.clouds for h in c.tenant_portal_hosts),
                 *(h for c in config.clouds for h in c.tenant_api_hosts),
                 *(c.trust_host for c in config.clouds if c.trust_host),
                 azs.privileged_endpoint, azs.share_host, azs.user_portal_host]
        self.providers = ProviderGroups(name, hosts, count=config.provider_processes, opts=child)

        def on(host: str) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=self.providers.for_host(host))

        self.pki = LabPki(name, config.ca, config.clouds,
                          opts=pulumi.ResourceOptions(parent=self, providers={"pulumi-python": self.providers.first}))
        # Every remote thing carries a marker of its owning stack (providers/ownership.py). A dynamic provider
        # process cannot see the project and stack reliably, so they travel as an input.
        owner = owner_of_stack()

        def conn(host: str, **kw: Any) -> dict[str, Any]:
            return password_secret(config.connection(host, **kw))

        # One CA certificate per distinct issuer; the lab CA keeps the name it always had.
        self.portal_cas: dict[str, Certificate] = {}
        for c in config.clouds:
            issuer = self.pki.connectors[c.name]
            if issuer.issuer_key not in self.portal_cas:
                suffix = "" if issuer.issuer_key == "labCa" else f"-{issuer.issuer_key.lower()}"
                self.portal_cas[issuer.issuer_key] = Certificate(
                    f"{name}-user-portal-ca{suffix}", connection=conn(azs.user_portal_host), store="CA",
                    cert_pem=issuer.issuer_pem, owner=owner, adopt=config.adopts(), opts=on(azs.user_portal_host))
        self.portal_ca = next(iter(self.portal_cas.values()))
        self.connector = AzurePackConnector(
            f"{name}-multi-cloud", connection=conn(azs.privileged_endpoint, configuration_name=PRIVILEGED_ENDPOINT),
            share_connection=conn(azs.share_host),
            clouds=[{"cloud_name": c.name, "cloud_endpoint": c.endpoint} for c in config.clouds],
            azure_stack_cloud_name=azs.cloud_name, owner=owner, adopt=config.adopts(),
            opts=on(azs.privileged_endpoint))
        self.clouds = {
            c.name: WapCloud(
                f"{name}-{c.name}",
                WapCloudArgs(cloud=c, config=config, connector_certificate=self.pki.connectors[c.name],
                             cloud_output=self.connector.cloud_outputs.apply(_cloud_output(c.name)),
                             owner=owner, providers=self.providers),
                opts=child)
            for c in config.clouds
        }
        self.register_outputs({
            "multiCloudEnabled": self.connector.multi_cloud_enabled,
            "clouds": {n: c.endpoint for n, c in self.clouds.items()},
        })
