"""Operations on a Windows host that every remote resource shares: path rules, expected errors, staging files,
removing a folder that is empty. Below every resource (bundle, certificate, Tenant API, ownership markers); no
resource's knowledge lives here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from providers.errors import ConnectorError, HostDidNotConverge, RemoteCommandFailed
from providers.facts.files import FileHashes, ItemCount, PathExists
from providers.transport import Command, ErrorRecordInfo, HostConnection, Result, Statements, Transport, describe

# [pub] Set-Content/Add-Content -Encoding Byte write a byte[] as is (Windows PowerShell 5.1; PowerShell 7 calls
#       it -AsByteStream). The first chunk truncates the file, so a re-run after a broken upload starts over.
DEFAULT_CHUNK_SIZE = 256 * 1024
# WinRM's MaxEnvelopeSizekb defaults to 500 KB; pypsrp fragments messages, but big envelopes make each retry
# expensive: keep one chunk well under a few MiB.
MAX_CHUNK_SIZE = 4 * 1024 * 1024
MIN_CHUNK_SIZE = 1024

# ---------------------------------------------------------------------------------------------------------------
# Windows paths (pure)

# An absolute Windows path on a local drive, without characters that have a meaning to PowerShell or cmd.
# Paths built from it name script files (Command accepts only plain .ps1 paths), so refuse early and clearly.
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:\\(?:[^\\/:*?\"<>|\r\n\t'`$;&{}()%]+\\?)*$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


def windows_path(value: str) -> str:
    """Validate an absolute local Windows folder path (``C:\\temp\\WAPConnector``); return it without a
    trailing backslash. Raises ValueError saying what is wrong."""
    if not isinstance(value, str) or not _WINDOWS_PATH.match(value):
        raise ValueError(f"{value!r} is not an absolute Windows folder path such as C:\\temp\\WAPConnector "
                         f"(drive letter, backslashes, no quotes, $, ;, `, &, %, braces or parentheses)")
    parts = value.rstrip("\\").split("\\")
    if any(p.strip() in (".", "..") or p != p.rstrip(" .") for p in parts[1:]):
        raise ValueError(f"{value!r}: folder names must not be '.', '..' or end with a dot or space")
    return value.rstrip("\\") if len(value) > 3 else value


def file_name(value: str) -> str:
    """Validate a plain file name (no folders), e.g. ``AzurePack-06-27-15-50.txt``."""
    if not isinstance(value, str) or not _FILE_NAME.match(value) or value.endswith((".", " ")):
        raise ValueError(f"{value!r} is not a plain file name (letters, digits, '.', '_', '-', spaces; no "
                         f"folders; at most 128 characters)")
    return value


def join(root: str, relative: str) -> str:
    """``root`` + a relative path given with / or \\ separators, as a Windows path."""
    rel = relative.replace("/", "\\").strip("\\")
    return root.rstrip("\\") + "\\" + rel if rel else root


def same_path(a: Any, b: Any) -> bool:
    """Windows paths compare case-insensitively."""
    return isinstance(a, str) and isinstance(b, str) and a.rstrip("\\").lower() == b.rstrip("\\").lower()


def only_expected_errors(conn: HostConnection, step: str, statements: Statements, result: Result,
                         expected: Iterable[str] = ("PathNotFound",), *,
                         accept: Callable[[ErrorRecordInfo], bool] | None = None,
                         hint: str = "") -> list[ErrorRecordInfo]:
    """The error records a call accepted that are expected (by code, e.g. PathNotFound from a probe of something
    that may be absent, and ``accept`` when given); RemoteCommandFailed for the first that is not, as the
    transport would have raised it (``hint`` says what to check)."""
    codes = {e.lower() for e in expected}
    found = []
    for record in result.errors:
        if record.error_code.lower() in codes and (accept is None or accept(record)):
            found.append(record)
            continue
        raise RemoteCommandFailed(conn.fqdn, step, command=describe(statements), message=record.message + hint,
                                  error_id=record.error_id or None, category=record.category, terminating=False,
                                  target=record.target, failed_command=record.command)
    return found


def require_file(t: Transport, conn: HostConnection, step: str, path: str, *, hint: str) -> None:
    """A ConnectorError before anything runs when the file ``path`` (a script to run, say) is not on the host;
    ``hint`` says how to put it there."""
    fact = PathExists(path, kind="Leaf")
    if fact.parse(t.run(conn, step, fact.statements(), idempotent=True).output) is not True:
        raise ConnectorError(f"{conn.fqdn}, step '{step}': {path} is not on the host: {hint}", host=conn.fqdn,
                             step=step)


def remove_quietly(path: str) -> Command:
    """Remove-Item of one file or folder, never -Recurse (a folder something moved into stays), and a path already
    gone is no error."""
    return Command("Remove-Item", {"Path": path, "ErrorAction": "SilentlyContinue"}, ["Force"])


def remove_folder_if_empty(t: Transport, conn: HostConnection, step: str, folder: str) -> bool:
    """Remove ``folder`` when nothing is in it (something may have moved in since it was made): True when it is
    gone or was not there, False when it holds anything."""
    fact = ItemCount(folder)
    if fact.parse(t.run(conn, step, fact.statements(), idempotent=True).output):
        return False
    t.run(conn, step, remove_quietly(folder), idempotent=True)
    return True


# ---------------------------------------------------------------------------------------------------------------
# Staging files in chunks, verified by hash

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().upper()


def staging_commands(path: str, data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Command]:
    """The commands that write ``data`` to ``path`` on the host: Set-Content for the first chunk (truncates a
    previous, maybe broken, upload), Add-Content for the rest. An empty file is New-Item -ItemType File -Force."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if not data:
        return [Command("New-Item", {"Path": path, "ItemType": "File"}, ["Force"])]
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
    first = Command("Set-Content", {"Path": path, "Value": chunks[0], "Encoding": "Byte"})
    return [first] + [Command("Add-Content", {"Path": path, "Value": c, "Encoding": "Byte"}) for c in chunks[1:]]


