"""The Lab and WapCloud components under Pulumi's mocks: which resources they register (types, names, parents),
how outputs are wired into inputs, which inputs are secrets, what the program exports. No engine, no hosts:
`pulumi.runtime.set_mocks` answers every registration, and a recording monitor keeps the raw requests
(parent, dependencies, property dependencies, secret markers) that the plain mocks API does not show."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from components.config import ConfigurationError, StackConfig, parse_stack_config
from labsim.lab import DEFAULT_LAB, load_lab
from labsim.stack_config import stack_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LEGACY = "pulumi-python:dynamic:Resource"


def DYNAMIC(name: str) -> str:  # noqa: N802 - reads like the constant strings it builds
    return f"pulumi-python:dynamic/wapconnector:{name}"


CLOUDS = ("AzurePack_1", "AzurePack_2")
HOSTS = {"AzurePack_1": "wapcomputer1", "AzurePack_2": "wapcomputer2"}


def sim_config_values(lab: Any = None) -> dict[str, Any]:
    """The `labsim stack-config` values of ``lab`` (default: the seed lab), keyed without the namespace, with the
    passwords put where `pulumi config set --secret --path` puts them."""
    plain, secrets = stack_config(lab or load_lab(DEFAULT_LAB), state_dir=Path("/lab/state"),
                                  bundle_dir=Path("/lab/bundle"), project_dir=Path("/lab/project"))
    raw = {k.split(":", 1)[1]: v for k, v in plain.items()}
    for path, value in secrets.items():
        _ns, _credentials, name, _password = path.replace(":", ".").split(".")
        raw["credentials"][name]["password"] = value
    return raw


def fake_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What the providers would report, distinctive per resource so that wiring can be traced."""
    if name == "lab-ca":
        return {"cert_pem": "CA-PEM", "private_key_pem": "CA-KEY", "thumbprint": "CA" * 20}
    if name.endswith("-connector") and name.removeprefix("lab-").removesuffix("-connector") in CLOUDS:
        cloud = name.removeprefix("lab-").removesuffix("-connector")
        return {"cert_pem": f"PEM-{cloud}", "pfx_base64": f"PFX-{cloud}", "pfx_password": f"PW-{cloud}",
                "thumbprint": f"ISSUED-{cloud}", "expires_at": "2030-01-01T00:00:00+00:00"}
    if name.endswith("-connector-cert"):
        return {"thumbprint": f"INSTALLED-{name}"}
    if name.endswith("-connector-site"):
        return {"bound_thumbprint": f"BOUND-{name}", "endpoint": f"https://{inputs['tenant_portal_fqdn']}:40005"}
    if name == "lab-multi-cloud":
        return {"multi_cloud_enabled": True, "cloud_outputs": {
            c: {"file_name": f"AzurePack-01-02-03-04-{c}.txt", "content": f'{{"CloudName": "{c}"}}',
                "endpoint": endpoint, "realm": "https://adfs/x/", "signing_certificate": "AA=="}
            for c, endpoint in ((c["cloud_name"], c["cloud_endpoint"]) for c in inputs["clouds"])}}
    if name.endswith("-trust"):
        return {"realm": f"REALM-{name}"}
    if name == "lab-user-portal-ca":
        return {"thumbprint": "CA" * 20}
    return {}


