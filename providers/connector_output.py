"""The Azure Pack Connector output file: what Add-AzurePackConnector writes per WAP cloud into the
AzurePackConnectorOutput share (``AzurePack-*.txt``), and what Configure-TrustAzureStack.ps1 takes as its data file.

Microsoft never published its syntax. This module is the providers' one understanding of it: the keys below
and a pure parser (no transport, no Pulumi). AzurePackConnector reads the share's files with :func:`parse`;
TenantApiTrust reads the data file with :func:`read_fields`, which tolerates a file that holds only the realm.
labsim parses the file on its own (labsim/hosts/wapconnector.py), so that the simulator does not take the
providers' reading for granted; tests/providers/test_connector_output.py holds both to one sample file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# [doc] = Microsoft's article; [inf] = inferred (host contract §8); correct these against a real Azure Stack.
# [inf] The file's syntax was never published; the contract (§8) says UTF-8 JSON with these keys. Keys are
# matched without regard to case, as PowerShell's ConvertFrom-Json properties are; an exact match wins.
KEY_CLOUD_NAME = "CloudName"  # [inf] optional: without it the cloud is matched by its endpoint
KEY_STACK_CLOUD_NAME = "AzureStackCloudName"  # [inf] optional
KEY_ENDPOINT = "AzurePackConnectorEndpoint"  # [doc] named in the article
KEY_PARTNER = "AuthenticationIdentityProviderPartner"  # [doc] named in the article
KEY_REALM = "Realm"  # [doc] "the Realm associated with the signing certificate"
KEY_CERTIFICATE = "Certificate"  # [inf] base64 DER of the AD FS token-signing certificate
#: The realm's path in the file, as error messages name it.
REALM_PATH = f"{KEY_PARTNER}.{KEY_REALM}"


class NotJson(ValueError):
    """The text is not JSON; the message reads ``is not JSON (<reason> at line <n>)``."""


@dataclass(frozen=True)
class OutputFields:
    """Whatever a text holds under the file's keys, complete or not. A key that is absent, or holds another JSON
    type than a string, reads as None; strings are as written."""

    is_object: bool
    """False: the JSON is not an object (every field is then None)."""
    has_partner: bool
    """False: AuthenticationIdentityProviderPartner is absent or not an object."""
    endpoint: str | None = None
    realm: str | None = None
    certificate: str | None = None
    """As written: base64 DER, possibly with line breaks or PEM armour."""
    cloud_name: str | None = None
    stack_cloud_name: str | None = None


@dataclass(frozen=True)
class ConnectorOutput:
    """A complete output file."""

    endpoint: str
    """AzurePackConnectorEndpoint, as written."""
    realm: str
    signing_certificate: str
    """The AD FS token-signing certificate: base64 DER without PEM armour or whitespace."""
    cloud_name: str | None
    """None when the file has no (or an empty) CloudName."""
    stack_cloud_name: str | None


def field(data: Any, key: str) -> Any:
    """``data[key]`` matched without regard to case (an exact match first); None if absent or not an object."""
    if not isinstance(data, Mapping):
        return None
    if key in data:
        return data[key]
    return next((v for k, v in data.items() if isinstance(k, str) and k.lower() == key.lower()), None)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_fields(content: str) -> OutputFields:
    """The file's fields, whatever is missing (a leading BOM is ignored). Raises :class:`NotJson` only."""
    try:
        data = json.loads(content.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise NotJson(f"is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, Mapping):
        return OutputFields(is_object=False, has_partner=False)
    partner = field(data, KEY_PARTNER)
    return OutputFields(
        is_object=True, has_partner=isinstance(partner, Mapping),
        endpoint=_string(field(data, KEY_ENDPOINT)), realm=_string(field(partner, KEY_REALM)),
        certificate=_string(field(partner, KEY_CERTIFICATE)), cloud_name=_string(field(data, KEY_CLOUD_NAME)),
        stack_cloud_name=_string(field(data, KEY_STACK_CLOUD_NAME)))


def clean_certificate(text: str) -> str:
    """Base64 DER without PEM armour or whitespace; ValueError if it is not base64."""
    body = re.sub(r"-----(BEGIN|END) CERTIFICATE-----", "", text)
    body = "".join(body.split())
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the signing certificate is not base64") from exc
    return body


def certificate_thumbprint(value: Any) -> str | None:
    """SHA-1 of a base64 DER certificate (whitespace ignored), upper-case; None if it does not decode."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        der = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha1(der).hexdigest().upper() if der else None  # noqa: S324 - Windows' thumbprint


def parse(content: str) -> ConnectorOutput:
    """A complete output file. Raises :class:`NotJson`, or ValueError naming the first key that is missing."""
    f = read_fields(content)
    if not f.is_object:
        raise ValueError("expected a JSON object")
    if not f.endpoint:
        raise ValueError(f"{KEY_ENDPOINT} is missing")
    if not f.has_partner:
        raise ValueError(f"{KEY_PARTNER} is missing")
    if not f.realm:
        raise ValueError(f"{REALM_PATH} is missing")
    if not f.certificate:
        raise ValueError(f"{KEY_PARTNER}.{KEY_CERTIFICATE} is missing")
    return ConnectorOutput(endpoint=f.endpoint, realm=f.realm, signing_certificate=clean_certificate(f.certificate),
                           cloud_name=f.cloud_name or None, stack_cloud_name=f.stack_cloud_name or None)
