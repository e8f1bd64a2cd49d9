#!/usr/bin/env python3
"""Render docs/reliability.md from the reliability figures (tests/reliability/figures.py).

    python scripts/reliability_report.py --suite    # make test: fresh figures, the whole pytest suite, then render
    python scripts/reliability_report.py --run      # make reliability: tests/reliability only, soak 60 s, fresh
                                                    #   random hypothesis examples, then render
    python scripts/reliability_report.py            # render from the existing figures file ($RELIABILITY_FIGURES)

Sections come in the fixed order of ``figures.SECTIONS``; a section nobody has recorded a figure for reads
"not yet measured". The fault matrix grid is built from tests/reliability/matrix.py, so its shape always follows
the matrix definition; tests/reliability/test_reliability_doc.py checks the committed document against it.
The timeout defaults are read from the code itself (HostConnection, the resource modules' constants).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability import figures  # noqa: E402
from tests.reliability.matrix import FAULTS, OPERATIONS, RESOURCES, cells  # noqa: E402

DOC = REPO / "docs" / "reliability.md"
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
    rc, seconds = run_pytest(path, ["tests/reliability", "-q", "-p", "no:cacheprovider"],
                             RELIABILITY_SOAK_SECONDS="60", HYPOTHESIS_PROFILE="explore")
    figures.record("fault_matrix", "run_seconds", round(seconds, 1))
    return rc


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return out


def _kv(section: dict, skip: tuple[str, ...] = ()) -> list[str]:
    rows = [(k, round(v, 2) if isinstance(v, float) else v) for k, v in section.items() if not k.startswith(skip)]
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
        "(`tests/reliability/test_fault_matrix.py`).",
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
    from providers import tenant_api as T

    default = "step_timeout (300 s)"
    budgets = {
        **{s: f"{v:g} s" for s, v in cs.STEP_TIMEOUTS.items()},
        T.STEP_UPDATE: f"{T.UPDATE_TIMEOUT_SECONDS:g} s",
        T.STEP_TRUST: f"{T.TRUST_TIMEOUT_SECONDS:g} s",
        apc.STEP_ENABLE: f"{apc.DEFAULT_TIMEOUT_SECONDS:g} s (the resource's timeout_seconds)",
        apc.STEP_DISABLE: f"{apc.DISABLE_TIMEOUT_SECONDS:g} s",
    }
    rows = []
    for resource, steps in (("Certificate", C.STEPS), ("ConnectorBundle", B.STEPS), ("ConnectorSite", cs.STEPS),
                            ("TenantApiUpdate", T.UPDATE_STEPS), ("TenantApiTrust", T.TRUST_STEPS),
                            ("AzurePackConnector", apc.STEPS)):
        rows += [(resource, f"`{s}`", budgets.get(s, default)) for s in steps]
    return rows


RENDER = {"fault_matrix": fault_matrix, "retries_timeouts": retries_timeouts}


def render(summary: dict, source: str) -> str:
    lines = [
        "# Reliability figures",
        "",
        "Generated from a fresh figures file by `make test` (the whole suite, repeatable hypothesis examples, a "
        "20 s soak) or by `make reliability` (`tests/reliability` only, fresh random hypothesis examples, a 60 s "
        "soak, or `RELIABILITY_SOAK_SECONDS`); each run rewrites this page. Do not edit by hand; `make test` "
        "checks that this page matches the current fault matrix (`tests/reliability/test_reliability_doc.py`).",
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


def main(argv: list[str] | None = None) -> int:
    # No abbreviations: with --suite, every argument it does not know belongs to pytest.
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--run", action="store_true", help="run the reliability tests with a fresh figures file first")
    mode.add_argument("--suite", action="store_true", help="run the whole test suite with a fresh figures file first")
    ap.add_argument("--figures", type=Path, default=None, help="figures file (default: $RELIABILITY_FIGURES)")
    ap.add_argument("--output", type=Path, default=DOC)
    args, pytest_args = ap.parse_known_args(argv)
    if pytest_args and not args.suite:
        ap.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    path = args.figures or figures.figures_path()
    if pytest_args and args.output == DOC:  # a partial run does not rewrite the committed page
        args.output = path.with_name("report.md")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.suite:
        rc, seconds = run_pytest(path, pytest_args)  # the whole suite, as configured in pyproject.toml
        source = f"`make test`, {when}, the whole suite in {seconds:.0f} s"
    elif args.run:
        rc, source = run_tests(path), f"`make reliability`, {when}"
    else:
        rc, source = 0, f"rendered from {path.name}, {when}"
    if rc != 0:
        source += f" (pytest exit code {rc}: some tests failed, see the FAIL cells)"
    args.output.write_text(render(figures.summary(path), source), encoding="utf-8")
    print(f"wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output} "
          f"from {path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
