"""labops.graph / labops.stacks without Pulumi: a deployment as `stack export --show-secrets` gives it, reduced
to a picture that names hosts and resources and keeps every secret out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from labops.graph import short_name, to_dot, type_label
from labops.stacks import SECRET_SIG, Drift, _opaque_connection, _stronger, resources_from_deployment

pytestmark = pytest.mark.unit

PASSWORD = "Pa55-w0rd-never-in-a-picture"
KEY = "-----BEGIN PRIVATE KEY-----MIIEvQ-secret-key"
STACK = "urn:pulumi:lab::wapconnector::pulumi:pulumi:Stack::wapconnector-lab"


def secret(value: object) -> dict:
    return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(value)}


def urn(kind: str, name: str, parents: str = "") -> str:
    return f"urn:pulumi:lab::wapconnector::{parents}{kind}::{name}"


def conn(fqdn: str) -> dict:
    return secret({"fqdn": fqdn, "address": "127.0.10.4", "username": "CONTOSO\\admin", "password": PASSWORD})


LAB = urn("wapconnector:lab:Lab", "lab")
CLOUD = urn("wapconnector:lab:WapCloud", "lab-AzurePack_1", "wapconnector:lab:Lab$")
PKI = urn("wapconnector:lab:Pki", "lab", "wapconnector:lab:Lab$")
CA = urn("pulumi-python:dynamic:Resource", "lab-ca", "wapconnector:lab:Lab$wapconnector:lab:Pki$")
PEP = urn("pulumi-python:dynamic/wapconnector:AzurePackConnector", "lab-multi-cloud", "wapconnector:lab:Lab$")
BUNDLE = urn("pulumi-python:dynamic:Resource", "lab-AzurePack_1-wapcomputer1-bundle", "x$")
SITE = urn("pulumi-python:dynamic/wapconnector:ConnectorSite", "lab-AzurePack_1-wapcomputer1-connector-site", "x$")
CHECK = urn("pulumi-python:dynamic:Resource", "lab-AzurePack_1-wapcomputer1-endpoint-check", "x$")


def deployment() -> dict:
    def res(u: str, parent: str | None = None, deps: Iterable[str] = (), custom: bool = True,
            **props: Any) -> dict[str, Any]:
        return {"urn": u, "type": u.split("::")[-2].split("$")[-1], "custom": custom, "parent": parent,
                "dependencies": list(deps), "inputs": props, "outputs": {**props, "__provider": secret("pickle")}}

    return {"resources": [
        res(STACK, custom=False),
        res("urn:pulumi:lab::wapconnector::pulumi:providers:pulumi-python::default", custom=True),
        res(LAB, STACK, custom=False),
        res(CLOUD, LAB, custom=False),
        res(PKI, LAB, custom=False),
        res(CA, PKI, private_key_pem=secret(KEY), cert_pem="-----BEGIN CERTIFICATE-----"),
        res(PEP, LAB, deps=[CA], connection=conn("AzS-ERCS01.azurestack.local."),
            share_connection=conn("su1fileserver")),
        res(BUNDLE, CLOUD, connection=conn("wapcomputer1.contoso.com")),
        # depends on the whole Pki component: an arrow from each of its resources
        res(SITE, CLOUD, deps=[BUNDLE, PKI], connection=conn("wapcomputer1.contoso.com")),
        res(CHECK, CLOUD, deps=[SITE, CA], fqdn="wapcomputer1.contoso.com"),
    ]}


def nodes(dot: str) -> dict[str, str]:
    """{node id: label} from the DOT source."""
    return {m[1]: m[2] for m in re.finditer(r'^\s+(r\d+) \[label="((?:[^"\\]|\\.)*)"', dot, re.M)}


def test_hosts_become_clusters_from_the_connection_fqdn_and_only_the_fqdn_is_kept() -> None:
    resources = resources_from_deployment(deployment())
    hosts = {r.name: r.host for r in resources if r.custom}
    assert hosts == {"lab-ca": None, "lab-multi-cloud": "azs-ercs01.azurestack.local",
                     "lab-AzurePack_1-wapcomputer1-bundle": "wapcomputer1.contoso.com",
                     "lab-AzurePack_1-wapcomputer1-connector-site": "wapcomputer1.contoso.com",
                     "lab-AzurePack_1-wapcomputer1-endpoint-check": None}
    # The reduced view holds no property at all, so nothing secret can leak from it.
    assert PASSWORD not in repr(resources) and KEY not in repr(resources)


def test_an_encrypted_connection_gives_no_host_rather_than_failing() -> None:
    d = deployment()
    stored = next(r for r in d["resources"] if r["urn"] == BUNDLE)
    stored["outputs"]["connection"] = stored["inputs"]["connection"] = {
        SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}
    bundle = next(r for r in resources_from_deployment(d) if r.urn == BUNDLE)
    assert bundle.host is None


@pytest.mark.parametrize("kind, label", [
    ("pulumi-python:dynamic:Resource", "dynamic resource"),
    ("pulumi-python:dynamic/wapconnector:ConnectorSite", "ConnectorSite"),
    ("pulumi-python:dynamic/wapconnector:TenantApiTrust", "TenantApiTrust"),
    ("aws:s3/bucket:Bucket", "Bucket"),
    ("odd", "odd"),
])
def test_type_names_are_read_from_any_type_token(kind: str, label: str) -> None:
    assert type_label(kind) == label


def test_short_names_drop_the_parent_and_host_prefixes() -> None:
    resources = resources_from_deployment(deployment())
    by_urn = {r.urn: r for r in resources}
    names = {r.name: short_name(r, by_urn) for r in resources if r.custom}
    assert names["lab-ca"] == "ca"
    assert names["lab-multi-cloud"] == "multi-cloud"
    assert names["lab-AzurePack_1-wapcomputer1-connector-site"] == "connector-site"
    # On the operator's machine the host stays in the name: it says which portal the check is for.
    assert names["lab-AzurePack_1-wapcomputer1-endpoint-check"] == "wapcomputer1-endpoint-check"


def test_the_dot_source_draws_clusters_types_dependencies_and_drift_without_secrets() -> None:
    drift = Drift("lab", "2026-11-30 01:00:00 UTC", ok=True,
                  ops={CA: "same", PEP: "update", BUNDLE: "same", SITE: "replace", CHECK: "same"},
                  diffs={PEP: ["multi_cloud_enabled"]})
    dot = to_dot("lab", resources_from_deployment(deployment()), drift)
    assert PASSWORD not in dot and KEY not in dot and "CONTOSO" not in dot and "127.0.10.4" not in dot
    clusters = re.findall(r'subgraph cluster_\d+ \{\n\s+label="([^"]+)"', dot)
    assert clusters == ["operator's machine", "azs-ercs01.azurestack.local", "wapcomputer1.contoso.com"]
    labels = nodes(dot)
    assert sorted(labels.values()) == sorted([
        "ca\\ndynamic resource\\nin sync",
        "multi-cloud\\nAzurePackConnector\\ndrift: update (multi_cloud_enabled)",
        "bundle\\ndynamic resource\\nin sync",
        "connector-site\\nConnectorSite\\ndrift: replace",
        "wapcomputer1-endpoint-check\\ndynamic resource\\nin sync",
    ])
    ids = {label.split("\\n")[0]: node for node, label in labels.items()}
    edges = set(re.findall(r"^\s+(r\d+) -> (r\d+);", dot, re.M))
    site, check = ids["connector-site"], ids["wapcomputer1-endpoint-check"]
    assert edges == {(ids["bundle"], site), (ids["ca"], site),  # the Pki component, expanded
                     (site, check), (ids["ca"], check), (ids["ca"], ids["multi-cloud"])}
    assert 'label="lab stack lab: drift: 1 to replace, 1 to update (refresh of 2026-11-30 01:00:00 UTC)"' in dot


def test_without_a_recorded_refresh_the_picture_says_drift_is_unknown() -> None:
    dot = to_dot("lab", resources_from_deployment(deployment()), None)
    assert "no refresh recorded (drift unknown)" in dot
    assert all(label.count("\\n") == 1 for label in nodes(dot).values())  # name and type, no status


def test_a_failed_refresh_says_why_and_colours_nothing_as_in_sync() -> None:
    drift = Drift("lab", "t", ok=False, ops={CA: "same"},
                  error="lab-multi-cloud: azs-ercs01.azurestack.local: cannot reach the host",
                  failed={PEP: "azs-ercs01.azurestack.local: cannot reach the host"})
    dot = to_dot("lab", resources_from_deployment(deployment()), drift)
    assert "unknown: lab-multi-cloud: azs-ercs01.azurestack.local: cannot reach the host" in dot
    assert "in sync" not in dot
    assert [label for label in nodes(dot).values() if label.endswith("not read")] == \
        ["multi-cloud\\nAzurePackConnector\\nnot read"]


def test_a_replace_outranks_its_halves_and_any_update() -> None:
    op = None
    for step in ("same", "update", "create-replacement", "delete-replaced"):
        op = _stronger(op, step)
    assert op == "replace"
    assert _stronger("update", "same") == "update"


def test_drift_is_recorded_and_read_back(tmp_path: Path) -> None:
    drift = Drift("lab", "2026-11-30 01:00:00 UTC", ok=True, ops={PEP: "update"}, diffs={PEP: ["x"]})
    drift.save(tmp_path)
    assert Drift.load("lab", tmp_path) == drift
    assert Drift.load("other", tmp_path) is None
    assert drift.describe() == "drift: 1 to update"


def test_a_connection_whose_password_alone_is_secret_gives_its_host_without_decrypting() -> None:
    ciphertext = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}
    stored = {"urn": SITE, "type": "pulumi-python:dynamic/wapconnector:ConnectorSite", "custom": True,
              "inputs": {"connection": {"fqdn": "WAPComputer1.contoso.com", "password": ciphertext}},
              "outputs": {"connection": ciphertext}}  # outputs keep the whole connection secret
    assert not _opaque_connection(stored)
    assert resources_from_deployment({"resources": [stored]})[0].host == "wapcomputer1.contoso.com"
    older = {**stored, "inputs": {"connection": ciphertext}}  # a state from before: nothing to read in clear
    assert _opaque_connection(older)
    assert not _opaque_connection({**stored, "inputs": {}, "outputs": {"fqdn": "x"}})  # no connection at all
