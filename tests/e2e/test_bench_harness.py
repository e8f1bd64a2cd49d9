"""`make bench`'s harness works end to end on the smallest lab (1 cloud, instant steps, no floor run), so it cannot
rot: labsim in its own process, the real engine, every figure the benchmark prints present and plausible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.lab_scale import HEADER, main, row

pytestmark = pytest.mark.e2e


def test_bench_harness_measures_a_one_cloud_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.jsonl"
    [record] = main(["--clouds", "1", "--factor", "0", "--connection-cost", "0.05", "--no-floor",
                     "--json", str(out), "--workdir", str(tmp_path)])
    assert json.loads(out.read_text())["clouds"] == 1
    assert record["hosts"] == 8  # 3 Azure Stack hosts + 2 portal, 2 Tenant API VMs and a SQL server
    assert record["remote_resources"] == 13 and record["resources"] > record["remote_resources"]
    # 7 WinRM hosts, 2 per provider process; the engine ran them side by side.
    assert record["provider_processes"] == 4
    assert record["up"] > 0 and record["preview_refresh"] > 0 and record["destroy"] > 0
    assert record["critical_path"] == 2.0  # the PEP's polling: the factor does not scale it
    # labsim counted the refresh: every remote resource read, one pool per host it reached, besides what the
    # program's preflight (measured on its own) read.
    assert 0 < record["preflight_pipelines"] <= record["preflight_commands"] and record["preflight_pool_opens"] > 0
    reads = {k: record[f"refresh_{k}"] - record[f"preflight_{k}"] for k in ("pipelines", "commands", "pool_opens")}
    assert record["remote_resources"] <= reads["pipelines"] <= reads["commands"]
    assert 0 < reads["pool_opens"] <= record["refresh_hosts"] <= 7
    assert record["up_memory_mib"]["engine"] > 0 and record["up_memory_mib"]["provider"] > 0
    assert record["peak_rss_mib"] >= record["peak_pss_mib"] > 0
    printed = capsys.readouterr().out
    assert HEADER.splitlines()[0] in printed and row(record) in printed
