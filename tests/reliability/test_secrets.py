"""No secret in plain text anywhere after a full cycle through the real Pulumi CLI.

One lab under the real engine (tests/e2e/lab_stack.py): up, an out-of-band drift (the connector certificate
removed from wapcomputer1's store), preview --refresh (drift shown), up --refresh (heal: the PFX and its password
travel again), refresh, stack output/export, destroy. Then every secret used - each lab user's password (from the
lab file), every PFX (base64 and raw bytes), PFX password and private key (PEM body lines) the stack generated - is
searched for in:
* every file the backend keeps (checkpoints, backups, history: ``project.state_files()``);
* the CLI output (stdout + stderr, which carries the providers' diagnostics) of every command;
* every log record of every Python process of the run (program and dynamic provider), captured at DEBUG by a
  ``sitecustomize`` spy placed on the engine's PYTHONPATH - a root logger at DEBUG, as a careless environment
  would have it;
* labsim's invocation record.
Zero hits. The spy also proves pypsrp never logs below INFO inside the provider (its whole-message DEBUG log would
print credentials), and the code never configures logging that would enable it.

The engine's own debug log (``-v=9 --logtostderr --logflow``) is scanned too but not counted: it prints the
resource inputs the engine sends to providers, secrets in plain text, by design of the engine. A user must not
run pulumi with ``-v`` and real credentials (recorded as a figure, and said in docs/reliability.md).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pulumi_cli import ROOT, engine_missing
from tests.reliability import figures
from tests.reliability.corpus import scheme_recorder

pytestmark = pytest.mark.e2e

SPY = textwrap.dedent('''
    # Test spy (tests/reliability/test_secrets.py): every log record of this process, at any level, to a file.
    import json, logging, os, sys

    class _Spy(logging.Handler):
        def emit(self, record):
            try:
                line = json.dumps({"pid": os.getpid(), "argv": " ".join(sys.argv[:3]), "name": record.name,
                                   "level": record.levelno, "msg": record.getMessage(),
                                   "pypsrp_level": logging.getLogger("pypsrp").getEffectiveLevel()})
                with open(os.environ["WAPC_LOG_SPY"], "a", encoding="utf-8") as fh:
                    fh.write(line + "\\n")
            except Exception:
                pass

    if os.environ.get("WAPC_LOG_SPY"):
        _root = logging.getLogger()
        _root.setLevel(logging.DEBUG)
        _root.addHandler(_Spy(logging.DEBUG))
''')


def _pem_body_lines(pem: str) -> list[str]:
    return [ln.strip() for ln in pem.splitlines()
            if ln.strip() and not ln.startswith("-----") and len(ln.strip()) >= 40]


SECRET_SIG = "4dabf18193072939515e22adb298388d"


def unwrap(value: Any) -> Any:
    """`stack export --show-secrets` keeps secrets as {sig: ..., "plaintext": "<JSON>"}: decode them."""
    if isinstance(value, dict):
        if SECRET_SIG in value and "plaintext" in value:
            return unwrap(json.loads(value["plaintext"]))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def collect_secrets(export: dict[str, Any], lab_passwords: list[str]) -> dict[str, list[bytes]]:
    """{label: every form of that secret searched for}, one entry per distinct secret (a PFX that is an input of
    one resource and an output of another is one secret), from the stack's plaintext export and the lab file.
    Forms: a text secret as UTF-8 and JSON-escaped; a PFX as its base64 text, a 48-character slice of it, its raw
    bytes and a 32-byte slice of them; a private key as each line of its PEM body."""
    out: dict[str, list[bytes]] = {}
    seen: set[str] = set()

    def add(label: str, value: str, forms: list[bytes]) -> None:
        if value not in seen:
            seen.add(value)
            out[label] = sorted({f for f in forms if f})

    def text_forms(value: str) -> list[bytes]:
        return [value.encode("utf-8"), json.dumps(value)[1:-1].encode("utf-8")]

    for i, p in enumerate(lab_passwords):
        add(f"lab password {i + 1}", p, text_forms(p))
    for res in export["deployment"].get("resources") or []:
        name = res["urn"].rsplit("::", 1)[-1]
        for side in ("inputs", "outputs"):
            props = unwrap(res.get(side) or {})
            for key, value in props.items():
                if not isinstance(value, str) or not value:
                    continue
                if key in ("pfx_password",) or key.endswith("password"):
                    add(f"{name}.{key}", value, text_forms(value))
                elif key == "pfx_base64":
                    pfx, mid = base64.b64decode(value), len(value) // 2
                    add(f"{name}.pfx", value, [*text_forms(value), value[mid:mid + 48].encode(), pfx,
                                               pfx[len(pfx) // 2:len(pfx) // 2 + 32]])
                elif "private_key" in key and "BEGIN" in value:
                    add(f"{name}.{key}", value, [ln.encode() for ln in _pem_body_lines(value)])
            conn = props.get("connection")
            if isinstance(conn, dict) and isinstance(conn.get("password"), str):
                add(f"{name}.connection.password", conn["password"], text_forms(conn["password"]))
    return out


def scan(blobs: dict[str, bytes], secrets: dict[str, list[bytes]]) -> list[tuple[str, str]]:
    """(where, which secret) for every place that holds any form of a secret."""
    return [(where, label) for where, blob in blobs.items() for label, forms in secrets.items()
            if any(f in blob for f in forms)]


def _state_blobs(files: list[Path]) -> dict[str, bytes]:
    out = {}
    for p in files:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        out[f"state:{p.name}"] = data
    return out


@pytest.mark.unit
def test_the_code_never_turns_on_debug_logging_for_the_wire_libraries() -> None:
    offenders = []
    for base in ("providers", "components", "labsim", "scripts", "benchmarks"):
        for path in (ROOT / base).rglob("*.py"):
            src = path.read_text(encoding="utf-8")
            for n, line in enumerate(src.splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"basicConfig\(.*DEBUG|setLevel\((logging\.)?DEBUG|setLevel\(10\)"
                             r"|level\s*=\s*(logging\.)?DEBUG", code):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
    # and at run time, even under a root logger at DEBUG, a transport keeps pypsrp & co at INFO or above
    probe = ("import logging; logging.basicConfig(level=logging.DEBUG); from providers.transport import PsrpTransport; "
             "PsrpTransport(); print([logging.getLogger(n).getEffectiveLevel() for n in ('pypsrp', 'pypsrp.wsman', "
             "'requests_credssp', 'spnego')])")
    levels = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                       check=True).stdout)
    assert all(lv >= logging.INFO for lv in levels), levels


def test_no_secret_in_state_output_logs_or_invocations_after_up_drift_destroy(tmp_path: Path) -> None:
    missing = engine_missing()
    if missing:
        pytest.fail(missing)
    from tests.e2e.lab_stack import lab_stack

    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    (spy_dir / "sitecustomize.py").write_text(SPY)
    spy_log = tmp_path / "spy.jsonl"
    runs: dict[str, str] = {}
    with scheme_recorder() as schemes, lab_stack(tmp_path) as lab:
        env = lab.project.env
        env["PYTHONPATH"] = f"{spy_dir}:{env['PYTHONPATH']}"
        env["WAPC_LOG_SPY"] = str(spy_log)
        lab_passwords = sorted({u.password for h in lab.lab.hosts for u in h.users})

        def cli(label: str, *args: str, ok: tuple[int, ...] = (0,)) -> str:
            run = lab.project.run(*args)
            assert run.returncode in ok, f"{label}: {' '.join(run.args)} exited {run.returncode}\n{run.output}"
            runs[label] = run.output
            return run.output

        cli("up", "up", "--yes", "--skip-preview")
        secret_export = lab.project.export(show_secrets=True)  # only to learn the generated secrets
        cli("stack output", "stack", "output", "--json")
        thumb = json.loads(runs["stack output"])["clouds"]["AzurePack_1"]["thumbprint"]
        lab.admin("wapcomputer1", "Remove-Item", Path=f"Cert:\\LocalMachine\\My\\{thumb}")
        drift = cli("preview --refresh", "preview", "--refresh", "--diff")
        assert "connector-cert" in drift or "~" in drift, drift
        cli("up --refresh", "up", "--yes", "--skip-preview", "--refresh")
        cli("refresh", "refresh", "--yes", "--skip-preview")
        cli("stack export", "stack", "export")
        verbose = lab.project.run("preview", "--refresh", "-v=9", "--logtostderr", "--logflow").output
        cli("destroy", "destroy", "--yes", "--skip-preview")
        invocations = json.dumps(lab.runtime.state.invocations(), ensure_ascii=False).encode("utf-8")
        state_files = lab.project.state_files()

    secrets = collect_secrets(secret_export, lab_passwords)
    assert len(lab_passwords) == 5 and any(k.endswith(".pfx") for k in secrets) and \
        any("private_key_pem" in k for k in secrets), sorted(secrets)
    assert len(state_files) >= 3, state_files  # the stack file, its backup and history checkpoints
    blobs = _state_blobs(state_files)
    blobs.update({f"cli:{k}": v.encode("utf-8") for k, v in runs.items()})
    spy = spy_log.read_bytes() if spy_log.exists() else b""
    blobs["python logs (all levels)"] = spy
    blobs["labsim invocations"] = invocations
    hits = scan(blobs, secrets)
    engine_hits = scan({"pulumi -v=9": verbose.encode("utf-8")}, secrets)
    # A scan that can find: run on the plaintext export, it finds every secret learnt from there.
    found_in_export = {label for _, label in scan({"export": json.dumps(unwrap(secret_export)).encode()}, secrets)}
    assert {label for label in secrets if not label.startswith("lab password")} <= found_in_export, \
        sorted(set(secrets) - found_in_export)

    figures.record_items("secrets", "secrets", [f"{label}: {len(forms)} form{'s' if len(forms) > 1 else ''}"
                                                for label, forms in secrets.items()])
    figures.record("secrets", "forms_searched", sum(len(f) for f in secrets.values()))
    figures.record("secrets", "found", len(hits))
    figures.record("secrets", "places_scanned", len(blobs))
    figures.record("secrets", "state_files", len(state_files))
    figures.record("secrets", "cli_commands", len(runs))
    figures.record("secrets", "engine_verbose_log_hits_not_counted", len(engine_hits))
    if engine_hits:
        figures.record("secrets", "note", "pulumi -v=9 --logflow prints provider inputs (passwords, PFX) in plain "
                                          "text by design of the engine: never use -v with real credentials")
    assert hits == [], hits

    # The spy saw the provider process's log records (pypsrp INFO among them), never a pypsrp record below INFO,
    # and pypsrp's effective level stayed >= INFO there.
    records = [json.loads(ln) for ln in spy.decode("utf-8").splitlines() if ln.strip()]
    provider = [r for r in records if "pulumi/dynamic/__main__" in r["argv"] or "pulumi.dynamic" in r["argv"]]
    wire = [r for r in provider if r["name"].split(".")[0] in ("pypsrp", "requests_credssp", "spnego")]
    assert wire, ("the spy saw no pypsrp record in the provider process (is the spy installed?)",
                  sorted({(r["argv"], r["name"].split(".")[0]) for r in records})[:20], len(records))
    below = [r for r in wire if r["level"] < logging.INFO]
    # The only records below INFO are spnego's import-time notes (before the transport module sets the levels).
    assert all(r["name"] == "spnego._gss" and "not available" in r["msg"] for r in below), below[:3]
    pypsrp_debug = [r for r in wire if r["name"].startswith("pypsrp") and r["level"] < logging.INFO]
    assert not pypsrp_debug, pypsrp_debug[:3]
    # From the moment the transport is in use (its first record), pypsrp's effective level stays >= INFO.
    in_use: set[int] = set()
    for r in provider:
        if r["name"].split(".")[0] in ("pypsrp", "providers"):
            in_use.add(r["pid"])
        if r["pid"] in in_use:
            assert r["pypsrp_level"] >= logging.INFO, r
    figures.record("secrets", "provider_log_records_scanned", len(provider))
    figures.record("secrets", "pypsrp_records_below_info", len(pypsrp_debug))

    # CredSSP (which hands the password to the host) went to the privileged endpoint only.
    assert schemes.hosts_with("credssp") == {"AzS-ERCS01"}, schemes.seen
    assert schemes.count("basic") == 0
    figures.record("transport_security", "e2e_credssp_hosts", ", ".join(sorted(schemes.hosts_with("credssp"))))
    figures.record_items("transport_security", "cases_passed", ["e2e: CredSSP to the privileged endpoint only"])
