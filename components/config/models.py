"""The stack configuration's typed models (pydantic), camelCase keys under the ``wapconnector`` namespace.

Values live in ``stacks/Pulumi.<stack>.yaml`` under the ``wapconnector`` namespace (camelCase keys). A bad
value stops the program with one line per problem, naming the config key and what to set instead.

Shape (see README, "Stacks and configuration", and stacks/Pulumi.example-real.yaml):
  ca           the lab CA that issues the connector certificates
  clouds       the WAP clouds: names, FQDNs, which hosts play which role, where the connector certificate comes
               from (``connectorCertificate``: the lab CA, the operator's PFX, or a certificate already in the
               tenant portal VMs' store)
  azureStack   the Azure Stack side: cloud name, portal FQDN, and which hosts are the PEP, AzS-WASP01, the share
  hosts        how to reach every host (FQDN, address, port, TLS, auth, which credential)
  credentials  user names and passwords; must be set with `pulumi config set --secret --path ...`
  bundle       where the downloaded WAPConnector folder is on this machine, and where to stage it
  adopt        take over what exists on the hosts but differs, or another stack owns (docs/ownership.md);
               true/false stack-wide, or per cloud as clouds[i].adopt (that cloud's WAP side)
  preflight    enforce (default: a failing read-only check of the hosts stops preview/up) or warn
Without ``azureStack`` and ``hosts`` the stack only creates the lab PKI (CA and connector certificates).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, create_model, field_validator
from pydantic.alias_generators import to_camel

from providers import certs, names
from providers.facts.locations import CONNECTOR_PORT
from providers.pki import KeyType
from providers.transport import Auth, HostConnection

NAMESPACE = "wapconnector"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


Fqdn = Annotated[str, Field(min_length=1)]


def _strict_bool(value: Any) -> Any:
    """true/false only (Pulumi hands top-level config values over as text): 'yes', 1 or 'on' are refused, so a
    typo never turns adoption on."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false (got {value!r})")


Switch = Annotated[bool, BeforeValidator(_strict_bool)]


def _outlives_renewal(days: int) -> int:
    margin = certs.RENEWAL_MARGIN_DAYS
    if days <= margin:
        raise ValueError(f"{days} days is within the {margin}-day renewal window: the certificate "
                         f"would be renewed on every run; give more than {margin}")
    return days


class CaConfig(_Config):
    """The lab CA that issues every connector certificate."""

    common_name: Annotated[str, Field(min_length=1, max_length=64)] = "WAP Connector Lab Root CA"
    organization: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    key_type: KeyType = "ecdsa-p256"
    validity_days: Annotated[int, Field(gt=0, le=36500)] = 3650

    _check_validity = field_validator("validity_days")(classmethod(lambda cls, v: _outlives_renewal(v)))


CertificateSource = Literal["labCa", "pfx", "store"]


class ConnectorCertificateConfig(_Config):
    """Where a cloud's connector certificate comes from. ``labCa`` (default): issued by the stack's lab CA.
    ``pfx``: the operator's PFX file, imported by the stack. ``store``: already in Cert:\\LocalMachine\\My of every
    tenant portal VM (the operator's: verified and bound, never imported or removed). For ``pfx``/``store``,
    ``issuingCaFile`` is the CA certificate AzS-WASP01 gets in its CA store."""

    source: CertificateSource = "labCa"
    pfx_file: Annotated[str, Field(min_length=1)] | None = None  # relative to the project directory, or absolute
    pfx_password: SecretStr | None = None  # must be a Pulumi secret
    thumbprint: str | None = None
    issuing_ca_file: Annotated[str, Field(min_length=1)] | None = None

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint(cls, v: str | None) -> str | None:
        return None if v is None else certs.normalize_thumbprint(v)


