"""The stack configuration, validated with pydantic before any resource is registered.

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

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from providers import certs, names
from providers.pki import KeyType

NAMESPACE = "wapconnector"
SECRET_KEYS = ("credentials",)  # config keys that must be Pulumi secrets


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
    connector_port: Annotated[int, Field(ge=1, le=65535)] = 40005
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


class HostConfig(_Config):
    """How to reach one host over WinRM. ``fqdn`` names it in certificates and configuration; ``address``
    and ``port`` are where to connect when they differ (labsim's loopback addresses, a jump NAT, ...)."""

    fqdn: str
    address: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    https: bool = True
    verify: bool = True
    ca_file: str | None = None  # PEM of the CA that issued the host's WinRM certificate; relative to the project
    # (resources carry its content, so their state is the same from every checkout)
    tls_server_name: str | None = None  # the name its certificate carries, when address is an IP it does not name
    auth: Literal["basic", "ntlm", "negotiate", "kerberos", "credssp"] = "negotiate"
    credential: str | None = None  # a name in wapconnector:credentials
    configuration_name: str | None = None
    operation_timeout: Annotated[int, Field(ge=1, le=600)] | None = None
    read_timeout: Annotated[float, Field(gt=0, le=900)] | None = None
    step_timeout: Annotated[float, Field(gt=0)] | None = None
    step_timeouts: dict[str, Annotated[float, Field(gt=0)]] | None = None
    allow_credssp: bool = False
    allow_basic_over_http: bool = False

    _check_fqdn = field_validator("fqdn")(classmethod(lambda cls, v: names.fqdn(v, "tenant.contoso.com")))


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
        conn: dict[str, Any] = {
            "fqdn": h.fqdn, "settings_key": f"{NAMESPACE}:hosts.{host}", "https": h.https, "verify": h.verify,
            "auth": h.auth,
            "allow_credssp": h.allow_credssp, "allow_basic_over_http": h.allow_basic_over_http,
        }
        optional = {
            "address": h.address, "port": h.port, "operation_timeout": h.operation_timeout,
            "read_timeout": h.read_timeout, "step_timeout": h.step_timeout, "step_timeouts": h.step_timeouts,
            "configuration_name": configuration_name or h.configuration_name, "tls_server_name": h.tls_server_name,
        }
        conn.update({k: v for k, v in optional.items() if v is not None})
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


class ConfigError(ValueError):
    """The stack configuration is unusable; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _key_path(loc: tuple[Any, ...]) -> str:
    head, *rest = loc
    path = f"{NAMESPACE}:{head}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _cross_checks(raw: dict[str, Any], secret_keys: set[str] | None) -> list[str]:
    """Rules across keys, on the raw values so that they are reported together with field errors."""
    problems: list[str] = []
    clouds: list[Any] = raw["clouds"] if isinstance(raw.get("clouds"), list) else []
    names = [str(c.get("name", "")).lower() for c in clouds if isinstance(c, dict)]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        problems.append(f"{NAMESPACE}:clouds: cloud names must be unique (case-insensitively); repeated: "
                        f"{', '.join(dupes)}")
    hosts: dict[str, Any] = raw["hosts"] if isinstance(raw.get("hosts"), dict) else {}
    credentials: dict[str, Any] = raw["credentials"] if isinstance(raw.get("credentials"), dict) else {}
    azs = raw.get("azureStack")

    def host_ref(path: str, name: Any) -> None:
        if isinstance(name, str) and name not in hosts:
            known = ", ".join(sorted(hosts)) or "none configured"
            problems.append(f"{NAMESPACE}:{path}: no host {name!r} in {NAMESPACE}:hosts (hosts: {known})")

    def cred_ref(path: str, name: Any) -> None:
        if isinstance(name, str) and name not in credentials:
            problems.append(f"{NAMESPACE}:{path}: no credential {name!r} in {NAMESPACE}:credentials; add it with "
                            f"pulumi config set --secret --path '{NAMESPACE}:credentials.{name}.password' ...")

    if azs is not None and not hosts:
        problems.append(f"{NAMESPACE}:hosts: missing; azureStack needs the hosts it names")
    if isinstance(azs, dict):
        for key in ("privilegedEndpoint", "userPortalHost", "shareHost"):
            host_ref(f"azureStack.{key}", azs.get(key))
        pep_name = azs.get("privilegedEndpoint")
        pep = hosts.get(pep_name) if isinstance(pep_name, str) else None
        if isinstance(pep, dict) and pep.get("auth", "negotiate") != "credssp":
            problems.append(f"{NAMESPACE}:hosts.{azs['privilegedEndpoint']}.auth: the privileged endpoint accepts "
                            f"only CredSSP: set auth: credssp")
    if azs is not None:
        for i, cloud in enumerate(clouds):
            if not isinstance(cloud, dict):
                continue
            for key in ("tenantPortalHosts", "tenantApiHosts"):
                refs = cloud.get(key) or []
                if not refs:
                    problems.append(f"{NAMESPACE}:clouds[{i}].{key}: list at least one host of {NAMESPACE}:hosts")
                for j, ref in enumerate(refs if isinstance(refs, list) else []):
                    host_ref(f"clouds[{i}].{key}[{j}]", ref)
            if cloud.get("trustHost") is not None:
                host_ref(f"clouds[{i}].trustHost", cloud["trustHost"])
                if cloud["trustHost"] not in (cloud.get("tenantApiHosts") or []):
                    problems.append(f"{NAMESPACE}:clouds[{i}].trustHost: must be one of the cloud's tenantApiHosts")
            if cloud.get("sqlCredential") is not None:
                cred_ref(f"clouds[{i}].sqlCredential", cloud["sqlCredential"])
            if not cloud.get("tenantPortalFqdn") or not cloud.get("tenantApiFqdn"):
                problems.append(f"{NAMESPACE}:clouds[{i}]: set tenantPortalFqdn and tenantApiFqdn "
                                f"(Configure-WapConnector.ps1 needs both)")
        if raw.get("bundle") is None:
            problems.append(f"{NAMESPACE}:bundle: missing; set bundle.sourceDir to the extracted WAPConnector folder")
    for i, cloud in enumerate(clouds):
        if isinstance(cloud, dict) and not cloud.get("connectorFqdn") and not cloud.get("tenantPortalFqdn"):
            problems.append(f"{NAMESPACE}:clouds[{i}]: set tenantPortalFqdn (or connectorFqdn), the name the "
                            f"connector endpoint answers on")
    for i, cloud in enumerate(clouds):
        if isinstance(cloud, dict) and isinstance(cloud.get("connectorCertificate"), dict):
            problems.extend(_certificate_key_problems(i, cloud["connectorCertificate"], secret_keys))
    for name, host in hosts.items():
        if isinstance(host, dict) and host.get("credential") is not None:
            cred_ref(f"hosts.{name}.credential", host["credential"])
        if isinstance(host, dict) and host.get("auth", "negotiate") != "kerberos" and host.get("credential") is None:
            problems.append(f"{NAMESPACE}:hosts.{name}.credential: {host.get('auth', 'negotiate')} authentication "
                            f"needs a credential (a name in {NAMESPACE}:credentials)")
    if secret_keys is not None:
        for key in SECRET_KEYS:
            # Only a password that is there can be in plain text: a missing one is reported as missing.
            plain = plaintext_secrets({f"{NAMESPACE}:{key}": raw.get(key)})
            if plain and f"{NAMESPACE}:{key}" not in secret_keys:
                problems.append(f"{NAMESPACE}:{key}: holds passwords in plain text; set each password with "
                                f"pulumi config set --secret --path '{NAMESPACE}:{key}.<name>.password' <value>")
    return problems


_SECRET_NAME = re.compile(r"password|passphrase", re.IGNORECASE)


def _is_secure(value: Any) -> bool:
    """A value Pulumi keeps encrypted in the stack settings file: ``{secure: v1:...}``."""
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def plaintext_secrets(stack_config: Any) -> list[str]:
    """Config keys (``wapconnector:credentials.lab.password``) of every password stored in plain text in a stack
    settings file's ``config`` mapping. The engine tells a program only which top-level keys hold *some* secret, so
    one password set without ``--secret`` among secret ones is only visible in the file."""
    found: list[str] = []

    def walk(value: Any, path: str, named_secret: bool) -> None:
        if _is_secure(value):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}", named_secret or bool(_SECRET_NAME.search(str(k))))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]", named_secret)
        elif named_secret and value not in (None, ""):
            found.append(path)

    for key, value in (stack_config or {}).items() if isinstance(stack_config, dict) else ():
        ns, _, name = str(key).partition(":")
        if ns == NAMESPACE:
            walk(value, key, bool(_SECRET_NAME.search(name)))
    return found



# Which connectorCertificate keys each source needs (the rest are refused: a key that does nothing is a mistake).
_CERTIFICATE_KEYS: dict[str, tuple[str, ...]] = {
    "labCa": (), "pfx": ("pfxFile", "pfxPassword", "issuingCaFile"), "store": ("thumbprint", "issuingCaFile")}


def _certificate_key_problems(i: int, cc: dict[str, Any], secret_keys: set[str] | None) -> list[str]:
    key = f"{NAMESPACE}:clouds[{i}].connectorCertificate"
    source = cc.get("source", "labCa")
    if source not in _CERTIFICATE_KEYS:
        return []  # pydantic names the allowed values
    problems = []
    for name in _CERTIFICATE_KEYS[source]:
        if cc.get(name) is None:
            how = (f"it with pulumi config set --secret --path '{key}.pfxPassword' (it prompts)"
                   if name == "pfxPassword" else "it in stacks/Pulumi.<stack>.yaml")
            problems.append(f"{key}.{name}: missing; source {source} needs it: set {how}")
    for name in ("pfxFile", "pfxPassword", "thumbprint", "issuingCaFile"):
        if cc.get(name) is not None and name not in _CERTIFICATE_KEYS[source]:
            users = " and ".join(s for s, keys in _CERTIFICATE_KEYS.items() if name in keys)
            problems.append(f"{key}.{name}: only for source {users} (this cloud's source is {source}): remove it")
    if cc.get("pfxPassword") is not None and secret_keys is not None and f"{NAMESPACE}:clouds" not in secret_keys:
        problems.append(f"{key}.pfxPassword: in plain text; set it as a secret: pulumi config set --secret --path "
                        f"'{key}.pfxPassword'")
    return problems


def parse_stack_config(raw: dict[str, Any], secret_keys: set[str] | None = None, *,
                       plain_paths: set[str] | None = None, project_dir: Path | None = None) -> StackConfig:
    """Validate the namespace's config values (already decoded from JSON/YAML). Raises ConfigError with every
    problem at once: field errors from pydantic plus the cross-key rules. ``secret_keys`` (full
    ``namespace:key`` names) enables the check that passwords were set as secrets; ``plain_paths`` (paths such as
    ``clouds[0].connectorCertificate.pfxPassword`` written in plain text in the stack file) makes it exact below
    the top-level key. ``project_dir`` (default: the working directory) anchors relative certificate files."""
    problems = _cross_checks(raw, secret_keys)
    if any(p.startswith("credentials.") for p in plain_paths or ()):
        problems = [p for p in problems if "holds passwords in plain text" not in p]  # named one by one below
    for path in sorted(plain_paths or ()):
        # Never the value: only where it is and how to store it as a secret.
        if not any(p.startswith(f"{NAMESPACE}:{path}:") for p in problems):
            problems.append(f"{NAMESPACE}:{path}: in plain text in the stack file; set it as a secret: pulumi config "
                            f"set --secret --path '{NAMESPACE}:{path}'")
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing" and loc[0] == "credentials" and loc[-1] == "password":
                problems.append(f"{_key_path(loc)}: missing; set it with pulumi config set --secret --path "
                                f"'{_key_path(loc)}'")
            elif err["type"] == "missing":
                problems.append(f"{_key_path(loc)}: missing; set it in stacks/Pulumi.<stack>.yaml")
            elif err["type"] == "extra_forbidden" and loc[0] == "credentials":
                # A mangled credentials entry can turn a password into a key: never echo it.
                problems.append(f"{_key_path(loc[:-1])}: an unknown setting (its name is not shown: it may be "
                                f"a password); a credential has only username and password")
            elif err["type"] == "extra_forbidden":
                problems.append(f"{_key_path(loc)}: unknown setting (check its spelling)")
            else:
                problems.append(f"{_key_path(loc)}: {msg}")
    else:
        if not problems:
            problems = _connection_problems(config) + certificate_problems(config, project_dir)
        if not problems:
            return config
    raise ConfigError(problems)


def _connection_problems(config: StackConfig) -> list[str]:
    """Each host's settings as the resources will use them (HostConnection's rules: address syntax, CredSSP only
    for the privileged endpoint, Basic over http, timeouts, ca_file with https), reported under the host's key.
    Whether ca_file exists is left to deploy time (labsim writes its CA when it starts)."""
    from providers.errors import ConfigurationError
    from providers.transport import PRIVILEGED_ENDPOINT, HostConnection

    if config.azure_stack is None:
        return []  # a PKI-only stack connects to no host
    pep = config.azure_stack.privileged_endpoint
    problems: list[str] = []
    for name in config.hosts:
        try:
            HostConnection.parse(config.connection(
                name, configuration_name=PRIVILEGED_ENDPOINT if name == pep else None))
        except ConfigurationError as exc:
            for p in exc.problems:
                if "does not exist or is not a file" in p:
                    continue
                field, sep, reason = p.partition(": ")
                field = "ca_file" if field == "ca_pem" else field  # the operator gives a file
                if sep and re.fullmatch(r"[a-z_]+", field):
                    problems.append(f"{NAMESPACE}:hosts.{name}.{to_camel(field)}: {reason}")
                else:
                    problems.append(f"{NAMESPACE}:hosts.{name}: {p}")
    return problems


@dataclass(frozen=True)
class OperatorCertificate:
    """A cloud's connector certificate from the operator (source pfx or store), read from the local files."""

    source: CertificateSource
    issuer_pem: str  # the issuing CA (issuingCaFile): AzS-WASP01 trusts it
    issuer_thumbprint: str
    thumbprint: str  # pfx: its certificate's; store: the configured one
    cert_pem: str | None = None  # pfx: the certificate
    pfx_base64: str | None = None  # pfx: the file as given (secret)
    expires_at: str | None = None  # pfx: known locally; store: read from the hosts

    def __repr__(self) -> str:  # the PFX is a secret
        return f"OperatorCertificate(source={self.source!r}, thumbprint={self.thumbprint!r})"


