"""Certificate rules in one place: pure functions, no I/O.

Every rule judges one plain description of a certificate (:class:`CertificateInfo`), whatever it was read from:
an X.509 certificate (:func:`describe`: the operator's files checked by the stack configuration, a certificate
read back from a host by ``providers.certificate``), or the object a host's certificate store returns
(:func:`from_store_object`: the preflight). One thumbprint normaliser, one date parser, one renewal margin.

Messages are worded for who reads them: :func:`certificate_problems` and :func:`pfx_problems` for the operator's
certificate files, :func:`store_problems` for the preflight's report of a host. None quotes a password, a key or
the PFX bytes.
"""

from ._description import CLOCK_SKEW, RENEWAL_MARGIN_DAYS, SERVER_AUTH_OID, CertificateInfo, name_covers
from ._parse import normalize_thumbprint, now_utc, parse_time, when
from ._pfx import Pfx, chain_path, chain_problems, issuer_in, open_pfx, pfx_problems
from ._rules import (
    certificate_problems,
    info_problems,
    info_usage_problems,
    issuer_problems,
    usage_problems,
    validity_problems,
)
from ._store import from_store_object, store_problems
from ._x509 import (
    KEY_USAGES,
    describe,
    dns_names,
    is_ca,
    is_self_signed,
    key_matches,
    key_usage,
    load_certificate,
    load_certificate_file,
    public_key_matches,
    signed_by,
    thumbprint,
    to_pem,
)

__all__ = [
    "CLOCK_SKEW",
    "KEY_USAGES",
    "RENEWAL_MARGIN_DAYS",
    "SERVER_AUTH_OID",
    "CertificateInfo",
    "Pfx",
    "certificate_problems",
    "chain_path",
    "chain_problems",
    "describe",
    "dns_names",
    "from_store_object",
    "info_problems",
    "info_usage_problems",
    "is_ca",
    "is_self_signed",
    "issuer_in",
    "issuer_problems",
    "key_matches",
    "key_usage",
    "load_certificate",
    "load_certificate_file",
    "name_covers",
    "normalize_thumbprint",
    "now_utc",
    "open_pfx",
    "parse_time",
    "pfx_problems",
    "public_key_matches",
    "signed_by",
    "store_problems",
    "thumbprint",
    "to_pem",
    "usage_problems",
    "validity_problems",
    "when",
]
