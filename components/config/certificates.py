"""The operator's connector certificates (source pfx or store): which keys each source takes, and reading the PFX
and CA files from this machine, judged by :mod:`providers.certs` before anything is registered."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from providers import certs

from .models import NAMESPACE, CertificateSource, CloudConfig, ConnectorCertificateConfig, StackConfig

# Which connectorCertificate keys each source needs (the rest are refused: a key that does nothing is a mistake).
_CERTIFICATE_KEYS: dict[str, tuple[str, ...]] = {
    "labCa": (), "pfx": ("pfx_file", "pfx_password", "issuing_ca_file"),
    "store": ("thumbprint", "issuing_ca_file")}
_CAMEL = {"pfx_file": "pfxFile", "pfx_password": "pfxPassword", "thumbprint": "thumbprint",
          "issuing_ca_file": "issuingCaFile"}


def key_problems(i: int, cc: ConnectorCertificateConfig, secret_keys: set[str] | None) -> list[str]:
    """The keys cloud ``i``'s certificate source needs and those it does not take."""
    key = f"{NAMESPACE}:clouds[{i}].connectorCertificate"
    source = cc.source
    if source not in _CERTIFICATE_KEYS:
        return []  # pydantic names the allowed values
    problems = []
    for name in _CERTIFICATE_KEYS[source]:
        if getattr(cc, name) is None:
            how = (f"it with pulumi config set --secret --path '{key}.pfxPassword' (it prompts)"
                   if name == "pfx_password" else "it in stacks/Pulumi.<stack>.yaml")
            problems.append(f"{key}.{_CAMEL[name]}: missing; source {source} needs it: set {how}")
    for name in _CAMEL:
        if getattr(cc, name) is not None and name not in _CERTIFICATE_KEYS[source]:
            users = " and ".join(s for s, keys in _CERTIFICATE_KEYS.items() if name in keys)
            problems.append(f"{key}.{_CAMEL[name]}: only for source {users} (this cloud's source is {source}): "
                            f"remove it")
    if cc.pfx_password is not None and secret_keys is not None and f"{NAMESPACE}:clouds" not in secret_keys:
        problems.append(f"{key}.pfxPassword: in plain text; set it as a secret: pulumi config set --secret --path "
                        f"'{key}.pfxPassword'")
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
                         now: dt.datetime | None = None) -> tuple[OperatorCertificate | None, list[str]]:
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
