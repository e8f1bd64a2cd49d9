"""Where things are on the hosts, defined once: registry keys, folders, shares, IIS sites, ports, and the
privileged endpoint's cmdlet.

Each is marked [doc] (Microsoft's article or reference), [pub] (public WAP/Windows knowledge) or [inf] (inferred:
correct it against a real host). labsim keeps its own copies on purpose: it models Windows, not the providers.
"""

from __future__ import annotations

# [doc] Windows Installer: every product has HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\<ProductCode>
# with DisplayName and DisplayVersion, on every Windows version (PackageManagement's Get-Package needs
# PowerShell 5.0, which a stock Windows Server 2012 R2 does not have). [inf] the connector MSIs are 64-bit, so
# the native (not WOW6432Node) key holds them.
UNINSTALL_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
# [pub] what a host says of its Windows and its Windows PowerShell (the engine key is named 3 from 3.0 on).
WINDOWS_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
POWERSHELL_KEY = r"HKLM:\SOFTWARE\Microsoft\PowerShell\3\PowerShellEngine"
# [pub] the IIS URL Rewrite module's registry key.
URL_REWRITE_KEY = r"HKLM:\SOFTWARE\Microsoft\IIS Extensions\URL Rewrite"
# [pub] each WAP role has HKLM:\SOFTWARE\Microsoft\MgmtSvc\<Namespace> with its MSI ProductCode.
TENANT_API_KEY = r"HKLM:\SOFTWARE\Microsoft\MgmtSvc\TenantAPI"
PRODUCT_CODE_VALUE = "ProductCode"

# [doc] the article: "copy the WAPConnector folder ... to a folder named c:\temp" (so the root is
#       c:\temp\WAPConnector, the folder above Setup\).
BUNDLE_PATH = r"C:\temp\WAPConnector"
SCRIPTS_FOLDER = r"Setup\Scripts"  # [doc] c:\temp\wapconnector\setup\scripts, relative to the bundle

# [doc] the share the PEP writes its output files to, seen from the Azure Stack host, and the output folder in it.
INFRASTRUCTURE_SHARE = r"\\su1fileserver\SU1_Infrastructure_1"
OUTPUT_FOLDER = INFRASTRUCTURE_SHARE + r"\AzurePackConnectorOutput"
OUTPUT_FILE_FILTER = "AzurePack-*.txt"  # [doc] files "look similar to AzurePack-06-27-15-50.txt"

# [pub] the WAP sites each role has; [doc] the connector's three sites, the one the Azure Stack portal calls.
TENANT_PORTAL_SITES = ("MgmtSvc-TenantSite", "MgmtSvc-AuthSite")
TENANT_SITE = "MgmtSvc-TenantSite"  # [doc] whose certificate Configure-Certificates uses by default
TENANT_API_SITE = "MgmtSvc-TenantAPI"
CONNECTOR_SITES = ("MgmtSvc-Connector", "MgmtSvc-ConnectorExtension", "MgmtSvc-ConnectorController")
CONNECTOR_SITE = "MgmtSvc-Connector"
CONNECTOR_PORT = 40005  # [doc] "By default, the port value is 40005"

# [doc] the PEP's cmdlet that turns multi-cloud mode on and off (allow-listed on the PEP; absent from PEPs after 2020).
ADD_CONNECTOR_CMDLET = "Add-AzurePackConnector"

# [pub] the Store's SQL server without unprotecting web.config: the TenantAPI ManagementStore setting.
MANAGEMENT_STORE_SETTING = {"Namespace": "TenantAPI", "Name": "ManagementStore"}
STORE_DATABASE = "Microsoft.MgmtSvc.Store"
