"""The report: one row per check (host, check, result, what to do), and its plain-text table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PASS, FAIL, SKIP, WARN = "PASS", "FAIL", "SKIP", "WARN"


@dataclass(frozen=True)
class Row:
    host: str
    check: str
    status: str  # PASS | FAIL | WARN | SKIP
    result: str
    todo: str = ""


@dataclass
class Report:
    rows: list[Row]
    seconds: float = 0.0

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        return render(self.rows)

    def summary(self) -> str:
        hosts = len({r.host for r in self.rows})
        fails = self.failures
        return (f"preflight: {len(self.rows)} checks on {hosts} host(s), {len(fails)} failed"
                f" ({len({r.host for r in fails})} host(s)), {self.seconds:.1f} s")


def render(rows: Sequence[Row], width: int = 200) -> str:
    """A plain-text table: host, check, result, what to do."""
    header = ("HOST", "CHECK", "RESULT", "WHAT TO DO")
    cells = [header] + [(r.host, r.check, f"{r.status} {r.result}", r.todo) for r in rows]
    w0 = max(len(c[0]) for c in cells)
    w1 = max(len(c[1]) for c in cells)
    lines = []
    for c in cells:
        lines.append(f"{c[0]:<{w0}}  {c[1]:<{w1}}  {c[2]}" + (f"  -> {c[3]}" if c[3] else ""))
    return "\n".join(lines)
