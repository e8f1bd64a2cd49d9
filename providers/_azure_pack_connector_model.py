"""The AzurePackConnector resource's model, pure (no host is touched here): the assumptions about
Add-AzurePackConnector and its output folder, the inputs and ``check``, the output files as read parses them,
:func:`compare` and the step for its differences.

providers/azure_pack_connector.py runs it against the PEP and the share host (the template's hooks) and keeps every
public name importable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from pulumi.dynamic import CheckFailure, CheckResult
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers import connector_output, names, ownership
from providers.base import is_unknown
from providers.facts import files
from providers.facts.files import ListedFile
from providers.facts.locations import CONNECTOR_PORT, INFRASTRUCTURE_SHARE, OUTPUT_FOLDER
from providers.remote import (
    RemoteInputs,
    check_remote,
    text_required,
)
from providers.transport import (
    PRIVILEGED_ENDPOINT,
    HostConnection,
    Pipeline,
)

# ===============================================================================================================
# ASSUMPTIONS about the unpublished parts of Add-AzurePackConnector and its output folder.
# [doc] = Microsoft's article; [inf] = inferred (host contract §7-§9); correct these against a real Azure Stack.
# ===============================================================================================================

# The cmdlet, the connector's port and the output folder: providers/facts/locations.py.
ENABLE_SUCCESS_LINE = "Step 'Configure Azure Pack Connector' status: 'Success'"  # [doc] the known-issue note
# Disable: the contract prints "Step 'Disable multi-cloud mode' status: 'Success'" [inf]. We do not trust an
# inferred line to decide success: the disable runs as a plain pipeline and the folder is read back instead.
DISABLE_SWITCH = "DisableMultiCloud"  # [doc]
# The file's keys and its parser: providers/connector_output.py (one module, shared with TenantApiTrust).
# [inf] Presence/absence (contract §8): multi-cloud mode is on with cloud C <=> a file whose endpoint is C's;
# no AzurePack-*.txt file <=> disabled (or never enabled). The folder mirrors the last configuration: a
# re-run replaces its files. Should a real PEP leave older files behind, the newest file per cloud wins.
#
# Design choice (not about WAP): "disabled out of band" and "deleted by us" leave the same folder. To tell them
# apart, create writes the ownership marker (providers/ownership.py) on the share host (the PEP takes no file
# commands) and delete removes it: files gone + marker present = drift (multi_cloud_enabled false, update heals);
# files gone + no marker = gone.
OWNERSHIP_RESOURCE = "AzurePackConnector"
MARKER_FOLDER = ownership.MARKER_ROOT + "\\" + OWNERSHIP_RESOURCE


def marker_path(pep_fqdn: str) -> str:
    return ownership.marker_path(OWNERSHIP_RESOURCE, pep_fqdn)


def thing(pep_fqdn: str) -> str:
    return f"multi-cloud mode of the Azure Stack behind privileged endpoint {pep_fqdn} (Add-AzurePackConnector)"


# Step names (they appear in errors and are the keys of a connection's step_timeouts).
STEP_ENABLE = "enable multi-cloud mode (Add-AzurePackConnector)"
STEP_DISABLE = "disable multi-cloud mode (Add-AzurePackConnector -DisableMultiCloud)"
STEP_READ = "read the Azure Pack Connector output folder"
STEP_MARK = "record ownership of multi-cloud mode"
#: Every step name of this resource: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
STEPS = (STEP_ENABLE, STEP_DISABLE, STEP_READ, STEP_MARK)
DEFAULT_TIMEOUT_SECONDS = 900.0  # the real step takes minutes before its success line
DISABLE_TIMEOUT_SECONDS = 600.0

# ===============================================================================================================
# Inputs
# ===============================================================================================================

_ENDPOINT = re.compile(r"^https://(?P<host>[^/:?#@\s]+)(?::(?P<port>[0-9]+))?(?P<path>/?)$", re.IGNORECASE)


def normalize_endpoint(value: str) -> str:
    """``https://host[:port][/]`` -> ``https://host:port`` (port 40005 when absent). ValueError says why not."""
    if not isinstance(value, str):
        raise ValueError("must be a string such as https://waptenantportal1:40005")
    m = _ENDPOINT.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not an absolute https URL of a tenant portal such as "
                         f"https://wapcomputer1.contoso.com:40005 (no path, query or user info)")
    host, port = m.group("host"), m.group("port")
    if not names.HOST_NAME.match(host):
        raise ValueError(f"{value!r}: {host!r} is not a host name")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: port {int(port)} is out of range (1-65535)")
    return f"https://{host}:{int(port) if port is not None else CONNECTOR_PORT}"


