#!/usr/bin/env python3
"""Render the reliability page from the reliability figures (tests/reliability/figures.py).

    python scripts/reliability_report.py --run      # make reliability: tests/reliability only, soak 60 s, fresh
                                                    #   random hypothesis examples; on success writes the committed
                                                    #   figures (docs/reliability-figures.json) and the page
                                                    #   rendered from them (docs/reliability.md)
    python scripts/reliability_report.py --suite    # make test: the whole pytest suite with fresh figures; writes
                                                    #   .state/reliability/{figures.json,report.md}, never docs/
    python scripts/reliability_report.py            # re-render docs/reliability.md from docs/reliability-figures.json
                                                    #   (after a change of the code the page quotes: step names,
                                                    #   timeout defaults); --check compares instead of writing

The committed page is a pure function of the committed figures and the code (``render``):
tests/reliability/test_reliability_doc.py renders it again and compares the whole text, so a hand edit of the page
fails `make test`. Counts are lengths of lists of distinct things (``figures.record_items``) kept in the figures
file, so a count cannot be edited without inventing the things it counts.
Sections come in the fixed order of ``figures.SECTIONS``; a section nobody has recorded a figure for reads
"not yet measured". The fault matrix grid is built from tests/reliability/matrix.py. The timeout defaults are read
from the code itself (HostConnection, the resource modules' constants).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability import figures  # noqa: E402
from tests.reliability.matrix import FAULTS, OPERATIONS, RESOURCES, cells  # noqa: E402

DOC = REPO / "docs" / "reliability.md"
FIGURES_DOC = REPO / "docs" / "reliability-figures.json"
NOT_MEASURED = "not yet measured"
PASS, NA, MISSING = "pass", "n/a", "**FAIL / not run**"


def run_pytest(path: Path, pytest_args: list[str], **env_defaults: str) -> tuple[int, float]:
    """pytest with a fresh figures file at ``path``: (exit code, seconds)."""
    figures.reset(path)
    env = {**env_defaults, **os.environ, "RELIABILITY_FIGURES": str(path)}
    started = time.monotonic()
    rc = subprocess.call([sys.executable, "-m", "pytest", *pytest_args], cwd=REPO, env=env)
    os.environ["RELIABILITY_FIGURES"] = str(path)
    return rc, time.monotonic() - started


def run_tests(path: Path) -> int:
    """``make reliability``: tests/reliability only, with a longer soak than `make test` (20 s there) and fresh
    random hypothesis examples (tests/conftest.py); the environment overrides both."""
    # Not test_reliability_doc.py: it checks the committed page against the committed figures, which this run
    # is about to replace.
    rc, seconds = run_pytest(path, ["tests/reliability", "-q", "-p", "no:cacheprovider",
                                    "--ignore=tests/reliability/test_reliability_doc.py"],
                             RELIABILITY_SOAK_SECONDS="60", HYPOTHESIS_PROFILE="explore")
    figures.record("fault_matrix", "run_seconds", round(seconds, 1))
    return rc


def _table(rows: Sequence[Sequence[object]], header: tuple[str, ...]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return out


SHOW_ITEMS = 30  # lists up to this long are spelled out beside their count


def _value(v):
    if isinstance(v, float):
        return round(v, 2)
    if isinstance(v, list):  # the distinct things a count is made of (figures.record_items)
        return f"{len(v)} ({', '.join(v)})" if len(v) <= SHOW_ITEMS else len(v)
    return v


def _kv(section: dict, skip: tuple[str, ...] = ()) -> list[str]:
    rows = [(k, _value(v)) for k, v in section.items() if not k.startswith(skip)]
    return _table(rows, ("figure", "value")) if rows else [f"_{NOT_MEASURED}_"]


def fault_matrix(sec: dict) -> list[str]:
    all_cells = cells()
    status = {c.id: sec.get(f"cell:{c.id}") for c in all_cells}
    passed = sum(1 for v in status.values() if v == PASS)
    na = sum(1 for v in status.values() if isinstance(v, str) and v.startswith("n/a"))
    missing = len(all_cells) - passed - na
    lines = [
        f"Cells: **{len(all_cells)}** = {len(RESOURCES)} resources × {len(OPERATIONS)} operations × "
        f"{len(FAULTS)} faults. **Passed: {passed}**. **Not applicable: {na}** (reasons below). "
        f"**Failed or not run: {missing}**.",
        "",
        "Each passed cell: the operation raised (Pulumi records nothing) with a message naming the host, the step "
        "and what to do; after the fault cleared, the previous outputs still read, and a rerun of the same "
        "operation converged (read equals desired; delete: gone). Driven on the provider methods "
        "(`tests/reliability/test_fault_matrix.py`). EndpointCheck probes labsim's TLS binding of the connector "
        "site: its passed cells failed with a message naming the endpoint while the host was down and passed "
        "again once it was back; each of its n/a cells ran the probe with that fault in force and saw it pass.",
        "",
    ]
    header = ("resource", "operation", *FAULTS)
    rows = []
    for resource in RESOURCES:
        for op in OPERATIONS:
            row = []
            for fault in FAULTS:
                cid = f"{resource}-{op}-{fault}"
                v = status[cid]
                row.append(PASS if v == PASS else NA if isinstance(v, str) and v.startswith("n/a") else MISSING)
            rows.append((resource, op, *row))
    lines += _table(rows, header)
    lines += ["", "Faults:", ""]
    lines += [f"* `{k}`: {v}" for k, v in FAULTS.items()]
    reasons = sorted({(c.resource, c.operation if c.resource not in _whole() else "all", c.reason)
                      for c in all_cells if c.reason})
    lines += ["", "Not applicable:", ""]
    lines += [f"* {r} ({op}): {why}" for r, op, why in reasons]
    extra = {k: v for k, v in sec.items() if not k.startswith("cell:")}
    if extra:
        lines += ["", "Run figures:", ""] + _kv(extra)
    return lines


def _whole() -> set[str]:
    from tests.reliability.matrix import NOT_REMOTE

    return set(NOT_REMOTE)


def retries_timeouts(sec: dict) -> list[str]:
    from providers.transport import HostConnection

    lines = ["Retries: `PsrpTransport` retries a step only when the call says `idempotent=True` and the error is "
             "transient (`providers.errors.is_transient`: TransportError, HostUnreachable, StepTimedOut; never "
             "AuthenticationFailed, TlsVerificationFailed, RemoteCommandFailed), at most 2 more attempts, backoff "
             "0.5 s then 1 s, and never past the step's deadline. Every `run()` call in `providers/*.py` states "
             "`idempotent=` explicitly; the audit below (checked by `tests/reliability/test_retries_timeouts.py`) "
             "says why.", ""]
    calls = sorted((k[len("call:"):], v) for k, v in sec.items() if k.startswith("call:"))
    if calls:
        rows = []
        for key, value in calls:
            flag, _, why = str(value).partition(": ")
            rows.append((f"`{key}`", flag, why))
        lines += _table(rows, ("call (module.function)", "idempotent", "why"))
    else:
        lines.append(f"_audit {NOT_MEASURED}_")
    fields = HostConnection.model_fields
    lines += ["", "Timeout defaults (per host in its connection settings; `step_timeouts` overrides one step):", ""]
    lines += _table([
        ("connect_timeout", f"{fields['connect_timeout'].default:g} s", "TCP/TLS connect"),
        ("operation_timeout", f"{fields['operation_timeout'].default} s", "WSMan OperationTimeout of each poll"),
        ("read_timeout", f"{fields['read_timeout'].default:g} s", "HTTP read; must exceed operation_timeout"),
        ("step_timeout", f"{fields['step_timeout'].default:g} s", "a step without its own default"),
    ], ("setting", "default", "bounds"))
    lines += ["", "Step names (the keys of `step_timeouts`) and their default budgets:", ""]
    lines += _table(_step_rows(), ("resource", "step name", "default budget"))
    other = {k: v for k, v in sec.items() if not k.startswith("call:")}
    if other:
        lines += ["", "Measured:", ""] + _kv(other)
    return lines


def _step_rows() -> list[tuple[str, str, str]]:
    from providers import azure_pack_connector as apc
    from providers import bundle as B
    from providers import certificate as C
    from providers import connector_site as cs
    from providers import tenant_api_trust as trust
    from providers import tenant_api_update as update

    default = "step_timeout (300 s)"
    budgets = {
        **{s: f"{v:g} s" for s, v in cs.STEP_TIMEOUTS.items()},
        update.STEP_UPDATE: f"{update.UPDATE_TIMEOUT_SECONDS:g} s",
        trust.STEP_TRUST: f"{trust.TRUST_TIMEOUT_SECONDS:g} s",
        apc.STEP_ENABLE: f"{apc.DEFAULT_TIMEOUT_SECONDS:g} s (the resource's timeout_seconds)",
        apc.STEP_DISABLE: f"{apc.DISABLE_TIMEOUT_SECONDS:g} s",
    }
    rows = []
    for resource, steps in (("Certificate", C.STEPS), ("ConnectorBundle", B.STEPS), ("ConnectorSite", cs.STEPS),
                            ("TenantApiUpdate", update.UPDATE_STEPS), ("TenantApiTrust", trust.TRUST_STEPS),
                            ("AzurePackConnector", apc.STEPS)):
        rows += [(resource, f"`{s}`", budgets.get(s, default)) for s in steps]
    return rows


RENDER = {"fault_matrix": fault_matrix, "retries_timeouts": retries_timeouts}


def render(summary: dict, source: str) -> str:
    lines = [
        "# Reliability figures",
        "",
        "Generated by `make reliability` (`tests/reliability` with fresh random hypothesis examples and a 60 s "
        "soak, or `RELIABILITY_SOAK_SECONDS`): a green run writes the raw figures to "
        "`docs/reliability-figures.json` and this page, rendered from them and from the code it quotes (step "
        "names, timeout defaults), by `scripts/reliability_report.py`. `make test` renders the page again from "
        "the committed figures and compares the whole text (`tests/reliability/test_reliability_doc.py`), so this "
        "page cannot be edited by hand; the suite's own figures and page go to `.state/reliability/` (ignored), "
        "and `make test` leaves the working tree as it found it. Every count is the number of distinct things "
        "tried, each checked by an assertion that could fail; the figures file lists them (ids or digests).",
        "",
        f"These figures: {source}.",
        "",
    ]
    for section in figures.SECTIONS:
        lines += [f"## {figures.SECTION_TITLES[section]}", ""]
        sec = summary.get(section, {})
        if section in RENDER:
            lines += RENDER[section](sec)
        elif sec:
            lines += _kv(sec)
        else:
            lines.append(f"_{NOT_MEASURED}_")
        lines.append("")
    return "\n".join(lines)


def load_committed(path: Path = FIGURES_DOC) -> tuple[dict, str]:
    """(figures summary, source line) of the committed figures file; the source names the commit measured and
    the command that measured it (scripts/provenance.py)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    st = data.get("provenance")
    source = data["source"]
    if st:
        source += f", on commit {st['commit'][:12]} (rerun: `{st['command']}`)"
    return data["figures"], source


