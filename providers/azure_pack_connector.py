"""AzurePackConnector: Azure Stack's multi-cloud mode, enabled on the privileged endpoint (PEP).

The seed's "Configure Azure Stack" step: ``Add-AzurePackConnector -AzurePackClouds @{CloudName=..;
CloudEndpoint=..},.. -AzureStackCloudName X`` over a CredSSP session to the PEP. The cmdlet keeps polling for
minutes after it printed ``VERBOSE: Step 'Configure Azure Pack Connector' status: 'Success'`` (a known issue
[doc]); the configuration is done at that line, so create/update stop the pipeline there (``run_until``).

The PEP has no read cmdlet for this configuration [doc]. The only evidence is the output folder on the
infrastructure share, one file per WAP cloud (host contract §8), read through ``share_connection`` (the ASDK
host or operator box). Everything assumed about that folder sits in the ASSUMPTIONS block of the model.

Two modules, by job (see docs/style.md): providers/_azure_pack_connector_model.py is pure (the ASSUMPTIONS block,
the inputs and ``check``, the output files as read parses them, :func:`compare` and the step for its
differences); this module runs against the hosts: the read (two structured calls on the share host), the enable and
disable steps, the template's hooks (providers.remote), then the Resource class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from providers import ownership

# Importable from here too, where callers and tests find them.
from providers._azure_pack_connector_model import (  # noqa: F401
    DEFAULT_TIMEOUT_SECONDS,
    DISABLE_SWITCH,
    DISABLE_TIMEOUT_SECONDS,
    ENABLE,
    ENABLE_SUCCESS_LINE,
    MARKER_FOLDER,
    OWNERSHIP_RESOURCE,
    STEP_DISABLE,
    STEP_ENABLE,
    STEP_MARK,
    STEP_READ,
    STEPS,
    AzurePackCloudInputs,
    AzurePackConnectorInputs,
    AzurePackConnectorObserved,
    AzurePackConnectorStep,
    FolderChanged,
    check,
    compare,
    content_statements,
    marker_path,
    normalize_endpoint,
    observed_clouds,
    observed_outputs,
    parse_files,
    parse_listing,
    parse_output_file,
    read_statements,
    thing,
)
from providers.base import LabResource, is_unknown
from providers.errors import ConnectorError, HostDidNotConverge, RemoteCommandFailed, StepTimedOut
from providers.facts.locations import ADD_CONNECTOR_CMDLET, OUTPUT_FOLDER
from providers.facts.markers import OwnershipMarker
from providers.hostops import only_expected_errors
from providers.remote import (
    Converged,
    HostResourceProvider,
    Identity,
    connection_of,
    inputs_only,
    password_secret,
    same_connection,
    secret_outputs,
)
from providers.transport import (
    Command,
    ErrorRecordInfo,
    HostConnection,
    Transport,
)

#: Appended to an unexpected error of the listing: what to check.
READ_HINT = (" (check that this host sees the Azure Stack infrastructure share; share_connection should be the ASDK "
             "host)")


def missing_output_folder(record: ErrorRecordInfo) -> bool:
    """A PathNotFound of the output folder itself reads as "no files". The record's target is the path
    Get-ChildItem could not find (Windows fills it; the message is the fallback for hosts that do not)."""
    return OUTPUT_FOLDER.lower() in (record.target or record.message).lower()


def read_observed(t: Transport, share: HostConnection, pep_fqdn: str) -> tuple[AzurePackConnectorObserved | None,
                                                                                ownership.Marker | None]:
    """The output folder and the ownership marker, on the share host: the listing and the marker in one
    invocation, then the listed files' text in a second (their names come from the first)."""
    mark = OwnershipMarker(marker_path(pep_fqdn))
    statements = [*read_statements(), *mark.statements()]
    result = t.run(share, STEP_READ, statements, idempotent=True, accept_errors=True)
    only_expected_errors(share, STEP_READ, read_statements(), result, accept=missing_output_folder, hint=READ_HINT)
    listing, marker_output = result.outputs
    marker = mark.parse(marker_output)
    listed = parse_listing(listing)
    if not listed:
        return None, marker
    contents = t.run(share, STEP_READ, content_statements(listed), idempotent=True)
    try:
        return parse_files(listed, contents.outputs), marker
    except FolderChanged as exc:
        raise ConnectorError(f"{share.fqdn}, step '{STEP_READ}': {exc}; the folder changed while it was read (is "
                             f"another Add-AzurePackConnector running?); retry", host=share.fqdn,
                             step=STEP_READ) from None
    except ValueError as exc:
        raise ConnectorError(f"{share.fqdn}, step '{STEP_READ}': cannot understand output file {exc}; the "
                             f"file format is an assumption (the keys in providers/connector_output.py): "
                             f"compare it with the real file and correct them", host=share.fqdn,
                             step=STEP_READ) from None


