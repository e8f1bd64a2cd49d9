"""Rebuild ``recordings/`` from pypsrp's recorded Windows exchanges.

pypsrp's test suite replays exchanges recorded against real Windows hosts (``tests/responses/*.yml`` in
jborean93/pypsrp; ``tests/tests_pypsrp/responses/`` in its 0.9.1 source distribution). Each file here is one reply
or one decoded PSRP message of one of those exchanges, verbatim, under a comment naming its source file and
exchange. Run by hand when a recording is added:

    python -m tests.conformance.extract <pypsrp-0.9.1>/tests/tests_pypsrp/responses

Most sources were recorded on Windows Server 2016 (PowerShell 5.1.14393.2248), the version labsim models. The shell
Get, the Get of a deleted shell and the invalid OperationTimeout were recorded only on a later build (PowerShell
5.1.26236) and a partial Receive only on Windows Server 2019 (5.1.17763); their comments say so.
"""

from __future__ import annotations

import base64
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

RECORDINGS = Path(__file__).parent / "recordings"
_RSP = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
_CREATION = "{http://schemas.microsoft.com/powershell}creationXml"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Extract:
    name: str  # file under recordings/
    source: str  # file under pypsrp's responses folder
    exchange: int  # index in its messages list
    what: str  # one line: which part of the exchange, and why it is kept
    message_type: int | None = None  # a decoded PSRP message of this type (the nth of the exchange's reply)
    nth: int = 0
    side: str = "response"


EXTRACTS = (
    Extract("create_response.xml", "test_psrp_open_runspace.yml", 0,
            "the Create reply of a Microsoft.PowerShell shell whose client asked no idle timeout"),
    Extract("pool_open_receive_1.xml", "test_psrp_open_runspace.yml", 1,
            "the first Receive reply while the pool opens"),
    Extract("pool_open_receive_2.xml", "test_psrp_open_runspace.yml", 2,
            "the second Receive reply while the pool opens"),
    Extract("session_capability.xml", "test_psrp_open_runspace.yml", 1,
            "the server's SESSION_CAPABILITY message", 0x00010002),
    Extract("application_private_data.xml", "test_psrp_open_runspace.yml", 1,
            "the APPLICATION_PRIVATE_DATA message", 0x00021009),
    Extract("runspace_pool_state.xml", "test_psrp_open_runspace.yml", 2,
            "the RUNSPACEPOOL_STATE message (Opened)", 0x00021005),
    Extract("delete_response.xml", "test_psrp_open_runspace.yml", 3, "the Delete reply"),
    Extract("command_response.xml", "test_psrp_stream_output_invocation.yml", 3, "the Command reply"),
    Extract("receive_done_response.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the last Receive of a command: its streams and CommandState Done"),
    Extract("error_record.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the ErrorRecord Write-Error wrote in a script, invocation info requested", 0x00041005),
    Extract("verbose_record.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the VerboseRecord Write-Verbose wrote, invocation info requested", 0x00041008),
    Extract("warning_record.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the WarningRecord Write-Warning wrote, invocation info requested", 0x00041009),
    Extract("information_record.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the InformationRecord Write-Information wrote", 0x00041011),
    Extract("completed_pipeline_state.xml", "test_psrp_stream_output_invocation.yml", 4,
            "the PIPELINE_STATE message of a command that completed", 0x00041006),
    Extract("verbose_record_no_invocation.xml", "test_psrp_stream_no_output_invocation.yml", 4,
            "the VerboseRecord of a command run without invocation info", 0x00041008),
    Extract("warning_record_no_invocation.xml", "test_psrp_stream_no_output_invocation.yml", 4,
            "the WarningRecord of a command run without invocation info", 0x00041009),
    Extract("error_record_no_invocation.xml", "test_psrp_stream_no_output_invocation.yml", 4,
            "the ErrorRecord Write-Error wrote in a script run without invocation info", 0x00041005),
    Extract("cmdlet_error_record.xml", "test_psrp_with_jea_configuration.yml", 7,
            "the ErrorRecord a cmdlet (Get-Item, invoked as a command) wrote in a JEA session", 0x00041005),
    Extract("script_refused_state.xml", "test_psrp_with_jea_configuration.yml", 7,
            "the Failed PIPELINE_STATE a NoLanguage (JEA) session sends for script text", 0x00041006),
    Extract("command_not_found_state.xml", "test_client_execute_ps_failure.yml", 4,
            "the Failed PIPELINE_STATE for an unknown command (Get-ServiceTypo, run through Invoke-Expression)",
            0x00041006),
    Extract("failed_pipeline_state.xml", "test_psrp_error_failed.yml", 4,
            "the Failed PIPELINE_STATE of a script whose Write-Error was terminating", 0x00041006),
    Extract("send_response.xml", "test_psrp_with_input.yml", 4, "the Send reply (pipeline input)"),
    Extract("signal_response.xml", "test_psrp_nested_command.yml", 6, "the Signal reply (ctrl_c)"),
    Extract("operation_timeout_fault.xml", "test_psrp_long_running_cmdlet.yml", 4,
            "the Receive reply when the command had nothing to send within the OperationTimeout"),
    Extract("bad_command_id_fault.xml", "test_psrp_receive_failure.yml", 3,
            "the Receive reply for a CommandId the shell does not have"),
    Extract("encrypted_session_key.xml", "test_psrp_multiple_commands.yml", 4,
            "the ENCRYPTED_SESSION_KEY message answering the client's public key", 0x00010006),
    Extract("get_available_runspaces_response.xml", "test_psrp_set_runspaces.yml", 4,
            "the RUNSPACE_AVAILABILITY answering GetAvailableRunspaces", 0x00021004),
    Extract("set_max_runspaces_response.xml", "test_psrp_set_runspaces.yml", 6,
            "the RUNSPACE_AVAILABILITY answering SetMaxRunspaces 5", 0x00021004),
    Extract("set_invalid_runspaces_response.xml", "test_psrp_set_runspaces.yml", 12,
            "the RUNSPACE_AVAILABILITY answering SetMinRunspaces -1", 0x00021004),
    Extract("reset_runspace_state_response.xml", "test_psrp_reset_runspace_state.yml", 6,
            "the RUNSPACE_AVAILABILITY answering ResetRunspaceState", 0x00021004),
    Extract("string_output.xml", "test_psrp_reset_runspace_state.yml", 4,
            "a PIPELINE_OUTPUT message carrying a string", 0x00041004),
    Extract("wsman_config_response.xml", "test_psrp_small_msg_size.yml", 0,
            "the Get reply of http://schemas.microsoft.com/wbem/wsman/1/config"),
    Extract("shell_create_idle_request.xml", "test_psrp_is_alive_state_disconnected.yml", 0,
            "a Create request asking an idle timeout of 60 s (recorded on PowerShell 5.1.26236)", side="request"),
    Extract("shell_create_idle_response.xml", "test_psrp_is_alive_state_disconnected.yml", 0,
            "its Create reply (recorded on PowerShell 5.1.26236)"),
    Extract("shell_get_response.xml", "test_psrp_is_alive_state_disconnected.yml", 3,
            "the Get reply of that live shell (recorded on PowerShell 5.1.26236; no 2016 recording has one)"),
    Extract("deleted_shell_get_fault.xml", "test_psrp_is_alive_invalid_selectors.yml", 4,
            "the Get reply for a shell deleted meanwhile (recorded on PowerShell 5.1.26236)"),
    Extract("invalid_timeout_fault.xml", "test_psrp_is_alive_other_wsman_error.yml", 3,
            "the Get reply to an OperationTimeout of PT-1S (recorded on PowerShell 5.1.26236)"),
    Extract("partial_receive_response.xml", "test_client_fetch_file.yml", 5,
            "a Receive reply of a command still running (recorded on Windows Server 2019, PowerShell 5.1.17763)"),
)


