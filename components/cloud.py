"""One Windows Azure Pack cloud: everything the procedure does on the WAP side.

On every tenant portal VM: the connector certificate (with its key) in LocalMachine\\My (imported from the lab CA's
or the operator's PFX, or the operator's own already there, verified read-only), the staged
WAPConnector bundle, the three connector sites (install, certificate, FQDNs), and the operator-side check that
the endpoint answers with that certificate. On every Tenant API VM: the bundle and Update-TenantAPI. Once per
cloud: the Tenant API trusts Azure Stack's AD FS, from the cloud's output file of Add-AzurePackConnector.

Hosts are independent of each other, so Pulumi works on them in parallel; only the trust waits (for every
Tenant API update of the cloud, and for the Azure Stack side's output file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config import CloudConfig, StackConfig
from components.pki import ConnectorCertificate
from components.providers import ProviderGroups
from providers.bundle import ConnectorBundle
from providers.certificate import Certificate
from providers.connector_site import ConnectorSite
from providers.endpoint_check import EndpointCheck
from providers.remote import password_secret
from providers.tenant_api_trust import TenantApiTrust
from providers.tenant_api_update import TenantApiUpdate


@dataclass
class WapCloudArgs:
    cloud: CloudConfig
    config: StackConfig
    connector_certificate: ConnectorCertificate
    # This cloud's entry of AzurePackConnector.cloud_outputs: {file_name, content, endpoint, realm, ...}.
    cloud_output: pulumi.Output[dict[str, Any]]
    # project/stack: the owner the markers on this cloud's hosts name (providers/ownership.py).
    owner: str | None = None
    # Which provider process works on which host (None: Pulumi's default provider, one process for all).
    providers: ProviderGroups | None = None


class WapCloud(pulumi.ComponentResource):
    endpoint: pulumi.Output[str]
    realm: pulumi.Output[str]
    thumbprint: pulumi.Output[str]
    expires_at: pulumi.Output[str]

    def __init__(self, name: str, args: WapCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("wapconnector:lab:WapCloud", name, None, opts)
        cloud, config = args.cloud, args.config
        assert config.azure_stack is not None and config.bundle is not None
        # Both FQDNs are required once azureStack is set (components/config/checks.py checks them together).
        assert cloud.tenant_portal_fqdn is not None and cloud.tenant_api_fqdn is not None
        bundle = config.bundle
        bundle_dir = bundle.destination
        cert = args.connector_certificate
        own: dict[str, Any] = {"owner": args.owner, "adopt": config.adopts(cloud)}

        def conn(host: str) -> dict[str, Any]:
            # Only the password is a secret: a plan names the other fields that change (providers/remote.py).
            return password_secret(config.connection(host))

        def on(host: str, **kw: Any) -> pulumi.ResourceOptions:
            provider = args.providers.for_host(host) if args.providers is not None else None
            return pulumi.ResourceOptions(parent=self, provider=provider, **kw)

        bundles: dict[str, ConnectorBundle] = {}

        def bundle_on(host: str) -> ConnectorBundle:
            if host not in bundles:  # a WAP Express computer is portal and Tenant API at once: stage once
                bundles[host] = ConnectorBundle(
                    f"{name}-{host}-bundle", connection=conn(host), source_dir=bundle.source_dir,
                    destination=bundle_dir, **own, opts=on(host))
            return bundles[host]

        self.sites: dict[str, ConnectorSite] = {}
        self.checks: dict[str, EndpointCheck] = {}
        installed_certs: list[Certificate] = []
        for host in cloud.tenant_portal_hosts:
            child = on(host)
            if cert.source == "store":  # the operator's, already there: verified and bound, never imported
                assert isinstance(cert.thumbprint, str)  # the configured one, known before any resource
                installed = Certificate(
                    f"{name}-{host}-connector-cert", connection=conn(host), store="My", existing=True,
                    thumbprint=cert.thumbprint, issuer_pem=cert.issuer_pem, serves_fqdns=[cloud.endpoint_fqdn],
                    opts=child)
            else:
                # An operator's PFX is also checked against its issuing CA (issuer_pem); the lab CA's are given none.
                issuer: dict[str, Any] = {} if cert.source == "labCa" else {"issuer_pem": cert.issuer_pem}
                installed = Certificate(
                    f"{name}-{host}-connector-cert", connection=conn(host), store="My", cert_pem=cert.cert_pem,
                    pfx_base64=cert.pfx_base64, pfx_password=cert.pfx_password, serves_fqdns=[cloud.endpoint_fqdn],
                    **issuer, **own, opts=child)
            installed_certs.append(installed)
            site = ConnectorSite(
                f"{name}-{host}-connector-site", connection=conn(host),
                tenant_portal_fqdn=cloud.tenant_portal_fqdn, tenant_api_fqdn=cloud.tenant_api_fqdn,
                azure_stack_portal_fqdn=config.azure_stack.portal_fqdn,
                certificate_thumbprint=installed.thumbprint, bundle_path=bundle_dir, **own,
                opts=on(host, depends_on=[bundle_on(host), installed]))
            self.sites[host] = site
            host_cfg = config.hosts[host]
            self.checks[host] = EndpointCheck(
                f"{name}-{host}-endpoint-check", fqdn=cloud.endpoint_fqdn, port=cloud.connector_port,
                # From here the cloud's name may not resolve (labsim): connect to the VM, verify the FQDN.
                connect_address=host_cfg.address, ca_pem=cert.issuer_pem,
                # The certificate this stack gave the site (known in a preview unless the certificate itself
                # changes), not the site's observed bound_thumbprint output: that one is unknown in the preview
                # of any site update, so every check would show as changing whenever only its site drifted or
                # took a new FQDN. depends_on keeps the check after the site's binding.
                expected_thumbprint=installed.thumbprint,
                opts=on(host, depends_on=[site]))

        updates = [
            TenantApiUpdate(f"{name}-{host}-tenant-api-update", connection=conn(host), bundle_path=bundle_dir,
                            **own, opts=on(host, depends_on=[bundle_on(host)]))
            for host in cloud.tenant_api_hosts
        ]
        trust_host = cloud.trust_host or cloud.tenant_api_hosts[0]
        sql_credential = None
        if cloud.sql_credential:
            cred = config.credentials[cloud.sql_credential]
            sql_credential = {"username": cred.username, "password": pulumi.Output.secret(cred.password)}
        self.trust = TenantApiTrust(
            f"{name}-trust", connection=conn(trust_host),
            data_file_content=args.cloud_output.apply(lambda o: o["content"]),
            data_file_name=args.cloud_output.apply(lambda o: o["file_name"]),
            bundle_path=bundle_dir, sql_server=cloud.sql_server, sql_credential=sql_credential, **own,
            settings_key=f"wapconnector:clouds[{config.clouds.index(cloud)}]",
            opts=on(trust_host, depends_on=[*updates, bundle_on(trust_host)]))

        self.endpoint = pulumi.Output.from_input(cloud.endpoint)
        self.realm = self.trust.realm
        self.thumbprint = pulumi.Output.from_input(cert.thumbprint)
        # A certificate already in the store: its expiry as the first tenant portal VM reports it.
        self.expires_at = pulumi.Output.from_input(cert.expires_at if cert.expires_at is not None
                                                   else installed_certs[0].expires_at)
        self.register_outputs({
            "endpoint": self.endpoint, "realm": self.realm, "thumbprint": self.thumbprint,
            "expiresAt": self.expires_at,
            "boundThumbprints": {h: s.bound_thumbprint for h, s in self.sites.items()},
        })