class CloudConfig(_Config):
    """One Windows Azure Pack cloud as Azure Stack's multi-cloud mode names it."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    # The FQDN the connector endpoint (port 40005) answers on; defaults to the tenant portal FQDN.
    connector_fqdn: str | None = None
    tenant_portal_fqdn: str | None = None
    tenant_api_fqdn: str | None = None
    connector_port: Annotated[int, Field(ge=1, le=65535)] = CONNECTOR_PORT
    tenant_portal_hosts: list[str] = Field(default_factory=list)  # names in wapconnector:hosts
    tenant_api_hosts: list[str] = Field(default_factory=list)
    # The Tenant API VM that runs Configure-TrustAzureStack.ps1 once; default: the first tenant API host.
    trust_host: str | None = None
    sql_server: str | None = None  # discovered from the Tenant API's ManagementStore setting when not given
    sql_credential: str | None = None  # a name in wapconnector:credentials (SQL authentication)
    certificate_validity_days: Annotated[int, Field(gt=0, le=3650)] = 397
    certificate_key_type: KeyType = "ecdsa-p256"
    # Take over this cloud's WAP-side things that exist but differ, or that another stack owns; default: the
    # stack-wide wapconnector:adopt.
    adopt: Switch | None = None
    connector_certificate: ConnectorCertificateConfig = Field(default_factory=ConnectorCertificateConfig)

    @field_validator("connector_fqdn", "tenant_portal_fqdn", "tenant_api_fqdn")
    @classmethod
    def _fqdns(cls, v: str | None) -> str | None:
        return None if v is None else names.fqdn(v, "tenant.contoso.com")

    @field_validator("certificate_validity_days")
    @classmethod
    def _outlives_renewal(cls, v: int) -> int:
        return _outlives_renewal(v)

    @property
    def endpoint_fqdn(self) -> str:
        fqdn = self.connector_fqdn or self.tenant_portal_fqdn
        assert fqdn is not None  # enforced by _cross_checks
        return fqdn

    @property
    def endpoint(self) -> str:
        return f"https://{self.endpoint_fqdn}:{self.connector_port}"


class AzureStackConfig(_Config):
    cloud_name: Annotated[str, Field(min_length=1, max_length=64)] = "AzureStack"
    portal_fqdn: str = "portal.local.azurestack.external"
    privileged_endpoint: str  # host names in wapconnector:hosts
    user_portal_host: str  # AzS-WASP01: trusts the lab CA
    share_host: str  # sees \\su1fileserver\SU1_Infrastructure_1 (the ASDK host / operator box)

    _check_portal = field_validator("portal_fqdn")(classmethod(lambda cls, v: names.fqdn(v, "tenant.contoso.com")))


# The connection settings a stack supplies itself rather than taking from hosts.<name>: the CA by content (read
# from caFile), the user name and password (from the credential it names), the settings key (for messages); and
# connect_timeout, which a stack leaves at the transport's default.
_STACK_SUPPLIED = ("ca_pem", "username", "password", "settings_key", "connect_timeout")
# Recorded in every connection, given or not (the security choices read explicitly in the state); every other
# setting only when given, so HostConnection's own default applies.
_ALWAYS_SENT = ("fqdn", "https", "verify", "auth", "allow_credssp", "allow_basic_over_http")


class _HostConfigBase(_Config):
    """How to reach one host over WinRM: HostConnection's settings (their types and bounds are HostConnection's
    own) and ``credential``, a name in wapconnector:credentials. ``fqdn`` names the host in certificates and
    configuration; ``address`` and ``port`` are where to connect when they differ (labsim's loopback addresses, a
    jump NAT, ...); ``caFile`` is the PEM of the CA that issued the host's WinRM certificate, relative to the project
    (the connection carries its content, so the resources' state is the same from every checkout)."""

    credential: str | None = None

    if TYPE_CHECKING:  # generated from HostConnection below; the settings the program reads one by one
        fqdn: str
        address: str | None
        auth: Auth
        ca_file: str | None
        configuration_name: str | None

    def settings(self) -> dict[str, Any]:
        """The HostConnection settings given here (and those always sent), by HostConnection's field names."""
        return {name: value for name in HOST_SETTINGS
                if (value := getattr(self, name)) is not None or name in _ALWAYS_SENT}


def _host_settings() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, f in HostConnection.model_fields.items():
        if name in _STACK_SUPPLIED:
            continue
        kind: Any = Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation
        if name in _ALWAYS_SENT:
            fields[name] = (kind, Field(f.default, description=f.description))
        else:
            fields[name] = (kind | None, Field(None, description=f.description))
    return fields


_HOST_FIELDS = _host_settings()
HOST_SETTINGS: tuple[str, ...] = tuple(_HOST_FIELDS)
if TYPE_CHECKING:
    HostConfig = _HostConfigBase
else:  # a model, not a restatement: a new HostConnection setting is a stack setting too
    HostConfig = create_model(
        "HostConfig", __base__=_HostConfigBase, __module__=__name__,
        __validators__={"_check_fqdn": field_validator("fqdn")(
            classmethod(lambda cls, v: names.fqdn(v, "tenant.contoso.com")))},
        **_HOST_FIELDS)


class CredentialConfig(_Config):
    username: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]

    def __repr__(self) -> str:  # never print a password
        return f"CredentialConfig(username={self.username!r}, password='****')"

    __str__ = __repr__


