"""How long the long steps take on real hosts (seconds, rough public/observed orders of magnitude [inf]),
multiplied by ``settings.latency_factor`` (0 = instant, the default for tests)."""

from __future__ import annotations

PROFILE: dict[str, float] = {
    "Install-Connector": 40.0,  # three MSIs
    "Update-TenantAPI": 30.0,  # one MSI plus an app pool recycle
    "Configure-TrustAzureStack": 5.0,
    "Configure-Certificates": 3.0,
    "Configure-WapConnector": 3.0,
    "Add-AzurePackConnector": 45.0,  # before its success line; the polling after it is settings.pep_polling_seconds
    "Import-PfxCertificate": 1.0,
    "msiexec /x": 20.0,  # one product removed (also what Uninstall-Package runs)
}


# What the WinRM service itself costs, whatever the command [inf: orders of magnitude seen on Windows Server
# 2012 R2-2019]: a runspace pool open (WSMan Create: a wsmprovhost.exe process, PowerShell's session state, the
# PSRP negotiation) about a second; a pipeline (Command, its Receive) tens of milliseconds. Multiplied by
# ``settings.connection_cost_factor``.
CONNECTION_COSTS: dict[str, float] = {
    "pool_open": 1.0,
    "pipeline": 0.03,
}


def duration(step: str, factor: float) -> float:
    return PROFILE.get(step, 0.0) * factor


def connection_cost(kind: str, factor: float) -> float:
    return CONNECTION_COSTS[kind] * factor
