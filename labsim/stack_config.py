"""Pulumi stack configuration for a simulated lab: `labsim stack-config LAB_FILE --stack NAME`.

Every host of the lab file becomes a ``wapconnector:hosts`` entry (FQDN for the procedure, loopback address
and port to connect, the lab CA to verify TLS), each host's first user a ``wapconnector:credentials`` entry
(set as Pulumi secrets), and every WAP cloud of the lab a ``wapconnector:clouds`` entry with its tenant portal
and Tenant API hosts. Any topology labsim can simulate can so be deployed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from labsim.lab import Auth, Host, Lab, Role

NAMESPACE = "wapconnector"


def _relative(path: Path, project_dir: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), project_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def _credential_name(host_name: str) -> str:
    return host_name.lower()


def _auth_for(host: Host) -> str:
    if host.has(Role.PRIVILEGED_ENDPOINT):
        return "credssp"
    return "negotiate" if Auth.NEGOTIATE in host.winrm.auth else host.winrm.auth[0].value


def stack_config(lab: Lab, *, state_dir: Path, bundle_dir: Path, project_dir: Path,
                 lab_file: Path | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(plain config keyed ``wapconnector:<key>``, secrets keyed by their ``--path``)."""
    by_role = lambda role: [h for h in lab.hosts if h.has(role)]  # noqa: E731
    missing = [r.value for r in (Role.PRIVILEGED_ENDPOINT, Role.AZS_USER_PORTAL, Role.ASDK_HOST) if not by_role(r)]
    if missing:
        raise ValueError(f"lab {lab.name!r} has no host with role(s) {', '.join(missing)}: a stack needs the "
                         f"privileged endpoint, the user portal host (AzS-WASP01) and a host that sees the file share")
    ca_file = _relative(state_dir / "pki" / "ca.pem", project_dir)
    hosts: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    credentials: dict[str, Any] = {}
    for h in lab.hosts:
        https = h.winrm.https_port is not None
        entry: dict[str, Any] = {
            "fqdn": h.fqdn, "address": h.address, "port": h.winrm.https_port if https else h.winrm.http_port,
            "https": https, "auth": _auth_for(h), "credential": _credential_name(h.name),
        }
        if https:
            entry["caFile"] = ca_file
        if not https and entry["auth"] == "basic":
            entry["allowBasicOverHttp"] = True
        hosts[h.name] = entry
        user = h.users[0]
        credentials[_credential_name(h.name)] = {"username": user.name}
        secrets[f"{NAMESPACE}:credentials.{_credential_name(h.name)}.password"] = user.password
    clouds = []
    declared = {c.name: c for c in lab.clouds}
    for name, members in lab.cloud_hosts().items():
        portals = [h for h in members if h.has(Role.WAP_TENANT_PORTAL)]
        apis = [h for h in members if h.has(Role.WAP_TENANT_API)]
        if not portals or not apis:
            raise ValueError(f"cloud {name!r} needs at least one tenant portal and one Tenant API host")
        cloud = declared.get(name)
        sql = apis[0].wap.sql_server if apis[0].wap else None
        clouds.append({
            "name": name,
            "tenantPortalFqdn": (cloud and cloud.tenant_portal_fqdn) or portals[0].fqdn,
            "tenantApiFqdn": (cloud and cloud.tenant_api_fqdn) or apis[0].fqdn,
            "tenantPortalHosts": [h.name for h in portals],
            "tenantApiHosts": [h.name for h in apis],
            **({"sqlServer": sql} if sql else {}),
        })
    plain = {
        f"{NAMESPACE}:ca": {"commonName": f"{lab.name} Connector Root CA", "organization": "labsim"},
        f"{NAMESPACE}:azureStack": {
            "cloudName": lab.azure_stack_cloud_name, "portalFqdn": lab.azure_stack_portal_fqdn,
            "privilegedEndpoint": by_role(Role.PRIVILEGED_ENDPOINT)[0].name,
            "userPortalHost": by_role(Role.AZS_USER_PORTAL)[0].name,
            "shareHost": by_role(Role.ASDK_HOST)[0].name,
        },
        # `labsim make-bundle DIR` writes DIR/WAPConnector, the folder the download extracts to.
        f"{NAMESPACE}:bundle": {"sourceDir": _relative(bundle_dir / "WAPConnector", project_dir)},
        f"{NAMESPACE}:hosts": hosts,
        f"{NAMESPACE}:credentials": credentials,
        f"{NAMESPACE}:clouds": clouds,
        # Which lab file (and state dir) `make up` serves with labsim for this stack.
        f"{NAMESPACE}:labsim": {"lab": _relative(lab_file, project_dir), "stateDir": _relative(state_dir, project_dir)}
        if lab_file else None,
    }
    return {k: v for k, v in plain.items() if v is not None}, secrets


def write_stack_config(lab: Lab, lab_file: Path, *, stack: str, project_dir: Path, state_dir: Path,
                       bundle_dir: Path, env: dict[str, str] | None = None) -> Path:
    """Write ``stacks/Pulumi.<stack>.yaml``: plain values directly, passwords through ``pulumi config set
    --secret`` (so they are encrypted by the stack's secrets provider). Needs the pulumi CLI on PATH."""
    plain, secrets = stack_config(lab, state_dir=state_dir, bundle_dir=bundle_dir, project_dir=project_dir,
                                  lab_file=lab_file)
    config_file = project_dir / "stacks" / f"Pulumi.{stack}.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = yaml.safe_load(config_file.read_text()) if config_file.exists() else {}
    doc = doc or {}
    doc["config"] = plain
    config_file.write_text(
        f"# Generated by `labsim stack-config {lab_file} --stack {stack}`; passwords are Pulumi secrets.\n"
        + yaml.safe_dump(doc, sort_keys=False))

    def pulumi(*args: str, stdin: str | None = None) -> None:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=project_dir, env=env, input=stdin,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    pulumi("stack", "select", "--create", stack)
    for path, value in secrets.items():
        # The value goes through stdin, never argv (which other users of the machine can read).
        pulumi("config", "set", "--secret", "--path", "--stack", stack, path, stdin=value)
    return config_file
