"""The pytest fixture labsim offers other projects' tests: a whole lab in-process on free loopback addresses."""

import pytest

from labsim.lab import Role
from labsim.server import LabServer
from labsim.testing import labsim_fixture

pytestmark = pytest.mark.sim

lab = labsim_fixture(pep_polling_seconds=1)


def test_fixture_serves_every_host_to_the_real_client(lab: LabServer) -> None:
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    assert lab.lab.settings.pep_polling_seconds == 1
    for host in lab.lab.hosts:
        if host.has(Role.PRIVILEGED_ENDPOINT):
            continue  # CredSSP-only; covered by the protocol tests
        address, port = lab.endpoint(host.name)
        assert address.startswith("127.") and address != "127.0.10.1"
        user = host.users[0]
        wsman = WSMan(address, port=port, username=user.name, password=user.password, ssl=True, auth="ntlm",
                      # pypsrp takes a CA bundle's path here; its hint says bool
                      cert_validation=str(lab.ca_file),  # type: ignore[arg-type]
                      connection_timeout=5, operation_timeout=5, read_timeout=10)
        with wsman, RunspacePool(wsman) as pool:
            ps = PowerShell(pool).add_cmdlet("Test-Path").add_parameter("Path", "C:\\Windows")
            assert ps.invoke() == [True], host.name
