"""What a host reaches: ping (ICMP) and a TCP port, asked on that host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.facts import Fact, as_pipelines, first_bool
from providers.transport import Command, Pipeline


@dataclass(frozen=True)
class Ping(Fact[bool | None]):
    fqdn: str

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Test-Connection", {"ComputerName": [self.fqdn], "Count": 1}, ["Quiet"]))

    def parse(self, objects: Sequence[Any]) -> bool | None:
        return first_bool(objects)


@dataclass(frozen=True)
class TcpPort(Fact[bool | None]):
    fqdn: str
    port: int

    def statements(self) -> list[Pipeline]:
        return as_pipelines(Command("Test-NetConnection", {"ComputerName": self.fqdn, "Port": self.port,
                                                           "InformationLevel": "Quiet"}))

    def parse(self, objects: Sequence[Any]) -> bool | None:
        return first_bool(objects)
