"""``labsim``: run the lab simulator and poke at it.

    labsim serve [--lab FILE] [--state-dir DIR] [--background [--pid-file F]]
    labsim stop | reset | invocations [HOST] | show HOST
    labsim exec HOST CMDLET [-Param value ...]      (an administrator's out-of-band change, over PSRP)
    labsim fault HOST down|slow SECONDS|auth-broken|wsman-fault|command-error CMD [MSG]|command-terminating CMD
                      |command-hang CMD|command-noop CMD|command-corrupt CMD|clear
    labsim make-bundle DIR                           (a fake WAPConnector bundle for the lab)

The lab file defaults to ``$LABSIM_LAB`` or the packaged seed example; the state directory to
``$LABSIM_STATE_DIR`` or ``.labsim/<lab name>`` under the current directory. Every command but ``serve``/``exec``
works on the state database directly, so it works whether or not the server runs (and a running server sees the
change on its next command).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labsim.lab import DEFAULT_LAB, Host, Lab, LabFileError, Role, load_lab

if TYPE_CHECKING:  # imported where used: the light commands do not load the runtime
    from labsim.hosts import LabRuntime

SERVER_FILE = "server.json"
PID_FILE = "labsim.pid"
LOG_FILE = "serve.log"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


# -- helpers ---------------------------------------------------------------------------------------------------
def _lab(args: argparse.Namespace) -> Lab:
    path = args.lab or os.environ.get("LABSIM_LAB") or str(DEFAULT_LAB)
    try:
        return load_lab(path)
    except LabFileError as exc:
        raise CliError(str(exc)) from None


def _state_dir(args: argparse.Namespace, lab: Lab) -> Path:
    chosen = args.state_dir or os.environ.get("LABSIM_STATE_DIR")
    return Path(chosen) if chosen else Path.cwd() / ".labsim" / lab.name


def _host(lab: Lab, name: str) -> Host:
    try:
        return lab.host(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None


def _runtime(lab: Lab, state_dir: Path) -> LabRuntime:
    from labsim.hosts import LabRuntime

    try:
        return LabRuntime.open(lab, state_dir)
    except ValueError as exc:  # state of another lab
        raise CliError(str(exc)) from None


def _server_info(state_dir: Path, lab: Lab) -> dict[str, Any]:
    path = state_dir / SERVER_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CliError(f"labsim is not running for lab {lab.name!r} (no {path}); start it with "
                       f"`labsim serve --lab FILE --state-dir {state_dir}`") from None
    if not _alive(int(info.get("pid", 0))):
        raise CliError(f"labsim is not running for lab {lab.name!r} (process {info.get('pid')} from {path} is gone)")
    return info


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child (e.g. of the test that started it) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# -- serve / stop -----------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    lab = _lab(args)
    state_dir = _state_dir(args, lab)
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.background:
        return _serve_background(args, lab, state_dir)
    from labsim.server import LabServer, LabServerError

    runtime = _runtime(lab, state_dir)
    server = LabServer(lab, runtime, state_dir)
    try:
        server.start()
    except LabServerError as exc:
        raise CliError(str(exc)) from None
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    info = {"pid": os.getpid(), "lab": lab.name, "ca_file": str(server.ca_file),
            "hosts": {h.name: {"address": h.address, "https_port": h.winrm.https_port,
                               "http_port": h.winrm.http_port} for h in lab.hosts}}
    tmp = state_dir / (SERVER_FILE + ".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, state_dir / SERVER_FILE)
    print(f"labsim: lab {lab.name} serving {len(lab.hosts)} hosts; CA {server.ca_file}; state {state_dir}", flush=True)
    try:
        done.wait()
    finally:
        server.stop()
        runtime.state.close()
        with_pid = state_dir / SERVER_FILE
        try:
            if json.loads(with_pid.read_text()).get("pid") == os.getpid():
                with_pid.unlink()
        except (OSError, ValueError):
            pass
        print("labsim: stopped", flush=True)
    return 0


def _serve_background(args: argparse.Namespace, lab: Lab, state_dir: Path) -> int:
    server_file = state_dir / SERVER_FILE
    if server_file.exists():
        try:
            old = json.loads(server_file.read_text()).get("pid", 0)
        except ValueError:
            old = 0
        if _alive(int(old)):
            raise CliError(f"labsim already runs for lab {lab.name!r} (pid {old}); `labsim stop` first")
        server_file.unlink()
    lab_file = args.lab or os.environ.get("LABSIM_LAB") or str(DEFAULT_LAB)
    argv = [sys.executable, "-m", "labsim", "serve", "--lab", lab_file, "--state-dir", str(state_dir)]
    log = open(state_dir / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    pid_file = Path(args.pid_file) if args.pid_file else state_dir / PID_FILE
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / LOG_FILE).read_text(errors="replace")[-2000:]
            raise CliError(f"labsim serve exited with code {proc.returncode}:\n{tail}")
        try:
            if json.loads(server_file.read_text()).get("pid") == proc.pid:
                print(f"labsim: serving lab {lab.name} in the background (pid {proc.pid}, log {state_dir / LOG_FILE})")
                return 0
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    proc.terminate()
    raise CliError(f"labsim serve did not become ready within 60 s; see {state_dir / LOG_FILE}")


def cmd_stop(args: argparse.Namespace) -> int:
    lab = _lab(args)
    state_dir = _state_dir(args, lab)
    pid = 0
    candidates = [Path(args.pid_file)] if args.pid_file else []
    candidates += [state_dir / SERVER_FILE, state_dir / PID_FILE]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        pid = int(json.loads(text)["pid"]) if path.suffix == ".json" else int(text.strip() or 0)
        if _alive(pid):
            break
        pid = 0
    if not pid:
        raise CliError(f"labsim is not running for lab {lab.name!r} (nothing alive in "
                       f"{', '.join(str(c) for c in candidates)})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        raise CliError(f"labsim (pid {pid}) did not stop within 15 s")
    for path in (state_dir / PID_FILE, *( [Path(args.pid_file)] if args.pid_file else [])):
        path.unlink(missing_ok=True)
    print(f"labsim: stopped pid {pid}")
    return 0


# -- state commands ------------------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    lab = _lab(args)
    host = _host(lab, args.host)
    from labsim.hosts import snapshot

    rt = _runtime(lab, _state_dir(args, lab))
    print(json.dumps(snapshot(rt.state, host), indent=2, sort_keys=True))
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    lab = _lab(args)
    _runtime(lab, _state_dir(args, lab)).state.reset()
    print(f"labsim: lab {lab.name} reset to its baseline")
    return 0


def cmd_invocations(args: argparse.Namespace) -> int:
    lab = _lab(args)
    host = _host(lab, args.host).name if args.host else None
    for row in _runtime(lab, _state_dir(args, lab)).state.invocations(host=host):
        print(json.dumps(row))
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    from labsim.runtime import Fault

    lab = _lab(args)
    host = _host(lab, args.host)
    state = _runtime(lab, _state_dir(args, lab)).state
    kind, rest = args.kind, args.rest
    need = {"down": 0, "auth-broken": 0, "wsman-fault": 0, "clear": 0, "slow": 1, "command-terminating": 1,
            "command-hang": 1, "command-noop": 1, "command-corrupt": 1}
    if kind == "command-error":
        if not 1 <= len(rest) <= 2:
            raise CliError("usage: labsim fault HOST command-error CMD [MESSAGE]")
    elif kind not in need:
        raise CliError(f"unknown fault {kind!r}: down | slow SECONDS | auth-broken | wsman-fault | "
                       f"command-error CMD [MSG] | "
                       f"command-terminating CMD | command-hang CMD | command-noop CMD | command-corrupt CMD | clear")
    elif len(rest) != need[kind]:
        raise CliError(f"fault {kind} takes {need[kind]} argument(s), got {len(rest)}")
    if kind == "clear":
        state.clear_faults(host.name)
        print(f"labsim: faults of {host.name} cleared")
        return 0
    if kind == "slow":
        try:
            fault = Fault(host=host.name, kind="slow", seconds=float(rest[0]))
        except ValueError:
            raise CliError(f"slow takes a number of seconds, not {rest[0]!r}") from None
    elif kind.startswith("command-"):
        fault = Fault(host=host.name, kind=kind.replace("-", "_"), command=rest[0],
                      message=rest[1] if len(rest) > 1 else None)
    else:
        fault = Fault(host=host.name, kind=kind.replace("-", "_"))
    state.set_fault(fault)
    print(f"labsim: {host.name}: {kind} {' '.join(rest)}".rstrip())
    return 0


def cmd_make_bundle(args: argparse.Namespace) -> int:
    from labsim.hosts.wapconnector import make_bundle

    print(make_bundle(args.dir))
    return 0


# -- stack-config ------------------------------------------------------------------------------------------------------
def cmd_stack_config(args: argparse.Namespace) -> int:
    import shutil

    from labsim.stack_config import write_stack_config

    try:
        lab = load_lab(args.lab_file)
    except LabFileError as exc:
        raise CliError(str(exc)) from None
    project_dir = Path(args.project_dir).resolve()
    if not (project_dir / "Pulumi.yaml").exists():
        raise CliError(f"{project_dir} has no Pulumi.yaml: run from the project, or pass --project-dir")
    if shutil.which("pulumi") is None:
        raise CliError("the pulumi CLI is not on PATH: run `make bootstrap`, then `. scripts/env.sh`")
    state_dir = (Path(args.state_dir).resolve() if getattr(args, "state_dir", None)
                 else project_dir / ".labsim" / lab.name)
    bundle_dir = Path(args.bundle_dir).resolve() if args.bundle_dir else project_dir / ".labsim" / "bundle"
    try:
        path = write_stack_config(lab, Path(args.lab_file), stack=args.stack, project_dir=project_dir,
                                  state_dir=state_dir, bundle_dir=bundle_dir)
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    print(f"labsim: wrote {path}; `STACK={args.stack} make up` serves lab {lab.name} and deploys it")
    return 0


# -- exec --------------------------------------------------------------------------------------------------------------
def parse_exec_args(tokens: list[str]) -> list[tuple[str | None, Any]]:
    """``-Name value`` pairs, ``-Switch`` alone, bare words positional. Values: ints, $true/$false, else strings."""
    out: list[tuple[str | None, Any]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok):
            name = tok[1:].rstrip(":")
            if i + 1 < len(tokens) and not (tokens[i + 1].startswith("-") and not _is_number(tokens[i + 1])):
                out.append((name, _value(tokens[i + 1])))
                i += 2
            else:
                out.append((name, True))
                i += 1
        else:
            out.append((None, _value(tok)))
            i += 1
    return out


def _is_number(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


def _value(s: str) -> Any:
    if _is_number(s):
        return int(s)
    if s.lower() in ("$true", "$false"):
        return s.lower() == "$true"
    return s


def _plain(obj: Any) -> Any:
    """pypsrp's deserialized objects as JSON-able values."""
    from pypsrp.complex_objects import GenericComplexObject

    if isinstance(obj, GenericComplexObject):
        props = dict(obj.adapted_properties) | dict(obj.extended_properties)
        if props:
            return {k: _plain(v) for k, v in props.items()}
        if obj.property_sets:  # a list or dictionary of a type pypsrp does not know, kept as pypsrp gives it
            return [_plain(v) for v in obj.property_sets]
        return obj.to_string
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (bytes, bytearray)):
        return list(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def cmd_exec(args: argparse.Namespace) -> int:
    from pypsrp.exceptions import WinRMError
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    lab = _lab(args)
    host = _host(lab, args.host)
    state_dir = _state_dir(args, lab)
    info = _server_info(state_dir, lab)
    user = host.users[0]
    offered = [a.value for a in host.winrm.auth]
    auth = next(a for a in ("basic", "negotiate", "credssp") if a in offered)
    https = host.winrm.https_port is not None
    port = host.winrm.https_port if https else host.winrm.http_port
    wsman = WSMan(host.address, port=port, ssl=https, auth=auth, username=user.name, password=user.password,
                  cert_validation=info["ca_file"] if https else False,
                  encryption="never" if (auth == "basic" and not https) else "auto",
                  operation_timeout=min(20, int(lab.settings.operation_timeout)), read_timeout=30,
                  connection_timeout=10)
    configuration = "PrivilegedEndpoint" if host.has(Role.PRIVILEGED_ENDPOINT) else "Microsoft.PowerShell"
    try:
        with RunspacePool(wsman, configuration_name=configuration) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet(args.cmdlet)  # a structured command: name plus typed parameters, never script text
            for name, value in parse_exec_args(args.params):
                if name is None:
                    ps.add_argument(value)
                else:
                    ps.add_parameter(name, value)
            ps.invoke()
    except WinRMError as exc:
        raise CliError(f"cannot run {args.cmdlet} on {host.name} ({host.address}:{port}): {exc}") from None
    for obj in ps.output:
        print(json.dumps(_plain(obj)))
    for record in ps.streams.verbose:
        print(f"VERBOSE: {record.message}", file=sys.stderr)
    for error in ps.streams.error:
        print(f"ERROR: {error}  ({error.fq_error})", file=sys.stderr)
    return 1 if ps.had_errors or ps.streams.error else 0


# -- entry point -------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    def options(default: Any) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(add_help=False)
        p.add_argument("--lab", default=default, help="lab file (default: $LABSIM_LAB or the packaged seed example)")
        p.add_argument("--state-dir", default=default,
                       help="state directory (default: $LABSIM_STATE_DIR or .labsim/<lab name>)")
        return p

    # Subcommands must not reset what was given before them: their copies default to SUPPRESS.
    common = options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="labsim", description="WinRM/PSRP lab simulator for the WAP Connector "
                                     "procedure", parents=[options(None)])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", parents=[common], help="run the lab's hosts")
    p.add_argument("--background", action="store_true", help="detach; `labsim stop` ends it")
    p.add_argument("--pid-file", help="with --background: where to write the server's pid")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("stop", parents=[common], help="stop a background server")
    p.add_argument("--pid-file")
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("show", parents=[common], help="a host's state as JSON")
    p.add_argument("host")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("exec", parents=[common], help="run one structured command on a host over PSRP")
    p.add_argument("host")
    p.add_argument("cmdlet")
    p.add_argument("params", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)
    p = sub.add_parser("fault", parents=[common], help="flip a run-time fault on a host")
    p.add_argument("host")
    p.add_argument("kind")
    p.add_argument("rest", nargs="*")
    p.set_defaults(func=cmd_fault)
    p = sub.add_parser("invocations", parents=[common], help="commands run so far (JSON lines)")
    p.add_argument("host", nargs="?")
    p.set_defaults(func=cmd_invocations)
    p = sub.add_parser("reset", parents=[common], help="put every host back to its baseline")
    p.set_defaults(func=cmd_reset)
    p = sub.add_parser("stack-config", parents=[common],
                       help="write stacks/Pulumi.<stack>.yaml that deploys this lab (passwords as Pulumi secrets)")
    p.add_argument("lab_file")
    p.add_argument("--stack", required=True)
    p.add_argument("--project-dir", default=".", help="the Pulumi project (default: the current directory)")
    p.add_argument("--bundle-dir", help="where `labsim make-bundle` writes the fake bundle (default .labsim/bundle)")
    p.set_defaults(func=cmd_stack_config)
    p = sub.add_parser("make-bundle", help="write a fake WAPConnector bundle into DIR")
    p.add_argument("dir")
    p.set_defaults(func=cmd_make_bundle)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"labsim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
