"""The operator-side endpoint check against a real TLS listener on loopback."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.endpoint_check import EndpointCheckFailed, EndpointCheckProvider, probe
from providers.pki import CertificateAuthorityProvider, IssuedCertificateProvider
from tests.outs import outs_of

pytestmark = pytest.mark.sim  # real sockets on loopback (no labsim needed)

CA = {"common_name": "Check CA", "key_type": "ecdsa-p256", "validity_days": 3650, "not_after": None,
      "renew_before_days": 30}


def _issue(ca: dict, fqdn: str) -> dict:
    return outs_of(IssuedCertificateProvider().create({
        "ca_cert_pem": ca["cert_pem"], "ca_private_key_pem": ca["private_key_pem"], "common_name": fqdn,
        "dns_names": [fqdn], "ip_addresses": [], "key_type": "ecdsa-p256", "validity_days": 30, "not_after": None,
        "renew_before_days": 1}))


class TlsServer:
    """Serves one certificate on 127.0.0.1 until closed; completes handshakes and closes."""

    def __init__(self, cert: dict) -> None:
        self._dir = tempfile.TemporaryDirectory()
        cert_file, key_file = Path(self._dir.name, "c.pem"), Path(self._dir.name, "k.pem")
        cert_file.write_text(cert["chain_pem"])
        key_file.write_text(cert["private_key_pem"])
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._dir.cleanup()


Served = tuple[dict[str, Any], TlsServer]  # the served certificate's outputs and its server


@pytest.fixture(scope="module")
def ca() -> dict:
    return outs_of(CertificateAuthorityProvider().create(dict(CA)))


@pytest.fixture(scope="module")
def served(ca: dict[str, Any]) -> Iterator[Served]:
    cert = _issue(ca, "wapcomputer1.contoso.com")
    server = TlsServer(cert)
    yield cert, server
    server.close()


def test_probe_returns_the_served_thumbprint(ca: dict[str, Any], served: Served) -> None:
    cert, server = served
    assert probe("wapcomputer1.contoso.com", server.port, ca["cert_pem"], "127.0.0.1") == cert["thumbprint"]


def test_probe_refuses_a_certificate_for_another_name(ca: dict[str, Any], served: Served) -> None:
    _, server = served
    with pytest.raises(EndpointCheckFailed, match="not trusted for wapcomputer2.contoso.com"):
        probe("wapcomputer2.contoso.com", server.port, ca["cert_pem"], "127.0.0.1")


def test_probe_refuses_a_chain_from_another_ca(served: Served) -> None:
    _, server = served
    other = outs_of(CertificateAuthorityProvider().create({**CA, "common_name": "Other CA"}))
    with pytest.raises(EndpointCheckFailed, match="issued by the cloud's issuing CA"):
        probe("wapcomputer1.contoso.com", server.port, other["cert_pem"], "127.0.0.1")


def test_probe_trusts_an_operators_intermediate_issuing_ca_alone_and_not_its_siblings() -> None:
    """The operator's issuingCaFile may be an intermediate: it is the anchor by itself (partial chain), and a
    certificate from another intermediate under the same root is still refused."""
    from cryptography.hazmat.primitives import serialization

    from tests.cert_factory import org_ca, web_server_cert

    root = org_ca("Contoso Root CA")
    issuing, sibling = org_ca("Contoso Issuing CA", parent=root), org_ca("Contoso Other CA", parent=root)
    leaf = web_server_cert(issuing, ("wapcomputer1.contoso.com",))
    key_pem = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
    server = TlsServer({"chain_pem": leaf.pem + issuing.pem, "private_key_pem": key_pem})
    try:
        assert probe("wapcomputer1.contoso.com", server.port, issuing.pem, "127.0.0.1") == leaf.thumbprint
        with pytest.raises(EndpointCheckFailed, match="not trusted"):
            probe("wapcomputer1.contoso.com", server.port, sibling.pem, "127.0.0.1")
    finally:
        server.close()


def test_probe_says_when_nothing_answers(ca: dict[str, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EndpointCheckFailed, match="does not answer TLS"):
        probe("wapcomputer1.contoso.com", port, ca["cert_pem"], "127.0.0.1", timeout=2)


def test_create_fails_on_an_unexpected_thumbprint_and_passes_on_the_right_one(ca: dict[str, Any],
                                                                              served: Served) -> None:
    cert, server = served
    props = {"fqdn": "wapcomputer1.contoso.com", "port": server.port, "connect_address": "127.0.0.1",
             "ca_pem": ca["cert_pem"], "expected_thumbprint": "0" * 40, "wait_seconds": 0}
    provider = EndpointCheckProvider()
    assert provider.check({}, props).failures == []
    with pytest.raises(EndpointCheckFailed, match=f"serves certificate {cert['thumbprint']}, expected 0000"):
        provider.create(props)
    outs = outs_of(provider.create({**props, "expected_thumbprint": cert["thumbprint"]}))
    assert outs["served_thumbprint"] == cert["thumbprint"]
    # It re-runs only when a trigger changes.
    assert provider.diff("x", outs, {**props, "expected_thumbprint": cert["thumbprint"]}).changes is False
    assert provider.diff("x", outs, {**props, "expected_thumbprint": "A" * 40}).changes is True


def test_check_rejects_bad_input() -> None:
    failures = EndpointCheckProvider().check({}, {"fqdn": "not a name", "port": 70000, "ca_pem": "",
                                                  "expected_thumbprint": "xyz"}).failures
    assert sorted(f.property for f in failures) == ["ca_pem", "expected_thumbprint", "fqdn", "port"]
