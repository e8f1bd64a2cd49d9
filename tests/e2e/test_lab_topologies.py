"""Another topology on the real engine: three WAP clouds (labsim/labs/three-clouds.yaml), each with two
tenant portal VMs and two Tenant API VMs behind load-balanced names and a separate SQL server. The connector
certificate names the cloud's portal name (not a VM's), every VM serves it, the trust lands on the cloud's own
SQL server, and the hosts are worked on concurrently (labsim's latency_factor makes the long steps take time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.preflight import READ_COMMANDS
from labsim.hosts.wapconnector import CONNECTOR_SITES, UPDATED_TENANT_API_CODE
from labsim.lab import Role, load_lab
from providers.endpoint_check import probe
from tests.e2e.lab_stack import lab_stack

pytestmark = pytest.mark.e2e

LAB_FILE = Path(__file__).resolve().parents[2] / "labsim" / "labs" / "three-clouds.yaml"
TRUST_ROW = ("Microsoft.MgmtSvc.Store", "TenantAPI", "Authentication.IdentityProvider.Secondary")


def max_concurrent_hosts(invocations: list[dict]) -> int:
    """The largest number of distinct hosts with a command running at the same instant."""
    events = sorted([(i["started"], 1, i["host"]) for i in invocations]
                    + [(i["ended"], -1, i["host"]) for i in invocations])
    running: dict[str, int] = {}
    best = 0
    for _t, delta, host in events:  # at equal times an end (-1) sorts before a start (+1): no false overlap
        running[host] = running.get(host, 0) + delta
        best = max(best, sum(1 for n in running.values() if n > 0))
    return best


def overlapping_pairs(invocations: list[dict]) -> set[frozenset[str]]:
    """Pairs of different hosts whose commands (from ``invocations``) ran at the same time."""
    pairs = set()
    for a in invocations:
        for b in invocations:
            if a["host"] != b["host"] and a["started"] < b["ended"] and b["started"] < a["ended"]:
                pairs.add(frozenset((a["host"], b["host"])))
    return pairs


def test_three_clouds_with_load_balanced_names_and_separate_sql_deploy_concurrently(tmp_path: Path) -> None:
    lab_def = load_lab(LAB_FILE)
    assert lab_def.settings.latency_factor > 0
    with lab_stack(tmp_path, lab_def, provider_processes=None, pep_polling_seconds=2.0) as lab:
        up = lab.project.up()
        assert "error" not in up.output.lower(), up.output
        outputs = lab.outputs()
        clouds = outputs["clouds"]
        assert sorted(clouds) == ["WapCloud1", "WapCloud2", "WapCloud3"]
        assert sorted(c["CloudName"] for c in lab.snapshot("AzS-ERCS01")["pep"]["clouds"]) == sorted(clouds)

        checks = {r["outputs"]["connect_address"]: r["outputs"] for r in lab.project.resources()
                  if r["urn"].endswith("-endpoint-check")}
        for declared in lab.lab.clouds:
            n = declared.name[-1]
            cloud = clouds[declared.name]
            # The endpoint is the cloud's load-balanced portal name, which no VM is called.
            assert cloud["endpoint"] == f"https://tenant.cloud{n}.contoso.com:40005"
            members = lab.lab.cloud_hosts()[declared.name]
            portals = [h for h in members if h.has(Role.WAP_TENANT_PORTAL)]
            apis = [h for h in members if h.has(Role.WAP_TENANT_API)]
            sql = next(h for h in members if h.has(Role.WAP_SQL))
            assert len(portals) == 2 and len(apis) == 2 and sql not in apis
            for vm in portals:
                snap = lab.snapshot(vm.name)
                for site in CONNECTOR_SITES:
                    s = snap["sites"][site.lower()]
                    assert [b["certificateHash"] for b in s["bindings"]] == [cloud["thumbprint"]], (vm.name, site)
                    assert s["appSettings"]["TenantPortalFQDN"] == declared.tenant_portal_fqdn
                    assert s["appSettings"]["TenantAPIFQDN"] == declared.tenant_api_fqdn
                # Each VM, reached at its own address, answers for the cloud's name with the cloud's certificate,
                # trusted through the stack's CA: what the stack's EndpointCheck recorded, and what we see now.
                check = checks[vm.address]
                assert check["fqdn"] == declared.tenant_portal_fqdn
                assert check["served_thumbprint"] == cloud["thumbprint"]
                assert declared.tenant_portal_fqdn is not None
                assert probe(declared.tenant_portal_fqdn, 40005, outputs["caCertificatePem"], vm.address) \
                    == cloud["thumbprint"]
            for vm in apis:
                code = lab.snapshot(vm.name)["registry"][r"SOFTWARE\Microsoft\MgmtSvc\TenantAPI"]["ProductCode"]
                assert code == UPDATED_TENANT_API_CODE, vm.name
            # The trust is written once per cloud, into the cloud's own SQL server, by one Tenant API VM.
            trust_runs = lab.invocations(command="Configure-TrustAzureStack.ps1")
            mine = [i for i in trust_runs if i["host"] in {h.name for h in apis}]
            assert len(mine) == 1 and dict(mine[0]["parameters"])["SqlServer"] == sql.name, mine
            db, ns, name = TRUST_ROW
            assert name in lab.snapshot(sql.name)["sql"][db][ns]
            assert lab.invocations(host=sql.name) == []  # reached only through Configure-TrustAzureStack

        # Work on different hosts overlaps in time.
        ran = [i for i in lab.invocations() if i["ended"] is not None]
        installs = [i for i in ran if i["command"].endswith("Install-Connector.ps1")]
        assert len({i["host"] for i in installs}) == 6
        assert overlapping_pairs(installs), [(i["host"], i["started"], i["ended"]) for i in installs]
        # More hosts at once than one dynamic-provider process could serve (4 calls): the lab's explicit provider
        # processes (components/providers.py) lift that cap. Counted from labsim's log, not from wall-clock ratios.
        # The program's read-only preflight asks every host at once before any resource exists: count from the
        # first command that is not one of its reads (a provider's), so only the providers' calls count.
        first = min(i["started"] for i in ran if i["command"] not in READ_COMMANDS)
        by_providers = [i for i in ran if i["started"] >= first]
        assert max_concurrent_hosts(by_providers) > 4, max_concurrent_hosts(by_providers)

        lab.assert_clean()