# ===============================================================================================================
# Steps
# ===============================================================================================================


def enable_command(inputs: AzurePackConnectorInputs) -> Command:
    clouds = [{"CloudName": c.cloud_name, "CloudEndpoint": c.cloud_endpoint} for c in inputs.clouds]
    # -Verbose: the success line is a verbose record; without it a real PEP would not send it.
    return Command(ADD_CONNECTOR_CMDLET, {"AzurePackClouds": clouds,
                                          "AzureStackCloudName": inputs.azure_stack_cloud_name}, ["Verbose"])


def disable_command() -> Command:
    return Command(ADD_CONNECTOR_CMDLET, {}, [DISABLE_SWITCH, "Verbose"])


def _missing_cmdlet(exc: RemoteCommandFailed) -> bool:
    return (exc.error_id or "").startswith("CommandNotFoundException")


def _explain(exc: RemoteCommandFailed, pep: HostConnection, step: str) -> ConnectorError:
    if _missing_cmdlet(exc):
        return RemoteCommandFailed(
            pep.fqdn, step, command=exc.command, error_id=exc.error_id, category=exc.category,
            message=f"{exc.remote_message} This privileged endpoint has no {ADD_CONNECTOR_CMDLET}: the Azure Pack "
                    f"Connector was a preview and the cmdlet is absent from later Azure Stack builds; use a build that "
                    f"has it")
    return exc


def enable(t: Transport, inputs: AzurePackConnectorInputs) -> None:
    pep = inputs.connection
    try:
        t.run_until(pep, STEP_ENABLE, enable_command(inputs), ENABLE_SUCCESS_LINE, timeout=inputs.timeout_seconds)
    except StepTimedOut as exc:
        raise StepTimedOut(
            pep.fqdn, STEP_ENABLE, seconds=exc.seconds, command=exc.command,
            waiting_for=f"print \"{ENABLE_SUCCESS_LINE}\" (if the PEP is only slow, raise the resource's "
                        f"timeout_seconds)") from exc
    except RemoteCommandFailed as exc:
        if "without printing the expected verbose line" in exc.remote_message:
            raise RemoteCommandFailed(
                pep.fqdn, STEP_ENABLE, command=exc.command,
                message=f"{ADD_CONNECTOR_CMDLET} ended without reporting \"{ENABLE_SUCCESS_LINE}\": multi-cloud mode "
                        f"may not be configured; look at the PEP transcript (Get-AzureStackLog) and run again") from exc
        raise _explain(exc, pep, STEP_ENABLE) from exc


def disable(t: Transport, pep: HostConnection) -> None:
    try:
        # Not re-sent by the transport: the PEP cmdlet runs for minutes and may still run after a lost connection;
        # the delete's rerun converges (disabling twice is harmless once the first has ended).
        t.run(pep, STEP_DISABLE, disable_command(), timeout=DISABLE_TIMEOUT_SECONDS, idempotent=False)
    except RemoteCommandFailed as exc:
        raise _explain(exc, pep, STEP_DISABLE) from exc


# ===============================================================================================================
# Provider glue
# ===============================================================================================================


