"""Shared helpers for the host-behaviour tests: a runtime on a temporary lab database and a tiny way to run
structured pipelines in memory, as the protocol layer would."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labsim.hosts import LabRuntime, Recorded
from labsim.hosts.wapconnector import make_bundle
from labsim.lab import DEFAULT_LAB, Lab, load_lab
from labsim.runtime import Command, PipelineStopped, Session, TerminatingError

WAP = "wapcomputer1"
WAP_USER = "CONTOSO\\WapAdmin"
PEP = "AzS-ERCS01"
ASDK = "AzS-HOST"
WASP = "AzS-WASP01"
BUNDLE_ROOT = "C:\\temp\\WAPConnector"
SCRIPTS = BUNDLE_ROOT + "\\Setup\\Scripts"


def default_lab(**wap_overrides: Any) -> Lab:
    data = load_lab(DEFAULT_LAB).model_dump(mode="json")
    data["settings"]["pep_polling_seconds"] = 0.3
    for host in data["hosts"]:
        if host["name"] == WAP and wap_overrides:
            host["wap"] = (host.get("wap") or {}) | wap_overrides
    return Lab.model_validate(data)


def session(host: str = WAP, user: str = WAP_USER, configuration: str = "Microsoft.PowerShell") -> Session:
    return Session(host=host, user=user, configuration=configuration, auth="basic", shell_id="TEST")


def pep_session() -> Session:
    return Session(host=PEP, user="AZURESTACK\\CloudAdmin", configuration="PrivilegedEndpoint", auth="credssp",
                   shell_id="PEP")


@dataclass
class Result:
    sink: Recorded
    error: TerminatingError | None = None
    stopped: bool = False

    @property
    def outputs(self) -> list[Any]:
        return self.sink.outputs

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.sink.errors

    def ok(self) -> Result:
        assert self.error is None, f"terminating error: {self.error.message} ({self.error.error_id})"
        assert not self.sink.errors, f"errors: {self.sink.errors}"
        return self

    def failed(self) -> TerminatingError:
        assert self.error is not None, f"no terminating error; outputs: {self.outputs}"
        return self.error


def cmd(name: str, *positional: Any, script: bool = False, **params: Any) -> Command:
    parameters: list[tuple[str | None, Any]] = [(None, v) for v in positional]
    parameters += [(k, v) for k, v in params.items()]
    return Command(name=name, is_script=script, parameters=parameters)


def run(rt: LabRuntime, sess: Session, *commands: Command, input: list[Any] | None = None,
        sink: Recorded | None = None, statements: list[list[Command]] | None = None) -> Result:
    sink = sink or Recorded()
    result = Result(sink)
    try:
        rt.run_pipeline(sess, statements or [list(commands)], list(input or []), sink)
    except TerminatingError as exc:
        result.error = exc
    except PipelineStopped:
        result.stopped = True
    return result


def run_in_thread(rt: LabRuntime, sess: Session, *commands: Command) -> tuple[threading.Thread, Recorded, list]:
    sink = Recorded()
    box: list[Result] = []
    thread = threading.Thread(target=lambda: box.append(run(rt, sess, *commands, sink=sink)), daemon=True)
    thread.start()
    return thread, sink, box


def stage_file(rt: LabRuntime, sess: Session, local: Path, remote: str, chunk: int = 32 * 1024) -> None:
    """Chunked staging the way a structured client does it: Set-Content the first chunk, Add-Content the rest."""
    data = local.read_bytes()
    first = True
    for i in range(0, max(len(data), 1), chunk):
        name = "Set-Content" if first else "Add-Content"
        run(rt, sess, cmd(name, Path=remote, Value=data[i:i + chunk], Encoding="Byte")).ok()
        first = False


def stage_bundle(rt: LabRuntime, tmp_path: Path, sess: Session | None = None, root: str = BUNDLE_ROOT) -> Path:
    sess = sess or session()
    local = make_bundle(tmp_path / "bundle")
    for path in sorted(local.rglob("*")):
        remote = root + "\\" + "\\".join(path.relative_to(local).parts)
        if path.is_dir():
            run(rt, sess, cmd("New-Item", Path=remote, ItemType="Directory", Force=True)).ok()
        else:
            stage_file(rt, sess, path, remote)
    return local


@pytest.fixture
def lab() -> Lab:
    return default_lab()


@pytest.fixture
def rt(tmp_path: Path, lab: Lab) -> LabRuntime:
    return LabRuntime.open(lab, tmp_path / "state")


def count_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds of every ``Ctx.sleep`` from now on (each still slept), for tests of how long a host waits."""
    from labsim.hosts.base import Ctx

    waits: list[float] = []
    sleep = Ctx.sleep

    def counted(ctx: Ctx, seconds: float) -> None:
        waits.append(seconds)
        sleep(ctx, seconds)

    monkeypatch.setattr(Ctx, "sleep", counted)
    return waits
