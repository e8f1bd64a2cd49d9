"""The fault matrix as data: resource × operation × fault, each cell either run against labsim or not applicable
with the reason. ``tests/reliability/test_fault_matrix.py`` runs it; ``scripts/reliability_report.py`` renders it
and ``test_reliability_doc.py`` checks docs/reliability.md against it. Pure data: importing it touches no host.
"""

from __future__ import annotations

from dataclasses import dataclass

OPERATIONS: tuple[str, ...] = ("create", "read", "update", "delete")

#: fault -> what the cell does to the host (the labsim switch) while the operation runs.
FAULTS: dict[str, str] = {
    "down": "host down: `down` (listeners closed, connection refused)",
    "drop": "connection dropped mid-pipeline: `command_hang` on the step's command, then `down` while it runs",
    "auth_broken": "authentication refused: `auth_broken` (HTTP 401 to every request)",
    "wsman_fault": "HTTP 500 / WSMan fault: `wsman_fault` (every request answered with a WSMan fault)",
    "command_error": "command writes a non-terminating error: `command_error` on the step's command",
    "command_terminating": "command fails (terminating error): `command_terminating` on the step's command",
    "command_hang": "command hangs past its step timeout: `command_hang` on the step's command",
}


@dataclass(frozen=True)
class Target:
    """Where a cell's fault goes: the lab host the operation talks to, and the command the command_* faults (and
    drop) hit: the operation's main step, after the earlier steps have run (a partial state to converge from)."""

    host: str
    command: str


#: The remote resources (PSRP) and, per operation, the host and command a fault targets.
REMOTE: dict[str, dict[str, Target]] = {
    "Certificate": {
        "create": Target("wapcomputer1", "Import-PfxCertificate"),
        "read": Target("wapcomputer1", "Get-Item"),
        "update": Target("wapcomputer1", "Import-PfxCertificate"),
        "delete": Target("wapcomputer1", "Remove-Item"),
    },
    "ConnectorBundle": {
        "create": Target("wapcomputer2", "Add-Content"),
        "read": Target("wapcomputer2", "Get-ChildItem"),
        "update": Target("wapcomputer2", "Set-Content"),
        "delete": Target("wapcomputer2", "Remove-Item"),
    },
    "ConnectorSite": {
        "create": Target("wapcomputer1", "Configure-WapConnector.ps1"),
        "read": Target("wapcomputer1", "Get-Website"),
        "update": Target("wapcomputer1", "Install-Connector.ps1"),
        "delete": Target("wapcomputer1", "Start-Process"),
    },
    "TenantApiUpdate": {
        "create": Target("wapcomputer1", "Update-TenantAPI.ps1"),
        "read": Target("wapcomputer1", "Get-ItemProperty"),
        "update": Target("wapcomputer1", "Start-Website"),
    },
    "TenantApiTrust": {
        "create": Target("wapcomputer1", "Configure-TrustAzureStack.ps1"),
        "read": Target("wapcomputer1", "Get-MgmtSvcDatabaseSetting"),
        "update": Target("wapcomputer1", "Configure-TrustAzureStack.ps1"),
        "delete": Target("wapcomputer1", "Set-MgmtSvcDatabaseSetting"),
    },
    "AzurePackConnector": {
        "create": Target("AzS-ERCS01", "Add-AzurePackConnector"),
        "read": Target("AzS-HOST", "Get-ChildItem"),  # read looks at the share's output folder, not the PEP
        "update": Target("AzS-ERCS01", "Add-AzurePackConnector"),
        "delete": Target("AzS-ERCS01", "Add-AzurePackConnector"),
    },
}

#: Resources that reach a host over TLS but not over WinRM: the host whose https site they probe. EndpointCheck
#: opens TLS from the operator's machine to the tenant portal VM's connector site (:40005, labsim's IIS binding).
TLS_PROBES: dict[str, str] = {"EndpointCheck": "wapcomputer1"}

#: Whole resources no fault of a remote host can reach, and why (each claim is checked by a test).
NOT_REMOTE: dict[str, str] = {
    "CertificateAuthority": "local PKI: no host, no remote call",
    "IssuedCertificate": "local PKI: no host, no remote call",
}

#: Single (resource, operation) pairs that make no remote call, and why.
NOT_APPLICABLE_OPS: dict[tuple[str, str], str] = {
    ("TenantApiUpdate", "delete"): "delete makes no remote call: the Tenant API update has no documented undo "
                                   "(the host is left as it is, with a warning)",
    ("EndpointCheck", "read"): "read makes no connection: it returns the record of the check that passed",
    ("EndpointCheck", "delete"): "delete makes no connection: a check has nothing to undo",
}

#: (resource, fault) pairs a fault cannot reach, and why (checked: the operation passes with the fault in force).
NOT_APPLICABLE_FAULTS: dict[tuple[str, str], str] = {
    **{("EndpointCheck", f): "a WinRM fault: the probe is one TLS handshake with the connector site, which this "
                             "fault does not touch (checked: the probe passes under it)"
       for f in ("auth_broken", "wsman_fault", "command_error", "command_terminating", "command_hang")},
    ("EndpointCheck", "drop"): "no pipeline to drop: the probe is one TLS handshake (checked: the probe passes "
                               "with the drop's command_hang in force); a refused connection is the down cell",
}

RESOURCES: tuple[str, ...] = (*REMOTE, *TLS_PROBES, *NOT_REMOTE)


@dataclass(frozen=True)
class Cell:
    resource: str
    operation: str
    fault: str
    reason: str | None  # None: the cell runs; else why it does not apply

    @property
    def id(self) -> str:
        return f"{self.resource}-{self.operation}-{self.fault}"

    @property
    def applicable(self) -> bool:
        return self.reason is None


def cells() -> list[Cell]:
    """Every cell of the matrix, in a fixed order (resource, operation, fault)."""
    out = []
    for resource in RESOURCES:
        for op in OPERATIONS:
            for fault in FAULTS:
                reason = (NOT_REMOTE.get(resource) or NOT_APPLICABLE_OPS.get((resource, op))
                          or NOT_APPLICABLE_FAULTS.get((resource, fault)))
                out.append(Cell(resource, op, fault, reason))
    return out
