"""`make graph`: a lab stack as a picture. Hosts are clusters (from each resource's connection FQDN; what runs
on the operator's machine has its own), resources are boxes with a short name and their type, arrows go from
a dependency to what needs it, and colours say what the last refresh found.

    python -m labops.graph --stack sim                       # refresh (read-only), then .state/graph/sim.svg
    python -m labops.graph --stack sim --no-refresh          # the drift recorded by the last refresh
    python -m labops.graph --stack sim --out docs/images/sim-graph.svg

Nothing secret reaches the DOT source or the picture: see labops.stacks for how the hosts are read.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from labops.stacks import DRIFT_DIR, ROOT, Drift, Project, Resource, read_resources, refreshing_preview

OPERATOR = "operator's machine"
# Fill colours by what a refreshing preview plans for the resource.
COLOURS = {"same": "#d8f0d8", "update": "#ffe2a8", "replace": "#f7b0b0", "create": "#f7b0b0",
           "delete": "#d0d0d0", None: "#f2f2f2"}
STATUS = {"same": "in sync", "update": "drift: update", "replace": "drift: replace",
          "create": "gone: create", "delete": "delete"}


def type_label(kind: str) -> str:
    """The type's own name, read from any type token: ``pkg:module:Name`` -> Name. Pulumi's generic dynamic
    type (``pulumi-python:dynamic:Resource``) says nothing more than that."""
    parts = kind.split(":")
    if len(parts) != 3:
        return kind
    if parts[1] == "dynamic" and parts[2] == "Resource":
        return "dynamic resource"
    return parts[2]


def short_name(resource: Resource, by_urn: dict[str, Resource]) -> str:
    """The name without what its box already says: the parent component's name prefix, then the host's."""
    name = resource.name
    parent = by_urn.get(resource.parent or "")
    if parent is not None and parent.type != "pulumi:pulumi:Stack" and name.startswith(parent.name + "-"):
        name = name[len(parent.name) + 1:]
    if resource.host:
        host = resource.host.split(".")[0]
        if name.lower().startswith(host + "-"):
            name = name[len(host) + 1:]
    return name


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _custom_below(urn: str, children: dict[str, list[Resource]]) -> Iterable[str]:
    for child in children.get(urn, []):
        if child.custom:
            yield child.urn
        else:
            yield from _custom_below(child.urn, children)


def to_dot(stack: str, resources: list[Resource], drift: Drift | None) -> str:
    """Pure: the DOT source of the picture."""
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[Resource]] = {}
    for r in resources:
        if r.parent:
            children.setdefault(r.parent, []).append(r)
    custom = [r for r in resources if r.custom]
    ids = {r.urn: f"r{i}" for i, r in enumerate(custom)}
    clusters: dict[str, list[Resource]] = {}
    for r in custom:
        clusters.setdefault(r.host or OPERATOR, []).append(r)

    if drift is None:
        title = f"lab stack {stack}: no refresh recorded (drift unknown)"
    else:
        title = f"lab stack {stack}: {drift.describe()} (refresh of {drift.refreshed_at})"
    lines = [
        "digraph lab {",
        f"  graph [rankdir=LR, newrank=true, fontname=Helvetica, fontsize=12, labelloc=t, nodesep=0.2,"
        f" ranksep=0.45, label={_quote(title)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10, margin="0.1,0.04"];',
        '  edge [color="#707070", arrowsize=0.6];',
    ]
    # The operator's machine first, then hosts by name: a stable picture for a stable lab.
    for n, host in enumerate(sorted(clusters, key=lambda h: (h != OPERATOR, h))):
        lines.append(f"  subgraph cluster_{n} {{")
        lines.append(f'    label={_quote(host)}; style="rounded"; color="#9090b0"; fontsize=11;')
        for r in sorted(clusters[host], key=lambda r: r.name):
            op = drift.ops.get(r.urn) if drift is not None and drift.ok else None
            text = [short_name(r, by_urn), type_label(r.type)]
            style = ""
            if drift is not None and r.urn in drift.failed:
                text.append("not read")  # the refresh could not reach it (the title says why)
                style = ', style="rounded,filled,dashed", color="#c00000"'
            elif op is not None:
                keys = drift.diffs.get(r.urn) if drift is not None else None
                text.append(STATUS.get(op, op) + (f" ({', '.join(keys[:3])})" if keys else ""))
            lines.append(f"    {ids[r.urn]} [label={_quote(chr(10).join(text))}, tooltip={_quote(r.name)},"
                         f" fillcolor={_quote(COLOURS.get(op, COLOURS[None]))}{style}];")
        lines.append("  }")
    edges: set[tuple[str, str]] = set()
    for r in custom:
        for dep in r.dependencies:
            sources = [dep] if dep in ids else list(_custom_below(dep, children))
            edges.update((ids[s], ids[r.urn]) for s in sources if s in ids and s != r.urn)
    lines.extend(f"  {a} -> {b};" for a, b in sorted(edges))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, out: Path) -> None:
    """Writes ``out`` (.svg, .png or .dot) and the DOT source beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".dot").write_text(dot_source)
    if out.suffix == ".dot":
        return
    try:
        subprocess.run(["dot", f"-T{out.suffix.lstrip('.')}", "-o", str(out)], input=dot_source.encode(),
                       check=True, capture_output=True)
    except FileNotFoundError:
        sys.exit("graph: error: Graphviz's `dot` is missing: run `make bootstrap` (it installs Debian's graphviz)")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"graph: error: dot failed: {exc.stderr.decode().strip()}")


def main(argv: list[str] | None = None, project: Project | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labops.graph", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="sim")
    parser.add_argument("--out", type=Path, help="picture to write (.svg, .png or .dot); "
                        "default .state/graph/STACK.svg")
    parser.add_argument("--no-refresh", action="store_true",
                        help="do not reach the hosts: colour by the drift the last refresh recorded")
    parser.add_argument("--drift-dir", type=Path, default=DRIFT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    project = project or Project.checkout()
    stack = project.stack(args.stack)
    if args.no_refresh:
        drift = Drift.load(args.stack, args.drift_dir)
    else:
        drift = refreshing_preview(stack)
        drift.save(args.drift_dir)
        if not drift.ok:
            print(f"graph: the refresh failed, drift unknown: {drift.error}", file=sys.stderr)
    out = args.out or ROOT / ".state" / "graph" / f"{args.stack}.svg"
    render(to_dot(args.stack, read_resources(stack), drift), out)
    print(f"graph: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
