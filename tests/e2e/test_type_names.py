"""Every dynamic resource has its own type name, and a stack written before the names existed keeps its resources.

Such a stack holds every leaf as ``pulumi-python:dynamic:Resource``. Its state is made here from a real
deployment: `stack export`, each ``pulumi-python:dynamic/wapconnector:<Name>`` written back as that type (in
types, URNs, parents and dependencies: exactly what such a deployment holds), `stack import`. Then the current program
must plan nothing but "same" for it (the LabResource alias), `up` must not touch a host (labsim's invocation log
stays empty) nor change an id, and the state must come out with the new types.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.preflight import READ_COMMANDS
from providers.base import LEGACY_TYPE
from tests.e2e.lab_stack import lab_stack

pytestmark = pytest.mark.e2e

NEW_TYPE = re.compile(r"pulumi-python:dynamic/wapconnector:[A-Za-z]+")
EXPECTED_TYPES = {
    "AzurePackConnector": 1, "Certificate": 3, "CertificateAuthority": 1, "ConnectorBundle": 2, "ConnectorSite": 2,
    "EndpointCheck": 2, "IssuedCertificate": 2, "TenantApiTrust": 2, "TenantApiUpdate": 2,
}


def _types(resources: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in resources:
        out[r["type"].rsplit(":", 1)[1]] = out.get(r["type"].rsplit(":", 1)[1], 0) + 1
    return out


def test_a_stack_written_with_the_old_type_loads_and_plans_no_change(tmp_path: Path) -> None:
    with lab_stack(tmp_path) as lab:
        project = lab.project
        project.up()
        before = {r["id"]: r["type"] for r in project.resources("pulumi-python:")}
        assert _types(project.resources("pulumi-python:")) == EXPECTED_TYPES

        # The preview names the types, not "dynamic:Resource".
        preview = project.run("preview", "--show-sames", check=True).output
        assert "ConnectorSite" in preview and LEGACY_TYPE not in preview, preview

        # Turn the state into one written before the type names existed.
        exported = json.dumps(project.export())
        legacy = NEW_TYPE.sub(LEGACY_TYPE, exported)
        assert legacy.count(LEGACY_TYPE) >= len(before)
        old_file = tmp_path / "legacy-state.json"
        old_file.write_text(legacy)
        project.run("stack", "import", "--file", str(old_file), check=True)
        assert {r["type"] for r in project.resources("pulumi-python:")} == {LEGACY_TYPE}

        steps = project.preview_json("--show-sames")["steps"]
        ops = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in steps
               if "pulumi-python:" in s["urn"] and "pulumi:providers:" not in s["urn"]}
        assert len(ops) == len(before) and set(ops.values()) == {"same"}, ops
        # Nor any other step (components, provider instances): what `preview --expect-no-changes` would say.
        assert {s["op"] for s in steps} == {"same"}, [(s["urn"], s["op"]) for s in steps if s["op"] != "same"]

        mark = lab.last_invocation_id()
        up = project.up()
        assert not re.search(r"\b(created|updated|replaced|deleted)\b", up.output), up.output
        # No host was touched: the only commands are the program's read-only preflight.
        assert [i["command"] for i in lab.invocations(after=mark) if i["command"] not in READ_COMMANDS] == []
        after = {r["id"]: r["type"] for r in project.resources("pulumi-python:")}
        assert after.keys() == before.keys()  # the same resources, ids kept
        assert after == before  # and now under their own types
        clean = project.run("preview", "--refresh", "--expect-no-changes")
        assert clean.returncode == 0, clean.output
