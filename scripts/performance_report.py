#!/usr/bin/env python3
"""Render docs/performance.md from the raw output `make bench` keeps (docs/performance-figures.json).

    python scripts/performance_report.py            # write docs/performance.md (make bench runs this last)
    python scripts/performance_report.py --check    # exit 1 unless docs/performance.md is that rendering

The page is docs/performance-template.md (the design, in words and the code's own constants) with its
``{{...}}`` fields filled from the figures file: every measured figure on the page comes from a record that
`make bench` wrote (benchmarks/lab_scale.py --figures), and each record names the commit it measured and the
command that measures it again. tests/unit/test_performance_doc.py renders the page again and compares the whole
text, so the page cannot be edited by hand; `make test` says STALE when the code a record measured has changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.lab_scale import DEFAULT_CLOUDS, HEADER, row  # noqa: E402
from scripts import provenance  # noqa: E402

DOC = REPO / "docs" / "performance.md"
TEMPLATE = REPO / "docs" / "performance-template.md"
FIGURES = REPO / "docs" / "performance-figures.json"
GOAL_RATIO = 1.2  # up and destroy within 1.2 of the floor plus the critical path
GOAL_MEMORY_MIB = 1536  # 1.5 GiB, the sum of RSS of the engine, the program and the providers

GENERATED = ("<!-- Rendered by scripts/performance_report.py from docs/performance-figures.json (make bench) and "
             "docs/performance-template.md: edit those, not this file. -->")


def load(path: Path = FIGURES) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["records"] if path.exists() else []


def _provider_process(records: list[dict[str, Any]]) -> str:
    if not records:
        return "its resident size: not yet measured by `make bench`"
    top = max(records, key=lambda r: r["max_provider_rss_mib"])
    return f"measured by `make bench`: {top['max_provider_rss_mib']:.0f} MiB resident the largest, at N={top['clouds']}"


def _verdict(value: float, goal: float) -> str:
    return f"{value} (goal <= {goal:g}: {'met' if value <= goal else 'NOT met'})"


def figures(records: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Each row is one `make bench` record (`benchmarks/lab_scale.py --figures`, the whole lab at labsim's "
        "latency and connection costs, one run per N) as `docs/performance-figures.json` keeps it; each names the "
        "commit it measured and the command that measures it again, and `make test` prints a STALE line when the "
        "code it measured has changed since. One run per N on a shared machine: the load average the benchmark "
        "saw before and after each N is part of the record.",
        "",
    ]
    measured = {r["clouds"] for r in records}
    missing = [n for n in DEFAULT_CLOUDS if n not in measured]
    if not records:
        return lines + ["_not yet measured: run `make bench` (or `make bench N=2`)_"]
    lines += ["| N clouds | measured | commit | command | latency_factor | connection_cost_factor | PULUMI_PARALLEL "
              "| CPUs | load before / after |", "|" + "---|" * 9]
    for r in records:
        st = r["provenance"]
        lines.append(f"| {r['clouds']} | {st['at']} | `{st['commit'][:12]}` | `{st['command']}` | {r['factor']} "
                     f"| {r['connection_cost']} | {r['parallel']} | {r.get('cpus', '—')} "
                     f"| {r['load_before']:.1f} / {r['load_after']:.1f} |")
    if missing:
        lines += ["", f"Not measured by this command yet: N = {', '.join(map(str, missing))} (`make bench` runs "
                      f"them all; the earlier record below has hand-typed figures for them from older code)."]
    lines += ["", *HEADER.splitlines(), *(row(r) for r in records), ""]
    lines += ["Per `destroy` (labsim's counters) and peak memory by process in `up`:", "",
              "| N clouds | destroy: pipelines / commands / pool opens | engine MiB | program MiB "
              "| provider processes MiB (largest) |", "|---|---|---|---|---|"]
    for r in records:
        mem = r["up_memory_mib"]
        destroy = (f"{r['destroy_pipelines']} / {r['destroy_commands']} / {r['destroy_pool_opens']}"
                   if "destroy_pipelines" in r else "—")
        lines.append(f"| {r['clouds']} | {destroy} | {mem.get('engine', 0):.0f} | {mem.get('program', 0):.0f} "
                     f"| {mem.get('provider', 0):.0f} ({r['max_provider_rss_mib']:.0f}) |")
    lines += ["", "Against the goals:", ""]
    for r in records:
        reads = r["refresh_pipelines"] - r["preflight_pipelines"]
        opens = r["refresh_pool_opens"] - r["preflight_pool_opens"]
        up_mem, refresh_mem = r["memory_mib"]["up"]["rss"], r["memory_mib"]["preview_refresh"]["rss"]
        lines.append(
            f"- N={r['clouds']}: `up` ratio {_verdict(r.get('up_ratio', '—'), GOAL_RATIO)}, `destroy` ratio "
            f"{_verdict(r.get('destroy_ratio', '—'), GOAL_RATIO)}; `preview --refresh` read "
            f"{r['remote_resources']} remote resources with {reads} pipelines and opened {opens} runspace pools "
            f"for {r['refresh_hosts']} hosts reached (the preflight's {r['preflight_pipelines']} pipelines and "
            f"{r['preflight_pool_opens']} pools apart); peak memory {up_mem:.0f} MiB in `up` and "
            f"{refresh_mem:.0f} MiB in `preview --refresh` (goal <= {GOAL_MEMORY_MIB} MiB: "
            f"{'met' if max(up_mem, refresh_mem) <= GOAL_MEMORY_MIB else 'NOT met'}).")
    return lines


def render(records: list[dict[str, Any]], template: str | None = None) -> str:
    text = template if template is not None else TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("{{largest provider process}}", _provider_process(records))
    text = text.replace("{{figures}}", "\n".join(figures(records)))
    if "{{" in text:
        raise ValueError(f"{TEMPLATE.name}: a field this script does not fill: {text[text.index('{{'):][:40]}")
    return GENERATED + "\n" + text


def stale_lines(records: list[dict[str, Any]] | None = None) -> list[str]:
    """A STALE line per record whose measured code has changed since."""
    records = load() if records is None else records
    page = str(DOC.relative_to(REPO))
    return [line for r in records if (line := provenance.stale(f"{page} (N={r['clouds']})", r["provenance"]))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 unless the page is the rendering of the figures")
    args = ap.parse_args(argv)
    rc = provenance.publish(DOC, FIGURES, render(load()), args.check)
    if not args.check:
        for line in stale_lines():
            print(line)
    return rc


if __name__ == "__main__":
    sys.exit(main())
