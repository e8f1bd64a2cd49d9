"""The Azure Stack privileged endpoint (docs/host-contract.md §7-8): a JEA, NoLanguage session whose only
interesting command is Add-AzurePackConnector, and the output folder it writes on the infrastructure share.

The PEP host's document keeps ``pep = {multicloud, clouds, azure_stack_cloud_name, realm, token_signing_der}``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlparse

from labsim.hosts import paths
from labsim.hosts.base import INVALID_ARGUMENT, PARSER_ERROR, CommandSpec, Ctx, Param, table
from labsim.runtime import PSObject, TerminatingError
from labsim.state import SHARE_HOST

OUTPUT_DIR = paths.SHARE_ROOT + "\\AzurePackConnectorOutput"
OUTPUT_PREFIX = "AzurePack-"
SUCCESS_LINE = "Step 'Configure Azure Pack Connector' status: 'Success'"
RUNNING_LINE = "Step 'Configure Azure Pack Connector' status: 'Running'"
DISABLED_LINE = "Step 'Disable multi-cloud mode' status: 'Success'"
POLLING_LINE = "Waiting for the Azure Stack portal to pick up the cloud configuration..."
POLL_INTERVAL = 2.0
_IMPL = "Add-AzurePackConnector"


def scripts_not_allowed(script: str | None = None) -> TerminatingError:
    """A JEA endpoint's refusal of script text; the record's TargetObject is the script text, as on Windows (its
    category message shortens it in the middle past 40 characters: ``records.category_message``)."""
    return TerminatingError("The syntax is not supported by this runspace. This can occur if the runspace is in "
                            "no-language mode.", error_id="ScriptsNotAllowed", category=PARSER_ERROR,
                            exception_type="System.Management.Automation.ParseException", target=script)


def _invalid_clouds(reason: str) -> TerminatingError:
    return TerminatingError(f"Cannot validate argument on parameter 'AzurePackClouds'. {reason}",
                            error_id=f"ParameterArgumentValidationError,{_IMPL}", category=INVALID_ARGUMENT,
                            exception_type="System.Management.Automation.ParameterBindingException")


def validate_clouds(clouds: list[dict[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    if not clouds:
        raise _invalid_clouds("The argument is null, empty, or an element of the argument collection contains a "
                              "null value.")
    for cloud in clouds:
        keys = {str(k).lower(): (str(k), v) for k, v in cloud.items()}
        for k, (orig, _v) in keys.items():
            if k not in ("cloudname", "cloudendpoint"):
                raise _invalid_clouds(f"Unexpected key '{orig}'; a cloud has CloudName and CloudEndpoint.")
        name = keys.get("cloudname", ("", None))[1]
        endpoint = keys.get("cloudendpoint", ("", None))[1]
        if not isinstance(name, str) or not name.strip() or not isinstance(endpoint, str) or not endpoint.strip():
            raise _invalid_clouds("Each cloud needs CloudName and CloudEndpoint.")
        url = urlparse(endpoint)
        if url.scheme.lower() != "https" or not url.hostname:
            raise _invalid_clouds(f"CloudEndpoint '{endpoint}' is not an absolute https URL.")
        if name.lower() in seen:
            raise _invalid_clouds(f"CloudName '{name}' is used twice.")
        seen.add(name.lower())
        out.append({"CloudName": name, "CloudEndpoint": endpoint.rstrip("/")})
    return out


def output_file_text(cloud: dict[str, str], azure_stack_cloud_name: str, pep: dict[str, Any]) -> str:
    return json.dumps({
        "CloudName": cloud["CloudName"],
        "AzureStackCloudName": azure_stack_cloud_name,
        "AzurePackConnectorEndpoint": cloud["CloudEndpoint"],
        "AuthenticationIdentityProviderPartner": {"Realm": pep["realm"], "Certificate": pep["token_signing_der"]},
    }, indent=2) + "\r\n"


def _clear_output(tx: Any) -> None:
    for row in tx.children(SHARE_HOST, OUTPUT_DIR):
        if not row.is_dir and paths.leaf(row.path).lower().startswith(OUTPUT_PREFIX.lower()):
            tx.remove(SHARE_HOST, row.path)


def add_azure_pack_connector(ctx: Ctx, args: dict[str, Any]) -> None:
    if args.get("DisableMultiCloud"):
        with ctx.state.tx() as tx:
            doc = tx.doc(ctx.host.name)
            doc["pep"].update(multicloud=False, clouds=[], azure_stack_cloud_name=None)
            _clear_output(tx)
        ctx.verbose(DISABLED_LINE)
        return
    clouds = validate_clouds(args["AzurePackClouds"])
    name = args["AzureStackCloudName"].strip()
    if not name:
        raise TerminatingError("Cannot validate argument on parameter 'AzureStackCloudName'. The argument is null or "
                               "empty. Provide an argument that is not null or empty, and then try the command again.",
                               error_id=f"ParameterArgumentValidationError,{_IMPL}", category=INVALID_ARGUMENT,
                               exception_type="System.Management.Automation.ParameterBindingException")
    ctx.verbose(RUNNING_LINE)
    ctx.latency("Add-AzurePackConnector")
    stamp = dt.datetime.now(dt.UTC).strftime("%m-%d-%H-%M")
    with ctx.state.tx() as tx:
        doc = tx.doc(ctx.host.name)
        pep = doc["pep"]
        pep.update(multicloud=True, clouds=clouds, azure_stack_cloud_name=name)
        tx.make_dir(SHARE_HOST, OUTPUT_DIR)
        _clear_output(tx)  # [inf] the folder mirrors the last configuration
        for cloud in clouds:
            path = paths.join(OUTPUT_DIR, f"{OUTPUT_PREFIX}{stamp}-{cloud['CloudName']}.txt")
            tx.write_file(SHARE_HOST, path, output_file_text(cloud, name, pep).encode("utf-8"))
    ctx.verbose(SUCCESS_LINE)
    # The known issue [doc]: the cmdlet keeps polling for minutes after its success line.
    remaining = ctx.lab.settings.pep_polling_seconds
    while remaining > 0:
        wait = min(POLL_INTERVAL, remaining)
        ctx.sleep(wait)
        remaining -= wait
        if remaining > 0:
            ctx.verbose(POLLING_LINE)


def stamp_information(ctx: Ctx, args: dict[str, Any]) -> list[Any]:
    pep = ctx.state.read().doc(ctx.host.name).get("pep", {})
    return [PSObject({"CloudName": ctx.lab.azure_stack_cloud_name, "AdfsFqdn": ctx.lab.adfs_fqdn,
                      "PortalFqdn": ctx.lab.azure_stack_portal_fqdn, "DeploymentID": pep.get("deployment_id", "")})]


COMMANDS = table(
    CommandSpec("Add-AzurePackConnector", add_azure_pack_connector, (
        Param("AzurePackClouds", "hashtable[]", mandatory=True, sets=("Enable",)),
        Param("AzureStackCloudName", mandatory=True, sets=("Enable",)),
        Param("DisableMultiCloud", "switch", mandatory=True, sets=("Disable",))), kind="Function"),
    CommandSpec("Get-AzureStackStampInformation", stamp_information, kind="Function"),
    CommandSpec("Close-PrivilegedEndpoint", lambda c, a: None, kind="Function"),
    CommandSpec("Exit-PSSession", lambda c, a: None, impl="Microsoft.PowerShell.Commands.ExitPSSessionCommand"),
)
