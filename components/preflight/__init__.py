"""Preflight: a read-only look at every host of a stack before anything on it changes.

``make doctor STACK=<name>`` prints it; the Pulumi program runs it before registering any resource, so a failing
preflight stops ``pulumi preview`` and ``pulumi up`` before a single write command reaches a host.

Each host gets one pipeline of read-only facts (providers/facts: structured commands and pure parsers, the same
the resources read with); hosts are asked in parallel threads; every check runs even after others failed, and
each result is one :class:`Row` (host, check, result, what to do). What preflight cannot read is said, never
guessed: a check that could not run is a SKIP with the reason.

Modules: :mod:`.targets` (what each host is for and the facts it is asked), :mod:`.judging` (answers -> rows,
pure; the certificates' in :mod:`.certificates`), :mod:`.report` (rows -> the table), :mod:`.run` (asking the
hosts, then judging). This module is the public face: import from ``components.preflight``.
"""

from components.preflight.certificates import (
    certificate_problems,
    lab_ca_problem,
    name_matches,
    operator_certificate_rows,
)
from components.preflight.judging import (
    BUNDLE_MARGIN_BYTES,
    MIN_POWERSHELL,
    MIN_SPF_VERSION,
    MIN_VMM_VERSION,
    MIN_WAP_VERSION,
    SYSTEM_CENTER_PACKAGES,
    WAP_PACKAGES,
    HostFacts,
    bundle_size,
    evaluate,
    management_store_server,
)
from components.preflight.report import FAIL, PASS, SKIP, WARN, Report, Row, render
from components.preflight.run import MODE_ENV, STEP, port_tests, preflight_mode, probe_host, run_preflight
from components.preflight.targets import READ_COMMANDS, HostTargets, probes, sections_of, targets
from providers.certs import RENEWAL_MARGIN_DAYS as CERT_WARN_DAYS
from providers.certs import SERVER_AUTH_OID
from providers.facts.certstore import CERTIFICATE_PROPERTIES as CERT_PROPERTIES
from providers.facts.locations import (
    CONNECTOR_SITE,
    INFRASTRUCTURE_SHARE,
    POWERSHELL_KEY,
    TENANT_API_SITE,
    TENANT_PORTAL_SITES,
    UNINSTALL_KEY,
    URL_REWRITE_KEY,
    WINDOWS_KEY,
)
from providers.facts.locations import MANAGEMENT_STORE_SETTING as MANAGEMENT_STORE
from providers.facts.products import version_tuple
from providers.facts.tenant_api import STORE_DATABASE, SYSADMIN_QUERY
from providers.transport import Command, Pipeline

__all__ = [
    "BUNDLE_MARGIN_BYTES", "CERT_PROPERTIES", "CERT_WARN_DAYS", "CONNECTOR_SITE", "FAIL", "INFRASTRUCTURE_SHARE",
    "MANAGEMENT_STORE", "MIN_POWERSHELL", "MIN_SPF_VERSION", "MIN_VMM_VERSION", "MIN_WAP_VERSION", "MODE_ENV",
    "PASS", "POWERSHELL_KEY", "READ_COMMANDS", "SERVER_AUTH_OID", "SKIP", "STEP", "STORE_DATABASE",
    "SYSADMIN_QUERY", "SYSTEM_CENTER_PACKAGES", "TENANT_API_SITE", "TENANT_PORTAL_SITES", "UNINSTALL_KEY",
    "URL_REWRITE_KEY", "WAP_PACKAGES", "WARN", "WINDOWS_KEY",
    "Command", "HostFacts", "HostTargets", "Pipeline", "Report", "Row",
    "bundle_size", "certificate_problems", "evaluate", "lab_ca_problem", "management_store_server", "name_matches",
    "operator_certificate_rows", "port_tests", "preflight_mode", "probe_host", "probes", "render", "run_preflight",
    "sections_of", "targets", "version_tuple",
]