def _read_file(project_dir: Path | None, name: str) -> bytes:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else (project_dir or Path.cwd()) / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror or exc}): give the path of the file, relative to the "
                         f"project directory or absolute") from None


def operator_certificate(cloud: CloudConfig, key: str, project_dir: Path | None = None,
                         now: Any = None) -> tuple[OperatorCertificate | None, list[str]]:
    """The cloud's PFX/store certificate from its files, and every local problem with it (one line each, naming
    the ``key.<field>`` to fix, never the password). (None, []) for the lab CA source."""
    cc = cloud.connector_certificate
    if cc.source == "labCa":
        return None, []
    problems: list[str] = []
    issuer = None
    assert cc.issuing_ca_file is not None  # the cross checks require it
    try:
        issuer = certs.load_certificate_file(_read_file(project_dir, cc.issuing_ca_file))
        if not certs.is_ca(issuer):
            problems.append(f"{key}.issuingCaFile: certificate {certs.thumbprint(issuer)} "
                            f"({issuer.subject.rfc4514_string()}) is not a CA certificate: give the issuing CA's")
        elif issuer.not_valid_after_utc <= (now or certs.now_utc()):
            problems.append(f"{key}.issuingCaFile: CA certificate {certs.thumbprint(issuer)} expired on "
                            f"{issuer.not_valid_after_utc:%Y-%m-%d}")
    except ValueError as exc:
        problems.append(f"{key}.issuingCaFile: {exc}")
    if cc.source == "store":
        assert cc.thumbprint is not None
        if issuer is None:
            return None, problems
        return OperatorCertificate("store", certs.to_pem(issuer), certs.thumbprint(issuer), cc.thumbprint), problems
    assert cc.pfx_file is not None and cc.pfx_password is not None
    try:
        data = _read_file(project_dir, cc.pfx_file)
    except ValueError as exc:
        return None, [*problems, f"{key}.pfxFile: {exc}"]
    try:
        pfx = certs.open_pfx(data, cc.pfx_password.get_secret_value())
    except ValueError:
        return None, [*problems, f"{key}.pfxPassword: does not open {key}.pfxFile (a wrong password, or the file "
                                 f"is not a PFX/PKCS#12 file)"]
    found = certs.pfx_problems(pfx, fqdn=cloud.endpoint_fqdn, issuer=issuer if not problems else None, now=now)
    problems += [f"{key}.pfxFile: {p}" for p in found]
    if problems or pfx.certificate is None:
        return None, problems
    assert issuer is not None
    cert = pfx.certificate
    return OperatorCertificate(
        "pfx", certs.to_pem(issuer), certs.thumbprint(issuer), certs.thumbprint(cert),
        cert_pem=certs.to_pem(cert), pfx_base64=base64.b64encode(data).decode(),
        expires_at=cert.not_valid_after_utc.isoformat()), []


