"""How to reach one Windows host over PowerShell Remoting.

``fqdn`` is the host's name in the procedure (certificates, configuration files); ``address``/``port`` are
where to connect (an IP, or a name that differs from the FQDN in labs). Kerberos always asks for the ticket of
``WSMAN/<fqdn>``; TLS checks the certificate against ``address`` unless ``tls_server_name`` names what it carries.
The password is a pydantic ``SecretStr``: masked in repr/str/model_dump(mode="json"), revealed only when the
transport opens a session.

The CA that verifies the host's TLS certificate is given by content (``ca_pem``: what a stack's resources carry,
so their state reads the same from every checkout and a refresh or destroy needs no local file) or by path
(``ca_file``: direct use, and connections a stack stored before it kept the content).
"""

from __future__ import annotations

import atexit
import hashlib
import ipaddress
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from .. import names
from ..errors import ConfigurationError

__all__ = ["Auth", "HostConnection", "PRIVILEGED_ENDPOINT", "comparable_settings", "locate_ca_file"]

Auth = Literal["basic", "ntlm", "negotiate", "kerberos", "credssp"]
PRIVILEGED_ENDPOINT = "PrivilegedEndpoint"
_CONFIGURATION = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class HostConnection(BaseModel):
    """Connection settings of one host. Build with ``HostConnection(...)`` (pydantic ValidationError) or
    :meth:`parse` (the project's ConfigurationError, one line per problem)."""

    # hide_input_in_errors: a model-level error would otherwise print the whole input, password included.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    fqdn: str = Field(description="the host's DNS name as the procedure uses it (certificates, config files)")
    address: str | None = Field(None, description="IP or name to connect to; defaults to fqdn")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(None, description="default 5986 (https) / 5985")
    https: bool = True
    verify: bool = Field(True, description="verify the host's TLS certificate; turning it off must be explicit")
    ca_pem: str | None = Field(None, description="PEM of the CA certificate(s) that issued the WinRM certificate")
    ca_file: str | None = Field(None, description="path of a PEM bundle of that CA (instead of ca_pem)")
    tls_server_name: str | None = Field(None, description="check the TLS certificate against this name (also "
                                                          "sent as SNI) instead of address: the host's fqdn when "
                                                          "connecting by an IP its certificate does not name")
    auth: Auth = "negotiate"
    username: str | None = Field(None, description="DOMAIN\\user or user")
    password: SecretStr | None = None
    configuration_name: str = Field("Microsoft.PowerShell", description="session configuration (JEA endpoint)")
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    operation_timeout: Annotated[int, Field(ge=1, le=600)] = 20
    read_timeout: Annotated[float, Field(gt=0, le=900)] = 30.0
    step_timeout: Annotated[float, Field(gt=0)] = 300.0
    step_timeouts: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    allow_credssp: bool = Field(False, description="CredSSP hands the password to the host: refused unless "
                                                   "the endpoint is PrivilegedEndpoint or this is set")
    allow_basic_over_http: bool = Field(False, description="Basic sends the password in clear over http")
    settings_key: str | None = Field(None, description="the stack config key these settings came from "
                                                        "(wapconnector:hosts.<name>): errors name the operator's keys")

    @field_validator("fqdn")
    @classmethod
    def _fqdn(cls, v: str) -> str:
        if not names.ROOTED_HOST_NAME.match(v) or names.is_dotted_number(v):
            raise ValueError(f"{v!r} is not a host name: use the host's DNS name, e.g. wap01.contoso.local "
                             f"(put an IP address in 'address')")
        return v.rstrip(".")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            pass
        if not names.ROOTED_HOST_NAME.match(v):
            raise ValueError(f"{v!r} is neither an IP address nor a host name")
        return v.rstrip(".")

    @field_validator("tls_server_name")
    @classmethod
    def _tls_server_name(cls, v: str | None) -> str | None:
        if v is not None and (not names.ROOTED_HOST_NAME.match(v) or names.is_dotted_number(v)):
            raise ValueError(f"{v!r} is not a host name: use the DNS name the host's WinRM certificate carries")
        return v.rstrip(".") if v else v

    @field_validator("ca_pem")
    @classmethod
    def _ca_pem(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(v.encode())
        except ValueError:
            raise ValueError("holds no PEM certificate (-----BEGIN CERTIFICATE----- ...): give the CA certificate "
                             "that issued the host's WinRM certificate") from None
        return v

    @field_validator("configuration_name")
    @classmethod
    def _configuration(cls, v: str) -> str:
        if not _CONFIGURATION.match(v):
            raise ValueError(f"{v!r} is not a session configuration name (e.g. Microsoft.PowerShell, "
                             f"PrivilegedEndpoint)")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> HostConnection:
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))  # parse() splits them back, one per problem
        return self

    def problems(self) -> list[str]:
        """Cross-field problems, each a sentence saying what to change."""
        p: list[str] = []
        if self.auth != "kerberos":
            if not self.username:
                p.append(f"username is required for {self.auth} authentication")
            if self.password is None or not self.password.get_secret_value():
                p.append(f"password is required for {self.auth} authentication")
        if self.auth == "credssp" and not (self.allow_credssp or self.configuration_name == PRIVILEGED_ENDPOINT):
            p.append(f"auth credssp hands the password to {self.fqdn}; it is only used for the "
                     f"{PRIVILEGED_ENDPOINT} endpoint: use ntlm/negotiate, or set allow_credssp: true if this "
                     f"host really demands delegation")
        if self.auth == "basic" and not self.https and not self.allow_basic_over_http:
            p.append("auth basic over http sends the password in clear: use https, or set "
                     "allow_basic_over_http: true for an isolated lab")
        for name, value in (("ca_file", self.ca_file), ("ca_pem", self.ca_pem)):
            if value is None:
                continue
            if not self.https:
                p.append(f"{name} is only used with https: true")
            if not self.verify:
                p.append(f"{name} is set but verify is false: remove one of them")
        if self.ca_file is not None and self.ca_pem is not None:
            p.append("ca_file and ca_pem both name a CA: give one of them")
        elif self.ca_file is not None and locate_ca_file(self.ca_file) is None:
            p.append(f"ca_file {self.ca_file!r} does not exist or is not a file")
        if self.tls_server_name is not None and not (self.https and self.verify):
            p.append("tls_server_name is only used with https: true and verify: true")
        if not self.read_timeout > self.operation_timeout:
            p.append(f"read_timeout ({self.read_timeout:g} s) must exceed operation_timeout "
                     f"({self.operation_timeout} s), or every idle poll would look like a dead connection")
        return p

    # -- derived values -------------------------------------------------------------------------------------
    @property
    def connect_address(self) -> str:
        return self.address or self.fqdn

    @property
    def tls_name(self) -> str:
        """The name the host's TLS certificate must carry."""
        return self.tls_server_name or self.connect_address

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (5986 if self.https else 5985)

    @property
    def endpoint(self) -> str:
        """address:port, for messages ("check WinRM is listening on 127.0.10.1:5986")."""
        addr = self.connect_address
        return f"[{addr}]:{self.effective_port}" if ":" in addr else f"{addr}:{self.effective_port}"

    @property
    def ca_bundle(self) -> str | None:
        """A file holding the CA to verify TLS with (what requests takes), or None for the system CAs: ca_file as
        found on this machine, or ca_pem written to a private temporary file once per process."""
        if self.ca_pem is not None:
            return _materialized(self.ca_pem)
        return locate_ca_file(self.ca_file) if self.ca_file is not None else None

    @property
    def ca_source(self) -> str | None:
        """The CA as messages name it: the file, or the subject of the certificate given as PEM."""
        if self.ca_file is not None:
            return self.ca_file
        if self.ca_pem is None:
            return None
        from cryptography import x509

        return "; ".join(c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(self.ca_pem.encode()))

    def timeout_for(self, step: str, default: float | None = None) -> float:
        """A step's time budget: the per-step override, else the caller's default, else ``step_timeout``."""
        return self.step_timeouts.get(step) or default or self.step_timeout

    @classmethod
    def parse(cls, data: Any) -> HostConnection:
        """Validate ``data`` (a dict, e.g. from stack config) into a HostConnection, or raise ConfigurationError
        listing every problem on its own line. Input values never appear in the message (one may be the
        password)."""
        if isinstance(data, HostConnection):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems: list[str] = []
            for err in exc.errors(include_input=False, include_url=False):
                loc = ".".join(str(x) for x in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "literal_error" and loc == "auth":
                    msg = "unknown auth: use one of basic, ntlm, negotiate, kerberos, credssp"
                elif err["type"] == "extra_forbidden":
                    msg = "unknown setting (check its spelling)"
                problems.extend(f"{loc}: {m}" if loc else m for m in msg.split("\n"))
            host = data.get("fqdn") if isinstance(data, dict) and isinstance(data.get("fqdn"), str) else None
            raise ConfigurationError(problems, host=host) from None


def locate_ca_file(path: str) -> str | None:
    """``path`` if it is a file; else, for an absolute path (a connection stored by another operator's checkout:
    ``/home/alice/wap/.labsim/lab/pki/ca.pem``), the longest tail of it that is a file under the working directory,
    the project (``.labsim/lab/pki/ca.pem``). None when neither exists."""
    if os.path.isfile(path):
        return path
    parts = Path(path).parts
    if not Path(path).is_absolute():
        return None
    try:
        here = Path.cwd()
    except OSError:  # the working directory is gone
        return None
    for i in range(1, len(parts)):
        candidate = str(here.joinpath(*parts[i:]))
        if os.path.isfile(candidate):  # False for a name too long, where Path.is_file raises
            return candidate
    return None


def _pem_text(pem: str) -> str:
    """PEM compared by meaning: line ends and surrounding blanks do not count."""
    return "\n".join(line.strip() for line in pem.strip().splitlines())


def comparable_settings(settings: Any) -> Any:
    """Connection settings as a diff compares them: the CA by its content, whether a connection names it by file
    (``ca_file``, as stacks stored it before) or carries it (``ca_pem``). So the same CA reads as no change from
    any checkout. A file that cannot be read stays a path (and differs from any content)."""
    if not isinstance(settings, Mapping):
        return settings
    out = dict(settings)
    path = out.get("ca_file")
    if isinstance(path, str) and out.get("ca_pem") is None:
        found = locate_ca_file(path)
        try:
            out["ca_pem"] = Path(found).read_text() if found else None
        except (OSError, UnicodeDecodeError):
            out["ca_pem"] = None
        if out["ca_pem"] is not None:
            del out["ca_file"]
    if isinstance(out.get("ca_pem"), str):
        out["ca_pem"] = _pem_text(out["ca_pem"])
    return {k: v for k, v in out.items() if v is not None}


_files: dict[str, str] = {}
_files_lock = threading.Lock()
_folder: str | None = None


def _materialized(pem: str) -> str:
    """A file holding ``pem`` (public CA certificates, no secret), one per content, in a private temporary folder
    removed when the process exits."""
    global _folder
    key = hashlib.sha256(_pem_text(pem).encode()).hexdigest()
    with _files_lock:
        path = _files.get(key)
        if path is None or not os.path.isfile(path):
            if _folder is None or not os.path.isdir(_folder):
                _folder = tempfile.mkdtemp(prefix="wapconnector-ca-")
                atexit.register(shutil.rmtree, _folder, True)
            path = os.path.join(_folder, f"{key[:16]}.pem")
            with open(path, "w", encoding="ascii") as f:
                f.write(_pem_text(pem) + "\n")
            _files[key] = path
        return path
