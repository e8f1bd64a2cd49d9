"""Where a committed figures file came from, and whether the code it measured has changed since.

Each figures file (docs/reliability-figures.json, docs/performance-figures.json) carries a stamp:

    {"commit": "<sha of HEAD when measured>", "command": "make reliability", "at": "...",
     "measured": {"paths": ["providers", ...], "digest": "<sha256>"}}

``digest`` is over the git blob ids of every tracked file under ``paths`` as they were measured (a change that
was not committed yet counts too: the working tree is what ran). ``stale`` compares it with the working tree now.
A stale page is reported, not failed: `make test` prints a STALE line naming the page, the commit it measured and
the command that measures it again (see scripts/reliability_report.py --suite for why).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The code each page measures: a change under these paths makes its figures stale.
RELIABILITY_CODE = ("providers", "components", "labsim", "tests/reliability", "tests/conftest.py")
PERFORMANCE_CODE = ("providers", "components", "labsim", "benchmarks/lab_scale.py", "__main__.py", "scripts/env.sh",
                    "engine")


def _git(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=REPO, input=stdin, capture_output=True, text=True,
                          check=True).stdout


def head() -> str:
    return _git("rev-parse", "HEAD").strip()


def code_digest(paths: Sequence[str], commit: str | None = None) -> str:
    """sha256 over (path, blob id) of the tracked files under ``paths``: in the working tree, or at ``commit``."""
    if commit is None:
        files = [f for f in _git("ls-files", "-z", "--", *paths).split("\0") if f and (REPO / f).is_file()]
        blobs = _git("hash-object", "--stdin-paths", stdin="\n".join(files) + "\n").split() if files else []
        pairs = sorted(zip(files, blobs, strict=True))
    else:
        pairs = sorted((line.split("\t", 1)[1], line.split()[2])
                       for line in _git("ls-tree", "-r", commit, "--", *paths).splitlines() if line)
    h = hashlib.sha256()
    for path, blob in pairs:
        h.update(f"{path}\0{blob}\n".encode())
    return h.hexdigest()


def stamp(command: str, paths: Sequence[str]) -> dict[str, Any]:
    """The provenance of figures measured now, from this working tree, by ``command``."""
    commit = head()
    dirty = bool(_git("status", "--porcelain", "--", *paths).strip())
    return {"commit": commit + ("+uncommitted changes" if dirty else ""), "command": command,
            "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "measured": {"paths": list(paths), "digest": code_digest(paths)}}


def stale(page: str, st: dict[str, Any]) -> str | None:
    """None when the code ``st`` measured is the working tree's; else the STALE line for ``page``."""
    paths = st["measured"]["paths"]
    try:
        now = code_digest(paths)
    except (OSError, subprocess.CalledProcessError):
        return f"STALE?: {page}: cannot tell (not a git checkout); it measured commit {st['commit'][:12]}"
    if now == st["measured"]["digest"]:
        return None
    changed = ""
    commit = st["commit"].split("+", 1)[0]
    try:
        names = _git("diff", "--name-only", commit, "--", *paths).split()
        changed = f" ({len(names)} files changed since, e.g. {', '.join(names[:3])})" if names else ""
    except subprocess.CalledProcessError:
        pass
    return (f"STALE: {page} measured commit {commit[:12]} with `{st['command']}`; the code it measured "
            f"({', '.join(paths)}) has changed since{changed}: rerun `{st['command']}` and commit the result")


def publish(doc: Path, source: Path, text: str, check: bool) -> int:
    """Write ``text`` (the rendering of ``source``) to the page ``doc``; with ``check``, write nothing and return 1
    (saying so) unless the page already is that rendering."""
    page, figures = doc.relative_to(REPO), source.relative_to(REPO)
    if check:
        if not doc.exists() or doc.read_text(encoding="utf-8") != text:
            print(f"{page} is not the rendering of {figures}", file=sys.stderr)
            return 1
        return 0
    doc.write_text(text, encoding="utf-8")
    print(f"wrote {page} from {figures}")
    return 0