class AzurePackCloudInputs(TypedDict):
    """One Windows Azure Pack cloud, as the PEP's ``-AzurePackClouds`` hashtable."""

    cloud_name: str
    """Label of the WAP cloud in the Azure Stack portal's cloud selector (CloudName)."""
    cloud_endpoint: str
    """The WAP tenant portal's connector URL, https://<tenant portal>:40005 (CloudEndpoint; port defaults to 40005)."""


class _Cloud(BaseModel):
    # extra keys refused, as the PEP refuses them ("a cloud has CloudName and CloudEndpoint")
    model_config = ConfigDict(extra="forbid")
    cloud_name: Annotated[str, Field(min_length=1, max_length=256),
                          text_required("must not be blank: it is the cloud's label in the Azure Stack portal")]
    cloud_endpoint: str

    @field_validator("cloud_endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        return normalize_endpoint(v)


def _pep_problems(conn: HostConnection) -> list[str]:
    p = []
    if conn.configuration_name != PRIVILEGED_ENDPOINT:
        p.append(f"configuration_name: Add-AzurePackConnector runs on the privileged endpoint; set "
                 f"configuration_name: {PRIVILEGED_ENDPOINT} (got {conn.configuration_name!r})")
    if conn.auth != "credssp":
        p.append(f"auth: the privileged endpoint is reached with CredSSP (New-PSSession -Authentication Credssp); "
                 f"set auth: credssp (got {conn.auth!r})")
    return p


class AzurePackConnectorInputs(RemoteInputs):
    share_connection: HostConnection
    clouds: Annotated[list[_Cloud], Field(min_length=1)]
    azure_stack_cloud_name: Annotated[str, Field(min_length=1, max_length=256), text_required(
        "must not be blank: it labels the local Azure Stack cloud in the portal")]
    timeout_seconds: Annotated[float, Field(gt=0, le=7200)] = DEFAULT_TIMEOUT_SECONDS

    @field_validator("clouds")
    @classmethod
    def _unique(cls, clouds: list[_Cloud]) -> list[_Cloud]:
        seen: set[str] = set()
        for c in clouds:
            key = c.cloud_name.casefold()  # PowerShell compares names case-insensitively
            if key in seen:
                raise ValueError(f"cloud name {c.cloud_name!r} is used twice: each WAP cloud needs its own name")
            seen.add(key)
        return clouds

    @model_validator(mode="after")
    def _coherent(self) -> AzurePackConnectorInputs:
        if any(c.cloud_name.casefold() == self.azure_stack_cloud_name.casefold() for c in self.clouds):
            raise ValueError(f"azure_stack_cloud_name: {self.azure_stack_cloud_name!r} is also a WAP cloud's name; "
                             f"the portal's cloud selector needs distinct names")
        problems = _pep_problems(self.connection)
        if problems:
            raise ValueError("connection: " + "; ".join(problems))
        if self.share_connection.configuration_name == PRIVILEGED_ENDPOINT:
            raise ValueError("share_connection: the privileged endpoint cannot read files; give the ASDK host or "
                             f"operator computer that sees {INFRASTRUCTURE_SHARE}")
        return self

    def desired_clouds(self) -> list[dict[str, str]]:
        return sorted_clouds({"cloud_name": c.cloud_name, "cloud_endpoint": c.cloud_endpoint} for c in self.clouds)

    def desired(self) -> dict[str, Any]:
        """The fields the plan compares, in the shape of the outputs."""
        return {"clouds": self.desired_clouds(), "azure_stack_cloud_name": self.azure_stack_cloud_name}


def sorted_clouds(clouds: Any) -> list[dict[str, str]]:
    return sorted((dict(c) for c in clouds), key=lambda c: (c["cloud_name"].casefold(), c["cloud_endpoint"]))


def check(news: Mapping[str, Any], result: CheckResult | None = None) -> CheckResult:
    """Validate before any host is touched (``result``: the model's rules, when the template already ran them);
    returns the inputs with endpoints normalised (port 40005 added)."""
    if result is None:
        result = check_remote(AzurePackConnectorInputs, news, connection_keys=("connection", "share_connection"))
    failures = list(result.failures)
    # check_remote leaves out model rules about connections; the PEP's own rules are reported here.
    conn, share = news.get("connection"), news.get("share_connection")
    if not any(f.property.startswith("connection") for f in failures) and conn is not None and not is_unknown(conn):
        failures += [CheckFailure("connection", p) for p in _pep_problems(HostConnection.parse(conn))]
    if (not any(f.property.startswith("share_connection") for f in failures) and share is not None
            and not is_unknown(share) and HostConnection.parse(share).configuration_name == PRIVILEGED_ENDPOINT):
        failures.append(CheckFailure("share_connection", "the privileged endpoint cannot read files; give the ASDK "
                                     f"host or operator computer that sees {INFRASTRUCTURE_SHARE}"))
    inputs = dict(result.inputs)
    if not failures and isinstance(news.get("clouds"), list) and not is_unknown(news.get("clouds")):
        inputs["clouds"] = [
            {**c, "cloud_endpoint": normalize_endpoint(c["cloud_endpoint"])} for c in news["clouds"]]
    if "timeout_seconds" not in inputs or inputs["timeout_seconds"] is None:
        inputs["timeout_seconds"] = DEFAULT_TIMEOUT_SECONDS
    return CheckResult(inputs, failures)


# ===============================================================================================================
# Read: the output folder (and the ownership marker), through share_connection
# ===============================================================================================================


@dataclass(frozen=True)
class OutputFile:
    """One parsed output file."""

    file_name: str
    content: str
    endpoint: str
    realm: str
    signing_certificate: str
    cloud_name: str | None
    stack_cloud_name: str | None
    modified: str = ""


@dataclass(frozen=True)
class AzurePackConnectorObserved:
    """Multi-cloud mode as the output folder shows it: one parsed file per AzurePack-*.txt (at least one; a folder
    without files reads as None: disabled or never enabled)."""

    files: tuple[OutputFile, ...]

    @property
    def multi_cloud_enabled(self) -> bool:
        return bool(self.files)


def parse_output_file(file_name: str, content: str, modified: str = "") -> OutputFile:
    """Parse one AzurePack-*.txt file (contract §8 [inf]). ValueError names what is missing."""
    try:
        parsed = connector_output.parse(content)
    except connector_output.NotJson as exc:
        raise ValueError(f"{file_name} {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{file_name}: {exc}") from None
    return OutputFile(file_name=file_name, content=content, endpoint=parsed.endpoint, realm=parsed.realm,
                      signing_certificate=parsed.signing_certificate, cloud_name=parsed.cloud_name,
                      stack_cloud_name=parsed.stack_cloud_name, modified=modified)


def _same_endpoint(a: str, b: str) -> bool:
    try:
        return normalize_endpoint(a).lower() == normalize_endpoint(b).lower()
    except ValueError:
        return a.strip().lower() == b.strip().lower()


def observed_clouds(observed: AzurePackConnectorObserved,
                    known: Sequence[Mapping[str, str]] = ()) -> dict[str, OutputFile]:
    """Files keyed by cloud name: the file's CloudName, else the known cloud with that endpoint (the contract's
    matching rule), else the file name. Several files for one cloud: the newest wins."""
    by_name: dict[str, OutputFile] = {}
    for f in sorted(observed.files, key=lambda f: (f.modified, f.file_name)):
        name = f.cloud_name
        if name is None:
            name = next((c["cloud_name"] for c in known if _same_endpoint(c["cloud_endpoint"], f.endpoint)),
                        f.file_name)
        by_name[name] = f
    return by_name


LISTING = files.OutputFolder()


def read_statements() -> list[Pipeline]:
    """The read's first invocation (besides the marker): the folder listing."""
    return LISTING.statements()


def parse_listing(listing: Sequence[Any]) -> list[ListedFile]:
    """The listing statement's objects: the files to read."""
    return list(LISTING.parse(listing))


def content_facts(listed: Sequence[ListedFile]) -> list[files.FileText]:
    """The read's second invocation: one Get-Content statement per listed file, in the listing's order."""
    return [files.FileText(f.full_name) for f in listed]


def content_statements(listed: Sequence[ListedFile]) -> list[Pipeline]:
    return [p for fact in content_facts(listed) for p in fact.statements()]


class FolderChanged(ValueError):
    """A listed file's Get-Content statement gave no text (the folder changed between the two invocations)."""


def parse_files(listed: Sequence[ListedFile], contents: Sequence[Sequence[Any]]) -> AzurePackConnectorObserved:
    """Each listed file parsed from its own Get-Content statement's output. FolderChanged when a statement has no
    text; ValueError (from :func:`parse_output_file`) when a file cannot be understood."""
    texts = [fact.parse(out) for fact, out in zip(content_facts(listed), contents, strict=False)]
    if len(contents) != len(listed) or any(text is None for text in texts):
        raise FolderChanged(f"{len(listed)} output file(s) listed but {sum(t is not None for t in texts)} read")
    return AzurePackConnectorObserved(tuple(parse_output_file(f.name, text, f.modified)
                          for f, text in zip(listed, texts, strict=True) if text is not None))


def observed_outputs(observed: AzurePackConnectorObserved | None,
                     known: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """Observed state in the shape of the outputs (clouds/azure_stack_cloud_name comparable to inputs)."""
    by_name = observed_clouds(observed, known) if observed is not None else {}
    stack_names = {f.stack_cloud_name for f in by_name.values() if f.stack_cloud_name}
    return {
        "multi_cloud_enabled": observed is not None and observed.multi_cloud_enabled,
        "clouds": sorted_clouds({"cloud_name": n, "cloud_endpoint": f.endpoint} for n, f in by_name.items()),
        "azure_stack_cloud_name": next(iter(stack_names)) if len(stack_names) == 1 else None,
        "cloud_outputs": {n: {"file_name": f.file_name, "content": f.content, "endpoint": f.endpoint,
                              "realm": f.realm, "signing_certificate": f.signing_certificate}
                          for n, f in sorted(by_name.items())},
        "output_folder": OUTPUT_FOLDER,
    }


# ===============================================================================================================
# Plan: observed vs desired
# ===============================================================================================================

def _clouds_equal(observed: Any, desired: Any) -> bool:
    if not isinstance(observed, list) or not isinstance(desired, list):
        return False
    try:
        a, b = sorted_clouds(observed), sorted_clouds(desired)
    except (KeyError, TypeError, AttributeError):
        return False
    return len(a) == len(b) and all(x["cloud_name"] == y["cloud_name"]
                                    and _same_endpoint(x["cloud_endpoint"], y["cloud_endpoint"])
                                    for x, y in zip(a, b, strict=True))


def compare(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[ownership.Difference]:
    """The declared fields whose observed value (:func:`observed_outputs`, or the state's last read) differs from
    the desired one (the inputs). When multi-cloud mode is observed off, only ``multi_cloud_enabled`` differs: the
    cloud list and stack name are then unknowable (no files), not different."""
    if observed.get("multi_cloud_enabled") is False:
        return [ownership.Difference("multi_cloud_enabled", False, True)]
    out = []
    if is_unknown(desired.get("clouds")) or not _clouds_equal(observed.get("clouds"), desired.get("clouds")):
        out.append(ownership.Difference("clouds", observed.get("clouds"), desired.get("clouds")))
    if is_unknown(desired.get("azure_stack_cloud_name")) or observed.get("azure_stack_cloud_name") != desired.get(
            "azure_stack_cloud_name"):
        out.append(ownership.Difference("azure_stack_cloud_name", observed.get("azure_stack_cloud_name"),
                                        desired.get("azure_stack_cloud_name")))
    return out


@dataclass(frozen=True)
class AzurePackConnectorStep:
    """A step of the plan. There is one kind: Add-AzurePackConnector with the whole desired list (the cmdlet
    replaces the configuration; nothing changes one cloud alone)."""

    kind: Literal["enable"] = "enable"


ENABLE = AzurePackConnectorStep("enable")
