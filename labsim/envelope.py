"""WSMan messages as Windows' WinRM service writes them: parse a request envelope (:func:`parse_request`), build a
reply or a fault envelope (:func:`build_reply`, :func:`build_fault`), and the faults, codes and texts Windows
answers with (MS-WSMV; the recordings named in docs/labsim.md). No state: the service (``labsim.wsman``) decides
which message to send.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import KW_ONLY, dataclass
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

_ACTION = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL_ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE = _ACTION + "Create"
ACTION_DELETE = _ACTION + "Delete"
ACTION_GET = _ACTION + "Get"
ACTION_COMMAND = _SHELL_ACTION + "Command"
ACTION_SEND = _SHELL_ACTION + "Send"
ACTION_RECEIVE = _SHELL_ACTION + "Receive"
ACTION_SIGNAL = _SHELL_ACTION + "Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
# The action of a fault about the message's addressing headers (invalid_timeout_fault.xml).
ACTION_ADDRESSING_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
COMMAND_STATE_DONE = SHELL_URI + "/CommandState/Done"

# Windows error codes carried in WSManFault@Code (winerror.h, ERROR_WSMAN_*).
CODE_SHELL_NOT_FOUND = 2150858843  # 0x8033805B, also what pypsrp's is_alive treats as "pool gone"
CODE_OPERATION_TIMEOUT = 2150858793  # 0x80338029, swallowed and retried by pypsrp's poll_invoke
CODE_INVALID_XML = 2150858817  # the request is not well-formed XML or not a SOAP envelope
CODE_ACTION_NOT_SUPPORTED = 2150858753  # wsa:Action is not one this service implements
CODE_INVALID_SELECTORS = 2150858842  # the request names no ShellId at all
CODE_INVALID_HEADER = 2150858767  # 0x8033800F ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER (e.g. a negative timeout)
CODE_CONFIG_NOT_FOUND = 2150858752  # no session configuration behind the ResourceURI
CODE_ACCESS_DENIED = 5  # ERROR_ACCESS_DENIED
CODE_ALREADY_EXISTS = 2150858795  # a shell with that ShellId exists already
CODE_ENVELOPE_TOO_LARGE = 2150858846  # body larger than the service's MaxEnvelopeSize
CODE_INTERNAL_ERROR = 2150858883  # the service failed while handling a valid request
CODE_INVALID_REQUEST = 2150858819  # the request parses but misses something the action needs

# The service's own MaxEnvelopeSizekb (Windows default 500); also what the transport caps a request at.
MAX_ENVELOPE_KB = 500
_DURATION = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)S)?$")


@dataclass(eq=False)
class WSManFault(Exception):
    """A request that ends in a SOAP fault (HTTP 500) shaped like Windows' WinRM service answers it.

    ``reason`` is the s:Reason text when Windows words it apart from the f:Message; ``detail`` the
    w:FaultDetail URI; ``provider`` (name, DLL path) nests the message in that WinRM provider's f:ProviderFault;
    ``action`` the reply's wsa:Action."""

    code: int
    message: str
    _: KW_ONLY
    subcode: str = "w:InternalError"
    sender: bool = False
    reason: str | None = None
    detail: str | None = None
    provider: tuple[str, str] | None = None
    action: str = ACTION_FAULT
    relates_to: str = ""  # the request's MessageID, when the fault is raised before handle() knows it

    def __post_init__(self) -> None:
        super().__init__(self.message)


_FAULT_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
_INVALID_SELECTORS_REASON = ("The WS-Management service cannot process the request because the request contained "
                             "invalid selectors for the resource. ")


def shell_not_found(shell_id: str) -> WSManFault:
    """Windows' answer for a ShellId it does not know (Windows' text)."""
    return WSManFault(
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        subcode="w:InvalidSelectors", sender=True, reason=_INVALID_SELECTORS_REASON,
        detail=_FAULT_DETAIL + "UnexpectedSelectors")


def shell_get_not_found() -> WSManFault:
    """A Get of a shell that is gone: the WinRM shell provider's fault (deleted_shell_get_fault.xml)."""
    return WSManFault(CODE_SHELL_NOT_FOUND, _INVALID_SELECTORS_REASON, subcode="w:InvalidSelectors", sender=True,
                      reason=_INVALID_SELECTORS_REASON, detail=_FAULT_DETAIL + "UnexpectedSelectors",
                      provider=("Shell provider", "%systemroot%\\system32\\WsmSvc.dll"))


