"""Which Windows a lab host runs, and what exists on it: the one table of cmdlets and parameters by PowerShell
version, the PSVersionTable and registry facts of each release, and the versions each host role supports.

Every row cites its source: [doc] Microsoft's documentation (the page is named), [pub] a public write-up or a
recorded real host, [inf] inferred (nobody has published it). docs/labsim.md lists these sources;
docs/windows-versions.md says which versions each role supports. A cmdlet labsim models that is missing here
is a bug: tests/unit/test_windows_versions.py fails on it.

labsim uses the table to answer as each release does (a cmdlet introduced later is not recognized; a parameter
introduced later is not found); the same test checks, against it, every command the providers and preflight send.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- the releases -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowsRelease:
    """One Windows Server release with one Windows PowerShell, as a lab host runs it."""

    key: str  # the lab file's `windows` + `powershell`, normalised: "2012r2", "2012r2-wmf5.1", "2016"
    windows: str  # "Windows Server 2012 R2"
    powershell: str  # the major.minor PowerShell version: "4.0" or "5.1"
    # $PSVersionTable (the pool's ApplicationPrivateData): PSVersion, BuildVersion, CLRVersion.
    ps_version: str
    build_version: str
    clr_version: str
    protocol_version: str  # PSRemotingProtocolVersion, and protocolversion in SESSION_CAPABILITY
    # HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion: ProductName, CurrentBuildNumber, CurrentVersion.
    product_name: str
    build_number: str
    current_version: str

    @property
    def ps(self) -> tuple[int, int]:
        major, minor = self.powershell.split(".")
        return int(major), int(minor)

    @property
    def has_edition(self) -> bool:
        """$PSVersionTable.PSEdition exists from 5.1 [doc: about_Automatic_Variables, PSEdition]."""
        return self.ps >= (5, 1)

    @property
    def has_information_stream(self) -> bool:
        """The information stream (Write-Information, InformationRecord) exists from 5.0 [doc: What's new in
        Windows PowerShell 5.0]."""
        return self.ps >= (5, 0)

    @property
    def compatible_versions(self) -> tuple[str, ...]:
        """$PSVersionTable.PSCompatibleVersions: every version up to this one [pub: a 4.0 host shows
        {1.0, 2.0, 3.0, 4.0}; a 5.1 host {1.0, 2.0, 3.0, 4.0, 5.0, 5.1.x}]."""
        older = ("1.0", "2.0", "3.0", "4.0", "5.0")
        return tuple(v for v in older if tuple(map(int, v.split("."))) < self.ps) + (
            (self.ps_version,) if self.ps >= (5, 1) else (self.powershell,))

    def describe(self) -> str:
        return f"{self.windows} / Windows PowerShell {self.powershell}"


WS2012R2 = WindowsRelease(
    # [pub] a stock 2012 R2's $PSVersionTable: PSVersion 4.0, BuildVersion 6.3.9600.x, CLRVersion 4.0.30319.x,
    # PSRemotingProtocolVersion 2.2, no PSEdition; [doc] Windows Server 2012 R2 = Windows NT 6.3, build 9600.
    "2012r2", "Windows Server 2012 R2", "4.0", ps_version="4.0", build_version="6.3.9600.17400",
    clr_version="4.0.30319.34014", protocol_version="2.2", product_name="Windows Server 2012 R2 Datacenter",
    build_number="9600", current_version="6.3")
WS2012R2_WMF51 = WindowsRelease(
    # [doc] WMF 5.1 for Windows Server 2012 R2 (build 14409); [pub] its $PSVersionTable: PSVersion and
    # BuildVersion 5.1.14409.1005 / 10.0.14409.1005, protocol 2.3. The Windows build stays 9600.
    "2012r2-wmf5.1", "Windows Server 2012 R2", "5.1", ps_version="5.1.14409.1005",
    build_version="10.0.14409.1005", clr_version="4.0.30319.42000", protocol_version="2.3",
    product_name="Windows Server 2012 R2 Datacenter", build_number="9600", current_version="6.3")
WS2016 = WindowsRelease(
    # [doc] Windows Server 2016 = build 14393 with PowerShell 5.1 in the box; [pub] the recorded 5.1 host's table
    # (tests/conformance/recordings/application_private_data.xml; its build numbers were another host's [inf]).
    # CurrentVersion stays 6.3 on Windows 10 / Server 2016 [pub].
    "2016", "Windows Server 2016", "5.1", ps_version="5.1.14393.0", build_version="10.0.14393.0",
    clr_version="4.0.30319.42000", protocol_version="2.3", product_name="Windows Server 2016 Datacenter",
    build_number="14393", current_version="6.3")

RELEASES: dict[str, WindowsRelease] = {r.key: r for r in (WS2012R2, WS2012R2_WMF51, WS2016)}
#: The lab file's `windows` values, and the PowerShell each may run (the first is the one in the box).
WINDOWS = {"2012 R2": ("4.0", "5.1"), "2016": ("5.1",)}
DEFAULT_RELEASE = WS2016


def release(windows: str, powershell: str | None = None) -> WindowsRelease:
    """The release of a lab file's `windows` / `powershell` pair (validated by labsim.lab)."""
    shells = WINDOWS[windows]
    ps = powershell or shells[0]
    if windows == "2016":
        return WS2016
    return WS2012R2 if ps == "4.0" else WS2012R2_WMF51