def load_provenance(path: Path = FIGURES_DOC) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")).get("provenance")


def write_committed(summary: dict, source: str, path: Path = FIGURES_DOC, provenance: dict | None = None) -> None:
    # Key order is kept: it is the order of the page's rows.
    data = {"source": source, **({"provenance": provenance} if provenance else {}), "figures": summary}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def stale_pages() -> list[str]:
    """A STALE line for each committed figures page whose measured code has changed since (none when current)."""
    from scripts import performance_report, provenance

    st, page = load_provenance(), str(DOC.relative_to(REPO))
    line = provenance.stale(page, st) if st else \
        f"STALE: {page} names no commit it measured: rerun `make reliability` and commit the result"
    return ([line] if line else []) + performance_report.stale_lines()


def main(argv: list[str] | None = None) -> int:
    # No abbreviations: with --suite, every argument it does not know belongs to pytest.
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--run", action="store_true", help="run the reliability tests with a fresh figures file, "
                                                         "then write the committed figures and page")
    mode.add_argument("--suite", action="store_true", help="run the whole test suite with a fresh figures file; "
                                                           "figures and page under .state/reliability/")
    mode.add_argument("--check", action="store_true", help="exit 1 unless docs/reliability.md is the rendering of "
                                                           "docs/reliability-figures.json")
    ap.add_argument("--figures", type=Path, default=None, help="figures file (default: $RELIABILITY_FIGURES)")
    args, pytest_args = ap.parse_known_args(argv)
    if pytest_args and not args.suite:
        ap.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    path = args.figures or figures.figures_path()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.suite:  # the whole suite (scripts/test_suite.py: parallel, then serial); never touches docs/
        from scripts.test_suite import run_suite

        figures.reset(path)
        os.environ["RELIABILITY_FIGURES"] = str(path)  # every worker of every run appends to it
        suite = run_suite(pytest_args)
        rc, seconds = suite.rc, suite.seconds
        source = f"`make test`, {when}, {'the whole suite' if not pytest_args else ' '.join(pytest_args)} in " \
                 f"{seconds:.0f} s"
        if rc != 0:
            source += f" (pytest exit code {rc}: some tests failed)"
        summary = figures.summary(path)
        write_committed(summary, source, path.with_name("figures.json"))
        out = path.with_name("report.md")
        out.write_text(render(summary, source), encoding="utf-8")
        print(f"wrote {out} from {path}")
        # A stale figures page is said plainly, not failed: measuring again takes a quiet machine and long runs
        # (make reliability minutes, make bench N=20 most of an hour), which a code change cannot wait for.
        for line in stale_pages():
            print(line)
        print("\n".join(suite.summary()), flush=True)  # last: CI reads the closing line
        return rc
    if args.run:
        rc = run_tests(path)
        summary, source = figures.summary(path), f"`make reliability`, {when}"
        if rc != 0:  # a failing run never replaces the committed figures
            out = path.with_name("report.md")
            out.write_text(render(summary, source + f" (pytest exit code {rc}: some tests failed)"), encoding="utf-8")
            print(f"tests failed: docs/ left as they were; this run's page is {out}")
            return rc
        from scripts import provenance

        write_committed(summary, source, provenance=provenance.stamp("make reliability", provenance.RELIABILITY_CODE))
        DOC.write_text(render(*load_committed()), encoding="utf-8")  # exactly what the doc test renders
        print(f"wrote {DOC.relative_to(REPO)} and {FIGURES_DOC.relative_to(REPO)} from {path}")
        return 0
    from scripts import provenance

    return provenance.publish(DOC, FIGURES_DOC, render(*load_committed()), args.check)


if __name__ == "__main__":
    sys.exit(main())