def command_not_found(command_id: str) -> WSManFault:
    """A CommandId the shell does not have (test_winrs_bad_cmd_id.yml)."""
    return WSManFault(
        CODE_SHELL_NOT_FOUND,
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does "
        "not exist. Either the command has completed execution or the client specified an invalid command "
        "identifier. ", subcode="w:InvalidSelectors", sender=True, reason=_INVALID_SELECTORS_REASON,
        detail=_FAULT_DETAIL + "UnexpectedSelectors")


def operation_timeout() -> WSManFault:
    return WSManFault(CODE_OPERATION_TIMEOUT,  # Windows' text, two trailing spaces included
                      "The WS-Management service cannot complete the operation within the time specified in "
                      "OperationTimeout.  ", subcode="w:TimedOut")


def invalid_timeout(value: str) -> WSManFault:
    """An OperationTimeout header that is not a positive duration (invalid_timeout_fault.xml)."""
    return WSManFault(CODE_INVALID_HEADER, "The WS-Management service cannot process the request. The XML contains "
                      f"an invalid timeout field in the SOAP header: {value}. ",
                      subcode="a:InvalidMessageInformationHeader", sender=True, action=ACTION_ADDRESSING_FAULT,
                      reason="The WS-Management service cannot process the request. The request contains one or "
                      "more invalid SOAP headers. ")


@dataclass(frozen=True)
class Principal:
    """Who sent a request, as the transport authenticated them."""

    user: str  # DOMAIN\\user or user, as the lab file spells it
    auth: str  # "basic" | "negotiate" | "credssp"
    client_ip: str = "127.0.0.1"


@dataclass
class Reply:
    status: int  # 200, or 500 for a fault
    body: bytes
    # Set on faults so the transport can log the code without parsing XML.
    fault_code: int | None = None


@dataclass
class Request:
    action: str
    resource_uri: str
    message_id: str
    selectors: dict[str, str]
    options: dict[str, str]
    max_envelope_size: int
    operation_timeout: float | None
    body: ET.Element | None


def parse_request(data: bytes) -> Request:
    """Parse a WSMan request envelope. Raises :class:`WSManFault` for anything that is not one."""
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        # No DTDs in SOAP 1.2; refusing them also closes the entity-expansion door.
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request because the XML "
                         "contains a DTD, which SOAP does not allow.", subcode="w:SchemaValidationError", sender=True)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WSManFault(CODE_INVALID_XML, f"The WS-Management service cannot process the request because the XML "
                         f"is invalid: {exc}.", subcode="w:SchemaValidationError", sender=True) from None
    if root.tag != f"{{{NS['s']}}}Envelope":
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request: the document is "
                         "not a SOAP 1.2 envelope.", subcode="w:SchemaValidationError", sender=True)
    header = root.find("s:Header", NS)
    if header is None:
        raise WSManFault(CODE_INVALID_XML, "The WS-Management service cannot process the request: the SOAP "
                         "envelope has no Header.", subcode="w:SchemaValidationError", sender=True)

    def text(path: str) -> str:
        el = header.find(path, NS)
        return (el.text or "").strip() if el is not None else ""

    selectors = {s.attrib.get("Name", ""): (s.text or "").strip()
                 for s in header.findall("wsman:SelectorSet/wsman:Selector", NS)}
    options = {o.attrib.get("Name", ""): (o.text or "").strip()
               for o in header.findall("wsman:OptionSet/wsman:Option", NS)}
    try:
        max_env = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_env = 153600
    timeout_text = text("wsman:OperationTimeout")
    if timeout_text.startswith("-") or "-" in timeout_text[:3]:
        fault = invalid_timeout(timeout_text)
        fault.relates_to = text("wsa:MessageID")
        raise fault
    body = root.find("s:Body", NS)
    child = body[0] if body is not None and len(body) else None
    return Request(action=text("wsa:Action"), resource_uri=text("wsman:ResourceURI"),
                   message_id=text("wsa:MessageID"), selectors=selectors, options=options,
                   max_envelope_size=max(8192, min(max_env, MAX_ENVELOPE_KB * 1024)),
                   operation_timeout=duration(timeout_text), body=child)