# -- the roles ----------------------------------------------------------------------------------------------------
#: Which releases each kind of host is supported on, for the providers, preflight and acceptance.
#: [doc] Windows Azure Pack: Windows Server 2012 R2 (WMF 5.1 may be added later) and, since October 2016,
#: Windows Server 2016 (lifecycle entry "Windows Azure Pack (on Windows Server 2016)"). [doc] Azure Stack's
#: infrastructure VMs and the ASDK host: Windows Server 2016.
SUPPORTED: dict[str, tuple[WindowsRelease, ...]] = {
    "wap": (WS2012R2, WS2012R2_WMF51, WS2016),
    "azure_stack": (WS2016,),
}


# -- cmdlets and parameters ---------------------------------------------------------------------------------------
# (cmdlet, since, source). `since` is the Windows PowerShell version that brought it to Windows Server (the
# version whose in-box modules have it); "1.0" for what every version has. Product modules (WebAdministration
# with IIS, MgmtSvc with Windows Azure Pack, SqlServer with SQL Server's tools) exist wherever the product is.
_DOC = "[doc]"
_PUB = "[pub]"
_INF = "[inf]"


def _each(since: str, source: str, *names: str) -> dict[str, tuple[str, str]]:
    """The same row for several names (cmdlets of one module and version, or parameters)."""
    return {name: (since, source) for name in names}


def _every_version(*cmdlets: str) -> dict[str, tuple[str, str]]:
    return {name: ("1.0", f"{_DOC} {name}, every version") for name in cmdlets}


CMDLETS: dict[str, tuple[str, str]] = {
    # Microsoft.PowerShell.Management / Utility / Core
    "Test-Path": ("1.0", f"{_DOC} Test-Path (Microsoft.PowerShell.Management), every version"),
    **_every_version("Get-Item", "Get-ChildItem", "New-Item", "Remove-Item", "Get-Content", "Set-Content",
                     "Add-Content", "Get-ItemProperty", "Set-ItemProperty", "New-ItemProperty", "Remove-ItemProperty",
                     "Get-PSDrive"),
    "Test-Connection": ("2.0", f"{_DOC} Test-Connection (Windows PowerShell 2.0 reference)"),
    "Start-Process": ("2.0", f"{_DOC} Start-Process (Microsoft.PowerShell.Management, Windows PowerShell 2.0 on; "
                             f"its Default set -FilePath, -ArgumentList, -NoNewWindow, -PassThru, -Wait is the same "
                             f"in the 2.0-5.1 references)"),
    "Get-FileHash": ("4.0", f"{_DOC} What's New in Windows PowerShell 4.0: Get-FileHash"),
    **_every_version("Select-Object", "Where-Object", "Measure-Object", "Get-Command", "Write-Output"),
    "ConvertTo-Json": ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0: ConvertTo-Json / ConvertFrom-Json"),
    # Windows modules that came with the Windows release (Windows Server 2012 = PowerShell 3.0, 2012 R2 = 4.0)
    **_each("3.0", f"{_DOC} PKI module (Windows Server 2012 reference, v=wps.620)",
            "Import-PfxCertificate", "Import-Certificate"),
    "Test-NetConnection": ("4.0", f"{_DOC} NetTCPIP Test-NetConnection (Windows Server 2012 R2 reference, "
                                  f"dn372891 v=wps.630)"),
    # WebAdministration (IIS 7.5 and later, Windows Server 2008 R2 on)
    "Get-Website": ("1.0", f"{_DOC} WebAdministration (IIS 7.5+, Windows Server 2008 R2 reference)"),
    **_each("1.0", f"{_DOC} WebAdministration (IIS 7.5+)", "Get-WebBinding", "Start-Website", "Stop-Website",
            "Get-WebConfiguration", "Get-WebConfigurationProperty", "Set-WebConfigurationProperty"),
    # Windows Azure Pack's MgmtSvcAdmin module (installed with WAP, which runs on 2012 R2)
    "Get-MgmtSvcSetting": ("1.0", f"{_PUB} MgmtSvcAdmin module, installed with Windows Azure Pack"),
    **_each("1.0", f"{_PUB} MgmtSvcAdmin module", "Test-MgmtSvcProtectedConfiguration",
            "Unprotect-MgmtSvcConfiguration", "Protect-MgmtSvcConfiguration", "Get-MgmtSvcDatabaseSetting",
            "Set-MgmtSvcDatabaseSetting"),
    # SQL Server's PowerShell (SQLPS with SQL Server 2012/2014 tools, later the SqlServer module)
    "Invoke-Sqlcmd": ("1.0", f"{_DOC} Invoke-Sqlcmd (SQLPS / SqlServer module, with SQL Server's tools)"),
    # PackageManagement
    **_each("5.0", f"{_DOC} about_PackageManagement: introduced in Windows PowerShell 5.0",
            "Get-Package", "Uninstall-Package"),
    # Later cmdlets nobody should send to a WAP computer
    **_each("5.0", f"{_DOC} What's new in Windows PowerShell 5.0", "Get-ItemPropertyValue", "New-TemporaryFile"),
    "Expand-Archive": ("5.0", f"{_DOC} Microsoft.PowerShell.Archive: What's new in Windows PowerShell 5.0"),
    "Write-Information": ("5.0", f"{_DOC} What's new in Windows PowerShell 5.0: the information stream"),
    "Get-LocalUser": ("5.1", f"{_DOC} Microsoft.PowerShell.LocalAccounts, Windows PowerShell 5.1"),
}

