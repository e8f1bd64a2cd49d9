"""No check failure echoes a secret, whatever program drives the providers: an inline Automation API program.

An inline program skips the stack configuration's validation (components/config/), so the providers' own
``check`` is the only gate. The engine prints a failure on a named property as "property P value V has a
problem": V is the program's input, and a secret Output prints there in plain text (the engine formats it with
%v). So failures on a property that can hold a secret must not name it; the reason names the field instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from tests.e2e.pulumi_cli import PASSPHRASE, ROOT, VENV_BIN, engine_missing

pytestmark = pytest.mark.e2e

PASSWORD = "Inline-S3cret-Value-41c2"


def _workspace(tmp_path: Path, program: auto.PulumiFn) -> auto.Stack:
    backend = tmp_path / "backend"
    backend.mkdir()
    env = {
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE, "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_HOME": str(tmp_path / "home"), "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_PYTHON_CMD": str(VENV_BIN / "python"),
        "PYTHONPATH": str(ROOT), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return auto.create_or_select_stack(
        stack_name="inline", project_name="wapconnector-inline", program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(tmp_path), env_vars=env, secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(ROOT / ".venv"), skip_version_check=True),
            project_settings=auto.ProjectSettings(name="wapconnector-inline", runtime="python",
                                                  backend=auto.ProjectBackend(url=f"file://{backend}"))))


def _bad_connection() -> dict:
    # Two problems inside the connection (a timeout out of range, an unknown auth), a password beside them.
    return {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.0.1", "auth": "digest", "username": "CONTOSO\\op",
            "password": PASSWORD, "operation_timeout": 0}


@pytest.mark.parametrize("secret", [True, False], ids=["connection-secret", "connection-plain"])
def test_inline_program_check_failures_never_print_the_password(tmp_path: Path, secret: bool) -> None:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)

    def program() -> None:
        from providers.connector_site import ConnectorSite

        conn = _bad_connection()
        ConnectorSite("site", connection=pulumi.Output.secret(conn) if secret else conn,
                      tenant_portal_fqdn="tenant.contoso.com", tenant_api_fqdn="api.contoso.com",
                      azure_stack_portal_fqdn="portal.local.azurestack.external",
                      certificate_thumbprint="not-a-thumbprint")

    stack = _workspace(tmp_path, program)
    lines: list[str] = []
    with pytest.raises(auto.errors.CommandError) as info:
        stack.preview(on_output=lines.append)
    everything = "\n".join(lines) + str(info.value)
    assert PASSWORD not in everything, everything
    # Each problem is still named: the connection's fields and the other inputs.
    assert "connection.operation_timeout" in everything, everything
    assert "connection.auth" in everything and "unknown auth" in everything, everything
    assert "certificate_thumbprint" in everything, everything
    stack.workspace.remove_stack("inline")


def test_one_password_set_in_plain_text_among_secret_ones_is_refused_by_name(tmp_path: Path) -> None:
    """`labsim stack-config` sets every password with --secret; one is then set again with --plaintext."""
    import subprocess

    from tests.e2e.lab_stack import lab_stack

    with lab_stack(tmp_path) as lab:
        project = lab.project
        keys = [k for k in _password_keys(project.config_file)]
        assert len(keys) >= 3
        plain = keys[1]
        value = "Plain-Text-Pw-9d1e"
        proc = subprocess.run(["pulumi", "config", "set", "--plaintext", "--path", "--stack", project.stack, plain,
                               "--non-interactive"], input=value, cwd=project.project_dir, env=project.env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        run = project.run("preview")
        assert run.returncode != 0, run.output
        # Refused with the project's message alone (exit 32): no traceback, no "non-zero exit code" added to it.
        assert "Traceback" not in run.output and "non-zero exit code" not in run.output, run.output
        assert f"{plain}: in plain text in the stack file" in run.output, run.output
        assert f"pulumi config set --secret --path '{plain}'" in run.output, run.output
        assert value not in run.output
        for other in keys:
            if other != plain:
                assert f"{other}: in plain text" not in run.output
        assert project.resources(type_prefix="pulumi-python") == []


def _password_keys(config_file: Path) -> list[str]:
    import yaml

    doc = yaml.safe_load(config_file.read_text())
    creds = doc["config"]["wapconnector:credentials"]
    assert all(isinstance(c["password"], dict) and "secure" in c["password"] for c in creds.values())
    return [f"wapconnector:credentials.{name}.password" for name in creds]
