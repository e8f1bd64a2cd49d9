"""Certificate with ``existing=True``: the operator's connector certificate already in a tenant portal VM's My
store (source ``store``). check's rules (unit), then against labsim: verified read-only with its RawData, every
unfit case refused naming the host, delete leaves it and contacts no host."""

from __future__ import annotations

from typing import Any

import pytest

from labsim.server import LabServer
from providers import certificate as C
from providers.errors import ConnectorError
from providers.transport import Command, FakeTransport, PsrpTransport, Secret
from tests.cert_factory import Issued, org_ca, web_server_cert
from tests.outs import outs_of
from tests.providers.labsim_helpers import admin, conn_dict, invocations, last_id
from tests.providers.test_certificate import failures  # check's failures, asserting no host was touched

FQDN = "wapcomputer1.contoso.com"
ISSUING = org_ca("Contoso Issuing CA")
LEAF = web_server_cert(ISSUING, (FQDN,))
CONN = {"fqdn": FQDN, "address": "127.0.10.11", "auth": "ntlm", "username": "CONTOSO\\WapAdmin",
        "password": "LabOnly-Wap1-1!"}


def existing_props(thumbprint: str = LEAF.thumbprint, **kw: Any) -> dict[str, Any]:
    props = {"connection": dict(CONN), "store": "My", "existing": True, "thumbprint": thumbprint,
             "issuer_pem": ISSUING.pem, "serves_fqdns": [FQDN], "expiry_threshold_days": 30,
             "staging_dir": "C:\\temp"}
    props.update(kw)
    return props


@pytest.mark.unit
def test_check_accepts_an_existing_certificate_by_thumbprint() -> None:
    assert failures(existing_props()) == []
    assert failures(existing_props(thumbprint=" ".join(LEAF.thumbprint[i:i + 2] for i in range(0, 40, 2)))) == []


@pytest.mark.unit
@pytest.mark.parametrize("change, prop", [
    ({"thumbprint": None}, "thumbprint"),
    ({"thumbprint": "xyz"}, "thumbprint"),
    ({"store": "CA"}, "store"),
    ({"cert_pem": LEAF.pem}, "cert_pem"),
    ({"pfx_base64": "AAAA", "pfx_password": "x"}, "pfx_base64"),
    ({"issuer_pem": "not a pem"}, "issuer_pem"),
])
def test_check_refuses_what_an_existing_certificate_cannot_have(change: dict[str, Any], prop: str) -> None:
    assert prop in [p for p, _ in failures(existing_props(**change))]


@pytest.mark.unit
def test_an_imported_certificate_refuses_the_existing_only_inputs() -> None:
    props = {"connection": dict(CONN), "store": "CA", "cert_pem": ISSUING.pem, "issuer_pem": ISSUING.pem}
    assert failures(props) == [("issuer_pem", "only for store My")]
    props = {"connection": dict(CONN), "store": "CA", "cert_pem": ISSUING.pem, "thumbprint": ISSUING.thumbprint}
    assert failures(props) == [("thumbprint", "only for existing certificates")]


def pfx_props(cert: Issued, pfx: bytes, password: str = "P-1", **kw: Any) -> dict[str, Any]:
    import base64

    props = {"connection": dict(CONN), "store": "My", "cert_pem": cert.pem,
             "pfx_base64": base64.b64encode(pfx).decode(), "pfx_password": password, "serves_fqdns": [FQDN],
             "issuer_pem": ISSUING.pem}
    props.update(kw)
    return props