class RecordingMonitor(MockMonitor):
    """The mock monitor, keeping every RegisterResource request (by URN)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.requests: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        self.requests[response.urn] = request
        return response


class LabMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = {**args.inputs, **fake_outputs(args.name, args.inputs)} if args.custom else {}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


@pytest.fixture
def monitor() -> Iterator[RecordingMonitor]:
    mon = RecordingMonitor(LabMocks())
    pulumi.runtime.set_mocks(LabMocks(), project="wapconnector", stack="unit", preview=False, monitor=mon)
    yield mon
    # Mocks are process-wide: without this, later tests' pulumi.log calls go to the mock engine, not stderr.
    pulumi.runtime.settings.configure(pulumi.runtime.settings.Settings(project=None, stack=None))


class Registered:
    """One RegisterResource request, decoded."""

    def __init__(self, urn: str, request: Any) -> None:
        self.urn = urn
        self.type = request.type
        self.name = request.name
        self.parent = request.parent
        self.dependencies = set(request.dependencies)
        self.property_dependencies = {k: set(v.urns) for k, v in request.propertyDependencies.items()}
        self.raw = json_format.MessageToDict(request.object)
        self.inputs = {k: rpc.unwrap_rpc_secret(v) for k, v in rpc.deserialize_properties(request.object).items()}

    def is_secret(self, prop: str) -> bool:
        value = self.raw.get(prop)
        return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def registered(monitor: RecordingMonitor) -> dict[str, Registered]:
    """Name -> registration (names are unique except for the Lab and its Pki, both "lab": keyed by type there)."""
    out = {}
    for urn, req in monitor.requests.items():
        r = Registered(urn, req)
        if r.type == "pulumi:pulumi:Stack":
            continue
        key = r.name if r.type.startswith("pulumi-python:") or r.name != "lab" else f"{r.name}:{r.type}"
        assert key not in out, key
        out[key] = r
    return out


def build_lab() -> Any:
    from components.lab import Lab

    config = parse_stack_config(sim_config_values())
    return Lab("lab", config)


def deploy(program: Callable[[], Any]) -> Any:
    """Run ``program`` under the mocks until every registration and output has settled (what
    ``@pulumi.runtime.test`` waits for); returns what the program returned."""
    result: list[Any] = []

    @pulumi.runtime.test
    def run() -> None:
        result.append(program())

    run()
    return result[0]


def expected_tree() -> dict[str, tuple[str, str]]:
    """name -> (type, parent key) of every resource a Lab of the seed's config registers."""
    tree = {
        "lab:wapconnector:lab:Lab": ("wapconnector:lab:Lab", ""),
        "lab:wapconnector:lab:Pki": ("wapconnector:lab:Pki", "lab:wapconnector:lab:Lab"),
        "lab-ca": (DYNAMIC("CertificateAuthority"), "lab:wapconnector:lab:Pki"),
        "lab-user-portal-ca": (DYNAMIC("Certificate"), "lab:wapconnector:lab:Lab"),
        "lab-multi-cloud": (DYNAMIC("AzurePackConnector"), "lab:wapconnector:lab:Lab"),
    }
    leaves = {"bundle": "ConnectorBundle", "connector-cert": "Certificate", "connector-site": "ConnectorSite",
              "endpoint-check": "EndpointCheck", "tenant-api-update": "TenantApiUpdate"}
    for cloud, host in HOSTS.items():
        tree[f"lab-{cloud}-connector"] = (DYNAMIC("IssuedCertificate"), "lab:wapconnector:lab:Pki")
        tree[f"lab-{cloud}"] = ("wapconnector:lab:WapCloud", "lab:wapconnector:lab:Lab")
        for leaf, type_name in leaves.items():
            tree[f"lab-{cloud}-{host}-{leaf}"] = (DYNAMIC(type_name), f"lab-{cloud}")
        tree[f"lab-{cloud}-trust"] = (DYNAMIC("TenantApiTrust"), f"lab-{cloud}")
    # 5 hosts (PEP, share host, user portal, wapcomputer1, wapcomputer2), 2 per provider process.
    for i in range(3):
        tree[f"lab-providers-{i}"] = ("pulumi:providers:pulumi-python", "lab:wapconnector:lab:Lab")
    return tree


def test_lab_registers_the_expected_resources_under_its_components(monitor: RecordingMonitor) -> None:
    deploy(build_lab)
    regs = registered(monitor)
    urn_key = {r.urn: k for k, r in regs.items()}
    seen = {k: (r.type, urn_key.get(r.parent, "")) for k, r in regs.items()}  # "" = the stack
    assert seen == expected_tree()


def test_every_dynamic_resource_aliases_the_type_state_was_written_with(monitor: RecordingMonitor) -> None:
    """Stacks deployed before each resource had its own type name hold ``pulumi-python:dynamic:Resource``: the
    alias (same name, same parent, old type) lets the engine adopt them (tests/e2e/test_type_names.py)."""
    deploy(build_lab)
    dynamic = [r for r in registered(monitor).values() if r.type.startswith("pulumi-python:")]
    assert len(dynamic) == 17
    for r in dynamic:
        qualified, name = r.urn.rsplit("::", 1)
        assert qualified.endswith(r.type)
        legacy = f"{qualified.removesuffix(r.type)}{LEGACY}::{name}"
        request = monitor.requests[r.urn]
        urns = set(request.aliasURNs) | {a.urn for a in request.aliases if a.urn}
        specs = [(a.spec.type, a.spec.name, a.spec.noParent) for a in request.aliases if a.HasField("spec")]
        assert legacy in urns or (LEGACY, "", False) in specs, (r.urn, urns, specs)


