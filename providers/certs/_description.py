"""One plain description of a certificate, whatever it was read from, and the facts the rules judge on it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

#: Certificates are renewed (and refused as about to expire) this many days before they expire.
RENEWAL_MARGIN_DAYS = 30
#: Tolerated clock difference between the machine that issued a certificate and the one judging it.
CLOCK_SKEW = dt.timedelta(minutes=5)
SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1"
# The OID alone or inside "Server Authentication (1.3.6.1.5.5.7.3.1)", never a longer OID that starts with it.
_SERVER_AUTH = re.compile(r"(?<![\d.])" + re.escape(SERVER_AUTH_OID) + r"(?![\d.])")

KeyKind = Literal["rsa", "ec", "other"]


def name_covers(pattern: str, fqdn: str) -> bool:
    """A certificate's DNS name (possibly a left-most one-label wildcard, RFC 6125) names ``fqdn``."""
    pattern, fqdn = pattern.lower().rstrip("."), fqdn.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = fqdn.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == fqdn


@dataclass(frozen=True)
class CertificateInfo:
    """What the rules need to know about one certificate. ``None`` means "not known from this source" and the rule
    that needs it is not judged."""

    thumbprint: str
    subject: str = ""
    issuer: str = ""
    dns_names: tuple[str, ...] = ()
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    key_kind: KeyKind | None = None
    key_usage: frozenset[str] | None = None
    """Names of the KeyUsage bits set (``digital_signature``, ``key_encipherment``, ...); None: no restriction."""
    extended_key_usage: tuple[str, ...] | None = None
    """OIDs (or "Name (OID)" as Windows lists them); () the certificate lists none; None: not known."""
    is_ca: bool = False
    self_signed: bool = False
    has_private_key: bool | None = None

    def names(self, fqdn: str) -> bool:
        return any(name_covers(n, fqdn) for n in self.dns_names)

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after is not None and self.not_after <= now

    def expires_within(self, days: int, now: dt.datetime) -> bool:
        return self.not_after is not None and self.not_after - dt.timedelta(days=days) <= now

    def not_yet_valid(self, now: dt.datetime, skew: dt.timedelta = CLOCK_SKEW) -> bool:
        return self.not_before is not None and self.not_before > now + skew

    @property
    def for_server_auth(self) -> bool:
        return any(_SERVER_AUTH.search(u) for u in self.extended_key_usage or ())

    @property
    def tls_key_usage(self) -> bool:
        """TLS can use the key: it signs, or (RSA key exchange only) it enciphers the premaster secret."""
        ku = self.key_usage
        return ku is None or "digital_signature" in ku or (self.key_kind == "rsa" and "key_encipherment" in ku)