def batches(commands: Sequence[Command], limit: int) -> list[list[Command]]:
    """Group consecutive commands into calls carrying at most ``limit`` payload bytes each (a command larger
    than the limit gets a call of its own), so small files share a round trip and big ones stay bounded."""
    out: list[list[Command]] = []
    size = 0
    for cmd in commands:
        n = sum(len(v) for v in cmd.parameters.values() if isinstance(v, bytes))
        if out and size + n <= limit:
            out[-1].append(cmd)
            size += n
        else:
            out.append([cmd])
            size = n
    return out


def stage_bytes(t: Transport, conn: HostConnection, step: str, files: Mapping[str, bytes], *, chunk_size: int,
                directories: Iterable[str] = ()) -> None:
    """Write each ``{host path: bytes}`` in chunks, then verify every file's SHA-256 on the host in one call.

    Safe to re-run: each file starts with Set-Content (truncate), and verification catches a broken upload."""
    dirs = list(directories)
    if dirs:
        mkdir = [Command("New-Item", {"Path": d, "ItemType": "Directory"}, ["Force"]) for d in dirs]
        t.run(conn, step, mkdir, idempotent=True)
    commands = [c for path, data in files.items() for c in staging_commands(path, data, chunk_size)]
    for batch in batches(commands, chunk_size):
        # Add-Content appends: resending it after a lost reply could duplicate a chunk, so no retries then.
        idempotent = all(c.name != "Add-Content" for c in batch)
        t.run(conn, step, batch, idempotent=idempotent)
    verify_hashes(t, conn, step, {p: sha256_bytes(d) for p, d in files.items()})


def verify_hashes(t: Transport, conn: HostConnection, step: str, expected: Mapping[str, str]) -> None:
    if not expected:
        return
    fact = FileHashes(tuple(expected))
    result = t.run(conn, step, fact.statements(), idempotent=True, accept_errors=True)
    only_expected_errors(conn, step, fact.statements(), result)
    got = fact.parse(result.output)
    bad = [p for p, h in expected.items() if got.get(p.lower()) != h.upper()]
    if bad:
        raise HostDidNotConverge(
            conn.fqdn, step, f"after the upload {len(bad)} file(s) do not have the expected SHA-256 "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})",
            hint="the upload was interrupted or the disk is full: check free space on the host, then run "
                 "`pulumi up` again (staging starts each file over)")
