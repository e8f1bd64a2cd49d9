"""Host behaviour over real loopback WinRM/PSRP with the unmodified pypsrp client, and the labsim CLI as a
subprocess (serve --background, exec, show, fault, invocations, stop)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from labsim.hosts import LabRuntime
from labsim.hosts.pep import SUCCESS_LINE
from labsim.hosts.wapconnector import make_bundle
from labsim.pki import thumbprint
from labsim.server import LabServer
from labsim.testing import free_loopback_lab, start_labsim
from tests.cert_factory import private_key
from tests.lab_state import lab_runtime
from tests.labsim.hosts_helpers import BUNDLE_ROOT, PEP, SCRIPTS, WAP, default_lab
from tests.polling import wait_for

pytestmark = [pytest.mark.sim, pytest.mark.timeout(120)]
WAP_PASSWORD = "LabOnly-Wap1-1!"
PEP_USER, PEP_PASSWORD = "AZURESTACK\\CloudAdmin", "LabOnly-Pep-1!"


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    return {"pep_polling_seconds": 30, "operation_timeout": 2}


def connect(server: LabServer, host: str = WAP, user: str = "CONTOSO\\WapAdmin", password: str = WAP_PASSWORD,
            auth: str = "basic") -> WSMan:
    address, port = server.endpoint(host)
    return WSMan(address, port=port, ssl=True, auth=auth, username=user, password=password,
                 cert_validation=str(server.ca_file),  # type: ignore[arg-type]  # a CA bundle's path; hint says bool
                 operation_timeout=2, read_timeout=10, connection_timeout=3)


def invoke(pool: RunspacePool, name: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(name)
    for k, v in params.items():
        ps.add_parameter(k, v)
    ps.invoke()
    return ps


def props(obj: GenericComplexObject) -> dict:
    return dict(obj.adapted_properties) | dict(obj.extended_properties)


def test_connector_install_over_the_wire_serves_40005(labsim: LabServer, tmp_path: Path) -> None:
    server = labsim
    local = make_bundle(tmp_path)
    with RunspacePool(connect(server)) as pool:
        site = invoke(pool, "Get-Website", Name="MgmtSvc-TenantSite")
        assert not site.had_errors and props(site.output[0])["state"] == "Started"
        for path in sorted(local.rglob("*")):
            remote = BUNDLE_ROOT + "\\" + "\\".join(path.relative_to(local).parts)
            if path.is_dir():
                assert not invoke(pool, "New-Item", Path=remote, ItemType="Directory", Force=True).had_errors
                continue
            data = path.read_bytes()
            for i in range(0, len(data), 48 * 1024):
                ps = invoke(pool, "Set-Content" if i == 0 else "Add-Content", Path=remote, Value=data[i:i + 48 * 1024],
                            Encoding="Byte")
                assert not ps.had_errors and not ps.streams.error, ps.streams.error
        h = invoke(pool, "Get-FileHash", Path=f"{BUNDLE_ROOT}\\Setup\\Packages\\MgmtSvc-Connector.msi")
        import hashlib

        assert props(h.output[0])["Hash"] == hashlib.sha256(
            (local / "Setup" / "Packages" / "MgmtSvc-Connector.msi").read_bytes()).hexdigest().upper()
        for script in ("Install-Connector.ps1", "Configure-Certificates.ps1"):
            ps = invoke(pool, f"{SCRIPTS}\\{script}")
            assert not ps.had_errors, ps.streams.error
        binding = invoke(pool, "Get-WebBinding", Name="MgmtSvc-Connector", Protocol="https")
        thumb = props(binding.output[0])["certificateHash"]
        bad = invoke(pool, f"{SCRIPTS}\\Configure-Certificates.ps1", Thumbprint="AB" * 20)
        assert bad.had_errors and bad.state == PSInvocationState.FAILED
    address = server.lab.host(WAP).address
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.check_hostname = False

    def served() -> str | None:
        try:
            with socket.create_connection((address, 40005), timeout=1) as sock, ctx.wrap_socket(sock) as tls:
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                return thumbprint(der)
        except OSError:
            return None

    wait_for(lambda: served() == thumb)


def test_pep_refuses_script_text_and_records_it(labsim: LabServer) -> None:
    server, rt = labsim, lab_runtime(labsim)
    with RunspacePool(connect(server, PEP, PEP_USER, PEP_PASSWORD, auth="credssp"),
                      configuration_name="PrivilegedEndpoint") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-ChildItem C:\\")
        ps.invoke()
        assert ps.had_errors
        assert ps.state == PSInvocationState.FAILED
        assert [e.fq_error for e in ps.streams.error] == ["ScriptsNotAllowed"], ps.streams.error
    assert rt.state.invocations(PEP)[-1]["command"] == "Get-ChildItem C:\\"


def test_pep_success_line_then_stop(labsim: LabServer) -> None:
    server, rt = labsim, lab_runtime(labsim)
    clouds = [{"CloudName": "AzurePack_1", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"}]
    with RunspacePool(connect(server, PEP, PEP_USER, PEP_PASSWORD, auth="credssp"),
                      configuration_name="PrivilegedEndpoint") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Add-AzurePackConnector").add_parameter("AzurePackClouds", clouds)
        ps.add_parameter("AzureStackCloudName", "AzureStack")
        ps.begin_invoke()
        wait_for(lambda: rt.snapshot(PEP)["pep"]["multicloud"])  # done at the success line; now it polls
        ps.stop()
        assert ps.state == PSInvocationState.STOPPED
    wait_for(lambda: rt.state.invocations(PEP, "Add-AzurePackConnector")[-1]["outcome"] == "stopped")
    share = rt.snapshot("AzS-HOST")["share"]
    assert any(p.endswith("-AzurePack_1.txt") for p in share)


def test_pep_success_line_reaches_the_client(tmp_path: Path) -> None:
    lab = free_loopback_lab(default_lab())
    lab.settings.pep_polling_seconds = 0.2
    with start_labsim(lab, LabRuntime.open, tmp_path) as server:
        with RunspacePool(connect(server, PEP, PEP_USER, PEP_PASSWORD, auth="credssp"),
                          configuration_name="PrivilegedEndpoint") as pool:
            ps = invoke(pool, "Add-AzurePackConnector", DisableMultiCloud=True)
            assert not ps.had_errors
            ps = invoke(pool, "Add-AzurePackConnector", AzureStackCloudName="AzureStack",
                        AzurePackClouds=[{"CloudName": "A", "CloudEndpoint": "https://wapcomputer1.contoso.com:40005"}])
            assert not ps.had_errors, ps.streams.error
            assert SUCCESS_LINE in [v.message for v in ps.streams.verbose]


def _labsim(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "labsim", *args], capture_output=True, text=True, env=env, timeout=90)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_serve_background_exec_show_fault_stop(tmp_path: Path) -> None:
    lab = free_loopback_lab(default_lab())
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(yaml.safe_dump(lab.model_dump(mode="json")))
    env = os.environ | {"LABSIM_LAB": str(lab_file), "LABSIM_STATE_DIR": str(tmp_path / "state")}
    assert "not running" in _labsim("exec", WAP, "Get-Website", env=env, check=False).stderr
    _labsim("serve", "--background", "--pid-file", str(tmp_path / "pid"), env=env)
    try:
        # an administrator's out-of-band change, then its effect through a read cmdlet and `show`
        _labsim("exec", WAP, "Stop-Website", "-Name", "MgmtSvc-TenantSite", env=env)
        out = _labsim("exec", WAP, "Get-Website", "-Name", "MgmtSvc-TenantSite", env=env).stdout
        assert json.loads(out.splitlines()[0])["state"] == "Stopped"
        show = json.loads(_labsim("show", WAP, env=env).stdout)
        assert show["sites"]["mgmtsvc-tenantsite"]["state"] == "Stopped"
        _labsim("fault", WAP, "command-terminating", "Get-Website", env=env)
        bad = _labsim("exec", WAP, "Get-Website", env=env, check=False)
        assert bad.returncode == 1 and "LabsimFault" in bad.stderr
        _labsim("fault", WAP, "clear", env=env)
        rows = [json.loads(line) for line in _labsim("invocations", WAP, env=env).stdout.splitlines()]
        assert [r["command"] for r in rows][:2] == ["Stop-Website", "Get-Website"]
        _labsim("reset", env=env)
        assert json.loads(_labsim("show", WAP, env=env).stdout)["sites"]["mgmtsvc-tenantsite"]["state"] == "Started"
        assert "no host 'nope'" in _labsim("show", "nope", env=env, check=False).stderr
    finally:
        _labsim("stop", "--pid-file", str(tmp_path / "pid"), env=env, check=False)
    assert "not running" in _labsim("stop", env=env, check=False).stderr


def test_secure_string_and_credential_parameters_over_the_wire(labsim: LabServer, tmp_path: Path) -> None:
    """A PFX password (SecureString) and a SqlCredential (PSCredential) cross the wire, work, and are redacted."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from pypsrp.complex_objects import PSCredential
    from pypsrp.serializer import TaggedValue

    server, rt = labsim, lab_runtime(labsim)
    cert_pem, key_pem = rt.ca.issue("secure.contoso.com", ["secure.contoso.com"])
    pfx = pkcs12.serialize_key_and_certificates(
        b"x", private_key(key_pem), x509.load_pem_x509_certificate(cert_pem), None,
        serialization.BestAvailableEncryption(b"Pfx-Secret-42"))
    with RunspacePool(connect(server)) as pool:
        pool.exchange_keys()
        assert not invoke(pool, "Set-Content", Path="C:\\wire.pfx", Value=pfx, Encoding="Byte").had_errors
        ps = invoke(pool, "Import-PfxCertificate", FilePath="C:\\wire.pfx", CertStoreLocation="Cert:\\LocalMachine\\My",
                    Password=TaggedValue("SS", "Pfx-Secret-42"))
        assert not ps.had_errors, ps.streams.error
        assert props(ps.output[0])["HasPrivateKey"] is True
        # the script file is all Configure-TrustAzureStack needs to be a command (no order dependency on other tests)
        assert not invoke(pool, "New-Item", Path=f"{SCRIPTS}\\Configure-TrustAzureStack.ps1", ItemType="File",
                          Force=True).had_errors
        cred = PSCredential(username="CONTOSO\\WapAdmin", password="wrong-password")
        ps = invoke(pool, f"{SCRIPTS}\\Configure-TrustAzureStack.ps1", SqlServer="wapcomputer1",
                    DataFile="C:\\none.txt", SqlCredential=cred)
        assert ps.had_errors and "Login failed for user 'CONTOSO\\WapAdmin'." in str(ps.streams.error[0])
    dump = json.dumps(rt.state.invocations(WAP))
    assert "Pfx-Secret-42" not in dump and "wrong-password" not in dump