def test_each_trust_is_fed_by_its_clouds_connector_output(monitor: RecordingMonitor) -> None:
    deploy(build_lab)
    regs = registered(monitor)
    connector = regs["lab-multi-cloud"]
    for cloud, host in HOSTS.items():
        trust = regs[f"lab-{cloud}-trust"]
        # data_file_content/name are this cloud's entry of AzurePackConnector.cloud_outputs, not the other's.
        assert trust.inputs["data_file_content"] == f'{{"CloudName": "{cloud}"}}'
        assert trust.inputs["data_file_name"] == f"AzurePack-01-02-03-04-{cloud}.txt"
        assert trust.property_dependencies["data_file_content"] == {connector.urn}
        # It waits for the cloud's Tenant API update and the bundle on its host.
        assert {regs[f"lab-{cloud}-{host}-tenant-api-update"].urn, regs[f"lab-{cloud}-{host}-bundle"].urn} \
            <= trust.dependencies
        assert trust.inputs["sql_server"] == host
    # The cloud list the PEP gets names every cloud's endpoint.
    assert connector.inputs["clouds"] == [
        {"cloud_name": c, "cloud_endpoint": f"https://{h}.contoso.com:40005"} for c, h in HOSTS.items()]


def test_each_site_waits_for_its_bundle_and_certificate_and_each_check_for_its_site(monitor: RecordingMonitor) -> None:
    deploy(build_lab)
    regs = registered(monitor)
    for cloud, host in HOSTS.items():
        prefix = f"lab-{cloud}-{host}"
        site = regs[f"{prefix}-connector-site"]
        cert, bundle = regs[f"{prefix}-connector-cert"], regs[f"{prefix}-bundle"]
        assert {bundle.urn, cert.urn} <= site.dependencies
        assert site.inputs["certificate_thumbprint"] == f"INSTALLED-{prefix}-connector-cert"
        assert site.property_dependencies["certificate_thumbprint"] == {cert.urn}
        assert site.inputs["tenant_portal_fqdn"] == f"{host}.contoso.com"
        assert site.inputs["azure_stack_portal_fqdn"] == "portal.local.azurestack.external"
        # The installed certificate is the cloud's CA-issued one, with its key.
        assert cert.inputs["cert_pem"] == f"PEM-{cloud}" and cert.inputs["pfx_base64"] == f"PFX-{cloud}"
        assert cert.is_secret("pfx_base64") and cert.is_secret("pfx_password")
        assert cert.inputs["store"] == "My" and cert.inputs["serves_fqdns"] == [f"{host}.contoso.com"]
        # The endpoint check runs after the site and expects the certificate the stack installed (known in a
        # preview; the site's observed binding output would be unknown whenever the site is updated).
        endpoint = regs[f"{prefix}-endpoint-check"]
        assert site.urn in endpoint.dependencies
        assert endpoint.inputs["expected_thumbprint"] == f"INSTALLED-{prefix}-connector-cert"
        assert endpoint.inputs["ca_pem"] == "CA-PEM"
        assert endpoint.inputs["fqdn"] == f"{host}.contoso.com"
    assert regs["lab-user-portal-ca"].inputs["store"] == "CA"
    assert regs["lab-user-portal-ca"].inputs["cert_pem"] == "CA-PEM"