def duration(value: str) -> float | None:
    m = _DURATION.match(value)
    if not m or m.group(1) is None:
        return None
    return float(m.group(1))


_PREFIXES = {"s": NS["s"], "a": NS["wsa"], "x": NS["wst"], "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing",
             "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration", "w": NS["wsman"], "rsp": NS["rsp"],
             "p": NS["wsmv"]}
# The namespaces Windows declares on the envelope, by reply (the recordings' envelopes).
_DECLARED = {"ReceiveResponse": ("s", "a", "w", "rsp", "p"), "DeleteResponse": ("s", "a", "w", "p"),
             "GetResponse": ("s", "a", "x", "w", "p"), "fault": ("s", "a", "x", "e", "n", "w", "p")}
_DECLARED_OTHERWISE = ("s", "a", "x", "w", "rsp", "p")


def _envelope_open(action: str) -> str:
    prefixes = _DECLARED.get(action.rsplit("/", 1)[-1], _DECLARED_OTHERWISE)
    return '<s:Envelope xml:lang="en-US" ' + " ".join(f'xmlns:{p}="{_PREFIXES[p]}"' for p in prefixes) + ">"


def activity_id() -> str:
    """The p:ActivityId header Windows adds to every reply (an ETW activity GUID)."""
    return str(uuid.uuid4()).upper()


def build_reply(action: str, relates_to: str, body: str) -> bytes:
    # Windows sends no XML declaration.
    return (f'{_envelope_open(action)}<s:Header>'
            f'<a:Action>{escape(action)}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>'
            f'<p:ActivityId>{activity_id()}</p:ActivityId><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>'
            f'<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>'
            ).encode()


def build_fault(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    code = "s:Sender" if fault.sender else "s:Receiver"
    message = escape(fault.message)
    reason = escape(fault.reason) if fault.reason is not None else message
    detail = f'<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>' if fault.detail else ""
    inner = message
    if fault.provider:
        name, path = fault.provider
        inner = (f'<f:ProviderFault provider={quoteattr(name)} path={quoteattr(path)}>'
                 f'<f:WSManFault xmlns:f="{NS["wsmanfault"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
                 f'<f:Message>{message}</f:Message></f:WSManFault></f:ProviderFault>')
    body = (f'<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}</s:Value>'
            f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason><s:Detail>'
            f'{detail}<f:WSManFault xmlns:f="{NS["wsmanfault"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
            f'<f:Message>{inner}</f:Message></f:WSManFault></s:Detail></s:Fault>')
    return build_reply(fault.action, relates_to, body)


# The WSMan service configuration a Get of the config URI returns: Windows' elements in Windows' order with
# WinRM's defaults (wsman_config_response.xml), MaxEnvelopeSizekb being this service's.
WSMAN_CONFIG = (
    f'<cfg:Config xmlns:cfg="{NS["cfg"]}"><cfg:MaxEnvelopeSizekb>{MAX_ENVELOPE_KB}</cfg:MaxEnvelopeSizekb>'
    '<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>'
    '<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests><cfg:Client><cfg:NetworkDelayms>5000'
    '</cfg:NetworkDelayms><cfg:URLPrefix>wsman</cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted>'
    '<cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos>'
    '<cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP>'
    '</cfg:Auth><cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>'
    '<cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client><cfg:Service><cfg:RootSDDL>'
    'O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL>'
    '<cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>'
    '<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>'
    '<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>'
    '<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>'
    '<cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic>'
    '<cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>false</cfg:Certificate>'
    '<cfg:CredSSP>true</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth>'
    '<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>'
    '<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>'
    '<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>'
    '<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>'
    '<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess>'
    '</cfg:Service><cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess>'
    '<cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers>'
    '<cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime><cfg:MaxProcessesPerShell>2147483647'
    '</cfg:MaxProcessesPerShell><cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB>'
    '<cfg:MaxShellsPerUser>2147483647</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>')


def xs_duration(seconds: float) -> str:
    """An xs:duration the way WinRM writes ShellRunTime / ShellInactivity: ``P0DT0H0M0S``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


def stream_data(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise WSManFault(CODE_INVALID_REQUEST, "The WS-Management service cannot process the request: a stream "
                         "is not valid base64.", subcode="w:SchemaValidationError", sender=True) from None
