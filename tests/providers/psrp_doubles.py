"""A test host runtime for the transport tests: labsim's EchoRuntime plus a cmdlet that behaves like
Add-AzurePackConnector (prints the success line, then keeps polling until stopped)."""

from __future__ import annotations

from typing import Any

from labsim.runtime import PipelineSink, PipelineStopped, Session
from tests.labsim.protocol_doubles import EchoRuntime

SUCCESS = "Step 'Configure Azure Pack Connector' status: 'Success'"


class ConnectorRuntime(EchoRuntime):
    """EchoRuntime plus a cmdlet shaped like Add-AzurePackConnector: progress lines, the success line, then
    polling until stopped."""

    def _add_azurepackconnector(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                                sink: PipelineSink) -> None:
        sink.verbose("Step 'Validate parameters' status: 'Success'")
        if params.get("Never"):
            lines = []
        else:
            lines = [SUCCESS]
        for line in lines:
            sink.verbose(line)
        while True:
            sink.verbose("Waiting for the deployment to finish...")
            if sink.stop_requested.wait(0.2):
                self.stopped.set()
                raise PipelineStopped()

    def _finish_quietly(self, session: Session, params: dict[str, Any], positional: list[Any], input: list[Any],
                        sink: PipelineSink) -> None:
        sink.verbose("nothing to see")
        sink.output("finished")
