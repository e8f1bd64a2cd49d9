"""The scale benchmark's own arithmetic (benchmarks/lab_scale.py): the critical path of a lab's graph, the lab it
generates. The harness end to end is tests/e2e/test_bench_harness.py."""

from __future__ import annotations

import pytest

from benchmarks.lab_scale import critical_paths, lab_data, parse_clouds
from labsim.lab import Lab

pytestmark = pytest.mark.unit

T = "pulumi-python:dynamic/wapconnector:X"


def res(name: str, *deps: str) -> dict:
    return {"urn": f"urn:pulumi:s::p::{T}::{name}", "type": T, "custom": True,
            "dependencies": [f"urn:pulumi:s::p::{T}::{d}" for d in deps]}


def test_critical_path_is_the_longest_weighted_chain_both_ways() -> None:
    resources = [
        res("lab-c1-p1-connector-cert"), res("lab-c1-p1-bundle"),
        res("lab-c1-p1-connector-site", "lab-c1-p1-connector-cert", "lab-c1-p1-bundle"),
        res("lab-c1-p1-endpoint-check", "lab-c1-p1-connector-site"),
        res("lab-c1-a1-bundle"), res("lab-c1-a1-tenant-api-update", "lab-c1-a1-bundle"),
        res("lab-multi-cloud"),
        res("lab-c1-trust", "lab-c1-a1-tenant-api-update", "lab-multi-cloud"),
        {"urn": "urn:pulumi:s::p::pulumi:providers:pulumi-python::lab-providers-0",
         "type": "pulumi:providers:pulumi-python", "custom": True},
    ]
    # factor 0.2: PEP 45 s x 0.2 + 2 s polling, then the trust 1 s (the site chain: 0.2 + 8 + 0.6 + 0.6 = 9.4 s).
    # Deleting: the site uninstalls its three packages, 3 x 20 s x 0.2.
    assert critical_paths(resources, 0.2) == (12.0, 12.0)
    assert critical_paths(resources, 0.0) == (2.0, 0.0)  # only the polling, which the factor does not scale


def test_generated_lab_has_five_hosts_per_cloud_behind_one_azure_stack() -> None:
    lab = Lab.model_validate(lab_data(20, 0.2, 1.0))
    assert len(lab.hosts) == 103 and len(lab.clouds) == 20
    assert lab.settings.latency_factor == 0.2 and lab.settings.connection_cost_factor == 1.0
    assert parse_clouds("2, 6,12") == [2, 6, 12]