def _outputs(props: Mapping[str, Any], observed: AzurePackConnectorObserved | None,
             known: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    outs = inputs_only(props)
    seen = observed_outputs(observed, known)
    if seen["multi_cloud_enabled"] is False:
        # With multi-cloud mode off there are no output files: the cloud list and stack name are unknowable, not
        # gone. Keep the last known values (compare names only multi_cloud_enabled then), so that a refresh
        # does not list them as removed.
        for key in ("clouds", "azure_stack_cloud_name"):
            if key in props:
                seen.pop(key)
    outs.update(seen)
    outs.setdefault("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    return outs


def _untracked_marker(pep_fqdn: str) -> ownership.Marker:
    """The marker written when ownership is not tracked (direct use, no owner): it only tells drift from gone."""
    return ownership.Marker("", resource=OWNERSHIP_RESOURCE, thing=thing(pep_fqdn))


def _identity(pep_fqdn: str) -> Identity:
    return Identity(pep_fqdn, marker_path(pep_fqdn), thing(pep_fqdn))


class AzurePackConnectorProvider(HostResourceProvider[AzurePackConnectorInputs, AzurePackConnectorObserved,
                                                      AzurePackConnectorStep]):
    """Multi-cloud mode on the template of providers.remote. It spans two hosts: Add-AzurePackConnector runs on
    the PEP (JEA: no file commands), so the read and the ownership marker go through ``share_connection``;
    ``claim`` and ``keep_ownership`` are this resource's own for that reason, and because the marker is written
    even without an owner (files gone + marker = disabled out of band; files gone, no marker = deleted)."""

    inputs_model = AzurePackConnectorInputs
    ownership_resource = OWNERSHIP_RESOURCE
    compare = staticmethod(compare)
    checked = staticmethod(check)
    connection_keys = ("connection", "share_connection")
    settings = ("share_connection", "timeout_seconds")
    always_marked = True
    # Disable on the old PEP before enabling through the new one: both may be the same Azure Stack (ERCS01..03
    # of an integrated system), and create-before-delete would end with multi-cloud mode disabled.
    delete_before_replace = True

    def identity(self, inputs: AzurePackConnectorInputs) -> Identity:
        return _identity(inputs.connection.fqdn)

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return _identity(connection_of(props).fqdn)

    def marker_connection(self, props: Mapping[str, Any]) -> HostConnection:
        return connection_of(props, "share_connection")

    def read_host(self, t: Transport, inputs: AzurePackConnectorInputs) -> tuple[AzurePackConnectorObserved | None,
                                                                                  ownership.Marker | None]:
        return read_observed(t, inputs.share_connection, inputs.connection.fqdn)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[AzurePackConnectorObserved | None,
                                                                           ownership.Marker | None]:
        return read_observed(t, connection_of(props, "share_connection"), connection_of(props).fqdn)

    def desired_values(self, inputs: AzurePackConnectorInputs) -> Mapping[str, Any]:
        return inputs.desired()

    def observed_values(self, observed: AzurePackConnectorObserved | None,
                        inputs: AzurePackConnectorInputs) -> Mapping[str, Any]:
        return observed_outputs(observed, inputs.desired_clouds())


    def changed_settings(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        share_changed = is_unknown(news.get("share_connection")) or \
            not same_connection(olds.get("share_connection"), news.get("share_connection"))
        return [*(["share_connection"] if share_changed else []),
                *(["timeout_seconds"] if olds.get("timeout_seconds") != news.get("timeout_seconds") else [])]

    def steps(self, differences: list[ownership.Difference], inputs: AzurePackConnectorInputs,
              observed: AzurePackConnectorObserved | None) -> list[AzurePackConnectorStep]:
        return [ENABLE] if differences else []

    def apply(self, t: Transport, inputs: AzurePackConnectorInputs, steps: list[AzurePackConnectorStep],
              observed: AzurePackConnectorObserved | None) -> None:
        for _ in steps:  # ENABLE: the only kind
            enable(t, inputs)

    def did_not_converge(self, inputs: AzurePackConnectorInputs, observed: AzurePackConnectorObserved | None,
                         left: list[AzurePackConnectorStep]) -> HostDidNotConverge:
        differs = [d.field for d in self.differences(observed, inputs)]
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_ENABLE,
            f"{ADD_CONNECTOR_CMDLET} reported success but the output folder {OUTPUT_FOLDER} (read on "
            f"{inputs.share_connection.fqdn}) does not show the configuration (differs: {', '.join(differs)}; found "
            f"{len(observed.files) if observed else 0} file(s))", hint="check the folder, then run again")

    def prior_values(self, observed: AzurePackConnectorObserved, inputs: AzurePackConnectorInputs) -> dict[str, Any]:
        """What adopted multi-cloud mode held: delete configures this cloud list again if the stack changed it."""
        seen = observed_outputs(observed, inputs.desired_clouds())
        return {k: seen[k] for k in inputs.desired()}

    def claim(self, t: Transport, inputs: AzurePackConnectorInputs) -> dict[str, Any]:
        own = super().claim(t, inputs)  # the marker on the share host, through write_marker
        if inputs.owner is None:  # before the change: a rerun after a failure knows it is its own
            self.write_marker(t, inputs, _untracked_marker(inputs.connection.fqdn))
        return own

    def keep_ownership(self, t: Transport, inputs: AzurePackConnectorInputs,
                       olds: Mapping[str, Any]) -> dict[str, Any]:
        pep = inputs.connection.fqdn
        own: dict[str, Any] = {}
        mark = _untracked_marker(pep)
        if inputs.owner is not None:
            _, marker = self.read_host(t, inputs)
            ownership.may_change(host=pep, thing=thing(pep), owner=inputs.owner, adopt=inputs.adopt, marker=marker,
                                 previous=olds.get("owner"))
            mark = ownership.from_state({**olds, "owner": inputs.owner}, OWNERSHIP_RESOURCE, thing(pep)) or mark
            own = ownership.outputs(mark)
        self.write_marker(t, inputs, mark)  # always: not only when it went missing
        return own

    def write_marker(self, t: Transport, inputs: AzurePackConnectorInputs, mark: ownership.Marker) -> None:
        ownership.write(t, inputs.share_connection, STEP_MARK, marker_path(inputs.connection.fqdn), mark)

    def unmark(self, t: Transport, props: Mapping[str, Any], who: Identity) -> None:
        ownership.remove(t, self.marker_connection(props), STEP_MARK, who.marker_path)

    def outputs(self, props: Mapping[str, Any], inputs: AzurePackConnectorInputs,
                done: Converged[AzurePackConnectorObserved, AzurePackConnectorStep],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        return _outputs(props, done.observed, inputs.desired_clouds())

    def resource_id(self, inputs: AzurePackConnectorInputs, outputs: Mapping[str, Any]) -> str:
        # One multi-cloud configuration per Azure Stack: the PEP names it.
        return f"multicloud@{inputs.connection.fqdn.lower()}"

    def is_gone(self, props: Mapping[str, Any], observed: AzurePackConnectorObserved | None,
                marker: ownership.Marker | None) -> bool:
        return observed is None and marker is None  # files gone but the marker there: disabled out of band

    def read_outputs(self, props: Mapping[str, Any], observed: AzurePackConnectorObserved | None) -> dict[str, Any]:
        clouds = props.get("clouds")
        return _outputs(props, observed, clouds if isinstance(clouds, list) else [])

    def remove(self, t: Transport, props: Mapping[str, Any], found: AzurePackConnectorObserved | None) -> None:
        pep, share = connection_of(props), connection_of(props, "share_connection")
        disable(t, pep)
        observed, _ = read_observed(t, share, pep.fqdn)
        if observed is not None:
            raise HostDidNotConverge(
                pep.fqdn, STEP_DISABLE, f"the command succeeded but {len(observed.files)} output file(s) remain in "
                f"{OUTPUT_FOLDER}", hint="check multi-cloud mode in the portal and run the delete again")

    def leave(self, t: Transport, props: Mapping[str, Any], found: AzurePackConnectorObserved | None) -> None:
        restore_prior(t, connection_of(props), props, found)


def restore_prior(t: Transport, pep: HostConnection, props: Mapping[str, Any],
                  found: AzurePackConnectorObserved | None) -> None:
    """Adopted multi-cloud mode is never disabled: the cloud list it had before is configured again when the
    stack changed it, else it is left as it is."""
    recorded = props.get("prior")
    prior: Mapping[str, Any] = recorded if isinstance(recorded, Mapping) else {}
    clouds, stack_name = prior.get("clouds"), prior.get("azure_stack_cloud_name")
    now = observed_outputs(found, clouds if isinstance(clouds, list) else [])
    if not clouds or not stack_name or not compare({"clouds": clouds, "azure_stack_cloud_name": stack_name}, now):
        pulumi.log.warn(f"{pep.fqdn}: multi-cloud mode was enabled before this stack; it stays enabled as it is")
        return
    inputs = AzurePackConnectorInputs.parse({**props, "clouds": clouds, "azure_stack_cloud_name": stack_name})
    enable(t, inputs)
    pulumi.log.warn(f"{pep.fqdn}: multi-cloud mode was enabled before this stack; its previous cloud list is "
                    f"configured again")


# ===============================================================================================================
# Resource
# ===============================================================================================================


class AzurePackConnector(LabResource, name="AzurePackConnector"):
    """Azure Stack multi-cloud mode with the given Windows Azure Pack clouds (Add-AzurePackConnector on the PEP).

    Outputs: ``multi_cloud_enabled``; ``cloud_outputs`` = {cloud name: {file_name, content, endpoint, realm,
    signing_certificate}} (the per-cloud output file, for TenantApiTrust); ``clouds`` and
    ``azure_stack_cloud_name`` as observed. ``connection`` and ``share_connection`` are secret outputs."""

    multi_cloud_enabled: pulumi.Output[bool]
    cloud_outputs: pulumi.Output[dict]
    clouds: pulumi.Output[list]
    azure_stack_cloud_name: pulumi.Output[str]
    output_folder: pulumi.Output[str]

    def __init__(self, name: str, *, connection: pulumi.Input[Mapping[str, Any]],
                 share_connection: pulumi.Input[Mapping[str, Any]],
                 clouds: pulumi.Input[Sequence[pulumi.Input[AzurePackCloudInputs]]],
                 azure_stack_cloud_name: pulumi.Input[str],
                 timeout_seconds: pulumi.Input[float] = DEFAULT_TIMEOUT_SECONDS,
                 owner: pulumi.Input[str] | None = None, adopt: pulumi.Input[bool] = False,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "connection": password_secret(connection),
            "share_connection": password_secret(share_connection),
            "clouds": clouds,
            "azure_stack_cloud_name": azure_stack_cloud_name,
            "timeout_seconds": timeout_seconds,
            **ownership.resource_props(owner, adopt),
            "multi_cloud_enabled": None,
            "cloud_outputs": None,
            "output_folder": None,
        }
        super().__init__(AzurePackConnectorProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, secret_outputs("share_connection")))
