#!/usr/bin/env python3
"""make mutation: mutation testing of the modules whose mistakes matter most, and the mistakes we named.

    python scripts/mutation_report.py                       # every module of MODULES, then the named mistakes;
                                                            #   writes docs/mutation-figures.json and docs/mutation.md
    python scripts/mutation_report.py --modules providers/ownership.py ...   # only these; the others' figures stay
    python scripts/mutation_report.py --no-named            # skip the named mistakes (they take ~10 minutes)
    python scripts/mutation_report.py --named-only          # only the named mistakes; the modules' figures stay
    python scripts/mutation_report.py --render              # re-render docs/mutation.md from the figures
    python scripts/mutation_report.py --collect --modules labsim/records.py   # a run stopped part-way: the
                                                            #   figures of the mutants it reached, marked partial

Mutants: mutmut (configuration in pyproject.toml, [tool.mutmut]) copies the packages into mutants/ (ignored), runs
the test selection once instrumented to learn which tests call which function, then for each mutant runs only the
tests that call the mutated function, stopping at the first failure. One worker, at nice 10: the machine is shared.
Modules run one at a time, smallest first; each module's figures name the commit they were measured at.

Named mistakes: realistic mistakes, each put by hand into a copy of the tree (.state/mutation/named/, never the
checkout), with the fast tiers (``pytest -m "unit or conformance"``) run against each; every one must fail them.
The copy without any mistake is run first and must pass, or nothing it says about the mistakes means anything.

The page is rendered from the figures alone; only this script writes either (never `make test`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "mutation-figures.json"
PAGE = REPO / "docs" / "mutation.md"
WORK = REPO / ".state" / "mutation"
TARGET = 85.0

#: The modules measured, as in the issue; run smallest first.
MODULES = [
    "providers/transport/_base.py",
    "providers/connector_output.py",
    "providers/certs/_rules.py",
    "providers/certs/_description.py",
    "providers/certs/_store.py",
    "providers/certs/_parse.py",
    "providers/certs/_x509.py",
    "providers/ownership.py",
    "providers/remote.py",
    "labsim/records.py",
    "components/config/models.py",
    "components/config/checks.py",
    "components/config/certificates.py",
    "components/config/plaintext.py",
    "components/config/loading.py",
    "components/preflight/targets.py",
    "components/preflight/judging.py",
    "components/preflight/certificates.py",
    "components/preflight/report.py",
    "components/preflight/run.py",
]
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
NOT_RUN = "not checked"  # mutmut's word for a mutant a stopped run did not reach
FAST_TIERS = ["-m", "unit or conformance"]


@dataclass(frozen=True)
class Mistake:
    """A realistic mistake as a text edit of one file: ``old`` (found exactly once) becomes ``new``."""

    name: str
    path: str
    old: str
    new: str


MISTAKES = [
    Mistake("ownership: from_state forgets `adopted`", "providers/ownership.py",
            'return Marker(owner, adopted=props.get("adopted") is True, prior=',
            "return Marker(owner, prior="),
    Mistake("secrets: CredentialConfig without `__str__ = __repr__`", "components/config/models.py",
            "    __str__ = __repr__\n\n\nclass BundleConfig", "\n\nclass BundleConfig"),
    Mistake("preflight: WAP rollup judged on the newest package", "components/preflight/judging.py",
            "low_name, low = min(wap, key=", "low_name, low = max(wap, key="),
    Mistake("certificates: expiry ignores expiry_threshold_days", "providers/certs/_rules.py",
            "elif info.expires_within(expiry_threshold_days, now):",
            "elif info.expires_within(RENEWAL_MARGIN_DAYS, now):"),
    Mistake("certificates: keyEncipherment accepted for EC keys", "providers/certs/_description.py",
            '(self.key_kind == "rsa" and "key_encipherment" in ku)', '"key_encipherment" in ku'),
    Mistake("transport: a fixed statement boundary", "providers/transport/_base.py",
            "return BOUNDARY_PREFIX + uuid.uuid4().hex", 'return BOUNDARY_PREFIX + "5f0c2b7d9e8a4c1b"'),
    Mistake("transport: PrivilegedEndpoint multi-statement refusal removed", "providers/transport/_base.py",
            "    if conn.configuration_name == PRIVILEGED_ENDPOINT:\n        raise ValueError(",
            "    if False:\n        raise ValueError("),
    Mistake("template: no undo() when a host did not converge", "providers/remote.py",
            "            except ConnectorError:\n                self.undo(t, inputs, applied)\n                raise",
            "            except ConnectorError:\n                raise"),
    Mistake("output file: no exact-case key precedence", "providers/connector_output.py",
            "    if key in data:\n        return data[key]\n", ""),
    Mistake("output file: an empty CloudName kept as a name", "providers/connector_output.py",
            "cloud_name=f.cloud_name or None,", "cloud_name=f.cloud_name,"),
    Mistake("labsim records: PipelineIterationInfo one element short", "labsim/records.py",
            "return [0] * (invocation.length + 1)", "return [0] * invocation.length"),
]

# What the copy for the named mistakes needs: the packages, the tests and what they read.
TREE = ["providers", "components", "labsim", "labops", "benchmarks", "scripts", "tests", "stacks", "docs",
        "pyproject.toml", "Pulumi.yaml", "__main__.py", "Makefile", "README.md"]


# -- running ---------------------------------------------------------------------------------------------------
def git_head() -> str:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *TREE], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return sha + ("+uncommitted changes" if dirty else "")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def mutant_glob(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".") + ".*"


def run_module(module: str) -> dict:
    """mutmut over one module; its figures."""
    log = WORK / (module.replace("/", "_") + ".log")
    commit = git_head()  # mutmut copies the tree as it starts: what it measures is this, whatever is committed later
    started_file(module).write_text(json.dumps({"commit": commit, "started": time.time()}))
    started = time.monotonic()
    with log.open("w") as out:
        rc = subprocess.call(["nice", "-n", "10", sys.executable, "-m", "mutmut", "run", "--max-children", "1",
                              mutant_glob(module)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    seconds = round(time.monotonic() - started)
    if rc != 0:
        raise SystemExit(f"mutmut failed on {module} (exit {rc}); see {log.relative_to(REPO)}")
    return figures_of(module, commit, seconds)


def started_file(module: str) -> Path:
    return WORK / (module.replace("/", "_") + ".started.json")


def collect(module: str) -> dict:
    """The figures of a run of ``module`` stopped part-way: what mutmut has judged so far (mutants/)."""
    started = json.loads(started_file(module).read_text())
    return figures_of(module, started["commit"], round(time.time() - started["started"]))


def figures_of(module: str, commit: str, seconds: int) -> dict:
    """mutmut's verdicts on ``module``'s mutants; a mutant not yet run counts in neither the score nor the survivors."""
    meta = json.loads((REPO / "mutants" / (module + ".meta")).read_text())
    from mutmut.__main__ import status_by_exit_code

    counts: dict[str, int] = {}
    survivors = []
    for name, code in sorted(meta["exit_code_by_key"].items(), key=lambda kv: _natural(kv[0])):
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
        if status not in DETECTED | {NOT_RUN}:
            survivors.append({"mutant": name, "status": status, "change": change_of(name, module)})
    total = sum(counts.values())
    run = total - counts.get(NOT_RUN, 0)
    detected = sum(n for s, n in counts.items() if s in DETECTED)
    return {"mutants": total, "not_run": total - run, "detected": detected, "counts": counts,
            "score": round(100.0 * detected / run, 1) if run else None, "seconds": seconds,
            "commit": commit, "measured": now(), "survivors": survivors, "pragmas": pragmas(module)}


def _natural(name: str) -> tuple:
    head, _, n = name.rpartition("__mutmut_")
    return (head, int(n) if n.isdigit() else 0)


def change_of(mutant: str, module: str) -> str:
    """The mutated line(s) as ``- old / + new`` (from mutmut's own diff)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    try:
        diff = get_diff_for_mutant(mutant, path=Path(module))
    except Exception as exc:  # noqa: BLE001 - a survivor is listed even when its diff cannot be shown
        return f"(diff unavailable: {type(exc).__name__})"
    lines = [ln for ln in diff.splitlines() if ln[:1] in "-+" and not ln.startswith(("---", "+++"))]
    return " / ".join(ln[0] + " " + ln[1:].strip() for ln in lines)[:300]


def pragmas(module: str) -> list[str]:
    """Each ``# pragma: no mutate`` in the module with its reason: mutants excluded as equivalent."""
    out = []
    for n, line in enumerate((REPO / module).read_text().splitlines(), 1):
        if "# pragma: no mutate" in line:
            reason = line.split("# pragma: no mutate", 1)[1].strip(" -:")
            reason = re.sub(r"^(block|start|end)\b[ -]*", "", reason)
            out.append(f"line {n}: {reason}")
    return out


def generated() -> dict[str, int]:
    """How many mutants mutmut made of each module (every module's are made on the first run)."""
    out = {}
    for module in MODULES:
        meta = REPO / "mutants" / (module + ".meta")
        if meta.exists():
            out[module] = len(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def run_named() -> dict:
    """Each named mistake in a copy of the tree, and the fast tiers against it."""
    copy = WORK / "named"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    for name in TREE:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, copy / name)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    where = subprocess.run([sys.executable, "-c", "import providers; print(providers.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True).stdout.strip()
    if not where.startswith(str(copy)):
        raise SystemExit(f"the copy's packages are not the ones imported there ({where})")

    def fast_tiers() -> tuple[int, str, int]:
        started = time.monotonic()
        run = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pytest", *FAST_TIERS, "-q", "-x",
                              "-p", "no:cacheprovider"], cwd=copy, env=env,
                             capture_output=True, text=True)
        failed = re.findall(r"^FAILED (\S+)", run.stdout, re.M)
        return run.returncode, (failed[0] if failed else ""), round(time.monotonic() - started)

    rc, first, seconds = fast_tiers()
    if rc != 0:
        raise SystemExit(f"the fast tiers fail without any mistake (exit {rc}, {first}): fix that first")
    found: list[dict] = []
    results: dict = {"clean_run": {"exit": rc, "seconds": seconds}, "mistakes": found}
    for m in MISTAKES:
        target = copy / m.path
        original = (REPO / m.path).read_text()
        if original.count(m.old) != 1:
            found.append({"name": m.name, "path": m.path, "caught": None,
                                        "note": "the code changed: the mistake no longer applies; update it"})
            continue
        target.write_text(original.replace(m.old, m.new))
        try:
            rc, first, seconds = fast_tiers()
        finally:
            target.write_text(original)
        found.append({"name": m.name, "path": m.path, "caught": rc == 1, "exit": rc, "first_failure": first,
                      "seconds": seconds})
        print(f"  {'caught ' if rc == 1 else 'MISSED '} {m.name}  ({first or 'no failure'})", flush=True)
    results["commit"], results["measured"] = git_head(), now()
    return results


# -- the page ----------------------------------------------------------------------------------------------------
def render(fig: dict) -> str:
    modules = fig.get("modules", {})
    lines = [
        "# Mutation testing",
        "",
        "Rendered by `make mutation` (scripts/mutation_report.py) from [mutation-figures.json](mutation-figures.json);",
        "do not edit by hand. mutmut puts one small change at a time (a mutant) into a module, and runs the tests",
        "that call the changed function; a mutant no test notices is a behaviour nothing states. Each mutant runs",
        "only the tests that call the mutated function (mutmut's per-function selection), stopping at the first",
        "failure.",
        "",
        f"* tool: {fig.get('tool', '?')}; tests: `{shlex.join(fig.get('test_selection', []))}` (the fast tiers: "
        f"the sim tier is left out: a surviving mutant of a function every remote call passes through would rerun "
        f"most of its ~700 tests, 7 minutes on one core, and the modules have some 5,500 mutants)",
        f"* command: `{fig.get('command', 'make mutation')}`; one worker at nice 10",
        f"* score = mutants detected (killed, timed out) / all mutants; a mutant no test reaches counts as "
        f"surviving. Target: {TARGET:.0f}% per module.",
        *[f"* note: {n}" for n in fig.get("notes", [])],
        "",
        "| module | mutants | detected | survived | no tests | score | target | seconds | measured at |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for module in MODULES:
        m = modules.get(module)
        if m is None:
            lines.append(f"| {module} | | | | | not yet measured | | | |")
            continue
        c = m["counts"]
        ok = "met" if m["score"] is not None and m["score"] >= TARGET else "**not met**"
        score = f"{m['score']}%"
        if m.get("not_run"):
            score += f" of the {m['mutants'] - m['not_run']} run"
            ok = f"partial: {m['not_run']} not run"
        lines.append(f"| {module} | {m['mutants']} | {m['detected']} | {c.get('survived', 0)} | "
                     f"{c.get('no tests', 0)} | {score} | {ok} | {m['seconds']} | {m['commit'][:12]}, "
                     f"{m['measured']} |")
    measured = [modules[m] for m in MODULES if m in modules]
    if measured:
        total = sum(m["seconds"] for m in measured)
        lines += ["", f"Wall time of the modules measured: {total // 60} min {total % 60} s (the first module's "
                      f"includes the one instrumented run of the test selection)."]
        pending = {m: n for m, n in fig.get("generated", {}).items() if m in MODULES and m not in modules}
        if pending:
            rate = total / sum(m["mutants"] - m.get("not_run", 0) for m in measured)
            left = round(rate * sum(pending.values()))
            lines.append(f"Not yet measured: {', '.join(f'{m} ({n} mutants)' for m, n in pending.items())}; at the "
                         f"rate measured here ({rate:.1f} s a mutant) about {left // 60} min more.")
    excluded = [(mod, p) for mod in MODULES if mod in modules for p in modules[mod]["pragmas"]]
    lines += ["", "## Excluded as equivalent", ""]
    lines += [f"* {mod} {p}" for mod, p in excluded] or ["None."]
    named = fig.get("named")
    lines += ["", "## Named mistakes", ""]
    if not named:
        lines.append("Not yet run.")
    else:
        lines += [f"Each put by hand into a copy of the tree at {named['commit'][:12]} ({named['measured']}), then "
                  f"`pytest {shlex.join(FAST_TIERS)} -q -x` run against it (the copy without a mistake passes, in "
                  f"{named['clean_run']['seconds']} s):", "",
                  "| mistake | file | fast tiers | first failing test |", "| --- | --- | --- | --- |"]
        for r in named["mistakes"]:
            verdict = {True: "fail (caught)", False: "**pass (missed)**", None: "not applied"}[r["caught"]]
            lines.append(f"| {r['name']} | {r['path']} | {verdict} | {r.get('first_failure') or r.get('note', '')} |")
    lines += ["", "## Surviving mutants", ""]
    for module in MODULES:
        m = modules.get(module)
        if m is None or not m["survivors"]:
            continue
        lines += [f"<details><summary>{module}: {len(m['survivors'])}</summary>", ""]
        lines += [f"* `{s['mutant'].rpartition('.')[2]}` ({s['status']}): `{s['change']}`" for s in m["survivors"]]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="+", choices=MODULES, help="only these modules")
    ap.add_argument("--no-named", action="store_true", help="skip the named mistakes")
    ap.add_argument("--named-only", action="store_true", help="only the named mistakes")
    ap.add_argument("--render", action="store_true", help="only re-render the page from the figures")
    ap.add_argument("--collect", action="store_true",
                    help="record the figures of the modules' runs stopped part-way, as far as they went")
    args = ap.parse_args(argv)
    os.chdir(REPO)  # mutmut reads its configuration and mutants/ from the working directory
    fig = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    if args.collect:
        for module in args.modules or []:
            fig.setdefault("modules", {})[module] = collect(module)
        FIGURES.write_text(json.dumps(fig, indent=1, sort_keys=True) + "\n")
    elif not args.render:
        import tomllib

        import mutmut

        selection = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
        fig.update(tool=f"mutmut {mutmut.__version__}", command="make mutation",
                   test_selection=selection["pytest_add_cli_args_test_selection"])
        WORK.mkdir(parents=True, exist_ok=True)
        if not args.named_only:
            shutil.rmtree(REPO / "mutants", ignore_errors=True)  # fresh: mutmut keeps stale copies of other files
        for module in [] if args.named_only else args.modules or MODULES:
            print(f"mutmut: {module} ...", flush=True)
            fig.setdefault("modules", {})[module] = result = run_module(module)
            print(f"  {module}: {result['score']}% ({result['detected']}/{result['mutants']} detected) in "
                  f"{result['seconds']} s", flush=True)
            fig["generated"] = {**fig.get("generated", {}), **generated()}
            FIGURES.write_text(json.dumps(fig, indent=1, sort_keys=True) + "\n")  # each module kept as it ends
        if not args.no_named:
            print("named mistakes: the fast tiers against each ...", flush=True)
            fig["named"] = run_named()
        FIGURES.write_text(json.dumps(fig, indent=1, sort_keys=True) + "\n")
    PAGE.write_text(render(fig))
    print()
    for module in MODULES:
        m = fig.get("modules", {}).get(module)
        run = m["mutants"] - m.get("not_run", 0) if m else 0
        print(f"{module:36} " + (f"{m['score']:5}%  {m['detected']}/{run}" + (f" (partial: {m['not_run']} of "
                                 f"{m['mutants']} not run)" if m.get("not_run") else "") if m else "not yet measured"))
    for r in (fig.get("named") or {}).get("mistakes", []):
        print(f"{'caught' if r['caught'] else 'MISSED':7} {r['name']}")
    print(f"wrote {PAGE.relative_to(REPO)} and {FIGURES.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
