"""How certificates are named and dated in what Windows, PowerShell and stack files show: one thumbprint
normaliser, one date parser."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

# Copying a thumbprint from the Windows certificate dialog brings spaces and an invisible left-to-right mark.
_THUMBPRINT_NOISE = re.compile(r"[\s:\u200e\u200f\ufeff]")
# ConvertTo-Json and the PSRP serializer's JSON form of a DateTime: milliseconds since 1970 (UTC).
_MS_DATE = re.compile(r"/Date\((-?\d+)\)/")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalize_thumbprint(value: str) -> str:
    """Upper-case hex without separators; ValueError unless 40 hex digits (a SHA-1 thumbprint) remain."""
    cleaned = _THUMBPRINT_NOISE.sub("", value).upper()
    if not re.fullmatch(r"[0-9A-F]{40}", cleaned):
        raise ValueError("is not a certificate thumbprint (40 hexadecimal digits, as Get-ChildItem "
                         "Cert:\\LocalMachine\\My shows it)")
    return cleaned


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` allowed; no zone means UTC) or ``/Date(ms)/``; ValueError otherwise."""
    m = _MS_DATE.fullmatch(value.replace("\\/", "/"))
    if m:
        return dt.datetime.fromtimestamp(int(m.group(1)) / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def when(value: Any) -> dt.datetime | None:
    """A date as a host's answer carries it (a datetime once deserialized, or one of :func:`parse_time`'s texts);
    None when it is missing or unreadable."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None
