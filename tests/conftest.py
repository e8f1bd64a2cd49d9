"""Hypothesis profiles: the test suite is reproducible, exploration is asked for.

``make test`` (and CI) runs the property tests derandomized: the same examples every run, so a red CI run is
reproducible and a green one stays green. ``make reliability`` and ``HYPOTHESIS_PROFILE=explore`` draw fresh
random examples every run, which is how new counterexamples are found; one that is found becomes a fixed test.
"""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))



import contextvars

import pulumi.runtime.settings
import pytest


def _engine_or_monitor_set() -> bool:
    settings = pulumi.runtime.settings.SETTINGS
    return settings.engine is not None or settings.monitor is not None


@pytest.fixture(autouse=True)
def _pulumi_runtime_left_as_found():
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