def test_each_host_is_served_by_one_explicit_provider_process_and_hosts_are_spread(monitor: RecordingMonitor) -> None:
    deploy(build_lab)
    regs = registered(monitor)
    providers = {r.urn: k for k, r in regs.items() if r.type == "pulumi:providers:pulumi-python"}
    provider_of = {}
    for key, r in regs.items():
        if not r.type.startswith("pulumi-python:dynamic"):
            continue
        ref = monitor.requests[r.urn].provider  # "<provider urn>::<provider id>"
        assert ref, f"{key} has no explicit provider: it would share the default provider's 4 workers"
        provider_of[key] = providers[ref.rsplit("::", 1)[0]]
    host_of = {k: r.inputs["connection"]["fqdn"] for k, r in regs.items()
               if r.type.startswith("pulumi-python:dynamic") and isinstance(r.inputs.get("connection"), dict)}
    by_host: dict[str, set[str]] = {}
    for key, host in host_of.items():
        by_host.setdefault(host, set()).add(provider_of[key])
    assert all(len(p) == 1 for p in by_host.values()), by_host  # one session pool per host
    for cloud, host in HOSTS.items():  # the check runs where its host's other resources run
        assert provider_of[f"lab-{cloud}-{host}-endpoint-check"] == provider_of[f"lab-{cloud}-{host}-connector-site"]
    # The two WAP computers work at the same time: different processes. The PKI has one too.
    assert provider_of["lab-AzurePack_1-wapcomputer1-connector-site"] != \
        provider_of["lab-AzurePack_2-wapcomputer2-connector-site"]
    assert provider_of["lab-ca"] == "lab-providers-0"


def provider_of(monitor: RecordingMonitor) -> dict[str, str]:
    """Resource name -> the name of its explicit provider resource."""
    regs = registered(monitor)
    providers = {r.urn: k for k, r in regs.items() if r.type == "pulumi:providers:pulumi-python"}
    return {key: providers[monitor.requests[r.urn].provider.rsplit("::", 1)[0]]
            for key, r in regs.items() if r.type.startswith("pulumi-python:dynamic")}


@pytest.mark.parametrize("clouds", [2, 12, 20])
def test_hosts_that_run_the_same_long_step_are_spread_evenly_over_the_provider_processes(monitor: RecordingMonitor,
                                                                                         clouds: int) -> None:
    # The benchmark's lab (2 tenant portal and 2 Tenant API VMs a cloud): dealt cloud by cloud, every portal VM
    # landed in 4 of the 8 processes, and a destroy ran 16 of its 24 three-MSI uninstalls and queued 8.
    from benchmarks.lab_scale import lab_data
    from components.lab import Lab
    from labsim.lab import Lab as LabsimLab

    config = parse_stack_config(sim_config_values(LabsimLab.model_validate(lab_data(clouds, 0.0, 0.0))))
    deploy(lambda: Lab("lab", config))
    of = provider_of(monitor)
    processes = sorted(set(of.values()))
    load: dict[str, dict[str, int]] = {}
    for step in ("connector-site", "tenant-api-update"):
        load[step] = {p: 0 for p in processes}
        for key, provider in of.items():
            if key.endswith(f"-{step}"):
                load[step][provider] += 1
        assert sum(load[step].values()) == 2 * clouds
        assert max(load[step].values()) - min(load[step].values()) <= 1, (step, load[step])
    if clouds == 12:  # 24 uninstalls over 8 processes of 4 workers: all at once
        assert len(processes) == 8 and max(load["connector-site"].values()) == 3


def test_provider_process_count_is_bounded_and_configurable() -> None:
    from components.providers import MAX_PROCESSES, process_count

    assert process_count(1) == 1 and process_count(5) == 3
    assert process_count(83) == MAX_PROCESSES  # 20 clouds: bounded memory
    assert process_count(83, configured=4) == 4
    assert parse_stack_config({**sim_config_values(), "providerProcesses": 4}).provider_processes == 4
    with pytest.raises(ConfigurationError, match="wapconnector:providerProcesses"):
        parse_stack_config({**sim_config_values(), "providerProcesses": 0})