def _messages(envelopes: list[str]) -> list[tuple[int, bytes]]:
    """(message type, data) of every PSRP message in these envelopes, reassembled across fragments."""
    pending: dict[int, bytes] = {}
    out = []
    for text in envelopes:
        root = ET.fromstring(text)
        for el in root.iter():
            if el.tag not in (_RSP + "Stream", _RSP + "Arguments", _CREATION) or not el.text:
                continue
            blob, offset = base64.b64decode(el.text), 0
            while offset < len(blob):
                length = int.from_bytes(blob[offset + 17:offset + 21], "big")
                object_id, flags = int.from_bytes(blob[offset:offset + 8], "big"), blob[offset + 16]
                pending[object_id] = pending.get(object_id, b"") + blob[offset + 21:offset + 21 + length]
                offset += 21 + length
                if flags & 2:
                    raw = pending.pop(object_id)
                    out.append((int.from_bytes(raw[4:8], "little"), raw[40:]))
    return out


def extract(spec: Extract, responses: Path) -> str:
    import yaml  # a dev-time tool: pyyaml comes with the test dependencies

    exchanges = yaml.safe_load((responses / spec.source).read_text(encoding="utf-8"))["messages"]
    source = (f"source: jborean93/pypsrp tests/responses/{spec.source} (pypsrp 0.9.1: tests/tests_pypsrp/responses/), "
              f"exchange {spec.exchange}")
    if spec.message_type is None:
        text = exchanges[spec.exchange][spec.side]
        return f"<!-- {source}:\n     {spec.what}. Verbatim apart from this comment. -->\n{text}\n"
    # Messages may span exchanges: reassemble every reply up to this one, keep the ones this reply completes.
    before = len(_messages([e["response"] for e in exchanges[:spec.exchange] if e["response"].startswith("<")]))
    found = _messages([e["response"] for e in exchanges[:spec.exchange + 1] if e["response"].startswith("<")])
    mine = [data for kind, data in found[before:] if kind == spec.message_type]
    data = mine[spec.nth]
    bom = data.startswith(_BOM)
    body = data[len(_BOM):] if bom else data
    return (f"<!-- {source}:\n     {spec.what}. Decoded from the reply's rsp:Stream: message type "
            f"0x{spec.message_type:08X}, data begins with the UTF-8 BOM: {bom}. Verbatim apart from this comment. -->\n"
            f"{body.decode('utf-8')}\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    responses = Path(argv[0])
    for spec in EXTRACTS:
        (RECORDINGS / spec.name).write_text(extract(spec, responses), encoding="utf-8")
        print(f"{spec.name}: {spec.source} #{spec.exchange}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
