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
    "Uninstall-Package": 20.0,
}


def duration(step: str, factor: float) -> float:
    return PROFILE.get(step, 0.0) * factor