def test_connection_inputs_and_credentials_are_secrets(monitor: RecordingMonitor) -> None:
    deploy(build_lab)
    regs = registered(monitor)
    with_connections = [r for r in regs.values() if "connection" in r.raw]
    # Every host resource: 2 Azure Stack ones + per cloud bundle, cert, site, update, trust.
    assert len(with_connections) == 2 + 5 * len(HOSTS)
    def password_only_secret(r: Registered, prop: str) -> None:
        # Only the password is a secret, so a plan can name the other fields that change (connection_input).
        value = r.raw[prop]
        assert not r.is_secret(prop), (r.name, prop)
        assert value["password"].get(rpc._special_sig_key) == rpc._special_secret_sig, (r.name, prop)
        assert "LabOnly-" not in json.dumps({k: v for k, v in value.items() if k != "password"}), (r.name, prop)

    for r in with_connections:
        password_only_secret(r, "connection")
    password_only_secret(regs["lab-multi-cloud"], "share_connection")
    pep = regs["lab-multi-cloud"].inputs["connection"]
    assert pep["configuration_name"] == "PrivilegedEndpoint" and pep["auth"] == "credssp"
    # Nothing else carries a password in clear: outside secrets, no password anywhere.
    def clear(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
                return None
            return {k: clear(v) for k, v in value.items()}
        return [clear(v) for v in value] if isinstance(value, list) else value

    for r in regs.values():
        assert "LabOnly-" not in json.dumps(clear(r.raw)), r.name


def preflight_answers(monkeypatch: pytest.MonkeyPatch, rows: Iterable[Any]) -> list[Any]:
    """The program's preflight, answered without hosts (unit tests open no sockets); returns the configs it got."""
    from components import preflight

    calls: list[Any] = []

    def fake(config: StackConfig, **_kw: Any) -> preflight.Report:
        calls.append(config)
        return preflight.Report(list(rows))

    monkeypatch.setattr(preflight, "run_preflight", fake)
    return calls


def run_program(values: dict[str, Any]) -> None:
    pulumi.runtime.set_all_config({f"wapconnector:{k}": json.dumps(v) if isinstance(v, (dict, list)) else v
                                   for k, v in values.items()}, secret_keys=["wapconnector:credentials"])
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


BROKEN = [("wapcomputer2", "URL Rewrite", "FAIL", "the IIS URL Rewrite module is not installed", "install it")]


def test_a_failing_preflight_stops_the_program_before_any_resource(monitor: RecordingMonitor,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from components.preflight import Row

    calls = preflight_answers(monkeypatch, [Row(*r) for r in BROKEN])
    errors: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda msg, *a, **k: errors.append(msg))
    with pytest.raises(SystemExit) as err:
        deploy(lambda: run_program(sim_config_values()))
    # The project's message is the run's one error; exit code 32 keeps the language host from adding its own.
    assert err.value.code == 32
    assert len(errors) == 1 and "URL Rewrite" in errors[0] and "nothing was changed" in errors[0]
    assert len(calls) == 1 and calls[0].azure_stack is not None
    assert [u for u in monitor.requests if "dynamic" in u] == []


def test_preflight_warn_prints_the_table_and_goes_on(monitor: RecordingMonitor,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from components.preflight import Row

    preflight_answers(monkeypatch, [Row(*r) for r in BROKEN])
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warnings.append(msg))
    deploy(lambda: run_program({**sim_config_values(), "preflight": "warn"}))
    assert any("URL Rewrite" in w and "going on" in w for w in warnings), warnings
    assert [u for u in monitor.requests if "connector-site" in u]


def test_program_exports_what_an_operator_needs(monitor: RecordingMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    values = sim_config_values()
    exported: dict[str, Any] = {}
    preflight_answers(monkeypatch, [])
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))

    def program() -> pulumi.Output:
        pulumi.runtime.set_all_config({f"wapconnector:{k}": json.dumps(v) if isinstance(v, (dict, list)) else v
                                       for k, v in values.items()},
                                      secret_keys=["wapconnector:credentials"])
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return pulumi.Output.all(pulumi.Output.from_input(exported["azureStack"]),
                                 pulumi.Output.from_input(exported["clouds"]), exported["caThumbprint"]).apply(
            resolved.extend)

    resolved: list[Any] = []
    deploy(program)
    assert set(exported) == {"azureStack", "clouds", "caThumbprint", "caExpiresAt", "caCertificatePem"}
    azs, clouds, ca = resolved
    assert azs == {"cloudName": "AzureStack", "portalFqdn": "portal.local.azurestack.external",
                   "multiCloudEnabled": True, "userPortalTrustsCa": "CA" * 20, "userPortalTrusts": ["CA" * 20]}
    assert set(clouds) == set(CLOUDS)
    for cloud, host in HOSTS.items():
        assert clouds[cloud] == {
            "endpoint": f"https://{host}.contoso.com:40005", "thumbprint": f"ISSUED-{cloud}",
            "expiresAt": "2030-01-01T00:00:00+00:00", "certificateSource": "labCa", "realm": f"REALM-lab-{cloud}-trust",
            "tenantPortalHosts": [host], "tenantApiHosts": [host]}
    assert ca == "CA" * 20
