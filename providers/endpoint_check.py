"""Operator-side check: the connector endpoint answers TLS, from this machine, with a chain that validates
against the lab CA, for the right FQDN, serving the certificate the connector site was given.

The seed asks the operator to verify that each connector endpoint is reachable and trusted from where the
portal is used. pulumi-command's ``local.Command`` would be the usual tool; its provider plugin cannot be
built on our machines (the Go module proxy refuses github.com/pulumi/pulumi-command/provider), so this is a
small dynamic resource with the same life cycle: it runs on create, and again whenever one of its triggers
(the expected thumbprint, the endpoint) changes. A refresh does not probe (like a Command, it is a record of a
check that passed); drift of the binding itself shows on the ConnectorSite.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers import names
from providers.base import LabProvider, LabResource, check_with, diff_fields
from providers.facts.locations import CONNECTOR_PORT


class EndpointCheckFailed(Exception):
    """The endpoint did not pass; the message says what was seen and what to fix."""


class EndpointCheckInputs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    fqdn: str
    port: Annotated[int, Field(ge=1, le=65535)] = CONNECTOR_PORT
    connect_address: str | None = None  # where to connect if the FQDN does not resolve here (labsim)
    ca_pem: Annotated[str, Field(min_length=1)]
    expected_thumbprint: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$")]
    wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0

    _check_fqdn = field_validator("fqdn")(classmethod(lambda cls, v: names.fqdn(v)))


def probe(fqdn: str, port: int, ca_pem: str, connect_address: str | None = None, timeout: float = 10.0) -> str:
    """One TLS handshake; returns the served certificate's SHA-1 thumbprint (upper-case hex).

    Verifies the chain against ``ca_pem`` only (not the system store: the issuing CA is what AzS-WASP01 trusts)
    and that the certificate names ``fqdn``. Raises EndpointCheckFailed with the reason."""
    context = ssl.create_default_context(cadata=ca_pem)
    # ca_pem is the CA that issued the connector certificate (the lab CA, or the operator's issuing CA, which may
    # be an intermediate): trust it as an anchor by itself, as Python 3.13 does by default.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = True
    target = connect_address or fqdn
    try:
        with socket.create_connection((target, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=fqdn) as tls:
                der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise EndpointCheckFailed(
            f"https://{fqdn}:{port} (connected to {target}) serves a certificate that is not trusted for {fqdn}: "
            f"{exc.verify_message}. Bind a certificate issued by the cloud's issuing CA whose SANs include {fqdn} "
            f"(ConnectorSite certificate_thumbprint)"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise EndpointCheckFailed(
            f"https://{fqdn}:{port} (connected to {target}) does not answer TLS: {exc}. Check that the connector "
            f"site is started, has a certificate bound, and that the port is open from this machine"
        ) from None
    if der is None:  # not after a verified handshake; typed so by the ssl module
        raise EndpointCheckFailed(f"https://{fqdn}:{port} (connected to {target}) served no certificate")
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - Windows names certificates by SHA-1


class EndpointCheckProvider(LabProvider):
    TRIGGERS = ("fqdn", "port", "connect_address", "ca_pem", "expected_thumbprint")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return check_with(EndpointCheckInputs, olds, news)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(olds, news, fields=self.TRIGGERS)

    def _run(self, props: dict[str, Any]) -> dict[str, Any]:
        args = EndpointCheckInputs.model_validate(props)
        expected = args.expected_thumbprint.upper()
        deadline = time.monotonic() + args.wait_seconds
        while True:
            try:
                served = probe(args.fqdn, args.port, args.ca_pem, args.connect_address)
                if served == expected:
                    break
                problem = EndpointCheckFailed(
                    f"https://{args.fqdn}:{args.port} serves certificate {served}, expected {expected}: the connector "
                    f"site's binding is not the certificate this stack configured")
            except EndpointCheckFailed as exc:
                problem = exc
            if time.monotonic() >= deadline:
                raise problem
            time.sleep(1.0)  # a binding just changed: the listener may need a moment
        return {**props, "served_thumbprint": served,
                "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._run(props)
        return CreateResult(id_=f"{outs['fqdn']}:{outs['port']}", outs=outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._run(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class EndpointCheck(LabResource, name="EndpointCheck"):
    """Fails the update unless https://fqdn:port answers with ``expected_thumbprint``, trusted via ``ca_pem``."""

    served_thumbprint: pulumi.Output[str]
    checked_at: pulumi.Output[str]

    def __init__(self, name: str, *, fqdn: pulumi.Input[str], ca_pem: pulumi.Input[str],
                 expected_thumbprint: pulumi.Input[str], port: pulumi.Input[int] = CONNECTOR_PORT,
                 connect_address: pulumi.Input[str] | None = None, wait_seconds: pulumi.Input[float] = 30.0,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "fqdn": fqdn, "port": port, "connect_address": connect_address, "ca_pem": ca_pem,
            "expected_thumbprint": expected_thumbprint, "wait_seconds": wait_seconds,
            "served_thumbprint": None, "checked_at": None,
        }
        super().__init__(EndpointCheckProvider(), name, props, opts)
