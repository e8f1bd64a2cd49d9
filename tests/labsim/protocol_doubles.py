"""Test doubles for labsim's protocol tests: a small HostRuntime with a handful of cmdlets, and an in-memory
pypsrp transport that hands envelopes straight to a WSManService (no sockets)."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

from pypsrp.exceptions import WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

from labsim.envelope import Principal
from labsim.runtime import (
    Command,
    Fault,
    HttpsBinding,
    PipelineSink,
    PipelineStopped,
    PSObject,
    Session,
    TerminatingError,
)
from labsim.wsman import WSManService


class EchoRuntime:
    """A HostRuntime with test cmdlets. Records every invocation; faults and bindings are settable."""

    def __init__(self) -> None:
        self.calls: list[tuple[Session, list[list[Command]], list[Any]]] = []
        self.stopped = threading.Event()  # set when Sleep-Until-Stopped noticed the stop
        self.fault_list: list[Fault] = []
        self.bindings: list[HttpsBinding] = []
        self._lock = threading.Lock()

    # -- HostRuntime ---------------------------------------------------------------------------------------
    def run_pipeline(self, session: Session, statements: list[list[Command]], input: list[Any],
                     sink: PipelineSink) -> None:
        with self._lock:
            self.calls.append((session, statements, input))
        for statement in statements:
            for cmd in statement:
                params = {name: value for name, value in cmd.parameters if name is not None}
                positional = [value for name, value in cmd.parameters if name is None]
                getattr(self, "_" + cmd.name.replace("-", "_").lower())(session, params, positional, input, sink)

    def https_bindings(self) -> list[HttpsBinding]:
        return list(self.bindings)

    def faults(self, host: str) -> list[Fault]:
        return [f for f in self.fault_list if f.host == host]

    # -- cmdlets -------------------------------------------------------------------------------------------
    def _echo_object(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                     sink: PipelineSink) -> None:
        for value in positional + list(input):
            sink.output(value)
        if "InputObject" in params:
            sink.output(params["InputObject"])

    _write_output = _echo_object  # what the transport writes between statements (Result.outputs)

    def _get_session(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                     sink: PipelineSink) -> None:
        sink.output(PSObject({"Host": session.host, "User": session.user, "Configuration": session.configuration,
                              "Auth": session.auth}, type_names=["Labsim.Session",
                                                                 "System.Management.Automation.PSCustomObject"]))

    def _describe_parameters(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                             sink: PipelineSink) -> None:
        """Output one object per parameter: its name, Python type name and (non-secret) value."""
        for name, value in params.items():
            sink.output({"Name": name, "Type": type(value).__name__,
                         "Value": "****" if type(value).__name__ == "SecretStr" else value})

    def _reveal_secret(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                       sink: PipelineSink) -> None:
        value = params["Secret"]
        if isinstance(value, dict):  # a PSCredential
            sink.output({"UserName": value["UserName"], "Password": str(value["Password"]),
                         "IsSecret": type(value["Password"]).__name__})
        else:
            sink.output({"Password": str(value), "IsSecret": type(value).__name__})

    def _write_error(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                     sink: PipelineSink) -> None:
        sink.error(params.get("Message", "a non-terminating error"), error_id=params.get("ErrorId", "TestError"),
                   category=int(params.get("Category", 13)), target=params.get("Target"))
        sink.output("after the error")

    def _write_streams(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                       sink: PipelineSink) -> None:
        sink.verbose("verbose text")
        sink.warning("warning text")
        sink.information("information text")
        sink.output("done")

    def _throw_error(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                     sink: PipelineSink) -> None:
        sink.output("before the throw")
        raise TerminatingError(params.get("Message", "it failed"), error_id=params.get("ErrorId", "ThrowError"),
                               category=int(params.get("Category", 7)))

    def _sleep_until_stopped(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                             sink: PipelineSink) -> None:
        sink.output("sleeping")
        deadline = time.monotonic() + float(params.get("Seconds", 30))
        while time.monotonic() < deadline:
            if sink.stop_requested.wait(0.02):
                self.stopped.set()
                raise PipelineStopped()
        sink.output("woke up")

    def _get_large(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                   sink: PipelineSink) -> None:
        size = int(params["Bytes"])
        count = int(params.get("Count", 1))
        for i in range(count):
            sink.output(chr(ord("a") + i % 26) * size)

    def _measure_input(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                       sink: PipelineSink) -> None:
        blob = params.get("Blob")
        sink.output({"Length": len(blob) if blob is not None else 0, "InputCount": len(input)})

    def _crash(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
               sink: PipelineSink) -> None:
        raise RuntimeError("the behaviour layer has a bug")


class InMemoryTransport:
    """Stands in for pypsrp's HTTP transport: every envelope goes straight into a WSManService."""

    def __init__(self, service: WSManService, principal: Principal) -> None:
        self.service = service
        self.principal = principal
        self.endpoint = "https://lab.test:5986/wsman"

    def send(self, message: bytes, *, retries_on_read_timeout: int = 0, timeout: Any = None) -> bytes:
        reply = self.service.handle(message, self.principal, self.endpoint)
        if reply.status != 200:
            raise WinRMTransportError("http", reply.status, reply.body.decode())
        return reply.body

    def close(self) -> None:
        pass


def in_memory_wsman(service: WSManService, user: str = "LAB\\admin", auth: str = "negotiate",
                    operation_timeout: int = 5) -> WSMan:
    wsman = WSMan("lab.test", ssl=True, auth="basic", username=user, password="unused",
                  operation_timeout=operation_timeout)
    # pypsrp types the attribute as its HTTP transport; this stand-in has the send/close it calls.
    wsman.transport = InMemoryTransport(service, Principal(user, auth))  # type: ignore[assignment]
    return wsman


def envelope(action: str, *, shell_id: str | None = None,
             resource_uri: str = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
             body: ET.Element | None = None, timeout: str | None = None) -> bytes:
    """A request built with pypsrp's own header builder, for requests the client would never send by itself
    (a missing selector, a bad timeout, a shell already deleted)."""
    wsman = WSMan("lab.test", ssl=True, auth="basic", username="u", password="p")
    selectors = None
    if shell_id is not None:
        selectors = SelectorSet()
        selectors.add_option("ShellId", shell_id)
    _, header = wsman._create_header(action, resource_uri, selector_set=selectors)
    if timeout is not None:
        operation_timeout = header.find(f"{{{NAMESPACES['wsman']}}}OperationTimeout")
        assert operation_timeout is not None
        operation_timeout.text = timeout
    env = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
    env.append(header)
    b = ET.SubElement(env, f"{{{NAMESPACES['s']}}}Body")
    if body is not None:
        b.append(body)
    return ET.tostring(env)


def run(pool: RunspacePool, cmdlet: str, *args: Any, input: list[Any] | None = None, **params: Any) -> PowerShell:
    """Invoke one cmdlet with positional arguments and named parameters on a pypsrp pool; the finished
    PowerShell (its output, streams and state)."""
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for a in args:
        ps.add_argument(a)
    for k, v in params.items():
        ps.add_parameter(k, v)
    # pypsrp sends any value that is not a generator as the input (a list: one object each); its hint says bytes.
    ps.invoke(input=input)  # type: ignore[arg-type]
    return ps