@pytest.mark.unit
def test_an_operators_pfx_with_its_issuer_is_checked_against_the_connectors_rules() -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    assert failures(pfx_props(LEAF, LEAF.pfx("P-1"))) == []
    client_only = web_server_cert(ISSUING, (FQDN,), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    foreign = web_server_cert(org_ca("Fabrikam CA"), (FQDN,))
    for props, expected in [
        (pfx_props(client_only, client_only.pfx("P-1")), ("cert_pem", "is not for server authentication")),
        (pfx_props(foreign, foreign.pfx("P-1")), ("cert_pem", "was not issued by CA")),
        (pfx_props(LEAF, LEAF.pfx("P-1", chain=[])), ("pfx_base64", "does not hold the chain")),
        (pfx_props(LEAF, LEAF.pfx("P-1", chain=[ISSUING.cert, org_ca("Other").cert])),
         ("pfx_base64", "also holds certificates outside the chain")),
        (pfx_props(LEAF, LEAF.pfx("P-1"), issuer_pem=LEAF.pem), ("issuer_pem", "is not a CA certificate")),
    ]:
        found = failures(props)
        assert any(p == expected[0] and expected[1] in r for p, r in found), (expected, found)


@pytest.mark.unit
def test_diff_another_thumbprint_replaces_and_the_same_is_no_change() -> None:
    olds = {**existing_props(), "thumbprint": LEAF.thumbprint, "has_private_key": True}
    assert C.CertificateProvider().diff("id", olds, existing_props(thumbprint=LEAF.thumbprint.lower())).changes is False
    other = web_server_cert(ISSUING, (FQDN,))
    d = C.CertificateProvider().diff("id", olds, existing_props(thumbprint=other.thumbprint))
    assert d.changes and "cert_pem" in (d.replaces or [])
    d = C.CertificateProvider().diff("id", {**olds, "existing": False}, existing_props())
    assert "existing" in (d.replaces or [])


@pytest.mark.unit
def test_delete_of_an_existing_certificate_contacts_no_host() -> None:
    t = FakeTransport({})
    C.CertificateProvider(t).delete("id", {**existing_props(), "thumbprint": LEAF.thumbprint})
    assert t.calls == []


# ---------------------------------------------------------------------------------------------------------------
# Against labsim over loopback

PASSWORD = "Adm1n-'Pfx\"$x"


def place(server: LabServer, host: str, cert: Issued, with_key: bool = True) -> None:
    """What an administrator does before the stack runs: import the PFX (or only the .cer) into My."""
    staged = f"C:\\temp\\{cert.thumbprint}.{'pfx' if with_key else 'cer'}"
    data = cert.pfx(PASSWORD) if with_key else cert.der
    importer = (Command("Import-PfxCertificate", {"FilePath": staged, "CertStoreLocation": "Cert:\\LocalMachine\\My",
                                                  "Password": Secret(PASSWORD)}) if with_key else
                Command("Import-Certificate", {"FilePath": staged, "CertStoreLocation": "Cert:\\LocalMachine\\My"}))
    admin(server, host, "place the operator's certificate", [
        Command("New-Item", {"Path": "C:\\temp", "ItemType": "Directory"}, ["Force"]),
        Command("Set-Content", {"Path": staged, "Value": data, "Encoding": "Byte"}),
        importer, Command("Remove-Item", {"Path": staged})])


def sim_props(server: LabServer, thumbprint: str, host: str = "wapcomputer1", **kw: Any) -> dict[str, Any]:
    return existing_props(thumbprint, connection=conn_dict(server, host), serves_fqdns=[server.lab.host(host).fqdn],
                          **kw)


def writes(server: LabServer, host: str, since: int) -> list[str]:
    # Get-Content: an ownership marker read; Write-Output: the boundary between a read's statements.
    reads = {"Get-Item", "Select-Object", "Test-Path", "Get-Content", "Write-Output"}
    return [i["command"] for i in invocations(server, host, since=since) if i["command"] not in reads]


@pytest.mark.sim
def test_sim_existing_certificate_is_verified_read_only_and_left_by_delete(labsim: LabServer,
                                                                           sim: PsrpTransport) -> None:
    leaf = web_server_cert(ISSUING, (labsim.lab.host("wapcomputer1").fqdn,))
    place(labsim, "wapcomputer1", leaf)
    p = C.CertificateProvider(sim)
    mark = last_id(labsim)
    created = p.create(sim_props(labsim, leaf.thumbprint))
    assert outs_of(created)["thumbprint"] == leaf.thumbprint and outs_of(created)["existing"] is True
    assert outs_of(created)["has_private_key"] is True
    assert outs_of(created)["issuer"] == ISSUING.cert.subject.rfc4514_string()
    assert outs_of(created)["expires_at"] == leaf.cert.not_valid_after_utc.isoformat()
    read = p.read(created.id, outs_of(created))
    assert p.diff(created.id, outs_of(read), sim_props(labsim, leaf.thumbprint)).changes is False
    p.delete(created.id, outs_of(read))
    assert writes(labsim, "wapcomputer1", mark) == []  # only Get-Item reads, no import, no removal
    assert p.read(created.id, outs_of(read)).id == created.id  # still there


@pytest.mark.sim
def test_sim_existing_certificate_unfit_or_missing_is_refused_naming_the_host(labsim: LabServer,
                                                                              sim: PsrpTransport) -> None:
    fqdn = labsim.lab.host("wapcomputer2").fqdn
    p = C.CertificateProvider(sim)
    absent = web_server_cert(ISSUING, (fqdn,))
    with pytest.raises(ConnectorError) as err:
        p.create(sim_props(labsim, absent.thumbprint, host="wapcomputer2"))
    assert f"{fqdn}, step 'read certificate': certificate {absent.thumbprint} is not in Cert:\\LocalMachine\\My" \
        in str(err.value)

    keyless = web_server_cert(ISSUING, (fqdn,))
    place(labsim, "wapcomputer2", keyless, with_key=False)
    wrong_name = web_server_cert(ISSUING, ("other.contoso.com",))
    place(labsim, "wapcomputer2", wrong_name)
    foreign = web_server_cert(org_ca("Fabrikam CA"), (fqdn,))
    place(labsim, "wapcomputer2", foreign)
    for cert, expected in [(keyless, "without its private key"), (wrong_name, f"does not name {fqdn}"),
                           (foreign, "was not issued by CA")]:
        mark = last_id(labsim)
        with pytest.raises(ConnectorError) as err:
            p.create(sim_props(labsim, cert.thumbprint, host="wapcomputer2"))
        assert fqdn in str(err.value) and expected in str(err.value), str(err.value)
        assert writes(labsim, "wapcomputer2", mark) == []


@pytest.mark.sim
def test_sim_pfx_source_already_imported_by_the_operator_is_adopted_and_left_by_delete(labsim: LabServer,
                                                                                       sim: PsrpTransport) -> None:
    """Source pfx, but the administrators had imported that certificate already: the stack's create writes only
    its ownership marker (no import), and destroy leaves the certificate."""
    import base64

    fqdn = labsim.lab.host("wapcomputer1").fqdn
    leaf = web_server_cert(ISSUING, (fqdn,))
    place(labsim, "wapcomputer1", leaf)
    props = {"connection": conn_dict(labsim, "wapcomputer1"), "store": "My", "cert_pem": leaf.pem,
             "pfx_base64": base64.b64encode(leaf.pfx("Stack-Pfx-1")).decode(), "pfx_password": "Stack-Pfx-1",
             "serves_fqdns": [fqdn], "owner": "wapconnector/sim-a"}
    p = C.CertificateProvider(sim)
    assert p.check({}, props).failures == []
    mark = last_id(labsim)
    created = p.create(props)
    assert outs_of(created)["adopted"] is True
    assert [i["command"] for i in invocations(labsim, "wapcomputer1", "Import-PfxCertificate", since=mark)] == []
    p.delete(created.id, outs_of(created))
    assert p.read(created.id, outs_of(created)).id == created.id  # still in My
    assert [i for i in invocations(labsim, "wapcomputer1", "Remove-Item", since=mark)
            if leaf.thumbprint in str(i["parameters"]) and "Cert:" in str(i["parameters"])] == []


@pytest.mark.sim
def test_sim_renewal_keeps_the_chain_the_renewed_certificate_still_needs(labsim: LabServer, sim: PsrpTransport) -> None:
    """A renewed PFX is imported (create) before the old certificate is deleted (replace). The chain certificates
    the first import added are found present by the second, so only the first records them; its delete must not
    take them from under the renewed certificate. Known limit: the renewed certificate's own delete then leaves
    them (it cannot tell them from CA certificates that were there before); delete warns about it."""
    import base64

    fqdn = labsim.lab.host("wapcomputer2").fqdn
    root = org_ca("Renewal Root CA")
    issuing = org_ca("Renewal Issuing CA", parent=root)
    old, new = web_server_cert(issuing, (fqdn,)), web_server_cert(issuing, (fqdn,))

    def props(cert: Issued) -> dict[str, Any]:
        return {"connection": conn_dict(labsim, "wapcomputer2"), "store": "My", "cert_pem": cert.pem,
                "pfx_base64": base64.b64encode(cert.pfx("R-1")).decode(), "pfx_password": "R-1",
                "serves_fqdns": [fqdn], "issuer_pem": issuing.pem}

    def present(store: str, thumb: str) -> Any:
        return admin(labsim, "wapcomputer2", "look", Command("Test-Path", {
            "Path": f"Cert:\\LocalMachine\\{store}\\{thumb}"})).single()

    p = C.CertificateProvider(sim)
    first = p.create(props(old))
    assert sorted(outs_of(first)["chain_added"]) == sorted([["CA", issuing.thumbprint], ["Root", root.thumbprint]])
    second = p.create(props(new))
    assert outs_of(second)["chain_added"] == []
    p.delete(first.id, outs_of(first))
    assert not present("My", old.thumbprint)
    assert present("CA", issuing.thumbprint) and present("Root", root.thumbprint)  # the renewed one needs them
    p.delete(second.id, outs_of(second))
    assert not present("My", new.thumbprint)
    assert present("CA", issuing.thumbprint)  # the known limit above

    # Without a renewal, delete removes the chain its import added, as before.
    alone = web_server_cert(org_ca("Lone CA"), (fqdn,))
    created = p.create({**props(alone), "issuer_pem": alone.parents[0].pem})
    assert outs_of(created)["chain_added"] == [["Root", alone.parents[0].thumbprint]]
    p.delete(created.id, outs_of(created))
    assert not present("Root", alone.parents[0].thumbprint)


@pytest.mark.unit
def test_still_needed_follows_issuers_up_the_chain() -> None:
    root = org_ca("R")
    issuing = org_ca("I", parent=root)
    other = org_ca("O")
    leaf = web_server_cert(issuing, (FQDN,))
    chain = {("CA", issuing.thumbprint): issuing.cert, ("Root", root.thumbprint): root.cert,
             ("Root", other.thumbprint): other.cert}
    assert C.still_needed([leaf.cert], chain) == {("CA", issuing.thumbprint), ("Root", root.thumbprint)}
    assert C.still_needed([], chain) == set()
