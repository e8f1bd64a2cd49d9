"""The resource template's promise when a host does not converge (providers/remote.py): what the steps did is
taken back before the error is raised, so a rerun does not find a half-made thing and adopt it, and a destroy
does not leave it behind. Shown with the Certificate resource, whose import can be rolled back: a PFX import that
lands without its private key. In-memory host, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from providers import certificate as C
from providers.errors import HostDidNotConverge
from providers.transport import Call, FakeTransport
from tests.cert_factory import make_ca, make_leaf
from tests.fake_windows_host import FakeWindowsHost
from tests.outs import outs_of

pytestmark = pytest.mark.unit

PASSWORD = "Pfx-Pass-123"
CA = make_ca("Undo Test CA")
LEAF = make_leaf(CA)
CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm",
        "username": "CONTOSO\\WapAdmin", "password": "LabOnly-Wap1-1!"}
PROPS = {"connection": CONN, "store": "My", "cert_pem": LEAF.pem,
         "pfx_base64": LEAF.pfx_base64(PASSWORD, chain=(CA.cert,)), "pfx_password": PASSWORD,
         "serves_fqdns": ["wapcomputer1.contoso.com"], "staging_dir": "C:\\temp"}


def keyless_import_host() -> tuple[FakeWindowsHost, FakeTransport]:
    """A host whose PFX import adds the chain's CA to the CA store (as Windows does) but leaves the certificate
    without its private key: the read after the import still differs from what was asked."""
    host = FakeWindowsHost()

    def handle(call: Call) -> Any:
        result = host.handle(call)
        if "Import-PfxCertificate" in call.names:
            host.certs[("My", LEAF.thumbprint)] = False
            host.certs[("CA", CA.thumbprint)] = False
        return result

    return host, FakeTransport(handle)


def test_an_import_that_does_not_converge_is_rolled_back_before_the_error() -> None:
    host, transport = keyless_import_host()
    with pytest.raises(HostDidNotConverge, match="there without its private key"):
        C.CertificateProvider(transport).create(PROPS)
    assert ("My", LEAF.thumbprint) not in host.certs  # not left to be adopted by the rerun
    assert ("CA", CA.thumbprint) not in host.certs    # the chain it added goes too


def test_the_roll_back_keeps_what_was_there_before() -> None:
    host, transport = keyless_import_host()
    host.certs[("CA", CA.thumbprint)] = False  # the operator had the CA already
    with pytest.raises(HostDidNotConverge):
        C.CertificateProvider(transport).create(PROPS)
    assert host.certs == {("CA", CA.thumbprint): False}


def test_a_host_that_converges_keeps_the_import() -> None:
    host = FakeWindowsHost()
    created = C.CertificateProvider(host.transport).create(PROPS)
    assert host.certs[("My", LEAF.thumbprint)] is True and outs_of(created)["has_private_key"] is True
