"""What every test tier shares: Hypothesis profiles, Pulumi's runtime settings left as found, and labsim with the
real transport (the sim tier).

Hypothesis: ``make test`` (and CI) runs the property tests derandomized: the same examples every run, so a red CI
run is reproducible and a green one stays green. ``make reliability`` and ``HYPOTHESIS_PROFILE=explore`` draw
fresh random examples every run, which is how new counterexamples are found; one that is found becomes a fixed
test.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pulumi.runtime.settings
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from labsim.server import LabServer
    from providers.transport import PsrpTransport

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def _engine_or_monitor_set() -> bool:
    settings = pulumi.runtime.settings.SETTINGS
    return settings.engine is not None or settings.monitor is not None


@pytest.fixture(autouse=True)
def _pulumi_runtime_left_as_found() -> Iterator[None]:
    """Pulumi's runtime settings are process-wide: an inline Automation API program (or the mocks) leaves the
    engine's address behind, and a later test that calls a provider directly would send its pulumi.log lines to
    that dead engine instead of stderr, as a real provider process does. The settings are context variables
    whose first value set in any thread also becomes the default of every new thread: clear both."""
    yield
    for context in (None, contextvars.Context()):  # this thread's values, then what a new thread starts with
        run = context.run if context is not None else (lambda f: f())
        if run(_engine_or_monitor_set):
            run(_forget_engine_and_monitor)


def _forget_engine_and_monitor() -> None:
    pulumi.runtime.settings.SETTINGS.engine = None
    pulumi.runtime.settings.SETTINGS.monitor = None


# -- labsim and the real transport (the sim tier) ------------------------------------------------------------------
# A test module gets one lab, started when a test first asks for it:
#
#     def test_x(labsim, sim):          # labsim: the LabServer; sim: the real PsrpTransport, provider methods use it
#         conn = host_connection(labsim, "wapcomputer1")          # tests/providers/conftest.py
#         sim.run(HostConnection.parse(conn), "who", Command("Get-Session"))
#
# A module that needs another lab shape overrides ``lab_settings`` (LabSettings fields):
#
#     @pytest.fixture(scope="module")
#     def lab_settings():
#         return {"pep_polling_seconds": 30}

# Small by default: a test that must prove Add-AzurePackConnector returns at its success line sets it high.
DEFAULT_PEP_POLLING_SECONDS = 3.0


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, Any]:
    """The LabSettings this module's lab runs with, over labsim's default lab."""
    return {}


@pytest.fixture(scope="module")
def labsim(tmp_path_factory: pytest.TempPathFactory, lab_settings: dict[str, Any]) -> Iterator[LabServer]:
    """labsim's default lab on free loopback addresses (real TLS and auth), for the whole module."""
    from labsim.testing import simulated_lab

    settings = {"pep_polling_seconds": DEFAULT_PEP_POLLING_SECONDS, **lab_settings}
    with simulated_lab(tmp_path_factory.mktemp("labsim"), **settings) as server:
        yield server


@pytest.fixture(scope="module")
def sim(labsim: LabServer) -> Iterator[PsrpTransport]:
    """The real PsrpTransport with its own session cache, for talking to ``labsim``: tests pass it to the providers
    they build (``ConnectorSiteProvider(sim)``) and to host operations. After each test that uses it, the lab's
    faults are cleared and its sessions closed, so every test starts on fresh sessions (see ``_sim_left_clean``)."""
    from providers.transport import PsrpTransport, SessionCache

    cache = SessionCache()
    try:
        yield PsrpTransport(cache)
    finally:
        cache.close_all()


@pytest.fixture(autouse=True)
def _sim_left_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("labsim").runtime.state.clear_faults()
        request.getfixturevalue("sim").cache.close_all()


# -- order under pytest-xdist ---------------------------------------------------------------------------------------
# make test hands whole modules to its workers (--dist loadscope: a module's fixtures, its shared deployed lab and
# the figures it counts over all its tests stay on one worker) in collection order, which scripts/test_suite.py
# keeps (--no-loadscope-reorder: xdist would otherwise put the modules with most tests first, and the long e2e
# modules of one or two tests last, where one of them runs alone while the other worker sits idle). The order is
# longest module first (tests/timings.py: each test's last measured time, or its tier's typical time), so the
# short modules at the end fill in. Modules keep their test order.
@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """The controller reads the known times once and hands every worker the same, so all collect one order
    (xdist stops when two workers' collections differ) even if another run writes the file meanwhile."""
    node.workerinput["test_durations"] = _known_at_start()


@functools.cache
def _known_at_start() -> dict[str, float]:
    from tests.timings import known_durations

    return known_durations()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = getattr(config, "workerinput", {}).get("test_durations")
    if known is None:  # not an xdist worker: the order pytest collected
        return
    from tests.timings import committed_module_seconds, module_seconds, tier_of

    expected = module_seconds(((item.nodeid, tier_of(m.name for m in item.iter_markers())) for item in items), known,
                              committed_module_seconds())
    items.sort(key=lambda item: (-expected[item.nodeid.split("::", 1)[0]], item.nodeid.split("::", 1)[0]))