# ((cmdlet, parameter), since, source) for parameters that came after their cmdlet. A parameter not listed
# here is as old as its cmdlet.
PARAMETERS: dict[tuple[str, str], tuple[str, str]] = {
    ("Get-ChildItem", "File"): ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0: Get-ChildItem -File, "
                                       f"-Directory"),
    ("Get-ChildItem", "Directory"): ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0"),
    ("Get-ChildItem", "Depth"): ("5.0", f"{_DOC} What's new in Windows PowerShell 5.0: Get-ChildItem -Depth"),
    ("Get-Content", "Raw"): ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0: Get-Content -Raw"),
    ("Set-Content", "NoNewline"): ("5.0", f"{_DOC} What's new in Windows PowerShell 5.0: -NoNewline"),
    ("Add-Content", "NoNewline"): ("5.0", f"{_DOC} What's new in Windows PowerShell 5.0: -NoNewline"),
    ("Where-Object", "Property"): ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0: Where-Object's "
                                          f"comparison-statement syntax (-Property, -Value, -EQ, -Like, ...)"),
    **{("Where-Object", name): ("3.0", f"{_DOC} What's New in Windows PowerShell 3.0")
       for name in ("Value", "EQ", "NE", "Like", "NotLike", "Match")},
    ("Test-Connection", "Quiet"): ("2.0", f"{_DOC} Test-Connection (2.0 reference)"),
    ("Select-Object", "ExpandProperty"): ("2.0", f"{_DOC} Select-Object (2.0 reference)"),
    ("Import-PfxCertificate", "Exportable"): ("3.0", f"{_DOC} Import-PfxCertificate (v=wps.620)"),
}

# Common parameters ([doc] about_CommonParameters): -InformationAction / -InformationVariable from 5.0.
COMMON_PARAMETERS: dict[str, tuple[str, str]] = {
    **_each("1.0", f"{_DOC} about_CommonParameters", "ErrorAction", "Verbose", "Debug", "WarningAction",
            "ErrorVariable", "OutVariable"),
    "InformationAction": ("5.0", f"{_DOC} about_CommonParameters: InformationAction, Windows PowerShell 5.0"),
}


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _lookup(table: dict[str, tuple[str, str]], name: str) -> tuple[str, tuple[str, str]] | None:
    low = name.lower()
    return next(((k, v) for k, v in table.items() if k.lower() == low), None)


def cmdlet_known(name: str) -> bool:
    return _lookup(CMDLETS, name) is not None


def cmdlet_exists(name: str, rel: WindowsRelease) -> bool:
    """Whether ``name`` exists on ``rel``; a cmdlet not in the table is not known to exist (False)."""
    hit = _lookup(CMDLETS, name)
    return hit is not None and _version(hit[1][0]) <= rel.ps


def parameter_exists(cmdlet: str, parameter: str, rel: WindowsRelease) -> bool:
    """Whether a parameter the cmdlet has (on the newest release) exists on ``rel``, by canonical name."""
    low = (cmdlet.lower(), parameter.lower())
    hit = next((v for k, v in PARAMETERS.items() if (k[0].lower(), k[1].lower()) == low), None)
    if hit is None:
        common = _lookup(COMMON_PARAMETERS, parameter)
        hit = common[1] if common is not None else None
    return hit is None or _version(hit[0]) <= rel.ps


def common_parameters(rel: WindowsRelease) -> tuple[str, ...]:
    return tuple(k for k, (since, _) in COMMON_PARAMETERS.items() if _version(since) <= rel.ps)
