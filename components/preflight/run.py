"""Running preflight: each host's facts in one read-only pipeline, hosts in parallel, then judging.

A second, small pipeline only where a first answer asks for it: the sysadmin check against the SQL server the
ManagementStore setting names, and AzS-WASP01's port test of each installed connector.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from components.config import StackConfig
from components.preflight import targets as T
from components.preflight.certificates import operator_certificate_rows
from components.preflight.judging import HostFacts, bundle_size, evaluate, management_store_server
from components.preflight.report import Report
from components.preflight.targets import HostTargets, probes, sections_of
from providers.errors import ConfigurationError, ConnectorError, RemoteCommandFailed
from providers.transport import PRIVILEGED_ENDPOINT, HostConnection, Pipeline, Transport

STEP = "preflight (read-only)"
MODE_ENV = "WAPCONNECTOR_PREFLIGHT"


def _run_sections(transport: Transport, conn: HostConnection, plan: list[tuple[str, list[Pipeline]]],
                  facts: HostFacts) -> None:
    statements = [p for _, stmts in plan for p in stmts]
    try:
        result = transport.run(conn, STEP, statements, idempotent=True, accept_errors=True)
        facts.sections.update(sections_of(plan, result.outputs))
        return
    except RemoteCommandFailed:
        pass  # a section ended the pipeline (e.g. a cmdlet missing): ask each section on its own
    for key, stmts in plan:
        try:
            result = transport.run(conn, STEP, stmts, idempotent=True, accept_errors=True)
            facts.sections[key] = sections_of([(key, stmts)], result.outputs)[key]
        except RemoteCommandFailed as exc:
            facts.section_errors[key] = exc.remote_message


def probe_host(transport: Transport, config: StackConfig, t: HostTargets, project_dir: Path | None) -> HostFacts:
    facts = HostFacts(t.name)
    try:
        conn = HostConnection.parse(config.connection(
            t.name, configuration_name=PRIVILEGED_ENDPOINT if t.pep else None, project_dir=project_dir))
    except ConfigurationError as exc:
        facts.settings_problem = "; ".join(exc.problems)
        return facts
    facts.conn = conn
    try:
        _run_sections(transport, conn, probes(t, config), facts)
    except ConnectorError as exc:
        facts.error = exc
        return facts
    # Second round, only where the first answers ask for it.
    for i, sql, cred_name in t.trusts:
        if sql is None:
            sql = management_store_server(facts.sections.get("store", []))
            facts.second[f"sql:{i}"] = sql
            if sql is None:
                continue
            try:
                r = transport.run(conn, STEP, T.sysadmin_fact(config, sql, cred_name).statements(), idempotent=True)
                facts.sections[f"sysadmin:{i}"] = r.output
            except RemoteCommandFailed as exc:
                facts.section_errors[f"sysadmin:{i}"] = exc.remote_message
            except ConnectorError as exc:
                facts.section_errors[f"sysadmin:{i}"] = str(exc)
    return facts


def port_tests(transport: Transport, facts: HostFacts, portals: Mapping[str, tuple[str, int]]) -> None:
    """AzS-WASP01's TCP test of each installed connector endpoint (host -> (fqdn, port))."""
    if facts.conn is None or facts.error is not None or not portals:
        return
    plan = [(key, fact.statements()) for key, fact in T.port_facts(portals)]
    try:
        r = transport.run(facts.conn, STEP, [p for _, stmts in plan for p in stmts], idempotent=True,
                          accept_errors=True)
        facts.sections.update(sections_of(plan, r.outputs))
    except ConnectorError as exc:
        for host in portals:
            facts.section_errors[f"port:{host}"] = getattr(exc, "remote_message", None) or str(exc)


def preflight_mode(config: StackConfig) -> str:
    """enforce | warn: the stack's wapconnector:preflight, unless WAPCONNECTOR_PREFLIGHT overrides it for one run
    (a tool that knowingly leaves unreachable hosts out, e.g. `make fleet up --skip-unreachable`)."""
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if value in ("enforce", "warn"):
        return value
    if value:
        raise ConfigurationError([f"{MODE_ENV}={value!r}: use enforce or warn"], subject="preflight mode")
    return config.preflight


def run_preflight(config: StackConfig, *, transport: Transport | None = None, project_dir: Path | None = None,
                  max_workers: int = 16, now: dt.datetime | None = None,
                  on_host: Callable[[str], None] | None = None) -> Report:
    """Probe every host of the stack (read-only, in parallel) and judge the answers."""
    started = time.monotonic()
    if transport is None:
        from providers.transport import PsrpTransport

        transport = PsrpTransport()
    project_dir = project_dir or Path.cwd()
    tgts = T.targets(config)
    size, bundle_row = bundle_size(config, project_dir)
    facts: dict[str, HostFacts] = {}

    def one(t: HostTargets) -> HostFacts:
        result = probe_host(transport, config, t, project_dir)
        if on_host:
            on_host(t.name)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(tgts)))) as pool:
        for f in pool.map(one, tgts.values()):
            facts[f.name] = f
        azs = config.azure_stack
        assert azs is not None
        wasp = facts[azs.user_portal_host]
        installed = {}
        for name, t in tgts.items():
            if t.tenant_portal and T.BINDING.parse(facts[name].sections.get("binding", [])) is not None:
                port = config.clouds[t.portal_clouds[0]].connector_port  # the first cloud it serves
                installed[name] = (config.hosts[name].fqdn, port)
        port_tests(transport, wasp, installed)
    rows = [bundle_row, *operator_certificate_rows(config, project_dir, now),
            *evaluate(config, tgts, facts, bundle_bytes=size, now=now)]
    return Report(rows, time.monotonic() - started)
