"""DNS and host names as the procedure uses them: one definition for every resource and the stack config."""

from __future__ import annotations

import re

# One DNS label: letters, digits and inner hyphens, 1-63 characters (RFC 1123).
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A host name: one or more labels (a single label is a NetBIOS-style computer name), at most 253 characters.
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$")
# A fully qualified domain name: at least two labels.
FQDN = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})+$")
# A host name as connection settings may write it: one or more labels, DNS's root dot at the end allowed.
ROOTED_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*\.?$")


def is_dotted_number(value: str) -> bool:
    """Digits and dots alone: an IPv4 address (or a mistyped one), never a host's name."""
    return value.replace(".", "").isdigit()


def is_fqdn(value: object) -> bool:
    """At least two labels, and not an IPv4 address written with dots."""
    return isinstance(value, str) and bool(FQDN.match(value)) and not is_dotted_number(value)


def fqdn(value: str, example: str = "wapcomputer1.contoso.com", *, lower: bool = True) -> str:
    """A pydantic-friendly validator: the FQDN (lower-cased unless ``lower`` is False: a value the host is given
    as written), or ValueError saying what is expected."""
    if not is_fqdn(value):
        raise ValueError(f"{value!r} is not a fully qualified domain name such as {example}")
    return value.lower() if lower else value