class BundleConfig(_Config):
    source_dir: str  # the extracted WAPConnector folder on this machine; relative to the project
    destination: str = r"C:\temp\WAPConnector"

    @field_validator("destination")
    @classmethod
    def _destination(cls, v: str) -> str:
        from providers.hostops import windows_path

        return windows_path(v)


class LabsimConfig(_Config):
    """For simulated labs: the labsim lab file and state dir that `make up` serves for this stack."""

    lab: str
    state_dir: str


class StackConfig(_Config):
    ca: CaConfig = Field(default_factory=CaConfig)
    clouds: list[CloudConfig] = Field(min_length=1)
    azure_stack: AzureStackConfig | None = None
    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    credentials: dict[str, CredentialConfig] = Field(default_factory=dict)
    bundle: BundleConfig | None = None
    labsim: LabsimConfig | None = None
    adopt: Switch = False
    # enforce: a failing preflight stops preview/up before any resource; warn: print it and go on (for an
    # operator who knowingly works around a host, e.g. with --target or --continue-on-error).
    preflight: Literal["enforce", "warn"] = "enforce"
    # How many dynamic-provider processes work on the hosts (components/providers.py; default: by lab size).
    provider_processes: Annotated[int, Field(ge=1, le=64)] | None = None

    def adopts(self, cloud: CloudConfig | None = None) -> bool:
        """Whether adoption was asked for: the cloud's own setting, else the stack-wide one."""
        if cloud is not None and cloud.adopt is not None:
            return cloud.adopt
        return self.adopt

    @property
    def deploys_lab(self) -> bool:
        """False: only the PKI (no hosts configured)."""
        return self.azure_stack is not None

    def connection(self, host: str, *, configuration_name: str | None = None,
                   project_dir: Path | None = None) -> dict[str, Any]:
        """The HostConnection settings (a dict for resource inputs) of a configured host."""
        h = self.hosts[host]
        conn: dict[str, Any] = {**h.settings(), "settings_key": f"{NAMESPACE}:hosts.{host}"}
        conn.pop("ca_file", None)
        if configuration_name or h.configuration_name:
            conn["configuration_name"] = configuration_name or h.configuration_name
        if h.ca_file:
            # By content: a path would be where this checkout lives, and differ for every teammate's state.
            path = Path(h.ca_file)
            path = path if path.is_absolute() else (project_dir or Path.cwd()) / path
            try:
                conn["ca_pem"] = path.read_bytes().decode("ascii", errors="replace")  # a DER file: not PEM
            except OSError:
                conn["ca_file"] = str(path)  # HostConnection says it cannot be used, naming it
        if h.credential:
            cred = self.credentials[h.credential]
            conn["username"], conn["password"] = cred.username, cred.password
        return conn
