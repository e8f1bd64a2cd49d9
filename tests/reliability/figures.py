"""Figures for docs/reliability.md: every reliability test records what it measured here.

API (stable; other reliability tests plug in with it):

    from tests.reliability import figures
    figures.record(section, key, value)     # value: int | float | str

Each call appends one JSON line ``{"section", "key", "value", "test", "pid", "time"}`` to the file named by
``$RELIABILITY_FIGURES`` (default ``.state/reliability/figures.jsonl`` under the repository root; the folder is
created as needed). Appends are a single ``os.write`` on an ``O_APPEND`` descriptor under an ``fcntl`` lock,
so concurrent writers (pytest-xdist workers, parallel test processes) never interleave lines.
When one (section, key) is recorded several times the report keeps the LAST value; values recorded with
``record(..., add=True)`` are summed instead (counts contributed by several tests).
``record_items(section, key, items)`` records the distinct things a count is made of (ids of hostile strings,
digests of bad inputs, ...): the summary keeps their sorted union and the page shows how many there are, so a count
is always the number of distinct things a test tried and checked, never a tally of calls or a literal.

``scripts/reliability_report.py`` reads the file and renders the page (``docs/reliability.md`` with its raw figures
``docs/reliability-figures.json`` after `make reliability`; ``.state/reliability/`` after `make test`), one section
per entry of ``SECTIONS`` in that order; a section with no figure yet reads "not yet measured".

Sections and their main keys (a list value is the distinct things a count is made of):

    fault_matrix        cell:<resource>-<operation>-<fault> = pass | n/a: why, e2e:<fault>
                        (test_fault_matrix.py, test_fault_e2e.py)
    retries_timeouts    call:<module.function#n> = idempotent: why, measured retry figures  (test_retries_timeouts.py)
    bad_inputs          bad_inputs [digests of distinct refused inputs], valid_mutations_not_counted
                        (test_bad_inputs.py)
    injection           hostile_strings [digests], other_strings_not_hostile, executed_as_code  (test_injection.py)
    secrets             secrets [label: forms searched], found                            (test_secrets.py)
    transport_security  cases_passed [case names], failed                                 (test_transport_security.py)
    soak                iterations, failures, shells reaped by labsim, memory and bounds   (test_soak.py)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SECTIONS", "SECTION_TITLES", "figures_path", "load", "record", "record_items", "reset", "summary"]

#: Fixed order of the report's sections.
SECTIONS: tuple[str, ...] = (
    "fault_matrix",
    "retries_timeouts",
    "bad_inputs",
    "injection",
    "secrets",
    "transport_security",
    "soak",
)

SECTION_TITLES: dict[str, str] = {
    "fault_matrix": "Fault matrix (resource × operation × fault, against labsim)",
    "retries_timeouts": "Retries and timeouts",
    "bad_inputs": "Bad inputs (corpus)",
    "injection": "Hostile strings (injection)",
    "secrets": "Secrets found in outputs, state and logs",
    "transport_security": "Transport security",
    "soak": "Soak",
}

_REPO = Path(__file__).resolve().parents[2]
_DEFAULT = _REPO / ".state" / "reliability" / "figures.jsonl"


def figures_path() -> Path:
    """The figures file: ``$RELIABILITY_FIGURES`` or ``.state/reliability/figures.jsonl``."""
    env = os.environ.get("RELIABILITY_FIGURES")
    return Path(env) if env else _DEFAULT


def record(section: str, key: str, value: int | float | str, *, add: bool = False) -> None:
    """Append one figure. ``section`` must be one of ``SECTIONS``. ``add=True``: the report sums this key's
    values instead of keeping the last one (for counts recorded by several tests)."""
    if section not in SECTIONS:
        raise ValueError(f"unknown reliability section {section!r}; use one of {', '.join(SECTIONS)}")
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise TypeError(f"figure {section}.{key} must be int, float or str, not {type(value).__name__}")
    _append({"section": section, "key": key, "value": value, "add": bool(add)})


def record_items(section: str, key: str, items: Iterable[str]) -> None:
    """Record the distinct things (str ids) behind a count; several calls for one key are united."""
    if section not in SECTIONS:
        raise ValueError(f"unknown reliability section {section!r}; use one of {', '.join(SECTIONS)}")
    items = sorted(set(items))
    if not all(isinstance(i, str) for i in items):
        raise TypeError(f"items of {section}.{key} must be str")
    _append({"section": section, "key": key, "value": items, "items": True})


def _append(row: dict) -> None:
    line = json.dumps({
        **row,
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0],
        "pid": os.getpid(), "time": round(time.time(), 3),
    }, ensure_ascii=False) + "\n"
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX; O_APPEND alone keeps short lines whole
            pass
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)  # releases the lock


def load(path: Path | None = None) -> list[dict]:
    """Every recorded line, in file order (a missing file is empty)."""
    path = path or figures_path()
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            out.append(json.loads(raw))
    return out


def summary(path: Path | None = None) -> dict[str, dict[str, int | float | str | list[str]]]:
    """{section: {key: value}}: the last value of each key, the sum for keys recorded with add=True, the sorted
    union for keys recorded with record_items."""
    out: dict[str, dict[str, int | float | str | list[str]]] = {}
    for row in load(path):
        sec = out.setdefault(row["section"], {})
        if row.get("items"):
            items = sec.get(row["key"], [])
            assert isinstance(items, list), (row["section"], row["key"])
            sec[row["key"]] = sorted(set(items) | set(row["value"]))
        elif row.get("add") and isinstance(row["value"], (int, float)):
            total = sec.get(row["key"], 0)
            assert isinstance(total, (int, float)), (row["section"], row["key"])
            sec[row["key"]] = total + row["value"]
        else:
            sec[row["key"]] = row["value"]
    return out


def reset(path: Path | None = None) -> None:
    """Start a fresh figures file (``make reliability`` does this before the run)."""
    path = path or figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
