"""Explicit instances of the dynamic-provider plugin, so that a lab's hosts are worked on in parallel.

Pulumi runs every dynamic resource of a stack in ONE provider process by default, and that process serves at most
4 calls at once (its gRPC server has 4 worker threads). The engine starts one plugin process per provider
*resource*, so the supported way to get more concurrent calls is explicit ``pulumi-python`` provider resources,
given to each dynamic resource with ``ResourceOptions(provider=...)``. Each process costs about 80 MB of resident
memory (Python, gRPC, pypsrp, cryptography: measured, docs/performance.md), so hosts are grouped: a host always
goes to the same process (one WinRM session pool per host), and hosts are dealt round-robin in the order given,
which the Lab makes role by role, so that hosts running the same long step at the same time are spread evenly
over the processes.

Moving a resource from one provider instance to another is not a replacement: the engine asks the new provider's
DiffConfig, which the dynamic provider does not implement ("no replace"), then diffs the resource as usual. So
stacks created with the default provider, or with another grouping, keep their resources (proven in
tests/e2e/test_lab_scale.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pulumi

PACKAGE = "pulumi-python"  # the package of pulumi.dynamic.Resource ("pulumi-python:dynamic:Resource")
HOSTS_PER_PROCESS = 2  # a host runs at most 2 long steps at once (certificate + bundle): 2 hosts fill 4 workers
# ~90 MB resident each, and a `--refresh` run holds two sets at once (the refresh's and the update's): 8 keep a
# 100-host lab's `up` near 1 GiB (docs/performance.md has the measurements).
MAX_PROCESSES = 8


def process_count(hosts: int, configured: int | None = None) -> int:
    """How many provider processes a lab of ``hosts`` WinRM hosts gets (``configured`` wins when set)."""
    if configured is not None:
        return max(1, configured)
    return max(1, min(MAX_PROCESSES, math.ceil(hosts / HOSTS_PER_PROCESS)))


class ProviderGroups:
    """``count`` provider resources named ``<name>-providers-<i>``; :meth:`for_host` picks a host's one."""

    def __init__(self, name: str, hosts: Sequence[str], *, count: int | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        ordered = list(dict.fromkeys(hosts))
        n = process_count(len(ordered), count)
        self.providers = [pulumi.ProviderResource(PACKAGE, f"{name}-providers-{i}", {}, opts) for i in range(n)]
        self._index = {host: i % n for i, host in enumerate(ordered)}

    def for_host(self, host: str) -> pulumi.ProviderResource:
        return self.providers[self._index[host] if host in self._index else 0]

    @property
    def first(self) -> pulumi.ProviderResource:
        """For resources that reach no host (the PKI)."""
        return self.providers[0]
