"""The preflight on the real engine: a lab with every prerequisite broken. `make doctor`'s script lists every
problem in one run and exits non-zero; `pulumi preview` fails showing the same table instead of a plan; `pulumi
up` fails before registering anything; and labsim's invocation log proves that no write command reached any
host during all three."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.preflight import READ_COMMANDS
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.runtime import Fault
from tests.e2e.lab_stack import lab_stack

pytestmark = pytest.mark.e2e

# Everything preflight sends is one of these (all read-only); anything else reaching a host is a write.
READ_ONLY = {c.lower() for c in READ_COMMANDS}


def broken_lab() -> Lab:
    """The seed's lab with each prerequisite the preflight checks missing somewhere."""
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    hosts = {h["name"]: h for h in data["hosts"]}
    hosts["AzS-WASP01"]["conditions"] = {"cannot_reach": ["wapcomputer2"]}
    hosts["AzS-HOST"]["conditions"] = {"sees_share": False}
    hosts["wapcomputer1"]["conditions"] = {"disk_free_mb": 50}
    hosts["wapcomputer1"]["wap"] = {"version": "3.37.8196.0", "spf_version": "7.2.1000.0"}
    hosts["wapcomputer2"]["wap"] = {"url_rewrite": False}
    hosts["wapcomputer2"]["users"][0]["sql_sysadmin"] = False
    return Lab.model_validate(data)


# (host, check, words the result must hold): every problem of the broken lab, each on its own line.
EXPECTED_FAILURES = [
    ("AzS-ERCS01", "authentication (CredSSP)", "refused"),
    ("AzS-WASP01", "reaches wapcomputer2", "no answer"),
    ("AzS-HOST", "infrastructure share", "not visible"),
    ("wapcomputer1", "room for the bundle", "50 MiB free"),
    ("wapcomputer1", "WAP Update Rollup", "older than UR9.1"),
    ("wapcomputer1", "SPF Update Rollup", "7.2.1000.0"),
    ("wapcomputer2", "URL Rewrite", "not installed"),
    ("wapcomputer2", "sysadmin (AzurePack_2)", "not sysadmin"),
    ("wapcomputer2", "WAP sites", "not started: MgmtSvc-TenantSite"),
]


def failing_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " FAIL " in line]


def test_broken_lab_lists_every_problem_and_nothing_is_written(tmp_path: Path) -> None:
    with lab_stack(tmp_path, broken_lab()) as lab:
        lab.admin("wapcomputer2", "Stop-Website", Name="MgmtSvc-TenantSite")
        lab.runtime.state.set_fault(Fault(host="AzS-ERCS01", kind="auth_broken"))
        mark = lab.last_invocation_id()

        run = lab.doctor()
        assert run.returncode == 1, run.stdout + run.stderr
        lines = failing_lines(run.stdout)
        for host, check, words in EXPECTED_FAILURES:
            assert any(line.startswith(host) and check in line and words in line for line in lines), \
                (host, check, run.stdout)
        assert len(lines) == len(EXPECTED_FAILURES), run.stdout
        # A host that refused us is not judged on what it could not be asked.
        assert any(line.startswith("AzS-ERCS01") and "role checks" in line and "SKIP" in line
                   for line in run.stdout.splitlines()), run.stdout

        preview = lab.project.run("preview")
        assert preview.returncode != 0, preview.output
        for host, check, words in EXPECTED_FAILURES:
            assert any(host in line and check in line and words in line for line in failing_lines(preview.output)), \
                (host, check, preview.output)
        assert "nothing was changed" in preview.output
        assert "Traceback" not in preview.output, preview.output
        # The project's message is the run's only error: no "an unhandled error occurred: program exited ...".
        assert "unhandled error" not in preview.output and "non-zero exit code" not in preview.output, preview.output

        up = lab.project.up(check=False)
        assert up.returncode != 0, up.output
        assert "nothing was changed" in up.output and "URL Rewrite" in up.output, up.output
        assert lab.project.resources() == []

        sent = lab.invocations(after=mark)
        assert sent, "preflight asked the hosts nothing"
        writes = [(i["host"], i["command"]) for i in sent if i["command"].lower() not in READ_ONLY]
        assert writes == [], writes
        # All three runs asked every host that answered (the PEP refused every request before any command).
        assert {i["host"] for i in sent} == {"AzS-WASP01", "AzS-HOST", "wapcomputer1", "wapcomputer2"}
        for host in ("AzS-WASP01", "AzS-HOST", "wapcomputer1", "wapcomputer2"):
            assert lab.snapshot(host) == lab.snapshot(host, baseline=True) or host == "wapcomputer2", host


def test_doctor_passes_on_a_healthy_lab_before_anything_is_deployed(tmp_path: Path) -> None:
    # What it says of the deployed connector: tests/e2e/test_labops.py, on that module's deployed lab.
    with lab_stack(tmp_path) as lab:
        before = lab.doctor()
        assert before.returncode == 0, before.stdout + before.stderr
        assert failing_lines(before.stdout) == []
        assert "Add-AzurePackConnector available" in before.stdout
        assert "issued by the stack's lab CA for wapcomputer1.contoso.com" in before.stdout
