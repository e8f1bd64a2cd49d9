"""The acceptance report's Markdown: the doctor's checks as a table of their own."""

import importlib.util
import sys

import pytest

from tests.e2e.pulumi_cli import ROOT

pytestmark = pytest.mark.unit

spec = importlib.util.spec_from_file_location("acceptance", ROOT / "scripts" / "acceptance.py")
assert spec and spec.loader
acceptance = importlib.util.module_from_spec(spec)
sys.modules["acceptance"] = acceptance  # its dataclasses look their module up
spec.loader.exec_module(acceptance)


def test_the_doctor_checks_are_rows_of_their_own_table() -> None:
    report = acceptance.Report("lab1", "read-only", "2026-12-06 23:00:00", "abc1234", "pulumi v3.259.0")
    report.checks.append(acceptance.Check("doctor: every host", "FAIL", "preflight: 2 checks, 1 failed", 1.5))
    report.doctor = [
        {"host": "AzS-ERCS01", "check": "PrivilegedEndpoint", "status": "PASS", "result": "session opened",
         "todo": ""},
        {"host": "wap-portal2", "check": "URL Rewrite", "status": "FAIL", "result": "not installed | missing",
         "todo": "install IIS URL Rewrite 2.x"},
    ]
    text = acceptance.render(report)
    checks, doctor = text.split("## Doctor")
    assert "| doctor: every host | FAIL | 1.5 | preflight: 2 checks, 1 failed |" in checks and "<br>" not in checks
    lines = doctor.splitlines()
    assert "| host | check | result | detail | what to do |" in lines
    assert "| AzS-ERCS01 | PrivilegedEndpoint | PASS | session opened |  |" in lines
    assert "| wap-portal2 | URL Rewrite | FAIL | not installed \\| missing | install IIS URL Rewrite 2.x |" in lines