def certificate_problems(config: StackConfig, project_dir: Path | None = None) -> list[str]:
    """Every local problem of every cloud's operator certificate (files, password, fitness)."""
    return [p for i, cloud in enumerate(config.clouds)
            for p in operator_certificate(cloud, f"{NAMESPACE}:clouds[{i}].connectorCertificate", project_dir)[1]]


def plain_text_paths(stack_file: Path | None) -> set[str]:
    """Paths below ``wapconnector:*`` keys (``credentials.wapadmin.password``, ``clouds[0].connectorCertificate.
    pfxPassword``) of every password a stack file holds in plain text (``--path`` secrets are ``{secure: ...}``
    there; the program itself only learns which top-level keys hold *some* secret)."""
    import yaml

    if stack_file is None:
        return set()
    try:
        doc = yaml.safe_load(stack_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    config = doc.get("config") if isinstance(doc, dict) else None
    return {p.removeprefix(f"{NAMESPACE}:") for p in plaintext_secrets(config)}


def load_stack_config() -> StackConfig:
    """Read every ``wapconnector:*`` value of the running stack and validate it."""
    import pulumi.runtime.config as runtime_config

    raw: dict[str, Any] = {}
    merged = {**(runtime_config.get_config_env() or {}), **runtime_config.CONFIG.get()}
    for full_key, value in merged.items():
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        except json.JSONDecodeError:
            raw[key] = value
    secret_keys = {k for k in merged if runtime_config.is_config_secret(k)}
    # Only keys this run really got (a --config-file run may not read that file).
    plain = {p for p in plain_text_paths(_stack_file()) if f"{NAMESPACE}:{re.split(r'[.[]', p)[0]}" in merged}
    return parse_stack_config(raw, secret_keys, plain_paths=plain)


def _stack_file(start: Path | None = None) -> Path | None:
    """``Pulumi.<stack>.yaml`` of the running stack, from the project's Pulumi.yaml (its ``stackConfigDir``) in the
    working directory or above, where the CLI and the Automation API's local programs run. None when there is none
    (an inline Automation API program runs elsewhere: then only the engine's top-level secret keys count)."""
    import pulumi
    import yaml

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project_file = next((folder / n for n in ("Pulumi.yaml", "Pulumi.yml") if (folder / n).is_file()), None)
        if project_file is None:
            continue
        try:
            project = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return None
        config_dir = folder / str(project.get("stackConfigDir") or ".") if isinstance(project, dict) else folder
        stack = pulumi.get_stack().rsplit("/", 1)[-1]
        return next((config_dir / f"Pulumi.{stack}{ext}" for ext in (".yaml", ".yml")
                     if (config_dir / f"Pulumi.{stack}{ext}").is_file()), None)
    return None
