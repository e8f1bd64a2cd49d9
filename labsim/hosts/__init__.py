"""Host behaviour: what each simulated host is and what each command does (docs/host-contract.md).

:class:`LabRuntime` implements :class:`labsim.runtime.HostRuntime`. Each role contributes a command table
(one module per area); a session sees the union of its host's tables, or the PEP's allow-list on a
``PrivilegedEndpoint`` session. State lives in :class:`labsim.state.LabState`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from labsim import windows
from labsim.hosts import baseline, certs, files, iis, mgmtsvc, paths, pep, system, utility, wapconnector
from labsim.hosts.base import (
    NOT_IMPLEMENTED,
    OBJECT_NOT_FOUND,
    CommandSpec,
    Ctx,
    Recorded,
    bind,
    check_mandatory,
    error_action_of,
    redact,
)
from labsim.lab import Host, Lab, Role
from labsim.pki import LabCA, lab_ca
from labsim.runtime import (
    Command,
    Fault,
    HttpsBinding,
    Invocation,
    PipelineSink,
    PipelineStopped,
    Session,
    TerminatingError,
)
from labsim.state import SHARE_HOST, LabState, files_summary
from labsim.windows import WindowsRelease

__all__ = ["LabRuntime", "Recorded", "PEP_CONFIGURATION"]

PEP_CONFIGURATION = "PrivilegedEndpoint"

_COMMON = files.COMMANDS | certs.COMMANDS | utility.COMMANDS | system.COMMANDS
_WAP = (iis.COMMANDS | mgmtsvc.COMMANDS | wapconnector.PACKAGE_COMMANDS | wapconnector.PROCESS_COMMANDS
        | system.SQL_COMMANDS)
_PEP = pep.COMMANDS | {k: v for k, v in utility.COMMANDS.items() if k in utility.PEP_VISIBLE}
_SCRIPT_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\).*\.ps1$", re.IGNORECASE)


@functools.cache
def as_on(spec: CommandSpec, release: WindowsRelease) -> CommandSpec:
    """The command as ``release`` has it: without the parameters that came later (labsim/windows.py)."""
    params = tuple(p for p in spec.params if windows.parameter_exists(spec.name, p.name, release))
    return spec if params == spec.params else dataclasses.replace(spec, params=params)


def _not_recognized(name: str) -> TerminatingError:
    """Windows' CommandNotFoundException; its record names the command only as TargetObject (no InvocationInfo,
    an empty Activity: ``records.error_record``), so nothing downstream may read the command from elsewhere."""
    return TerminatingError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
        f"Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
        error_id="CommandNotFoundException", category=OBJECT_NOT_FOUND,
        exception_type="System.Management.Automation.CommandNotFoundException", target=name)


class LabRuntime:
    """Every host of one lab, over one state database."""

    def __init__(self, lab: Lab, state: LabState, ca: LabCA) -> None:
        self.lab = lab
        self.state = state
        self.ca = ca
        state.seed(lab.name, baseline.build(lab, ca))

    @classmethod
    def open(cls, lab: Lab, state_dir: str | Path) -> LabRuntime:
        """The runtime over ``<state_dir>/lab.sqlite3`` with the lab CA the protocol layer uses too
        (``<state_dir>/pki``): the factory ``labsim.testing.start_labsim`` and ``labsim serve`` call."""
        return cls(lab, LabState.in_dir(state_dir), lab_ca(Path(state_dir), lab))

    # -- HostRuntime ---------------------------------------------------------------------------------------------
    def wire_event(self, host: str, kind: str) -> None:
        """The protocol layer opened a runspace pool or started a pipeline (counted in the state)."""
        self.state.count_wire(self.lab.host(host).name, kind)

    def faults(self, host: str) -> list[Fault]:
        return self.state.faults(self.lab.host(host).name)

    def https_bindings(self) -> list[HttpsBinding]:
        out = []
        view = self.state.read()
        for host in self.lab.hosts:
            doc = view.doc(host.name)
            for site in sorted(doc.get("sites", {}).values(), key=lambda s: s["id"]):
                if site["state"] != "Started":  # a stopped IIS site does not listen
                    continue
                for b in site["bindings"]:
                    if b["protocol"] != "https" or not b.get("certificateHash"):
                        continue
                    entry = certs.find(doc, b.get("certificateStoreName") or "My", b["certificateHash"])
                    if not entry or not entry.get("key"):
                        continue
                    leaf = certs.load(entry["der"])
                    chain = leaf.public_bytes(serialization.Encoding.PEM) + self._issuer_chain(doc, leaf)
                    out.append(HttpsBinding(host=host.name, address=host.address, port=iis.binding_port(b),
                                            site=site["name"], cert_pem=chain, key_pem=entry["key"].encode(),
                                            thumbprint=b["certificateHash"]))
        return out

    @staticmethod
    def _issuer_chain(doc: dict[str, Any], leaf: x509.Certificate) -> bytes:
        if certs.is_self_signed(leaf):
            return b""
        for store in ("CA", "Root"):
            for entry in doc.get("certs", {}).get(store, {}).values():
                c = certs.load(entry["der"])
                if c.subject == leaf.issuer:
                    return c.public_bytes(serialization.Encoding.PEM)
        return b""

    def run_pipeline(self, session: Session, statements: list[list[Command]], input: list[Any],
                     sink: PipelineSink) -> None:
        host = self.lab.host(session.host)
        table = self.commands_for(host, session)
        pending_input = list(input)
        for statement in statements:
            data = pending_input
            pending_input = []
            for i, command in enumerate(statement):
                data = self._run_command(session, host, table, command, data, sink, last=i == len(statement) - 1,
                                         position=i + 1, length=len(statement))

    # -- commands -----------------------------------------------------------------------------------------------
    def commands_for(self, host: Host, session: Session) -> dict[str, CommandSpec]:
        if host.has(Role.PRIVILEGED_ENDPOINT) or session.configuration == PEP_CONFIGURATION:
            return dict(_PEP) if host.has(Role.PRIVILEGED_ENDPOINT) else {}
        table = dict(_COMMON)
        if host.is_wap:
            table |= _WAP
        # Only what the host's Windows PowerShell has: a later cmdlet is not recognized there.
        return {k: s for k, s in table.items() if windows.cmdlet_exists(s.name, host.release)}

    def _resolve(self, host: Host, session: Session, table: dict[str, CommandSpec], command: Command) -> CommandSpec:
        spec = table.get(command.name.lower())
        if spec is not None:
            return spec
        if _SCRIPT_PATH.match(command.name) and host.is_wap and session.configuration != PEP_CONFIGURATION:
            p = paths.parse(command.name, host.name)
            exists = p.kind == "fs" and self.can_see(host, p.fs_host) and self.state.read().file(p.fs_host, p.path)
            if exists and not exists.is_dir:
                script = wapconnector.SCRIPTS.get(paths.leaf(p.path).lower())
                if script is None:
                    raise TerminatingError(f"labsim cannot run {command.name}: only the WAPConnector scripts are "
                                           f"emulated.", error_id="LabsimUnknownScript", category=NOT_IMPLEMENTED)
                return script
        raise _not_recognized(command.name)

    def _run_command(self, session: Session, host: Host, table: dict[str, CommandSpec], command: Command,
                     data: list[Any], sink: PipelineSink, last: bool, position: int = 1,
                     length: int = 1) -> list[Any]:
        invocation = Invocation(name=command.name, kind="Script" if command.is_script else "Cmdlet",
                                position=position, length=length)
        record = self.state.record_start(
            host=host.name, user=session.user, configuration=session.configuration, command=command.name,
            parameters=[[n, redact(n, v)] for n, v in command.parameters])
        pep_session = host.has(Role.PRIVILEGED_ENDPOINT) or session.configuration == PEP_CONFIGURATION
        try:
            if command.is_script:
                if pep_session:
                    raise pep.scripts_not_allowed(command.name)
                raise TerminatingError("labsim runs structured commands only; script text is not emulated.",
                                       error_id="ScriptsNotSupportedByLabsim", category=NOT_IMPLEMENTED)
            spec = self._resolve(host, session, table, command)
            invocation = Invocation(name=command.name, kind=spec.kind, position=position, length=length)
            if pep_session:
                args, common = bind(spec, command.parameters)
            else:  # a parameter the host's PowerShell lacks is not found, as Windows says
                args, common = bind(as_on(spec, host.release), command.parameters,
                                    windows.common_parameters(host.release))
            check_mandatory(spec, args, common.pop("_sets"))
            invocation = Invocation(name=command.name, kind=spec.kind, parameters=tuple(args.items()),
                                    position=position, length=length)
            ctx = Ctx(self, session, host, sink, spec, command.name, data, error_action_of(spec, common), last,
                      invocation=invocation)
            if not self._apply_faults(ctx, host, spec, command, args):
                pass  # command_noop: success, nothing done
            elif spec.input_mode == "each" and data:
                for item in data:
                    self._call(ctx, spec, args | {spec.pipeline_param: item} if spec.pipeline_param else args)
            else:
                self._call(ctx, spec, args)
        except TerminatingError as exc:
            self.state.record_end(record, "failed", exc.message)
            if exc.invocation is None:
                exc.invocation = invocation
            raise
        except PipelineStopped:
            self.state.record_end(record, "stopped")
            raise
        except Exception as exc:  # a labsim bug: fail the pipeline with a clear message, never hang the client
            self.state.record_end(record, "failed", repr(exc))
            raise TerminatingError(f"labsim internal error in {command.name}: {exc!r}", error_id="LabsimInternalError",
                                   category=7, invocation=invocation) from exc
        self.state.record_end(record, "error" if ctx.had_error else "ok")
        return ctx.outputs

    @staticmethod
    def _call(ctx: Ctx, spec: CommandSpec, args: dict[str, Any]) -> None:
        result = spec.handler(ctx, args)
        if result is not None:
            for value in result:
                ctx.emit(value)

    def _apply_faults(self, ctx: Ctx, host: Host, spec: CommandSpec, command: Command, args: dict[str, Any]) -> bool:
        """Apply the command faults aimed at this command; False: the command must not run (command_noop)."""
        names = {command.name.lower(), spec.name.lower(), paths.leaf(command.name).lower()}
        run = True
        for fault in self.state.faults(host.name):
            if not fault.command or fault.command.lower() not in names:
                continue
            fq = f"LabsimFault,{spec.name}"
            if fault.kind == "command_terminating":
                raise TerminatingError(fault.message or f"labsim fault: {spec.name} failed", error_id=fq, category=7,
                                       target=spec.name)
            if fault.kind == "command_hang":
                ctx.sink.stop_requested.wait()
                raise PipelineStopped()
            if fault.kind == "command_error":
                ctx.error(fault.message or f"labsim fault: {spec.name} failed", error_id=fq, category=0,
                          target=spec.name)
            if fault.kind == "command_noop":
                run = False
            if fault.kind == "command_corrupt":
                for name, value in list(args.items()):
                    if isinstance(value, (bytes, bytearray)) and value:
                        args[name] = bytes(value[:-1])
        return run

    # -- visibility, snapshots ---------------------------------------------------------------------------------------
    def can_see(self, host: Host, fs_host: str) -> bool:
        return fs_host == host.name or (fs_host == SHARE_HOST and host.has(Role.ASDK_HOST)
                                        and host.conditions.sees_share)

    def snapshot(self, host_name: str, baseline: bool = False) -> dict[str, Any]:
        """The host's state now (or its baseline): what `labsim show` prints and tests compare."""
        return snapshot(self.state, self.lab.host(host_name), baseline)


def snapshot(state: LabState, host: Host, baseline: bool = False) -> dict[str, Any]:
    """Deterministic, JSON-able state of one host (private keys reduced to has_private_key)."""
    view = state.read(baseline)
    doc = view.doc(host.name)
    out: dict[str, Any] = {"host": host.name, "roles": sorted(r.value for r in host.roles),
                           "windows": host.release.describe()}
    stores: dict[str, dict[str, Any]] = {}
    for store, entries in sorted(doc.get("certs", {}).items()):
        stores[store] = {}
        for thumb in sorted(entries):
            c = certs.load(entries[thumb]["der"])
            stores[store][thumb] = {"subject": certs.windows_name(c.subject), "issuer": certs.windows_name(c.issuer),
                                    "not_after": c.not_valid_after_utc.isoformat(),
                                    "has_private_key": bool(entries[thumb].get("key"))}
    if stores:
        out["certs"] = stores
    if "registry" in doc:
        out["registry"] = {e["path"]: dict(sorted(e["values"].items()))
                           for _, e in sorted(doc["registry"].items())}
    for key in ("sites", "mgmtsvc", "sql", "msi"):
        if key in doc:
            out[key] = doc[key]
    if "pep" in doc:
        out["pep"] = {k: v for k, v in doc["pep"].items() if k != "token_signing_der"}
    out["files"] = files_summary(view, host.name)
    if host.has(Role.ASDK_HOST) or host.has(Role.PRIVILEGED_ENDPOINT):
        out["share"] = files_summary(view, SHARE_HOST)
    return out
